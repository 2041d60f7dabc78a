"""The routes of Orthanc's REST API that the plugin takes over, as one table.

Each row says how the route's answer is represented and cached. The code reads
the table; no route is special-cased elsewhere. ``docs/routes.md`` shows it.
"""

from dataclasses import dataclass
from typing import Tuple

from .http_rules.accept import EIGHT_BIT_FORMATS, SIXTEEN_BIT_FORMATS

PARENT_LEVELS = ("patients", "studies", "series")
INSTANCE_LEVEL = ("instances",)

# Kinds of body, each with the Content-Type Orthanc gives it.
JSON = "application/json; charset=utf-8"
ZIP = "application/zip"
DICOM = "application/dicom"
PDF = "application/pdf"
TEXT = "text/plain"
GZIP = "application/gzip"
OCTETS = "application/octet-stream"
IMAGE = "image"  # chosen from Accept among the route's formats
RAW_FRAME = "raw-frame"  # follows the instance's transfer syntax

# How Orthanc answers when the resource exists but its route fails with
# "Unknown resource": a JSON error, an empty 404, or for frames an empty 415
# (undecodable) or empty 404 (no such frame).
FAIL_JSON_404 = "json-404"
FAIL_EMPTY_404 = "empty-404"
FAIL_FRAME = "frame"


@dataclass(frozen=True)
class Route:
    """One taken route: what it answers and how that answer is cached."""

    name: str
    levels: Tuple[str, ...]
    path: str  # after "/{level}/{id}/"; "{frame}" stands for a frame number
    content_type: str
    stored: bool = False  # body kept on disk (JSON routes)
    binary_storable: bool = False  # kept on disk too when StoreBinary is on
    mutable: bool = True  # can change under the same URL
    weak: bool = False  # two generations may differ in bytes
    methods: Tuple[str, ...] = ("GET",)
    disposition: str = ""  # "zip" or "dicom": Content-Disposition filename
    formats: Tuple[str, ...] = ()  # image formats offered through Accept
    failure: str = FAIL_JSON_404

    @property
    def varies_on_accept(self) -> bool:
        return bool(self.formats)

    @property
    def regex(self) -> str:
        """The URI regex registered with Orthanc (groups: level, id[, frame])."""
        levels = "|".join(self.levels)
        path = self.path.replace(".", r"\.").replace("{frame}", "([^/]+)")
        return "/(%s)/([^/]+)/%s" % (levels, path)


def _frame_route(name: str, content_type: str, **options: object) -> Route:
    return Route(
        name="frames/" + name,
        levels=INSTANCE_LEVEL,
        path="frames/{frame}/" + name,
        content_type=content_type,
        mutable=False,
        failure=FAIL_FRAME,
        **options,  # type: ignore[arg-type]
    )


ROUTES: Tuple[Route, ...] = (
    # Patients, studies, series: their answers change when instances come or go.
    Route(
        "archive",
        PARENT_LEVELS,
        "archive",
        ZIP,
        weak=True,
        methods=("GET", "POST"),
        disposition="zip",
        binary_storable=True,
    ),
    Route(
        "media",
        PARENT_LEVELS,
        "media",
        ZIP,
        weak=True,
        methods=("GET", "POST"),
        disposition="zip",
        binary_storable=True,
    ),
    Route("attachments", PARENT_LEVELS, "attachments", JSON, stored=True),
    Route("instances-tags", PARENT_LEVELS, "instances-tags", JSON, stored=True),
    Route("shared-tags", PARENT_LEVELS, "shared-tags", JSON, stored=True),
    # Instances: their DICOM content does not change under their id.
    Route("file", INSTANCE_LEVEL, "file", DICOM, mutable=False, disposition="dicom"),
    Route("frames", INSTANCE_LEVEL, "frames", JSON, stored=True, mutable=False),
    Route("header", INSTANCE_LEVEL, "header", JSON, stored=True, mutable=False),
    Route("metadata", INSTANCE_LEVEL, "metadata", JSON, stored=True),
    Route("pdf", INSTANCE_LEVEL, "pdf", PDF, mutable=False, failure=FAIL_EMPTY_404),
    Route(
        "preview",
        INSTANCE_LEVEL,
        "preview",
        IMAGE,
        mutable=False,
        formats=EIGHT_BIT_FORMATS,
        failure=FAIL_FRAME,
        binary_storable=True,
    ),
    Route(
        "simplified-tags",
        INSTANCE_LEVEL,
        "simplified-tags",
        JSON,
        stored=True,
        mutable=False,
    ),
    Route("tags", INSTANCE_LEVEL, "tags", JSON, stored=True, mutable=False),
    # Every sub-route of one frame.
    _frame_route("preview", IMAGE, formats=EIGHT_BIT_FORMATS, binary_storable=True),
    _frame_route("rendered", IMAGE, formats=EIGHT_BIT_FORMATS, binary_storable=True),
    _frame_route("image-uint8", IMAGE, formats=EIGHT_BIT_FORMATS),
    _frame_route("image-uint16", IMAGE, formats=SIXTEEN_BIT_FORMATS),
    _frame_route("image-int16", IMAGE, formats=SIXTEEN_BIT_FORMATS),
    _frame_route("matlab", TEXT),
    _frame_route("numpy", OCTETS),
    _frame_route("raw", RAW_FRAME),
    _frame_route("raw.gz", GZIP),
)

ROUTES_BY_NAME = {route.name: route for route in ROUTES}

# Content-Type of a raw frame by transfer syntax UID; others are plain octets.
RAW_FRAME_TYPES = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
}
