"""The Orthanc adapter: registration, the REST callback, the change dispatcher.

This is the only module that knows how the plugin API sends answers; the
``orthanc`` module itself is passed in, so tests can pass a fake.
"""

import contextlib
import json
import logging
import uuid
from dataclasses import replace
from typing import Any, Dict, List, Mapping, Optional, Tuple

from . import json_variants
from .answers import Answer, BodyFile
from .change_log import ChangeLogFollower, Snapshot, read_snapshot
from .config import ConfigurationError, Settings
from .handler import Handler, Request, query_string, split_groups
from .operations import Operations
from .routes import ROUTES, ROUTES_BY_NAME, Route
from .statistics import Statistics
from .store import Store
from .versions import NEW_INSTANCE, Versions, parse_logged_change
from .warmup import WarmUp

logger = logging.getLogger(__name__)

# orthanc.ChangeType numbers the adapter reacts to itself.
STABLE_PATIENT, STABLE_SERIES, STABLE_STUDY = 7, 8, 9
ORTHANC_STARTED, ORTHANC_STOPPED = 10, 11
STABLE = (STABLE_PATIENT, STABLE_SERIES, STABLE_STUDY)

# orthanc.ResourceType numbers, and the level names of the REST API.
LEVELS = {0: "patients", 1: "studies", 2: "series", 3: "instances"}

# More changes than this since the last run: invalidate all instead of replaying.
REPLAY_LIMIT = 10_000

# The global property of Orthanc's database that holds a random token naming
# it (plugins' properties are numbered from 1024 up).
DATABASE_PROPERTY = 7801


