"""What the benchmark measures, one function per scenario.

Each function drives servers that are already running and returns plain data
(milliseconds, counts, log facts); ``report`` turns that data into targets.
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import math
import re
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from bench.client import Client, summary
from tests.support.orthanc_server import OrthancServer, Response

# (label, level, path): the routes of the latency table.
ROUTES: Tuple[Tuple[str, str, str], ...] = (
    ("study shared-tags", "studies", "shared-tags"),
    ("study instances-tags", "studies", "instances-tags"),
    ("series instances-tags", "series", "instances-tags"),
    ("series shared-tags", "series", "shared-tags"),
    ("instance tags", "instances", "tags"),
    ("instance simplified-tags", "instances", "simplified-tags"),
    ("instance file", "instances", "file"),
    ("instance preview", "instances", "preview"),
    ("study archive", "studies", "archive"),
)
MODES = ("plain", "miss", "hit", "304", "nginx")
WARM_UP_ROUTES = ["shared-tags", "instances-tags", "instances-tags?short"]
WARM_UP_ROUTES.append("shared-tags?simplify")

MIN_ROUNDS = 3
MAX_ROUNDS = 30
FAST_SAMPLES = 40  # samples wanted of a mode faster than FAST_MS
FAST_MS = 50.0
STAMPEDE_CLIENTS = 16
LOG_WAIT = 3.0  # seconds to wait for a log line that should come at once
LOG_TIME = re.compile(r"^[IWE]\d{4} (\d\d):(\d\d):(\d\d\.\d+)")

# A distinct, ignored query argument gives a fresh cache entry per request.
_fresh = itertools.count(1)


def fresh_query() -> str:
    return "bench=%d" % next(_fresh)


def with_query(uri: str, query: str) -> str:
    return uri + ("&" if "?" in uri else "?") + query


class Ids:
    """The study, series and instance every scenario requests."""

    def __init__(self, answers: Sequence[Dict[str, Any]]) -> None:
        middle = answers[len(answers) // 2]
        self.by_level = {
            "studies": str(middle["ParentStudy"]),
            "series": str(middle["ParentSeries"]),
            "instances": str(middle["ID"]),
        }

    def uri(self, level: str, path: str) -> str:
        return "/%s/%s/%s" % (level, self.by_level[level], path)

    @property
    def study(self) -> str:
        return self.by_level["studies"]


# Ingest.


def ingest(server: OrthancServer, files: Sequence[bytes], uploaders: int = 2) -> Any:
    """Upload ``files`` with parallel uploaders; return (instances/s, answers)."""
    answers: List[Optional[Dict[str, Any]]] = [None] * len(files)
    failures: List[str] = []

    def upload(start: int) -> None:
        client = Client(server.http_port)
        for index in range(start, len(files), uploaders):
            answer = client.request(
                "POST",
                "/instances",
                body=files[index],
                headers={"Content-Type": "application/dicom"},
            )
            if answer.status != 200:
                failures.append("upload answered %d" % answer.status)
                return
            answers[index] = answer.json()
        client.close()

    started = time.perf_counter()
    _run_threads([lambda n=n: upload(n) for n in range(uploaders)], timeout=600)
    elapsed = time.perf_counter() - started
    if failures or None in answers:
        raise RuntimeError("ingest into %s failed: %s" % (server.name, failures[:1]))
    return len(files) / elapsed, answers


def _run_threads(targets: Sequence[Callable[[], None]], timeout: float) -> None:
    threads = [threading.Thread(target=target, daemon=True) for target in targets]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


# Latency of one route, every mode interleaved round by round.


class RouteSampler:
    """Time one route on plain Orthanc, the plugin and nginx, interleaved."""

    def __init__(
        self,
        uri: str,
        plain: Client,
        plugin: Client,
        nginx: Client,
        budget: float,
    ) -> None:
        self.uri = uri
        self.clients = {"plain": plain, "plugin": plugin, "nginx": nginx}
        self.budget = budget
        self.samples: Dict[str, List[float]] = {mode: [] for mode in MODES}
        self.problems: List[str] = []
        self.etag = ""

    def prime(self) -> None:
        """Fill the plugin's entry and nginx's, and take the plugin's ETag."""
        answer = self.clients["plugin"].get(self.uri)
        self.etag = answer.header("ETag") or ""
        if answer.status != 200 or not self.etag:
            self.problems.append(
                "plugin answered %d, ETag %r" % (answer.status, self.etag)
            )
        self.clients["plugin"].get(self.uri)
        self.clients["nginx"].get(self.uri)

    def run(self) -> Dict[str, Dict[str, float]]:
        self.prime()
        first = {mode: self._sample(mode) for mode in MODES}
        round_cost = sum(first.values()) / 1000
        rounds = int(self.budget / round_cost) if round_cost > 0 else MAX_ROUNDS
        rounds = min(MAX_ROUNDS, max(MIN_ROUNDS, rounds))
        repeats = {
            mode: math.ceil(FAST_SAMPLES / rounds) if first[mode] < FAST_MS else 1
            for mode in MODES
        }
        for _ in range(rounds - 1):
            for mode in MODES:
                for _ in range(repeats[mode]):
                    self._sample(mode)
        return {mode: summary(found) for mode, found in self.samples.items()}

    def _sample(self, mode: str) -> float:
        client, path, headers, expected = self._request(mode)
        elapsed, answer = client.timed_get(path, headers)
        problem = self._problem(mode, answer, expected)
        if problem is None:
            self.samples[mode].append(elapsed)
        elif problem not in self.problems:
            self.problems.append(problem)
        return elapsed

    def _request(self, mode: str) -> Tuple[Client, str, Dict[str, str], int]:
        if mode == "plain":
            return self.clients["plain"], self.uri, {}, 200
        if mode == "miss":
            return self.clients["plugin"], with_query(self.uri, fresh_query()), {}, 200
        if mode == "hit":
            return self.clients["plugin"], self.uri, {}, 200
        if mode == "304":
            return self.clients["plugin"], self.uri, {"If-None-Match": self.etag}, 304
        return self.clients["nginx"], self.uri, {}, 200

    @staticmethod
    def _problem(mode: str, answer: Response, expected: int) -> Optional[str]:
        if answer.status != expected:
            return "%s answered %d, not %d" % (mode, answer.status, expected)
        cache_status = answer.header("X-Cache-Status")
        if mode == "nginx" and cache_status != "HIT":
            return "nginx answered %s, not a HIT" % cache_status
        return None


