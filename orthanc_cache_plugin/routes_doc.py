"""Render the route table as Markdown (``docs/routes.md`` is this output).

Run ``python -m orthanc_cache_plugin.routes_doc > docs/routes.md``; a test
checks that the file is up to date.
"""

from typing import List

from .routes import FAIL_EMPTY_404, FAIL_FRAME, IMAGE, RAW_FRAME, ROUTES, Route

HEADER = """# Routes taken over

Generated from `orthanc_cache_plugin/routes.py` by
`python -m orthanc_cache_plugin.routes_doc`; do not edit by hand.

Every route answers every method as Orthanc does (405 with Orthanc's `Allow`
for the methods it refuses). *Stored* bodies are kept on disk; the others are
computed by Orthanc on each miss but still get validators and a 304 when the
client's copy is current. *Version* is what the ETag is derived from: the
resource's metadata (`LastUpdate` for patients, studies and series,
`ReceptionDate` for instances, and every other metadata value), the plugin's
generation of the resource (new on each change event), the route, the query
and the representation.

"""

COLUMNS = (
    "route",
    "levels",
    "methods",
    "stored",
    "Cache-Control (default)",
    "ETag",
    "Content-Type",
    "Content-Disposition",
    "Vary",
    "on failure of an existing resource",
)

FAILURES = {
    FAIL_EMPTY_404: "empty 404",
    FAIL_FRAME: "empty 415 (undecodable) or 404 (no such frame)",
}


def render() -> str:
    """The Markdown document for the current route table."""
    head = "| " + " | ".join(COLUMNS) + " |\n" + "|---" * len(COLUMNS) + "|\n"
    return HEADER + head + "\n".join(_row(route) for route in ROUTES) + "\n"


def _row(route: Route) -> str:
    cells: List[str] = [
        "`%s`" % route.path,
        ", ".join(route.levels),
        ", ".join(route.methods),
        "yes" if route.stored else "no",
        "`no-cache`" if route.mutable else "`max-age=604800`",
        "weak" if route.weak else "strong",
        _content_type(route),
        {"zip": '`filename="{id}.zip"`', "dicom": "attachment uuid `.dcm`"}.get(
            route.disposition, ""
        ),
        "Accept" if route.varies_on_accept else "",
        FAILURES.get(route.failure, "Orthanc's JSON error"),
    ]
    return "| " + " | ".join(cells) + " |"


def _content_type(route: Route) -> str:
    if route.content_type == IMAGE:
        return " / ".join("`%s`" % media for media in route.formats)
    if route.content_type == RAW_FRAME:
        return "by transfer syntax"
    return "`%s`" % route.content_type


if __name__ == "__main__":
    print(render(), end="")
