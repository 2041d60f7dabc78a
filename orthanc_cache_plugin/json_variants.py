"""The ``?short`` and ``?simplify`` variants of a tag answer, made from the full one.

Orthanc reads every instance file once per variant. Warm-up asks it for the
full form only and derives the others here, written byte for byte as Orthanc
writes JSON (JsonCpp's styled stream writer: three-space indentation,
``" : "``, keys sorted, every non-empty array on several lines, no final
newline). Tags of a type this module does not know (``Binary``) are left
to Orthanc.
"""

import json
from typing import Any, Dict, List, Optional

SHORT = "short"
SIMPLIFY = "simplify"
VARIANTS = (SHORT, SIMPLIFY)

# Routes whose answer maps resource ids to tag sets, rather than being one.
PER_INSTANCE_ROUTES = ("instances-tags",)
DERIVABLE_ROUTES = ("instances-tags", "shared-tags", "tags")


class UnknownTagType(ValueError):
    """A tag whose ``Type`` this module cannot simplify (e.g. ``TooLong``)."""


def derive(route_name: str, full_body: bytes, variant: str) -> Optional[bytes]:
    """The body of ``variant`` for a route's full answer, or ``None`` if unsure."""
    if route_name not in DERIVABLE_ROUTES or variant not in VARIANTS:
        return None
    by_name = variant == SIMPLIFY
    try:
        full = json.loads(full_body)
        if route_name in PER_INSTANCE_ROUTES:
            value: Any = {key: _simplified(tags, by_name) for key, tags in full.items()}
        else:
            value = _simplified(full, by_name)
    except (ValueError, KeyError, AttributeError, TypeError):
        return None
    return styled_json(value).encode("utf-8")


def _simplified(tags: Dict[str, Any], by_name: bool) -> Dict[str, Any]:
    # Orthanc keeps the last of two tags with the same name, in tag order.
    simplified: Dict[str, Any] = {}
    for tag in sorted(tags):
        entry = tags[tag]
        simplified[entry["Name"] if by_name else tag] = _value(entry, by_name)
    return simplified


def _value(entry: Dict[str, Any], by_name: bool) -> Any:
    kind = entry["Type"]
    if kind == "String":
        return entry["Value"]
    if kind in ("Null", "TooLong"):
        return None
    if kind == "Sequence":
        return [_simplified(item, by_name) for item in entry["Value"]]
    raise UnknownTagType(kind)


def styled_json(value: Any) -> str:
    """Write ``value`` as Orthanc's REST API writes JSON."""
    out: List[str] = []
    _write(value, out, "", True)
    return "".join(out)


def _write(value: Any, out: List[str], indent: str, indented: bool) -> None:
    if isinstance(value, dict):
        _write_container(sorted(value.items()), "{}", out, indent, indented)
    elif isinstance(value, list):
        _write_container(list(enumerate(value)), "[]", out, indent, indented)
    else:
        out.append(json.dumps(value))


def _write_container(
    items: List[Any], brackets: str, out: List[str], indent: str, indented: bool
) -> None:
    if not items:
        out.append(brackets)
        return
    if not indented:
        out.append("\n" + indent)
    out.append(brackets[0])

    inner = indent + "   "
    for position, (key, item) in enumerate(items):
        out.append("\n" + inner)
        if brackets == "{}":
            out.append(json.dumps(key) + " : ")
        _write(item, out, inner, brackets == "[]")
        if position < len(items) - 1:
            out.append(",")
    out.append("\n" + indent + brackets[1])
