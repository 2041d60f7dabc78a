"""Image format negotiation, as Orthanc 1.10.1 makes it (not as RFC 9110 would).

Every row of ``OBSERVED`` was answered by a real Orthanc 1.10.1 for
``/instances/{id}/preview``; ``None`` stands for Orthanc's 404 or "no match".
"""

from typing import Optional, Sequence

import pytest

from orthanc_cache_plugin.http_rules.accept import (
    EIGHT_BIT_FORMATS,
    JPEG,
    PAM,
    PNG,
    SIXTEEN_BIT_FORMATS,
    UnreadableAccept,
    choose_image_format,
)

OBSERVED = [
    ("image/png;q=0.5, image/jpeg", JPEG),
    ("image/*;q=0.9, image/jpeg;q=0.8", JPEG),
    ("image/jpeg;q=0.5, */*", JPEG),
    ("IMAGE/JPEG", None),
    ("image/jpeg;q=0", JPEG),
    ("text/html, image/jpeg;q=0.1", JPEG),
    ("image/jpeg, image/png", JPEG),
    ("image/png, image/jpeg", PNG),
    ("image/png;q=0.5, image/jpeg;q=0.5", PNG),
    ("*/*;q=1, image/jpeg;q=0.1", JPEG),
    ("image/*", PNG),
    ("image/jpeg;level=1", JPEG),
    (" image/jpeg ", JPEG),
    ("image/x-portable-arbitrarymap;q=0.3, image/png;q=0.2", PAM),
    ("", PNG),
    ("text/html", None),
]


@pytest.mark.parametrize(("accept", "expected"), OBSERVED)
def test_eight_bit_choice_matches_orthanc_1_10_1(
    accept: str, expected: Optional[str]
) -> None:
    assert choose_image_format(accept, EIGHT_BIT_FORMATS) == expected


def test_an_unreadable_quality_is_an_error_like_orthanc_415() -> None:
    with pytest.raises(UnreadableAccept):
        choose_image_format("image/jpeg;q=abc, image/png;q=0.2", EIGHT_BIT_FORMATS)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("image/jpeg", None),
        ("image/jpeg, image/png;q=0.1", PNG),
        ("image/*", PNG),
        ("*/*", PNG),
        ("image/x-portable-arbitrarymap", PAM),
        ("", PNG),
    ],
)
def test_sixteen_bit_routes_offer_no_jpeg(accept: str, expected: Optional[str]) -> None:
    assert choose_image_format(accept, SIXTEEN_BIT_FORMATS) == expected


@pytest.mark.parametrize("offered", [EIGHT_BIT_FORMATS, SIXTEEN_BIT_FORMATS])
def test_no_accept_header_gives_the_first_offered_format(
    offered: Sequence[str],
) -> None:
    assert choose_image_format(None, offered) == offered[0]


def test_the_default_offer_is_the_eight_bit_one() -> None:
    assert choose_image_format("image/jpeg") == JPEG
