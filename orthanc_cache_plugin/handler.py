"""The request pipeline of a taken route: version, conditional, cache, Orthanc.

The Orthanc API is passed in (``api``), so this runs the same under the real
plugin and under the test fake. Nothing here writes to Orthanc's output.
"""

import hashlib
import json
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from . import json_variants
from . import orthanc_errors as errors
from .answers import Answer, Body, Headers
from .config import Settings
from .http_rules import freshness
from .http_rules.accept import PNG, UnreadableAccept, choose_image_format
from .http_rules.conditional import is_not_modified
from .http_rules.dates import format_http_date, parse_orthanc_timestamp
from .http_rules.etags import ANY, make_etag, parse_if_none_match
from .images import UnsupportedQuality, convert_png, jpeg_quality
from .orthanc_features import detect
from .routes import (
    FAIL_EMPTY_404,
    FAIL_FRAME,
    IMAGE,
    JSON,
    RAW_FRAME,
    RAW_FRAME_TYPES,
    ROUTES,
    ZIP,
    Route,
)
from .singleflight import SingleFlight
from .statistics import Statistics
from .store import Store
from .versions import Versions

logger = logging.getLogger(__name__)

KEY_FORMAT = 1  # bump when the meaning of a stored entry changes
ANSWERED_ENTRIES = 100_000

# Orthanc's error codes that make its image routes answer 404, not 415; from
# Orthanc 1.12.5 only a missing instance is still a 404 (orthanc_features).
_NO_SUCH_FRAME = (errors.PARAMETER_OUT_OF_RANGE, errors.UNKNOWN_RESOURCE)
_NO_SUCH_INSTANCE = (errors.UNKNOWN_RESOURCE,)
# Orthanc reads the frame of its image routes as a C++ unsigned int with
# boost::lexical_cast: an optional sign, ASCII digits, and a minus wraps.
_FRAME_NUMBER = re.compile(r"([+-]?)([0-9]+)", re.ASCII)
_UNSIGNED_INT = 2**32


@dataclass(frozen=True)
class Request:
    """A request to a taken route, as Orthanc hands it to the callback."""

    route: Route
    method: str
    uri: str
    level: str
    resource_id: str
    frame: str
    query: str
    headers: Mapping[str, str]
    body: bytes = b""

    @property
    def target(self) -> str:
        """The URI with its query, as the logs name it."""
        return self.uri + ("?" + self.query if self.query else "")


@dataclass(frozen=True)
class Version:
    """What the answer of a request depends on, and what validates it."""

    media_type: str
    etag: str
    last_modified: int
    key: str
    metadata: Mapping[str, str]


