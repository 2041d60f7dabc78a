"""Cache hits while a slow miss computes, with and without Python's AllowThreads.

Python plugin 4.0 (Debian 12's Orthanc 1.10.1) holds the GIL while
``orthanc.RestApiGet`` computes, so every Python callback, cached hits
included, waits for a slow miss. From plugin 4.3, ``"Python": {"AllowThreads":
true}`` in Orthanc's configuration releases the GIL during every call into
Orthanc. This script starts, side by side on loopback in a private network
namespace:

- Debian 13's Orthanc 1.12.7 with Python plugin 5.0 (the chroot of
  ``scripts/debian13-chroot.sh``), once with AllowThreads false, once true;
- Debian 12's Orthanc 1.10.1 with plugin 4.0 and AllowThreads true, an option
  that plugin does not know (for reference);
- plain Orthanc 1.12.7, whose answers the check below compares with.

It loads the same generated CT study into each. Then, round by round, the
plugin servers taking turns: hits of the study's ``shared-tags`` (one every
5 ms) with nothing else running, the same hits while the study's archive is
computed (a miss of several seconds), the archive alone, and hit throughput
with 8 clients (wrk). Orthanc's own ``/system``, which needs no GIL, is timed
at the same pace next to the hits, as a control of the machine's load. Last,
8 threads send misses and hits of every cheap route to the AllowThreads
server while an archive computes, and each answer is compared byte for byte
with plain Orthanc's. As root::

    .venv/bin/python bench/allow_threads.py [--slices N] [--rounds N] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import scenarios, wrk
from bench.client import Client, summary
from bench.report import ms
from bench.run import code_version
from bench.scenarios import Ids
from tests.support.dicom_data import generate_ct_study
from tests.support.netns import isolate_network
from tests.support.orthanc_runtime import (
    CHROOT_RUNTIME,
    DEFAULT_RUNTIME,
    RUNTIME_VARIABLE,
    RuntimeSetupError,
    chroot_runtime,
    default_shared_folders,
)
from tests.support.orthanc_server import REPO_ROOT, OrthancServer, Response
from tests.support.plugin_log import wait_for_settled_version
from tests.support.route_requests import differences
from tests.support.study_routes import Study

SCRIPT = REPO_ROOT / "bench" / "orthanc_script.py"
BASE_CONFIG = {"StableAge": 3600, "KeepAlive": True}
IDLE_SECONDS = 2.0  # of hits with nothing else running, per round
MISS_HEAD_START = 0.1  # seconds for the archive request to reach the plugin
MAX_SECONDS = 300.0  # bound on any one loop of requests
CHECK_THREADS = 8
CHECK_REQUESTS = 40  # per thread
SKIPPED_IN_CHECK = ("/archive", "/media")  # computed by the miss meanwhile


@dataclass(frozen=True)
class Setup:
    """One Orthanc with the plugin: which runtime, and the AllowThreads value."""

    label: str
    runtime: str
    allow_threads: bool


SETUPS = (
    Setup("plugin 5.0, AllowThreads false", CHROOT_RUNTIME, False),
    Setup("plugin 5.0, AllowThreads true", CHROOT_RUNTIME, True),
    Setup("plugin 4.0, AllowThreads true (unknown)", DEFAULT_RUNTIME, True),
)
CHECKED = SETUPS[1]  # whose answers are compared with plain Orthanc's


def progress(text: str) -> None:
    print("[%s] %s" % (scenarios.now(), text), file=sys.stderr, flush=True)


@contextlib.contextmanager
def runtime(name: str) -> Iterator[None]:
    """Select the Orthanc that ``OrthancServer.start`` runs (see orthanc_runtime)."""
    saved = os.environ.get(RUNTIME_VARIABLE)
    os.environ[RUNTIME_VARIABLE] = name
    try:
        yield
    finally:
        if saved is None:
            del os.environ[RUNTIME_VARIABLE]
        else:
            os.environ[RUNTIME_VARIABLE] = saved


def start(server: OrthancServer, runtime_name: str) -> OrthancServer:
    with runtime(runtime_name):
        server.start()
    return server


def plugin_server(setup: Setup, folder: Path) -> OrthancServer:
    cache = folder / ("cache-%d" % SETUPS.index(setup))
    config = dict(
        BASE_CONFIG,
        CachePlugin={"Directory": str(cache), "WarmUp": False},
        Python={"AllowThreads": setup.allow_threads},
    )
    return OrthancServer(name="bench-allow-threads", script=SCRIPT, config=config)


# The measurements of one server.


def hit_count(server: OrthancServer) -> int:
    return int(server.get_json("/cache-plugin/statistics").get("hits", 0))


def paced(
    port: int, uri: str, interval: float, going: Callable[[], bool]
) -> List[float]:
    """GET ``uri`` every ``interval`` s while ``going()``; the milliseconds of each.

    A late answer delays the next request (no burst to catch up). The loop
    ends after ``MAX_SECONDS`` whatever ``going`` says.
    """
    client = Client(port)
    found: List[float] = []
    started = tick = time.monotonic()
    while going() and time.monotonic() - started < MAX_SECONDS:
        time.sleep(max(0.0, tick - time.monotonic()))
        elapsed, answer = client.timed_get(uri)
        if answer.status != 200:
            raise RuntimeError("%s answered %d" % (uri, answer.status))
        found.append(elapsed)
        tick = max(tick + interval, time.monotonic())
    client.close()
    return found


def hits_and_control(
    server: OrthancServer, uri: str, interval: float, going: Callable[[], bool]
) -> Dict[str, List[float]]:
    """Paced hits of ``uri`` and, in another thread, of ``/system``."""
    control: List[float] = []

    def system() -> None:
        control.extend(paced(server.http_port, "/system", interval, going))

    thread = threading.Thread(target=system, daemon=True)
    thread.start()
    hits = paced(server.http_port, uri, interval, going)
    thread.join(MAX_SECONDS)
    return {"hit": hits, "system": control}


def idle_hits(server: OrthancServer, uri: str, interval: float) -> Dict[str, Any]:
    """Hits with nothing else running, at the same pace as during the miss."""
    before = hit_count(server)
    deadline = time.monotonic() + IDLE_SECONDS
    found = hits_and_control(server, uri, interval, lambda: time.monotonic() < deadline)
    return dict(found, hits_counted=hit_count(server) - before)


def hits_during_miss(
    server: OrthancServer, hit_uri: str, slow_uri: str, interval: float
) -> Dict[str, Any]:
    """Time paced hits of ``hit_uri`` for as long as ``slow_uri`` is computed."""
    before = hit_count(server)
    slow: Dict[str, Any] = {}

    def compute() -> None:
        elapsed, answer = Client(server.http_port).timed_get(slow_uri)
        slow.update(ms=elapsed, status=answer.status, bytes=len(answer.body))

    worker = threading.Thread(target=compute, daemon=True)
    worker.start()
    time.sleep(MISS_HEAD_START)
    found = hits_and_control(server, hit_uri, interval, worker.is_alive)
    worker.join(MAX_SECONDS)
    return dict(found, slow=slow, hits_counted=hit_count(server) - before)


def miss_alone(server: OrthancServer, slow_uri: str) -> float:
    elapsed, answer = Client(server.http_port).timed_get(slow_uri)
    if answer.status != 200:
        raise RuntimeError("%s answered %d" % (slow_uri, answer.status))
    return elapsed


def one_round(
    server: OrthancServer, ids: Ids, number: int, interval: float
) -> Dict[str, Any]:
    hit_uri = ids.uri("studies", "shared-tags")
    slow = ids.uri("studies", "archive?bench=at-%d-%%s" % number)
    found = {
        "idle": idle_hits(server, hit_uri, interval),
        "during": hits_during_miss(server, hit_uri, slow % "during", interval),
        "alone_ms": miss_alone(server, slow % "alone"),
    }
    rate = wrk.throughput(server.url + hit_uri)
    found["wrk"] = rate["requests_per_s"]
    found["wrk_bad_answers"] = rate["bad_answers"]
    return found


# Answers under AllowThreads: byte for byte plain Orthanc's.


def check_answers(
    plain: OrthancServer, cached: OrthancServer, study: Study, slow_uri: str
) -> Dict[str, Any]:
    """Concurrent misses and hits of every cheap route, against plain Orthanc.

    Half of each thread's requests carry a fresh query (Orthanc ignores it):
    a miss; the other half repeat a URI: a hit after its first time. An
    archive is computed meanwhile, so calls into Orthanc overlap.
    """
    uris = [uri for uri in study.uris() if not uri.endswith(SKIPPED_IN_CHECK)]
    problems: List[str] = []
    counts = {"requests": 0}
    lock = threading.Lock()

    def one_thread(number: int) -> None:
        plain_client, cached_client = Client(plain.http_port), Client(cached.http_port)
        for index in range(CHECK_REQUESTS):
            uri = uris[(number + index) % len(uris)]
            if index % 2 == 0:
                uri = scenarios.with_query(uri, "check=%d-%d" % (number, index))
            found = compare(uri, plain_client.get(uri), cached_client.get(uri))
            with lock:
                counts["requests"] += 1
                problems.extend(found)
        plain_client.close()
        cached_client.close()

    archive = threading.Thread(
        target=lambda: Client(cached.http_port).get(slow_uri), daemon=True
    )
    archive.start()
    time.sleep(MISS_HEAD_START)
    threads = [
        threading.Thread(target=one_thread, args=(number,), daemon=True)
        for number in range(CHECK_THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(MAX_SECONDS)
    overlapped = archive.is_alive()
    archive.join(MAX_SECONDS)
    return {
        "requests": counts["requests"],
        "routes": len(uris),
        "overlapped_archive": overlapped,
        "problems": problems,
    }


def compare(uri: str, plain: Response, cached: Response) -> List[str]:
    found = differences(uri, plain, cached)
    if not found and plain.body != cached.body:
        found.append("%s: bodies equal once parsed, not byte for byte" % uri)
    return found


def faults(server: OrthancServer) -> List[str]:
    lines = server.log_text().splitlines()
    return [line for line in lines if "Traceback" in line or "fault on" in line]


# The run.


class Run:
    """The servers, the study, and what was measured."""

    def __init__(self, options: argparse.Namespace, folder: Path) -> None:
        self.options = options
        self.folder = folder
        self.servers: Dict[Setup, OrthancServer] = {}
        self.results: Dict[str, Any] = {"setups": {}, "load": []}

    def note_load(self, when: str) -> None:
        self.results["load"].append((when, os.getloadavg()))

    def prepare(self, stack: contextlib.ExitStack) -> Tuple[OrthancServer, Ids]:
        progress("generating %d slices" % self.options.slices)
        paths = generate_ct_study(
            self.folder / "ct", self.options.slices, 512, 512, seed=300
        )
        files = [path.read_bytes() for path in paths]
        plain = stack.enter_context(
            start(OrthancServer(name="bench-plain", config=BASE_CONFIG), CHROOT_RUNTIME)
        )
        progress("loading plain Orthanc %s" % plain.get_json("/system")["Version"])
        answers = scenarios.ingest(plain, files)[1]
        ids = Ids(answers)
        for setup in SETUPS:
            server = stack.enter_context(
                start(plugin_server(setup, self.folder), setup.runtime)
            )
            self.servers[setup] = server
            progress("loading %s" % setup.label)
            scenarios.ingest(server, files)
            wait_for_settled_version(server, ids.uri("studies", "shared-tags"))
            server.request("GET", ids.uri("studies", "shared-tags"))  # the hits' entry
        self.describe(answers)
        return plain, ids

    def describe(self, answers: Sequence[Dict[str, Any]]) -> None:
        for setup, server in self.servers.items():
            self.results["setups"][setup.label] = {
                "orthanc": server.get_json("/system")["Version"],
                "python_plugin": server.get_json("/plugins/python").get("Version"),
                "rounds": [],
            }
        self.results["code"] = code_version()
        self.results["study"] = "%d slices of 512x512, %.0f MB" % (
            len(answers),
            self.folder_megabytes(),
        )

    def folder_megabytes(self) -> float:
        return sum(p.stat().st_size for p in (self.folder / "ct").iterdir()) / 1e6

    def measure(self, ids: Ids) -> None:
        interval = self.options.interval / 1000
        for number in range(self.options.rounds):
            self.note_load("round %d" % (number + 1))
            # Each round starts with another setup, so none always goes first.
            shift = number % len(SETUPS)
            for setup in SETUPS[shift:] + SETUPS[:shift]:
                progress("round %d: %s" % (number + 1, setup.label))
                found = one_round(self.servers[setup], ids, number, interval)
                self.results["setups"][setup.label]["rounds"].append(found)
        self.note_load("end of rounds")

    def check(self, plain: OrthancServer, ids: Ids, answers: Study) -> None:
        setup = CHECKED
        progress("checking answers of %s against plain Orthanc" % setup.label)
        slow = ids.uri("studies", "archive?bench=check")
        found = check_answers(plain, self.servers[setup], answers, slow)
        found["setup"] = setup.label
        self.results["check"] = found
        for label, server in [(s.label, self.servers[s]) for s in SETUPS]:
            self.results["setups"][label]["faults"] = faults(server)


def study_of(server: OrthancServer, ids: Ids) -> Study:
    study = server.get_json("/studies/%s" % ids.study)
    return Study(
        patient=study["ParentPatient"],
        study=ids.study,
        series=ids.by_level["series"],
        instance=ids.by_level["instances"],
    )


# The report.


def pooled(rounds: List[Dict[str, Any]], phase: str, key: str) -> Dict[str, float]:
    return summary([value for found in rounds for value in found[phase][key]])


def cell(stats: Dict[str, float]) -> str:
    if not stats:
        return "none"
    return "%s / %s / %s (%d)" % (
        ms(stats["median"]),
        ms(stats["p95"]),
        ms(stats["max"]),
        stats["n"],
    )


def render(results: Dict[str, Any], interval: float) -> str:
    lines = [
        "AllowThreads: hits of study shared-tags (%s), one every %g ms"
        % (results.get("study", "?"), interval),
        "code %s; ms, median / p95 / max (samples), every round pooled"
        % results.get("code", "?"),
        "",
    ]
    for label, found in results["setups"].items():
        rounds = found["rounds"]
        if not rounds:
            continue
        lines.append(
            "%s (Orthanc %s, plugin %s)"
            % (label, found["orthanc"], found["python_plugin"])
        )
        lines.extend(setup_lines(rounds))
        lines.append("")
    lines.extend(check_lines(results))
    lines.append(
        "load average (1, 5, 15 min): "
        + "; ".join(
            "%s %.2f %.2f %.2f" % (when, *load) for when, load in results["load"]
        )
    )
    return "\n".join(lines)


def setup_lines(rounds: List[Dict[str, Any]]) -> List[str]:
    during = [found["during"] for found in rounds]
    slow = [phase["slow"].get("ms", 0.0) for phase in during]
    alone = [found["alone_ms"] for found in rounds]
    answered = sum(len(phase["hit"]) for phase in during)
    sent = sum(len(found[phase]["hit"]) for found in rounds for phase in PHASES)
    counted = sum(found[phase]["hits_counted"] for found in rounds for phase in PHASES)
    return [
        "  idle hit              %s" % cell(pooled(rounds, "idle", "hit")),
        "  hit during the miss   %s" % cell(pooled(rounds, "during", "hit")),
        "  hits answered         %d in %.1f s of misses" % (answered, sum(slow) / 1000),
        "  /system during miss   %s" % cell(pooled(rounds, "during", "system")),
        "  worst hit per round   %s"
        % ", ".join(ms(max(phase["hit"], default=0.0)) for phase in during),
        "  archive miss          with hits %s; alone %s"
        % (", ".join(ms(value) for value in slow), ", ".join(ms(v) for v in alone)),
        "  8-client hits (wrk)   %s req/s"
        % ", ".join("%.0f" % found["wrk"] for found in rounds),
        "  hits counted by the plugin: %d of %d sent" % (counted, sent),
    ]


PHASES = ("idle", "during")


def check_lines(results: Dict[str, Any]) -> List[str]:
    found = results.get("check")
    if not found:
        return ["answer check: not run"]
    lines = [
        "answer check, %s: %d concurrent requests over %d routes, %s, "
        "%d differences from plain Orthanc"
        % (
            found["setup"],
            found["requests"],
            found["routes"],
            "an archive computing meanwhile"
            if found["overlapped_archive"]
            else "the archive was done before the end",
            len(found["problems"]),
        )
    ]
    lines.extend("  " + problem for problem in found["problems"][:10])
    for label, setup in results["setups"].items():
        if setup.get("faults"):
            lines.append(
                "%s: %d fault lines in the log" % (label, len(setup["faults"]))
            )
    return lines


def parse(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300, help="default 300")
    parser.add_argument("--rounds", type=int, default=3, help="default 3")
    parser.add_argument(
        "--interval", type=float, default=5.0, help="ms between hits (default 5)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    options = parse(argv)
    chroot = chroot_runtime()
    problem = chroot.check(need_python_plugin=True)
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    try:
        # Before any thread starts: a mount namespace needs that.
        chroot.prepare(default_shared_folders(REPO_ROOT))
    except RuntimeSetupError as error:
        print("Debian 13 chroot not prepared: %s" % error, file=sys.stderr)
        return 2
    isolate_network()

    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-at-") as name:
            run = Run(options, Path(name))
            run.note_load("start")
            with contextlib.ExitStack() as stack:
                plain, ids = run.prepare(stack)
                run.measure(ids)
                run.check(plain, ids, study_of(plain, ids))
    finally:
        chroot.release()

    run.results["seconds"] = round(time.monotonic() - started, 1)
    if options.json:
        options.json.write_text(json.dumps(run.results, indent=2) + "\n")
    print(render(run.results, options.interval))
    print("run time %.0f s" % run.results["seconds"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
