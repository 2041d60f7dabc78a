"""Entity tags and If-None-Match parsing (RFC 9110 8.8.3, 13.1.2)."""

from typing import List, Optional, Union

import pytest

from orthanc_cache_plugin.http_rules.etags import (
    ANY,
    make_etag,
    parse_if_none_match,
    weak_match,
)


@pytest.mark.parametrize(
    ("opaque", "weak", "expected"),
    [
        ("abc", False, '"abc"'),
        ("abc", True, 'W/"abc"'),
        ("", False, '""'),
        ("1-2-3", True, 'W/"1-2-3"'),
    ],
)
def test_make_etag_quotes_and_marks_weakness(
    opaque: str, weak: bool, expected: str
) -> None:
    assert make_etag(opaque, weak) == expected


@pytest.mark.parametrize("weak", [False, True])
def test_a_made_tag_is_read_back_by_if_none_match(weak: bool) -> None:
    tag = make_etag("v1-abc", weak)
    assert parse_if_none_match(tag) == [tag]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"a"', ['"a"']),
        ('W/"a"', ['W/"a"']),
        ('""', ['""']),
        ('"a","b"', ['"a"', '"b"']),
        ('"a", "b"', ['"a"', '"b"']),
        ('"a" ,\tW/"b" , "c"', ['"a"', 'W/"b"', '"c"']),
        ('  "a"  ', ['"a"']),
        ('"a",', ['"a"']),
        # Regression: RFC 9110 5.6.1.2 empty list elements made the value None.
        (', "a"', ['"a"']),
        ('"a", , "b"', ['"a"', '"b"']),
        ('"a",,"b",', ['"a"', '"b"']),
        ('"x/y:z=1"', ['"x/y:z=1"']),
        ("*", ANY),
        (" * ", ANY),
    ],
)
def test_parse_if_none_match_reads_valid_values(
    value: str, expected: Union[str, List[str]]
) -> None:
    assert parse_if_none_match(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "a",
        "abc, def",
        '"a", b',
        '"a" "b"',
        '"a"x',
        '"a',
        'a"',
        '"a"b"',
        'w/"a"',
        'W/ "a"',
        "W/a",
        '"a", *',
        "*, *",
        "**",
        ",",
        ", ,",
        '"a";q=1',
        '"a\tb"',
        '"a b"',
    ],
)
def test_parse_if_none_match_gives_none_for_malformed_values(value: str) -> None:
    parsed: Optional[Union[str, List[str]]] = parse_if_none_match(value)
    assert parsed is None


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ('"a"', '"a"', True),
        ('W/"a"', '"a"', True),
        ('"a"', 'W/"a"', True),
        ('W/"a"', 'W/"a"', True),
        ('"a"', '"b"', False),
        ('W/"a"', 'W/"b"', False),
        ('"a"', '"A"', False),
        ('"W/a"', '"a"', False),
    ],
)
def test_weak_match_ignores_only_the_weakness_prefix(
    first: str, second: str, expected: bool
) -> None:
    assert weak_match(first, second) is expected
