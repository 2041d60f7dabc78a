"""Choice of an image format from ``Accept``, the way Orthanc 1.10 makes it.

Orthanc ranks each media range first by how specific it is (``image/png``
before ``image/*`` before ``*/*``), then by its ``q`` value; the first of equal
ranges wins, ``q=0`` is not a refusal, and types are compared case-sensitively.
A range that fits no offered format is skipped; an unreadable ``q`` is an error.
"""

from typing import Optional, Sequence, Tuple

PNG = "image/png"
JPEG = "image/jpeg"
PAM = "image/x-portable-arbitrarymap"

# What each image route offers, in Orthanc's order of preference.
EIGHT_BIT_FORMATS = (PNG, JPEG, PAM)
SIXTEEN_BIT_FORMATS = (PNG, PAM)


class UnreadableAccept(ValueError):
    """A ``q`` parameter of ``Accept`` is not a number (Orthanc answers 415)."""


def choose_image_format(
    accept: Optional[str], offered: Sequence[str] = EIGHT_BIT_FORMATS
) -> Optional[str]:
    """Return the media type to answer, or ``None`` when nothing offered fits.

    :raises UnreadableAccept: when a ``q`` value cannot be read.
    """
    if accept is None or not accept.strip():
        return offered[0]

    best: Optional[str] = None
    best_rank: Tuple[int, float] = (-1, -1.0)
    for item in accept.split(","):
        media_range, quality = _media_range(item)
        chosen = _offered_for(media_range, offered)
        rank = (_specificity(media_range), quality)
        if chosen is not None and rank > best_rank:
            best, best_rank = chosen, rank
    return best


def _media_range(item: str) -> Tuple[str, float]:
    parts = [part.strip() for part in item.split(";")]
    quality = 1.0
    for parameter in parts[1:]:
        name, _, value = parameter.partition("=")
        if name.strip() == "q":
            quality = _quality(value.strip())
    return parts[0], quality


def _quality(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise UnreadableAccept(value) from None


def _offered_for(media_range: str, offered: Sequence[str]) -> Optional[str]:
    if media_range in ("*/*", "image/*"):
        return offered[0]
    return media_range if media_range in offered else None


def _specificity(media_range: str) -> int:
    if media_range == "*/*":
        return 0
    return 1 if media_range.endswith("/*") else 2