class CachePlugin:
    """One plugin instance per Orthanc process."""

    def __init__(self, api: Any, settings: Settings) -> None:
        self.api = api
        self.settings = settings
        self.statistics = Statistics()
        self.store = Store(
            settings.directory,
            settings.maximum_size,
            settings.expiration,
            settings.memory_size,
        )
        self.versions = Versions(self.store, self._lookup_json)
        self.handler = Handler(
            api, settings, self.store, self.versions, self.statistics
        )
        self.warm_up = WarmUp(self._warm, settings.warm_up_queue_size)
        self.operations = Operations(
            api, self.statistics, self.store, self.versions, self.warm_up
        )
        self.follower: Optional[ChangeLogFollower] = None
        self._sends_bytes: Optional[bool] = None
        self._metrics_failed = False

    # Registration.

    def register(self, register_on_change: bool) -> None:
        for route in ROUTES:
            self.api.RegisterRestCallback(route.regex, self._callback_for(route))
        self.operations.register()
        if register_on_change:
            self.api.RegisterOnChangeCallback(self.on_change)
        if self.settings.warm_up:
            self.warm_up.start()
        logger.info(
            "caching %d routes in %s (%d MB)",
            len(ROUTES),
            self.settings.directory,
            self.settings.maximum_size,
        )

    def _callback_for(self, route: Route) -> Any:
        def callback(output: Any, uri: str, **request: Any) -> None:
            self.answer(output, route, uri, request)

        return callback

    # The REST callback.

    def answer(self, output: Any, route: Route, uri: str, request: Mapping[str, Any]):  # type: ignore[no-untyped-def]
        """Answer one request of a taken route through Orthanc's ``output``."""
        parsed = _parse_request(route, uri, request)
        try:
            answer = self.handler.handle(parsed)
        except Exception:
            logger.exception("fault on %s, answering without the cache", uri)
            answer = self.handler.uncached(parsed)
        self._send(output, answer)
        self._publish_metrics()

    def _publish_metrics(self) -> None:
        try:
            self.operations.publish_metrics()
        except Exception as error:  # noqa: BLE001 - metrics never break an answer
            if not self._metrics_failed:
                logger.warning("metrics not published: %s", error)
            self._metrics_failed = True

    def _send(self, output: Any, answer: Answer) -> None:
        if answer.status == 405:
            output.SendMethodNotAllowed(answer.allowed)
            return
        for name, value in answer.headers:
            output.SetHttpHeader(name, value)
        body = answer.body
        if not isinstance(body, (bytes, memoryview)):
            _send_file(output, body, answer.content_type)  # a large stored 200
        elif answer.status == 200:
            output.AnswerBuffer(body, answer.content_type)
        elif body:
            self._send_status(output, answer.status, bytes(body))
        else:
            output.SendHttpStatusCode(answer.status)

    def _send_status(self, output: Any, status: int, body: bytes) -> None:
        # Python plugin 4.2 changed SendHttpStatus(status, str, size) to
        # SendHttpStatus(status, bytes); a wrong call fails before sending.
        if self._sends_bytes is not False:
            try:
                output.SendHttpStatus(status, body)
                self._sends_bytes = True
                return
            except TypeError:
                self._sends_bytes = False
        text = body.decode("utf-8")
        output.SendHttpStatus(status, text, len(body))

    # Change events.

    def on_change(self, change_type: int, level: int, resource_id: str) -> None:
        """Orthanc's on-change callback; call it from your own if you have one."""
        try:
            self._dispatch(change_type, LEVELS.get(level, ""), resource_id)
        except Exception:
            logger.exception("change %d of %s not handled", change_type, resource_id)

    def _dispatch(self, change_type: int, level: str, resource_id: str) -> None:
        if change_type == ORTHANC_STARTED:
            self._catch_up()
        elif change_type == ORTHANC_STOPPED:
            self.stop()
        elif change_type in STABLE:
            self._on_stable(level, resource_id)
        else:
            self.versions.on_change(change_type, level, resource_id)

    def _on_stable(self, level: str, resource_id: str) -> None:
        if self.settings.warm_up:
            self.warm_up.submit(level, resource_id)

    def stop(self) -> None:
        """Stop the workers and note where Orthanc's change log stands."""
        self.warm_up.stop()
        if self.follower is not None:
            self.follower.stop()
        # The mark first: what changes after it is replayed at the next start.
        mark = read_snapshot(self._lookup_json)
        if mark is not None and self.follower is not None:
            self.follower.finish(mark)
        complete = self.versions.flush()
        if mark is not None and complete:
            self.store.set_value("last-change", (mark.seq, mark.instances))
        self.store.close()
        logger.info("stopped at change %s", mark.seq if mark and complete else None)

    def _catch_up(self) -> None:
        # Changes made while the plugin was not running do not reach
        # on_change: replay them from Orthanc's log, or invalidate everything.
        self.handler.database = self._database_identity()
        previous = self.store.get_value("last-change")
        self.store.set_value("last-change", None)
        now = read_snapshot(self._lookup_json)
        if not isinstance(previous, (tuple, list)) or now is None:
            self.versions.bump_epoch("no record of the changes since the last run")
        elif previous[0] > now.seq or now.seq - previous[0] > REPLAY_LIMIT:
            self.versions.bump_epoch(
                "changes %s..%s not replayed" % (previous[0], now.seq)
            )
        elif previous[1] + self._replay(previous[0]) != now.instances:
            # Orthanc's log keeps no trace of a deleted resource: fewer
            # instances than the log explains means deletions.
            self.versions.bump_epoch("instances deleted while the plugin was off")
        self._follow_shared_database(now)
        self.handler.ready = True

    def _follow_shared_database(self, since: Optional[Snapshot]) -> None:
        # Other nodes' changes never reach on_change: read them from the log.
        shared = self.settings.shared_database
        if shared is None:
            system = self._lookup_json("/system") or {}
            shared = bool(system.get("DatabaseBackendPlugin"))
        if not shared:
            return
        self.follower = ChangeLogFollower(
            self._lookup_json,
            self.versions,
            self._on_stable,
            self.settings.shared_database_interval,
        )
        self.follower.start(since)

    def _database_identity(self) -> str:
        # Made once per Orthanc database and kept in it: entries of another
        # database in the same cache directory are never used.
        try:
            identity = str(self.api.GetGlobalProperty(DATABASE_PROPERTY, ""))
            if not identity:
                identity = uuid.uuid4().hex
                self.api.SetGlobalProperty(DATABASE_PROPERTY, identity)
        except Exception as error:  # noqa: BLE001 - then one per process
            identity = uuid.uuid4().hex
            logger.warning("no database identity, entries last one run: %s", error)
        return identity

    def _replay(self, since: int) -> int:
        """Replay the logged changes after ``since``; return the new instances."""
        new_instances = 0
        while True:
            page = self._lookup_json("/changes?since=%d&limit=1000" % since)
            if not page:
                self.versions.bump_epoch("change log unreadable")
                return new_instances
            for change in page.get("Changes", []):
                new_instances += self._replay_one(change)
                since = max(since, int(change.get("Seq", since)))
            if page.get("Done", True):
                return new_instances

    def _replay_one(self, change: Mapping[str, Any]) -> int:
        change_type, level, resource_id = parse_logged_change(change)
        if change_type is None:
            return 0
        # As for other nodes' changes: the log has no NewChildInstance.
        self.versions.on_logged_change(change_type, level, resource_id)
        return 1 if change_type == NEW_INSTANCE else 0

    # Warm-up.

    def _warm(self, level: str, resource_id: str) -> None:
        # One full answer per route; its ?short and ?simplify are derived.
        for name, queries in _warm_up_plan(self.settings.warm_up_routes).items():
            route = ROUTES_BY_NAME[name]
            if level not in route.levels:
                continue
            full = Request(
                route=route,
                method="GET",
                level=level,
                resource_id=resource_id,
                uri="/%s/%s/%s" % (level, resource_id, route.path),
                frame="",
                query="",
                headers={},
            )
            derivable = tuple(q for q in queries if q in json_variants.VARIANTS)
            self.handler.warm(full, derivable)
            for query in queries:
                if query and query not in derivable:
                    self.handler.warm(replace(full, query=query))
        logger.info("warmed %s %s", level, resource_id)

    def _lookup_json(self, uri: str) -> Optional[Dict[str, Any]]:
        try:
            found = json.loads(self.api.RestApiGet(uri))
        except Exception:  # noqa: BLE001 - a gone resource is no error here
            return None
        return found if isinstance(found, dict) else None