class Handler:
    """Answers requests to taken routes, from the store or from Orthanc."""

    def __init__(
        self,
        api: Any,
        settings: Settings,
        store: Store,
        versions: Versions,
        statistics: Statistics,
    ) -> None:
        self._api = api
        self._settings = settings
        self._store = store
        self._versions = versions
        self._statistics = statistics
        # Settled at start-up, not worked out again on every answer.
        self._policies = {route.name: self._cache_control(route) for route in ROUTES}
        self._flights: SingleFlight[Union[Body, Answer]] = SingleFlight()
        # Versions answered 200 but not stored: evidence for a 304 to "*" or
        # a date (RFC 9110 15.4.5). In memory: a write per answer costs more
        # than the route (a restart only forgets the evidence).
        self._answered = BoundedSet(ANSWERED_ENTRIES)
        self._features = detect(api)
        self._no_such_frame = (
            _NO_SUCH_INSTANCE if self._features.frame_errors_dropped else _NO_SUCH_FRAME
        )
        # Python plugin 5.0 can stream an answer: large stored bodies are then
        # handed to the adapter as their open files, not read into memory.
        self._streams = hasattr(getattr(api, "RestOutput", None), "StartStreamAnswer")
        # False until the changes made while the plugin was not running have
        # been accounted for: nothing is read from the store or answered 304.
        self.ready = False
        # Orthanc's database, in every key: two Orthanc servers sharing a
        # cache directory may hold different resources under the same id.
        self.database = ""

    def handle(self, request: Request) -> Answer:
        """Answer one request as Orthanc would, from the cache where possible."""
        route = request.route
        if request.method not in route.methods:
            return Answer(405, allowed=",".join(route.methods))
        if request.method == "POST":
            return self._forward_post(request)
        return self._get(request)

    def uncached(self, request: Request) -> Answer:
        """Answer straight from Orthanc, without the cache (after a plugin fault)."""
        if request.method == "POST":
            return self._forward_post(request)
        body = self._compute(request, PNG)
        if isinstance(body, Answer):
            return body
        return Answer(
            200, body, _plain_media_type(request.route), self._disposition(request)
        )

    def warm(self, request: Request, variants: Tuple[str, ...] = ()) -> bool:
        """Compute and store one answer if it is not stored yet; tell if it is now.

        :param variants: queries (``short``, ``simplify``) to derive from this
            full answer and store too, instead of asking Orthanc for each.
        """
        metadata = self._lookup_metadata(request)
        if isinstance(metadata, Answer):
            return False
        generation = self._versions.generation(request.resource_id)
        version = self._version(request, metadata, generation)
        if isinstance(version, Answer):
            return False

        body = self._body(request, version, whole=True)
        if isinstance(body, Answer):
            return False
        if isinstance(body, (bytes, memoryview)):  # always, with whole=True
            for variant in variants:
                self._store_variant(request, variant, body, metadata, generation)
        return True

    def _store_variant(
        self,
        request: Request,
        variant: str,
        full_body: Union[bytes, memoryview],
        metadata: Mapping[str, str],
        generation: Tuple[str, float],
    ) -> None:
        # Same metadata and generation as the full answer: the derived body is
        # never stored under a version newer than the one it was made from.
        derived_request = replace(request, query=variant)
        version = self._version(derived_request, metadata, generation)
        if isinstance(version, Answer) or self._store.contains(version.key):
            return
        derived = json_variants.derive(request.route.name, bytes(full_body), variant)
        if derived is None:
            self._get(derived_request)
        elif self._store.set(version.key, derived, request.resource_id):
            self._statistics.count("stored")
            logger.info("stored %s (derived)", derived_request.target)

    # GET: the cached path.

    def _get(self, request: Request) -> Answer:
        metadata = self._lookup_metadata(request)
        if isinstance(metadata, Answer):
            return metadata

        version = self._version(request, metadata)
        if isinstance(version, Answer):
            return version

        headers = self._caching_headers(request.route, version)
        not_modified = self.ready and is_not_modified(
            request.headers, version.etag, version.last_modified
        )
        # RFC 9110 15.4.5: a 304 only where the plain answer is a 200. A
        # matching entity tag proves it; "*" and dates need an earlier 200.
        if not_modified and (_tag_matched(request.headers) or self._known(version)):
            return self._not_modified(request, headers)

        body = self._body(request, version)
        if isinstance(body, Answer):
            return body

        if not_modified:
            _release(body)
            return self._not_modified(request, headers)
        headers.extend(self._disposition(request))
        return Answer(200, body, version.media_type, headers)

    def _not_modified(self, request: Request, headers: Headers) -> Answer:
        self._statistics.count("not_modified")
        logger.info("304 %s", request.target)
        return Answer(304, headers=headers)

    def _known(self, version: Version) -> bool:
        return version.key in self._answered or self._store.contains(version.key)

    def _lookup_metadata(self, request: Request) -> "Dict[str, str] | Answer":
        # One lookup per request: it checks that the resource exists and gives
        # LastUpdate (or ReceptionDate), every metadata write included.
        uri = "/%s/%s/metadata?expand" % (request.level, request.resource_id)
        try:
            found = json.loads(self._api.RestApiGet(uri))
        except Exception as error:  # noqa: BLE001 - answered as Orthanc would
            if errors.error_code(error) == errors.UNKNOWN_RESOURCE:
                return self._unversioned(request)
            return self._error(error, request)
        return found if isinstance(found, dict) else {}

    def _unversioned(self, request: Request) -> Answer:
        # No such resource at this level. Orthanc 1.10 does not check the level
        # on some routes (/patients/{study id}/shared-tags answers): let its
        # own route answer, uncached. Its image routes answer an unknown
        # instance with an empty 404.
        try:
            body = bytes(self._api.RestApiGet(request.target))
        except Exception as error:  # noqa: BLE001 - answered as Orthanc would
            if request.route.content_type == IMAGE:
                return self._counted(
                    Answer(self._frame_failure(request) or 404), request
                )
            return self._error(error, request)

        self._statistics.count("bypassed")
        logger.info("bypass %s: not a resource of this level", request.target)
        media_type = _plain_media_type(request.route)
        return Answer(200, body, media_type, self._disposition(request))

    def _version(
        self,
        request: Request,
        metadata: Mapping[str, str],
        generation: Optional[Tuple[str, float]] = None,
    ) -> "Version | Answer":
        media_type = self._media_type(request, metadata)
        if isinstance(media_type, Answer):
            return media_type

        token, changed_at = generation or self._versions.generation(request.resource_id)
        fingerprint = json.dumps(
            [
                KEY_FORMAT,
                request.route.name,
                request.uri,
                request.query,
                media_type,
                sorted(metadata.items()),
                token,
                self._versions.epoch,
                self.database,
            ]
        )
        digest = hashlib.sha1(fingerprint.encode("utf-8")).hexdigest()
        return Version(
            media_type=media_type,
            etag=make_etag(digest[:24], request.route.weak),
            last_modified=_last_modified(
                metadata, max(changed_at, self._versions.epoch_at)
            ),
            key="answer:" + digest,
            metadata=metadata,
        )

    def _media_type(
        self, request: Request, metadata: Mapping[str, str]
    ) -> "str | Answer":
        route = request.route
        if route.content_type == RAW_FRAME:
            syntax = metadata.get("TransferSyntax", "")
            return RAW_FRAME_TYPES.get(syntax, "application/octet-stream")
        if route.content_type != IMAGE:
            return route.content_type

        # Orthanc decodes the frame, reads ?quality, negotiates, then encodes:
        # a bad quality (415) or no acceptable format (404) only shows when the
        # frame decodes.
        try:
            jpeg_quality(_query_value(request.query, "quality"))
            chosen = choose_image_format(request.headers.get("accept"), route.formats)
        except (UnreadableAccept, UnsupportedQuality) as error:
            logger.info("bypass %s: unsupported %s", request.target, error)
            return self._unless_undecodable(request, 415)
        if chosen is None:
            logger.info("bypass %s: no offered format in Accept", request.target)
            return self._unless_undecodable(request, 404)
        return chosen

    def _unless_undecodable(self, request: Request, status: int) -> Answer:
        return Answer(self._frame_failure(request) or status)

    def _body(
        self, request: Request, version: Version, whole: bool = False
    ) -> "Body | Answer":
        """The body, from the store or from Orthanc; whole: never an open file."""
        if self._stored(request.route) and self.ready:
            body = self._stored_body(version.key, whole)
            if body is not None:
                self._statistics.count("hits")
                logger.info("hit %s", request.target)
                return body

        result, shared = self._flights.run(
            version.key, lambda: self._miss(request, version)
        )
        if shared:
            self._statistics.count("shared")
            logger.info("shared %s", request.target)
        return result

    def _stored_body(self, key: str, whole: bool) -> Optional[Body]:
        if self._streams and not whole:
            return self._store.get_streamable(key)
        return self._store.get(key)

    def _miss(self, request: Request, version: Version) -> "Body | Answer":
        self._statistics.count("misses")
        logger.info("miss %s", request.target)
        computed = self._compute(request, version.media_type)
        if isinstance(computed, Answer):
            return computed

        if not self._stored(request.route):
            self._answered.add(version.key)
        elif len(computed) > self._settings.maximum_entry_size * 1024 * 1024:
            self._answered.add(version.key)
            logger.info(
                "bypass %s: %d bytes is over MaximumEntrySize",
                request.uri,
                len(computed),
            )
        elif self._store.set(version.key, computed, request.resource_id):
            self._statistics.count("stored")
            logger.info("stored %s (%d bytes)", request.target, len(computed))
        return computed

    def _stored(self, route: Route) -> bool:
        return route.stored or (self._settings.store_binary and route.binary_storable)

    def _compute(self, request: Request, media_type: str) -> "bytes | Answer":
        try:
            body = bytes(self._api.RestApiGet(request.target))
        except Exception as error:  # noqa: BLE001 - answered as Orthanc would
            return self._failure(error, request)

        if request.route.content_type == IMAGE and media_type != PNG:
            quality = jpeg_quality(_query_value(request.query, "quality"))
            body = convert_png(self._api, body, media_type, quality)
        return body

    # What goes with the body.

    def _caching_headers(self, route: Route, version: Version) -> Headers:
        now = time.time()
        policy, lifetime = self._policies[route.name]
        headers = [
            ("Date", format_http_date(now)),
            ("Last-Modified", format_http_date(min(version.last_modified, now))),
            ("ETag", version.etag),
            ("Cache-Control", policy),
            ("Expires", format_http_date(now + lifetime)),
        ]
        if route.varies_on_accept:
            headers.append(("Vary", "Accept"))
        return headers

    def _cache_control(self, route: Route) -> Tuple[str, int]:
        """The route's ``Cache-Control`` and its freshness lifetime."""
        policy = self._settings.cache_control
        if policy == "auto":
            policy = freshness.cache_control(
                route.mutable, self._settings.max_age, self._settings.private
            )
        return policy, freshness.freshness_lifetime(policy)

    def _disposition(self, request: Request) -> Headers:
        kind = request.route.disposition
        features = self._features
        if kind == "zip":
            default = request.resource_id + ".zip"
            return _named(request, default, features.archive_filename_option)
        if kind == "dicom" and features.file_named_by_instance:
            if _query_value(request.query, "filename") == "":
                return []  # Orthanc then sends no Content-Disposition at all
            return _named(request, request.resource_id + ".dcm", True)
        if kind == "dicom":
            uuid = self._attachment_uuid(request.resource_id)
            return [("Content-Disposition", 'filename="%s.dcm"' % uuid)] if uuid else []
        return []

    def _attachment_uuid(self, instance_id: str) -> str:
        # Orthanc 1.10 names the file after the uuid of its DICOM attachment.
        uri = "/instances/%s/attachments/dicom/info" % instance_id
        try:
            info = json.loads(self._api.RestApiGet(uri))
        except Exception:  # noqa: BLE001 - the answer goes without a file name
            return ""
        return str(info.get("Uuid", "")) if isinstance(info, dict) else ""

    # POST: never cached, forwarded as is.

    def _forward_post(self, request: Request) -> Answer:
        self._statistics.count("bypassed")
        logger.info("bypass %s: POST is not cached", request.target)
        try:
            body = bytes(self._api.RestApiPost(request.uri, request.body))
        except Exception as error:  # noqa: BLE001 - answered as Orthanc would
            return self._error(error, request)

        if body.startswith(b"PK"):
            return Answer(200, body, ZIP, self._disposition(request))
        return Answer(200, body, JSON)

    # Errors: what Orthanc's own route would have answered.

    def _error(self, error: BaseException, request: Request) -> Answer:
        code = errors.error_code(error)
        self._statistics.count("errors")
        logger.info("bypass %s: Orthanc error %d", request.target, code)
        answer = errors.described_error(
            code, errors.error_text(error), request.method, request.uri
        )
        return Answer(answer.status, answer.body)

    def _failure(self, error: BaseException, request: Request) -> Answer:
        # The resource existed a moment ago: on Orthanc 1.10, "Unknown
        # resource" may then also stand for an empty 404 or 415 of the route.
        if errors.error_code(error) != errors.UNKNOWN_RESOURCE:
            return self._error(error, request)

        failure = request.route.failure
        if failure == FAIL_EMPTY_404:
            return self._counted(Answer(404), request)
        if failure == FAIL_FRAME:
            status = self._frame_failure(request) or 415
            return self._counted(Answer(status), request)
        return self._error(error, request)

    def _counted(self, answer: Answer, request: Request) -> Answer:
        self._statistics.count("errors")
        logger.info("bypass %s: Orthanc answered %d", request.target, answer.status)
        return answer

    def _frame_failure(self, request: Request) -> Optional[int]:
        """How Orthanc's image routes fail on this frame: 404, 415, or None.

        Orthanc answers an empty 404 when the frame is not a number or its
        decoding fails with "parameter out of range" (before Orthanc 1.12.5:
        no such frame) or "unknown resource" (no such instance), and 415 for
        any other decoding failure, which a frame past the end may give too.
        RestApiGet reports all of them as "unknown resource": the numpy route
        decodes the frame the same way and tells the cause. None: it decodes.
        """
        frame = _frame_number(request.frame or "0")
        if frame is None:
            return 404
        uri = "/instances/%s/frames/%d/numpy" % (request.resource_id, frame)
        try:
            self._api.RestApiGet(uri)
        except Exception as error:  # noqa: BLE001 - its code is the answer
            return 404 if errors.error_code(error) in self._no_such_frame else 415
        return None


