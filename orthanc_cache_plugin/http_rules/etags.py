"""Entity tags (RFC 9110 section 8.8.3) and their weak comparison."""

import re
from typing import List, Optional, Union

# entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, etagc = %x21 / %x23-7E / obs-text;
# RFC 9110 5.6.1.2: empty list elements (", ,") must be accepted and ignored.
_ENTITY_TAG = re.compile(r'(?:\s*,)*\s*((?:W/)?"[\x21\x23-\x7e\x80-\xff]*")\s*(?:,|$)')

ANY = "*"


def make_etag(opaque: str, weak: bool) -> str:
    """Quote an opaque validator, prefixed with ``W/`` when it is weak."""
    return ('W/"%s"' if weak else '"%s"') % opaque


def parse_if_none_match(value: str) -> Optional[Union[str, List[str]]]:
    """Parse an ``If-None-Match`` field value.

    :return: ``ANY`` for ``*``, the list of entity tags, or ``None`` when the
        value is malformed (RFC 9110 13.1.2 then gives it no effect on a match).
    """
    value = value.strip()
    if value == ANY:
        return ANY

    tags: List[str] = []
    position = 0
    while position < len(value):
        match = _ENTITY_TAG.match(value, position)
        if not match:
            return None
        tags.append(match.group(1))
        position = match.end()

    return tags or None


def weak_match(first: str, second: str) -> bool:
    """RFC 9110 8.8.3.2: weak comparison ignores the ``W/`` prefix of either tag."""
    return _opaque(first) == _opaque(second)


def _opaque(tag: str) -> str:
    return tag[2:] if tag.startswith("W/") else tag