def count_log(log: str, word: str, uri: str) -> int:
    """Count ``cache-plugin: <word> <uri>`` lines (any query after the uri)."""
    pattern = r"cache-plugin: %s %s(?:\?\S*)?(?:\s|$)" % (word, re.escape(uri))
    return len(re.findall(pattern, log))


def time_system(client: Client, count: int = 200) -> Dict[str, float]:
    """Latency of Orthanc's own ``/system``: the floor of any answer."""
    return summary([client.timed_get("/system")[0] for _ in range(count)])


# Concurrent first requests.


def stampede(server: OrthancServer, uri: str) -> Dict[str, Any]:
    """Fire 16 simultaneous first requests at one cold entry; read the log."""
    path = with_query(uri, "bench=cold")
    start = threading.Barrier(STAMPEDE_CLIENTS)
    answers: List[Tuple[float, Response]] = []

    def one() -> None:
        client = Client(server.http_port)
        start.wait(timeout=30)
        answers.append(client.timed_get(path))
        client.close()

    offset = len(server.log_text())
    _run_threads([one] * STAMPEDE_CLIENTS, timeout=300)
    log = _wait_for_log(server, offset, "cache-plugin: (miss|shared|hit) ")
    bodies = {hashlib.sha1(answer.body).hexdigest() for _, answer in answers}
    return {
        "requests": len(answers),
        "ok": sum(1 for _, answer in answers if answer.status == 200),
        "distinct_bodies": len(bodies),
        "computations": count_log(log, "miss", uri),
        "shared": count_log(log, "shared", uri),
        "hits": count_log(log, "hit", uri),
        "latency": summary([elapsed for elapsed, _ in answers]),
    }


