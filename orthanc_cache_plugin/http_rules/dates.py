"""HTTP-dates (RFC 9110 section 5.6.7) and Orthanc's ``LastUpdate`` timestamps."""

import calendar
import re
import time
from email.utils import formatdate
from typing import Optional

_MONTHS = {
    name: number
    for number, name in enumerate(
        [
            "Jan",
            "Feb",
            "Mar",
            "Apr",
            "May",
            "Jun",
            "Jul",
            "Aug",
            "Sep",
            "Oct",
            "Nov",
            "Dec",
        ],
        start=1,
    )
}

# RFC 9110 5.6.7: IMF-fixdate, then the two obsolete forms a recipient must accept.
# Digits are spelled [0-9]: DIGIT is ASCII, while \d takes the digits of any script.
_IMF_FIXDATE = re.compile(
    r"^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{2}) ([A-Z][a-z]{2}) ([0-9]{4}) "
    r"([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT$"
)
_RFC850 = re.compile(
    r"^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), "
    r"([0-9]{2})-([A-Z][a-z]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT$"
)
_ASCTIME = re.compile(
    r"^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ([A-Z][a-z]{2}) ([ 0-9][0-9]) "
    r"([0-9]{2}):([0-9]{2}):([0-9]{2}) ([0-9]{4})$"
)
_ORTHANC_TIMESTAMP = re.compile(
    r"^([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})$"
)


def format_http_date(seconds: float) -> str:
    """Format a POSIX time as an IMF-fixdate, e.g. ``Sun, 06 Nov 1994 08:49:37 GMT``."""
    return formatdate(seconds, usegmt=True)


def parse_http_date(value: str) -> Optional[int]:
    """Parse an HTTP-date in any of its three forms into POSIX seconds.

    :return: ``None`` for anything that is not a valid HTTP-date.
    """
    value = value.strip()

    match = _IMF_FIXDATE.match(value)
    if match:
        day, month, year, hour, minute, second = match.groups()
        return _to_seconds(year, month, day, hour, minute, second)

    match = _RFC850.match(value)
    if match:
        day, month, short_year, hour, minute, second = match.groups()
        return _to_seconds(
            _full_year(int(short_year)), month, day, hour, minute, second
        )

    match = _ASCTIME.match(value)
    if match:
        month, day, hour, minute, second, year = match.groups()
        return _to_seconds(year, month, day.strip(), hour, minute, second)

    return None


def parse_orthanc_timestamp(value: str) -> Optional[int]:
    """Parse Orthanc's ``YYYYMMDDTHHMMSS`` (``LastUpdate``, ``ReceptionDate``, UTC)."""
    match = _ORTHANC_TIMESTAMP.match(value.strip())
    if not match:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    return _checked_timegm(year, month, day, hour, minute, second)


def _full_year(short_year: int) -> int:
    # RFC 9110 5.6.7: a two-digit year that appears more than 50 years in the
    # future is taken as the most recent past year with the same last two digits.
    this_year = time.gmtime().tm_year
    year = this_year - this_year % 100 + short_year
    return year - 100 if year > this_year + 50 else year


def _to_seconds(
    year: object, month: str, day: object, hour: object, minute: object, second: object
) -> Optional[int]:
    if month not in _MONTHS:
        return None
    return _checked_timegm(
        int(str(year)),
        _MONTHS[month],
        int(str(day)),
        int(str(hour)),
        int(str(minute)),
        int(str(second)),
    )


def _checked_timegm(
    year: int, month: int, day: int, hour: int, minute: int, second: int
) -> Optional[int]:
    # Year 0 has no place in the proleptic Gregorian calendar that calendar uses.
    if year < 1:
        return None
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60):
        return None
    if second > 60:
        return None
    if day > calendar.monthrange(year, month)[1]:
        return None
    return calendar.timegm((year, month, day, hour, minute, min(second, 59), 0, 0, 0))