class BoundedSet:
    """A set that forgets its oldest members beyond a size."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._members: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, member: str) -> None:
        with self._lock:
            self._members[member] = None
            self._members.move_to_end(member)
            while len(self._members) > self._size:
                self._members.popitem(last=False)

    def __contains__(self, member: object) -> bool:
        return member in self._members


def _release(body: Body) -> None:
    if not isinstance(body, (bytes, memoryview)):
        body.close()  # an open file that will not be sent


def _plain_media_type(route: Route) -> str:
    # Without the instance's metadata: PNG for images, octets for raw frames.
    if route.content_type == IMAGE:
        return PNG
    if route.content_type == RAW_FRAME:
        return "application/octet-stream"
    return route.content_type


def _named(request: Request, default: str, option: bool) -> Headers:
    # Orthanc takes the last "filename" as received, percent-escapes included.
    chosen = _query_value(request.query, "filename") if option else None
    name = default if chosen is None else chosen
    return [("Content-Disposition", 'filename="%s"' % name)]


def _frame_number(text: str) -> Optional[int]:
    """The frame Orthanc's image routes read in ``text``, or None (not a number)."""
    found = _FRAME_NUMBER.fullmatch(text)
    if found is None:
        return None
    sign, digits = found.groups()
    value = int(digits)
    if value >= _UNSIGNED_INT:
        return None
    return (_UNSIGNED_INT - value) % _UNSIGNED_INT if sign == "-" else value


