"""Evaluation of conditional GET requests (RFC 9110 section 13.2.2)."""

import time
from typing import Mapping, Optional

from .dates import parse_http_date
from .etags import ANY, parse_if_none_match, weak_match


def is_not_modified(
    headers: Mapping[str, str],
    etag: str,
    last_modified: Optional[int],
    now: Optional[float] = None,
) -> bool:
    """Tell whether a GET with these request headers gets ``304 Not Modified``.

    :param headers: request headers, names in lower case (as Orthanc gives them).
    :param etag: the entity tag the ``200`` would carry.
    :param last_modified: the ``Last-Modified`` the ``200`` would carry, in POSIX
        seconds, or ``None`` when it has none.
    :param now: the server's clock in POSIX seconds; the current time if ``None``.
    """
    if_none_match = headers.get("if-none-match")

    # RFC 9110 13.2.2 step 3: If-None-Match, when present, decides alone.
    if if_none_match is not None:
        return _none_match_fails(if_none_match, etag)

    # Step 4: If-Modified-Since is only read when If-None-Match is absent.
    if_modified_since = headers.get("if-modified-since")
    if if_modified_since is None or last_modified is None:
        return False

    # RFC 9110 13.1.3: an invalid date gives the field no effect.
    since = parse_http_date(if_modified_since)
    if since is None:
        return False

    # A date after the server's clock cannot echo a Last-Modified of ours (never
    # later than Date): it comes from a client's own clock. Honouring it would
    # answer 304 over any change made between now and that date, so it is
    # ignored, as RFC 2616 14.25 said outright; RFC 9110 13.1.3 only says the
    # server SHOULD answer 304, and a 200 is always a correct answer.
    current = time.time() if now is None else now
    return since <= current and last_modified <= since


def _none_match_fails(field_value: str, etag: str) -> bool:
    parsed = parse_if_none_match(field_value)
    if parsed is None:
        return False
    if parsed == ANY:
        return True
    return any(weak_match(tag, etag) for tag in parsed)
