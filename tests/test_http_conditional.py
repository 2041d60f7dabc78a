"""Conditional GET evaluation (RFC 9110 13.2.2)."""

from typing import Dict

import pytest

from orthanc_cache_plugin.http_rules.conditional import is_not_modified

ETAG = '"v1"'
WEAK_ETAG = 'W/"v1"'
# Sun, 06 Nov 1994 08:49:37 GMT; the server's clock is one day later.
MODIFIED = 784111777
NOW = MODIFIED + 86400

AT_MODIFIED = "Sun, 06 Nov 1994 08:49:37 GMT"
BEFORE_MODIFIED = "Sun, 06 Nov 1994 08:49:36 GMT"
AFTER_MODIFIED = "Sun, 06 Nov 1994 09:00:00 GMT"
AFTER_NOW = "Mon, 07 Nov 1994 08:49:38 GMT"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, False),
        ({"if-none-match": '"v1"'}, True),
        ({"if-none-match": 'W/"v1"'}, True),
        ({"if-none-match": '"v0", "v1"'}, True),
        ({"if-none-match": "*"}, True),
        ({"if-none-match": '"v0"'}, False),
        ({"if-none-match": '"V1"'}, False),
        ({"if-none-match": "v1"}, False),
        ({"if-none-match": '"v1", garbage'}, False),
        ({"if-none-match": ""}, False),
    ],
)
def test_if_none_match_alone(headers: Dict[str, str], expected: bool) -> None:
    assert is_not_modified(headers, ETAG, MODIFIED, now=NOW) is expected


def test_if_none_match_compares_weakly_with_a_weak_representation_tag() -> None:
    headers = {"if-none-match": '"v1"'}
    assert is_not_modified(headers, WEAK_ETAG, MODIFIED, now=NOW)


@pytest.mark.parametrize(
    ("if_none_match", "if_modified_since", "expected"),
    [
        # RFC 9110 13.2.2 step 3: If-None-Match decides alone when present.
        ('"v0"', AT_MODIFIED, False),
        ('"v0"', AFTER_MODIFIED, False),
        ("v1", AT_MODIFIED, False),
        ("", AT_MODIFIED, False),
        ('"v1"', BEFORE_MODIFIED, True),
        ('"v1"', "garbage", True),
        ("*", BEFORE_MODIFIED, True),
    ],
)
def test_if_none_match_decides_and_if_modified_since_is_then_ignored(
    if_none_match: str, if_modified_since: str, expected: bool
) -> None:
    headers = {
        "if-none-match": if_none_match,
        "if-modified-since": if_modified_since,
    }
    assert is_not_modified(headers, ETAG, MODIFIED, now=NOW) is expected


@pytest.mark.parametrize(
    ("if_modified_since", "expected"),
    [
        (AT_MODIFIED, True),
        (AFTER_MODIFIED, True),
        (BEFORE_MODIFIED, False),
        ("Sunday, 06-Nov-94 08:49:37 GMT", True),
        ("Sun Nov  6 08:49:37 1994", True),
        ("Sunday, 06-Nov-94 08:49:36 GMT", False),
        ("Sun Nov  6 08:49:36 1994", False),
        ("", False),
        ("   ", False),
        ("garbage", False),
        ("Sun, 31 Feb 1994 08:49:37 GMT", False),
        (AT_MODIFIED + ", " + AFTER_MODIFIED, False),
        ("Sun, 06 Nov 1994 08:49:37 UTC", False),
    ],
)
def test_if_modified_since_alone(if_modified_since: str, expected: bool) -> None:
    headers = {"if-modified-since": if_modified_since}
    assert is_not_modified(headers, ETAG, MODIFIED, now=NOW) is expected


def test_if_modified_since_has_no_effect_without_a_modification_date() -> None:
    headers = {"if-modified-since": AT_MODIFIED}
    assert not is_not_modified(headers, ETAG, None, now=NOW)


def test_if_modified_since_at_the_server_clock_is_honoured() -> None:
    headers = {"if-modified-since": "Mon, 07 Nov 1994 08:49:37 GMT"}
    assert is_not_modified(headers, ETAG, MODIFIED, now=NOW)


def test_if_modified_since_later_than_the_server_clock_is_ignored() -> None:
    # Regression: a client clock ahead of the server's got 304 for changes made
    # between the server's now and the client's date.
    headers = {"if-modified-since": AFTER_NOW}
    assert not is_not_modified(headers, ETAG, MODIFIED, now=NOW)


def test_the_server_clock_defaults_to_the_current_time() -> None:
    far_future = {"if-modified-since": "Fri, 31 Dec 9999 23:59:59 GMT"}
    recent_past = {"if-modified-since": AT_MODIFIED}

    assert not is_not_modified(far_future, ETAG, MODIFIED)
    assert is_not_modified(recent_past, ETAG, MODIFIED)


def test_header_names_are_read_in_lower_case_only() -> None:
    # Orthanc gives request header names in lower case; other spellings are not
    # request headers the handler can receive.
    headers = {"If-None-Match": '"v1"', "If-Modified-Since": AT_MODIFIED}
    assert not is_not_modified(headers, ETAG, MODIFIED, now=NOW)