def _tag_matched(headers: Mapping[str, str]) -> bool:
    # Called once the condition holds: true when it held by an entity tag.
    value = headers.get("if-none-match")
    return value is not None and parse_if_none_match(value) != ANY


def _last_modified(metadata: Mapping[str, str], changed_at: float) -> int:
    stamp = metadata.get("LastUpdate") or metadata.get("ReceptionDate") or ""
    updated = parse_orthanc_timestamp(stamp) or 0
    # A generation change happens within a second of LastUpdate's resolution:
    # round it up so that a copy made earlier in that second is not "unmodified".
    return max(updated, math.ceil(changed_at))


def _query_value(query: str, name: str) -> Optional[str]:
    for item in query.split("&"):
        key, _, value = item.partition("=")
        if key == name:
            return value
    return None


def query_string(arguments: Optional[Mapping[str, str]]) -> str:
    """Rebuild the query as received, keys sorted so that order does not matter."""
    if not arguments:
        return ""
    return "&".join(
        key if value == "" else "%s=%s" % (key, value)
        for key, value in sorted(arguments.items())
    )


def split_groups(groups: Tuple[str, ...]) -> Tuple[str, str, str]:
    """``(level, resource id, frame)`` from the groups of a route's regex."""
    level, resource_id = groups[0], groups[1]
    frame = groups[2] if len(groups) > 2 else ""
    return level, resource_id, frame
