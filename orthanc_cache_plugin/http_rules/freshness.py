"""Cache-Control and Expires policy (RFC 9111) for the answers of taken routes."""

import re
from typing import Optional

# A representation that can change under its URL must be revalidated every time.
REVALIDATE = "no-cache"

# re.ASCII: delta-seconds is ASCII digits (RFC 9111 1.2.2), not any script's.
_MAX_AGE = re.compile(
    r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE | re.ASCII
)
_NO_CACHE = re.compile(
    r"(?:^|,)\s*(?:no-cache|no-store)\s*(?:,|$|=)", re.IGNORECASE | re.ASCII
)


def cache_control(mutable: bool, max_age: int, private: bool) -> str:
    """Build the default policy's ``Cache-Control`` for one route.

    :param mutable: whether the representation can change under the same URL.
    :param max_age: freshness lifetime of representations that cannot change.
    :param private: whether shared caches must not store the answer (the data is
        only for the authenticated user who asked).
    """
    scope = "private" if private else "public"
    if mutable:
        return "%s, %s" % (REVALIDATE, scope)
    return "max-age=%d, %s" % (max_age, scope)


def freshness_lifetime(cache_control_value: str) -> int:
    """Seconds for which an answer with this ``Cache-Control`` is fresh.

    ``no-cache``/``no-store`` and the absence of ``max-age`` give 0, so that
    ``Expires`` equals ``Date``: already stale for HTTP/1.0 caches.
    """
    if _NO_CACHE.search(cache_control_value):
        return 0
    match = _MAX_AGE.search(cache_control_value)
    return int(match.group(1)) if match else 0


def parse_max_age(cache_control_value: str) -> Optional[int]:
    """Return the ``max-age`` directive's value, or ``None`` when there is none."""
    match = _MAX_AGE.search(cache_control_value)
    return int(match.group(1)) if match else None
