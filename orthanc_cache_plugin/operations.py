"""The plugin's own REST surface, under ``/cache-plugin/``, and its metrics.

Registered like any REST callback, so Orthanc's authentication and
authorization filters protect it as they protect the rest of the API.

- ``GET /cache-plugin/statistics``: counters, store usage, warm-up queue.
- ``DELETE /cache-plugin/cache``: purge every entry.
- ``DELETE /cache-plugin/cache/{id}``: purge the entries of one resource.
"""

import json
import logging
import threading
import time
from typing import Any, Dict

from .statistics import Statistics
from .store import Store
from .versions import Versions
from .warmup import WarmUp

logger = logging.getLogger(__name__)

PREFIX = "/cache-plugin"
METRICS_PERIOD = 1.0  # seconds between two updates of Orthanc's metrics
COUNTERS = ("hits", "misses", "not_modified", "stored", "shared", "errors", "bypassed")


class Operations:
    """Statistics, purges and Orthanc metrics of one plugin instance."""

    def __init__(
        self,
        api: Any,
        statistics: Statistics,
        store: Store,
        versions: Versions,
        warm_up: WarmUp,
    ) -> None:
        self._api = api
        self._statistics = statistics
        self._store = store
        self._versions = versions
        self._warm_up = warm_up
        self._published = 0.0
        self._lock = threading.Lock()

    def register(self) -> None:
        self._api.RegisterRestCallback(PREFIX + "/statistics", self._statistics_route)
        self._api.RegisterRestCallback(PREFIX + "/cache", self._purge_all_route)
        self._api.RegisterRestCallback(PREFIX + "/cache/([^/]+)", self._purge_route)

    def report(self) -> Dict[str, Any]:
        """Every counter, the store's usage, the warm-up queue, the hit ratio."""
        counts = self._statistics.snapshot()
        report: Dict[str, Any] = {name: counts.get(name, 0) for name in COUNTERS}
        report.update(self._store.usage())
        report["warm_up_queue"] = self._warm_up.waiting
        lookups = report["hits"] + report["misses"]
        report["hit_ratio"] = round(report["hits"] / lookups, 4) if lookups else 0.0
        return report

    def publish_metrics(self) -> None:
        """Copy the counters to Orthanc's metrics, at most once a second."""
        now = time.monotonic()
        with self._lock:
            if now - self._published < METRICS_PERIOD:
                return
            self._published = now
        kind = self._api.MetricsType.DEFAULT
        for name, value in self.report().items():
            self._api.SetMetricsValue(
                "orthanc_cache_plugin_" + name, float(value), kind
            )

    def _statistics_route(self, output: Any, uri: str, **request: Any) -> None:
        if request.get("method") != "GET":
            output.SendMethodNotAllowed("GET")
            return
        body = json.dumps(self.report(), indent=3, sort_keys=True).encode("utf-8")
        output.AnswerBuffer(body, "application/json; charset=utf-8")

    def _purge_all_route(self, output: Any, uri: str, **request: Any) -> None:
        if request.get("method") != "DELETE":
            output.SendMethodNotAllowed("DELETE")
            return
        removed = self._store.clear()
        self._versions.bump_epoch("purged through the REST API")
        logger.warning("purged all %d entries", removed)
        output.AnswerBuffer(
            json.dumps({"Removed": removed}).encode(), "application/json"
        )

    def _purge_route(self, output: Any, uri: str, **request: Any) -> None:
        if request.get("method") != "DELETE":
            output.SendMethodNotAllowed("DELETE")
            return
        resource_id = request["groups"][0]
        self._versions.bump(resource_id)
        removed = self._store.evict(resource_id)
        logger.info("purged %d entries of %s", removed, resource_id)
        output.AnswerBuffer(
            json.dumps({"Removed": removed}).encode(), "application/json"
        )