def _wait_for_log(server: OrthancServer, offset: int, pattern: str) -> str:
    deadline = time.monotonic() + LOG_WAIT
    while True:
        log = server.log_text()[offset:]
        if re.search(pattern, log) or time.monotonic() > deadline:
            time.sleep(0.3)  # lines of the other threads may follow
            return server.log_text()[offset:]
        time.sleep(0.1)


# Hits while a slow miss holds the plugin.


def hits_during_slow_miss(
    server: OrthancServer, hit_uri: str, slow_uri: str
) -> Dict[str, Any]:
    """Time hits of ``hit_uri`` idle, then while ``slow_uri`` is computed."""
    client = Client(server.http_port)
    idle = [client.timed_get(hit_uri)[0] for _ in range(50)]
    slow: Dict[str, float] = {}

    def compute() -> None:
        elapsed, answer = Client(server.http_port).timed_get(slow_uri)
        slow.update(ms=elapsed, status=answer.status)

    worker = threading.Thread(target=compute, daemon=True)
    worker.start()
    time.sleep(0.2)  # let the slow request reach the plugin
    during: List[float] = []
    deadline = time.monotonic() + 300
    while worker.is_alive() and len(during) < 20000 and time.monotonic() < deadline:
        during.append(client.timed_get(hit_uri)[0])
    worker.join(max(0.0, deadline - time.monotonic()))
    client.close()
    return {"idle": summary(idle), "during": summary(during), "slow": slow}


# Warm-up after STABLE_STUDY.


def wait_for_warm_up(server: OrthancServer, study: str, timeout: float) -> Any:
    """Wait for ``warmed studies <id>``; return the warm-up's seconds or None."""
    deadline = time.monotonic() + timeout
    warmed = "cache-plugin: warmed studies %s" % study
    while time.monotonic() < deadline:
        if warmed in server.log_text():
            break
        time.sleep(0.2)
    log = server.log_text()
    stable = _log_time(log, "bench: stable study %s" % study)
    done = _log_time(log, warmed)
    if stable is None or done is None:
        return None
    return (done - stable) % 86400  # log times carry no date


def _log_time(log: str, text: str) -> Optional[float]:
    for line in log.splitlines():
        if text in line:
            found = LOG_TIME.match(line)
            if found:
                hours, minutes, seconds = found.groups()
                return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return None


def check_warm_variants(server: OrthancServer, study: str) -> Dict[str, bool]:
    """Request each warmed variant once; True where the plugin logged a hit."""
    client = Client(server.http_port)
    found = {}
    for spec in WARM_UP_ROUTES:
        name, _, query = spec.partition("?")
        uri = "/studies/%s/%s" % (study, name)
        offset = len(server.log_text())
        client.get(uri + ("?" + query if query else ""))
        log = _wait_for_log(server, offset, "cache-plugin: (hit|miss) ")
        found[spec] = count_log(log, "hit", uri) == 1
    client.close()
    return found


def time_variant_misses(client: Client, study: str) -> Dict[str, float]:
    """One fresh computation of each warm-up variant, in milliseconds."""
    times = {}
    for spec in WARM_UP_ROUTES:
        name, _, query = spec.partition("?")
        uri = "/studies/%s/%s" % (study, name)
        path = with_query(uri + ("?" + query if query else ""), fresh_query())
        times[spec] = client.timed_get(path)[0]
    return times


def now() -> str:
    return datetime.datetime.now().strftime("%H:%M:%S")
