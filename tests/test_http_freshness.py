"""Cache-Control policy and freshness lifetime (RFC 9111)."""

from typing import Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orthanc_cache_plugin.http_rules.freshness import (
    cache_control,
    freshness_lifetime,
    parse_max_age,
)


@pytest.mark.parametrize(
    ("mutable", "max_age", "private", "expected"),
    [
        (True, 604800, False, "no-cache, public"),
        (True, 604800, True, "no-cache, private"),
        (False, 604800, False, "max-age=604800, public"),
        (False, 60, True, "max-age=60, private"),
        (False, 0, False, "max-age=0, public"),
    ],
)
def test_cache_control_of_the_default_policy(
    mutable: bool, max_age: int, private: bool, expected: str
) -> None:
    assert cache_control(mutable, max_age, private) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("max-age=60", 60),
        ("max-age=60, public", 60),
        ("public, max-age=60", 60),
        ("public,max-age=60,private", 60),
        ("MAX-AGE=60", 60),
        ('max-age="60"', 60),
        ("max-age = 60", 60),
        ("max-age=0", 0),
        ("public, s-maxage=5, max-age=7", 7),
        ("no-cache", 0),
        ("no-cache, public", 0),
        ("NO-CACHE", 0),
        ("no-store", 0),
        ("max-age=60, no-store", 0),
        ('no-cache="Set-Cookie", max-age=60', 0),
        ("public", 0),
        ("", 0),
        ("s-maxage=60", 0),
        ("x-max-age=60", 0),
        ("max-age=abc", 0),
        ("max-age=-1", 0),
        ("max-age=60abc", 0),
        ("not-no-cache, max-age=60", 60),
        ("no-cache-please, max-age=60", 60),
        # Regression: \d read a fullwidth "5" as the number 5.
        ("max-age=\uff15", 0),
    ],
)
def test_freshness_lifetime(value: str, expected: int) -> None:
    assert freshness_lifetime(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("max-age=60, public", 60),
        ("max-age=0", 0),
        ("no-cache, max-age=60", 60),
        ("public", None),
        ("", None),
        ("s-maxage=60", None),
        ("max-age=", None),
        ("max-age=\uff15", None),
    ],
)
def test_parse_max_age(value: str, expected: Optional[int]) -> None:
    assert parse_max_age(value) == expected


@given(st.integers(min_value=0, max_value=2**31), st.booleans())
def test_an_immutable_policy_is_fresh_for_its_max_age(
    max_age: int, private: bool
) -> None:
    policy = cache_control(False, max_age, private)

    assert freshness_lifetime(policy) == max_age
    assert parse_max_age(policy) == max_age


@given(st.integers(min_value=0, max_value=2**31), st.booleans())
def test_a_mutable_policy_is_stale_at_once(max_age: int, private: bool) -> None:
    assert freshness_lifetime(cache_control(True, max_age, private)) == 0
