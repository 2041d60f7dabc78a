"""HTTP-dates (RFC 9110 5.6.7) and Orthanc timestamps."""

import calendar
import re
import time
from typing import Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orthanc_cache_plugin.http_rules.dates import (
    format_http_date,
    parse_http_date,
    parse_orthanc_timestamp,
)

# RFC 9110's own example instant, Sun, 06 Nov 1994 08:49:37 GMT.
EXAMPLE = 784111777
# 9999-12-31T23:59:59Z, the last instant a four-digit year can write.
LAST_FOUR_DIGIT_SECOND = 253402300799


def test_format_http_date_writes_an_imf_fixdate() -> None:
    assert format_http_date(EXAMPLE) == "Sun, 06 Nov 1994 08:49:37 GMT"


def test_format_http_date_drops_fractions_of_a_second() -> None:
    assert format_http_date(EXAMPLE + 0.9) == "Sun, 06 Nov 1994 08:49:37 GMT"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Sun, 06 Nov 1994 08:49:37 GMT", EXAMPLE),
        ("Sunday, 06-Nov-94 08:49:37 GMT", EXAMPLE),
        ("Sun Nov  6 08:49:37 1994", EXAMPLE),
        ("Sun Nov 16 08:49:37 1994", EXAMPLE + 10 * 86400),
        ("  Sun, 06 Nov 1994 08:49:37 GMT  ", EXAMPLE),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0),
        ("Mon, 29 Feb 2016 00:00:00 GMT", calendar.timegm((2016, 2, 29, 0, 0, 0))),
        ("Fri, 31 Dec 9999 23:59:59 GMT", LAST_FOUR_DIGIT_SECOND),
        # A leap second is read as the second before it.
        ("Sun, 06 Nov 1994 08:49:60 GMT", EXAMPLE + 22),
    ],
)
def test_parse_http_date_reads_every_form(value: str, expected: int) -> None:
    assert parse_http_date(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "garbage",
        "784111777",
        "1994-11-06T08:49:37Z",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37",
        "sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 nov 1994 08:49:37 GMT",
        "Sun, 06 NOV 1994 08:49:37 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 31 Feb 1994 08:49:37 GMT",
        "Sun, 29 Feb 2015 08:49:37 GMT",
        "Sun, 31 Apr 1994 08:49:37 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 32 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMTx",
        "Sunday, 31-Feb-94 08:49:37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sun Feb 31 08:49:37 1994",
        "Sun Nov 6 08:49:37 1994",
        "Sun Nov  6 08:49:37 1994 GMT",
    ],
)
def test_parse_http_date_gives_none_for_anything_else(value: str) -> None:
    assert parse_http_date(value) is None


def test_year_zero_is_not_a_date_rather_than_an_error() -> None:
    # Regression: year 0000 made calendar raise ValueError out of the parser.
    assert parse_http_date("Sun, 06 Nov 0000 08:49:37 GMT") is None
    assert parse_http_date("Sun Nov  6 08:49:37 0000") is None


@pytest.mark.parametrize(
    "value",
    [
        "Sun, \uff10\uff16 Nov 1994 08:49:37 GMT",  # fullwidth "06"
        "Sun, 06 Nov \u0661\u0669\u0669\u0664 08:49:37 GMT",  # Arabic-Indic "1994"
        "Sunday, 06-Nov-\u0669\u0664 08:49:37 GMT",
        "Sun Nov  \u0666 08:49:37 1994",
    ],
)
def test_digits_of_other_scripts_are_not_ascii_digits(value: str) -> None:
    # Regression: \d accepted them, and int() read them as a valid date.
    assert parse_http_date(value) is None


@pytest.mark.parametrize("short_year", [0, 1, 25, 49, 50, 51, 70, 94, 99])
def test_rfc850_two_digit_year_is_at_most_fifty_years_ahead(short_year: int) -> None:
    parsed = parse_http_date("Sunday, 06-Nov-%02d 08:49:37 GMT" % short_year)

    assert parsed is not None
    year = time.gmtime(parsed).tm_year
    this_year = time.gmtime().tm_year
    assert year % 100 == short_year
    assert this_year - 49 <= year <= this_year + 50


@given(st.integers(min_value=0, max_value=LAST_FOUR_DIGIT_SECOND))
def test_parse_reads_back_what_format_writes(seconds: int) -> None:
    assert parse_http_date(format_http_date(seconds)) == seconds


@given(st.floats(min_value=0, max_value=LAST_FOUR_DIGIT_SECOND))
def test_format_of_a_fractional_time_reads_back_as_its_whole_second(
    seconds: float,
) -> None:
    assert parse_http_date(format_http_date(seconds)) == int(seconds)


@given(st.text(max_size=40))
def test_parse_http_date_never_raises(value: str) -> None:
    parsed: Optional[int] = parse_http_date(value)
    assert parsed is None or isinstance(parsed, int)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("19941106T084937", EXAMPLE),
        ("19700101T000000", 0),
        ("20160229T235959", calendar.timegm((2016, 2, 29, 23, 59, 59))),
        (" 19941106T084937\n", EXAMPLE),
    ],
)
def test_parse_orthanc_timestamp_reads_utc(value: str, expected: int) -> None:
    assert parse_orthanc_timestamp(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        "1994-11-06T08:49:37",
        "19941106 084937",
        "19941106T0849",
        "19941106T084937Z",
        "19941106t084937",
        "19941306T084937",
        "19941100T084937",
        "19950229T084937",
        "19941106T244937",
        "19941106T086037",
        "00000101T000000",
        "\uff11\uff19\uff19\uff14\uff11\uff11\uff10\uff16T084937",
    ],
)
def test_parse_orthanc_timestamp_gives_none_for_anything_else(value: str) -> None:
    assert parse_orthanc_timestamp(value) is None


def test_formatted_dates_have_the_imf_fixdate_shape() -> None:
    shape = re.compile(
        r"^[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9:]{8} GMT$"
    )
    for seconds in (0, EXAMPLE, LAST_FOUR_DIGIT_SECOND):
        assert shape.match(format_http_date(seconds))