def _send_file(output: Any, body: BodyFile, content_type: str) -> None:
    """Send a large stored body in chunks (Python plugin 5.0), or read it whole."""
    with contextlib.closing(body):
        if not hasattr(output, "StartStreamAnswer"):
            output.AnswerBuffer(body.read(), content_type)
            return

        # Orthanc sends a stream without a length and closes the connection
        # at its end: with the length, a client can tell a cut answer (a value
        # file damaged while it is read) from a whole one.
        output.SetHttpHeader("Content-Length", str(body.length))
        try:
            output.StartStreamAnswer(content_type)
            for chunk in body.chunks():
                output.SendStreamChunk(chunk)
        except Exception as error:  # noqa: BLE001 - the status is sent already
            logger.info("streamed answer cut short: %s", error)


def _parse_request(route: Route, uri: str, request: Mapping[str, Any]) -> Request:
    level, resource_id, frame = split_groups(tuple(request.get("groups", ())))
    body = request.get("body") or b""
    return Request(
        route=route,
        method=str(request.get("method", "GET")),
        uri=uri,
        level=level,
        resource_id=resource_id,
        frame=frame,
        query=query_string(request.get("get")),
        headers=dict(request.get("headers") or {}),
        body=body if isinstance(body, bytes) else bytes(body),
    )


def _warm_up_plan(specs: Tuple[str, ...]) -> Dict[str, List[str]]:
    """Route name -> the queries to warm (normalised like a request's)."""
    plan: Dict[str, List[str]] = {}
    for spec in specs:
        name, _, query = spec.partition("?")
        plan.setdefault(name, []).append(query_string(_query_arguments(query)))
    return plan


def _query_arguments(query: str) -> Dict[str, str]:
    pairs = (item.partition("=") for item in query.split("&") if item)
    return {key: value for key, _, value in pairs}


def check_warm_up_routes(settings: Settings) -> None:
    """Fail start-up on a warm-up route that is not a taken, stored route."""
    for spec in settings.warm_up_routes:
        route = ROUTES_BY_NAME.get(spec.partition("?")[0])
        if route is None or not route.stored:
            raise ConfigurationError(
                "CachePlugin.WarmUpRoutes: %r is not a stored route" % spec
            )
