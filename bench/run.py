"""Benchmark of the cache plugin against plain Orthanc and nginx ``proxy_cache``.

In one run (as root, every server on loopback inside a private network
namespace): plain Orthanc, Orthanc with the plugin plus two Python-callback
floor routes (``bench/orthanc_script.py``), and nginx caching plain Orthanc.
The same generated CT study goes into each Orthanc. Prints the latency of every
route (plain, plugin miss, hit, 304, nginx hit), throughput with wrk, the
concurrent-first-request, warm-up, ingest, slow-miss and binary-storage
scenarios, then issue 4's targets as PASS/FAIL. Use ``scripts/bench.sh``::

    bash scripts/bench.sh [--quick] [--slices N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import report, scenarios, wrk
from bench.client import Client
from bench.nginx import NginxCache
from bench.scenarios import Ids
from tests.support.dicom_data import generate_ct_study
from tests.support.netns import isolate_network
from tests.support.orthanc_server import OrthancServer
from tests.support.plugin_log import wait_for_settled_version

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "bench" / "orthanc_script.py"
QUICK_SLICES = 60
BASE_CONFIG = {"StableAge": 3600, "KeepAlive": True}


def progress(text: str) -> None:
    print("[%s] %s" % (scenarios.now(), text), file=sys.stderr, flush=True)


class Bench:
    """One run: the servers, the study, and everything measured."""

    def __init__(self, options: argparse.Namespace, folder: Path) -> None:
        self.options = options
        self.folder = folder
        self.files: List[bytes] = []
        self.ids: Optional[Ids] = None
        self.results: Dict[str, Any] = {"errors": {}, "notes": [], "ingest": {}}

    def phase(self, name: str, work: Callable[[], None]) -> None:
        """Run one phase; a failure is recorded, and the next phase runs."""
        progress(name)
        try:
            work()
        except Exception as error:  # noqa: BLE001 - reported, the run goes on
            traceback.print_exc(file=sys.stderr)
            self.results["errors"][name] = "%s: %s" % (type(error).__name__, error)

    def plugin_server(self, name: str, **options: Any) -> OrthancServer:
        section = {"Directory": str(self.folder / ("cache-" + name))}
        section.update(options)
        config = dict(BASE_CONFIG, CachePlugin=section)
        return OrthancServer(name="bench-" + name, script=SCRIPT, config=config)

    # The study.

    def generate(self) -> None:
        size = self.options.size
        paths = generate_ct_study(
            self.folder / "ct", self.options.slices, size, size, seed=300
        )
        self.files = [path.read_bytes() for path in paths]

    def ingest(self, label: str, server: OrthancServer) -> None:
        rate, answers = scenarios.ingest(server, self.files)
        self.results["ingest"][label] = rate
        self.ids = self.ids or Ids(answers)

    # Phase 1: plain, plugin and nginx side by side.

    def side_by_side(self) -> None:
        plain = OrthancServer(name="bench-plain", config=BASE_CONFIG)
        plugin = self.plugin_server("main", WarmUp=False)
        with plain, plugin:
            self.describe(plain, plugin)
            self.ingest("plain", plain)
            self.ingest("plugin, warm-up off", plugin)
            time.sleep(2)  # let the upload's change events settle
            with NginxCache(plain.http_port) as nginx:
                clients = [Client(s.http_port) for s in (plain, plugin)]
                clients.append(Client(nginx.port))
                self.phase("latency", lambda: self.latency(plugin, *clients))
                self.phase("throughput", lambda: self.throughput(plugin, nginx))
            self.phase("stampede", lambda: self.stampede(plugin))
            self.phase("slow miss", lambda: self.slow_miss(plugin))

    def describe(self, plain: OrthancServer, plugin: OrthancServer) -> None:
        system = plain.get_json("/system")
        python = plugin.get_json("/plugins/python").get("Version", "?")
        self.results["python_plugin"] = python
        megabytes = sum(len(data) for data in self.files) / 1e6
        self.results["title"] = (
            "orthanc-cache-plugin benchmark: %d slices of %dx%d (%.0f MB), "
            "Orthanc %s, Python plugin %s, code %s"
            % (
                self.options.slices,
                self.options.size,
                self.options.size,
                megabytes,
                system.get("Version"),
                python,
                code_version(),
            )
        )

    def latency(
        self, plugin: OrthancServer, plain_c: Client, plugin_c: Client, nginx_c: Client
    ) -> None:
        assert self.ids is not None
        found: Dict[str, Any] = {}
        self.results["routes"] = found
        for label, level, path in scenarios.ROUTES:
            progress("  " + label)
            uri = self.ids.uri(level, path)
            sampler = scenarios.RouteSampler(
                uri, plain_c, plugin_c, nginx_c, self.options.budget
            )
            found[label] = sampler.run()
            found[label]["problems"] = sampler.problems
        self.results["system"] = scenarios.time_system(plugin_c)
        self.results["variant_misses"] = scenarios.time_variant_misses(
            plugin_c, self.ids.study
        )

    def throughput(self, plugin: OrthancServer, nginx: NginxCache) -> None:
        assert self.ids is not None
        shared = self.ids.uri("studies", "shared-tags")
        urls = {
            "plugin shared-tags hit": (plugin.url, shared),
            "floor: callback with one lookup": (
                plugin.url,
                "/bench/lookup/" + self.ids.study,
            ),
            "floor: callback answering a constant": (plugin.url, "/bench/constant"),
            "nginx shared-tags hit": ("http://127.0.0.1:%d" % nginx.port, shared),
            "Orthanc's own /system (no Python)": (plugin.url, "/system"),
        }
        rates: Dict[str, float] = {}
        self.results["throughput"] = rates
        for name, (base, path) in urls.items():
            Client(int(base.rsplit(":", 1)[1])).get(path)  # fill the caches
            found = wrk.throughput(base + path)
            rates[name] = found["requests_per_s"]
            if found["bad_answers"]:
                self.results["notes"].append(
                    "wrk %s: %d answers not 2xx/3xx" % (name, found["bad_answers"])
                )

    def stampede(self, plugin: OrthancServer) -> None:
        assert self.ids is not None
        uri = self.ids.uri("studies", "instances-tags")
        self.results["stampede"] = scenarios.stampede(plugin, uri)

    def slow_miss(self, plugin: OrthancServer) -> None:
        assert self.ids is not None
        self.results["stall"] = scenarios.hits_during_slow_miss(
            plugin,
            self.ids.uri("studies", "shared-tags"),
            self.ids.uri("studies", "archive?bench=stall"),
        )

    # Phase 2: warm-up after STABLE_STUDY, and ingest with it on.

    def warm_up(self) -> None:
        found: Dict[str, Any] = {}
        self.results["warm_up"] = found
        server = self.plugin_server("warm", WarmUpRoutes=scenarios.WARM_UP_ROUTES)
        server.extra_config["StableAge"] = 2
        with server:
            rate, answers = scenarios.ingest(server, self.files)
            self.results["ingest"]["plugin, warm-up on"] = rate
            study = Ids(answers).study
            found["seconds"] = scenarios.wait_for_warm_up(server, study, timeout=180)
            if found["seconds"] is None:
                found["error"] = "none within 180 s"
                return
            found["variants_hit"] = scenarios.check_warm_variants(server, study)

    # Phase 3: opt-in storage of binary answers.

    def binary(self) -> None:
        found: Dict[str, Any] = {}
        self.results["binary"] = found
        server = self.plugin_server(
            "binary", WarmUp=False, StoreBinary=True, MaximumEntrySize=256
        )
        with server:
            unknown = [
                option
                for option in ("StoreBinary", "MaximumEntrySize")
                if "unknown option %r" % option in server.log_text()
            ]
            if unknown:
                found["error"] = "the plugin ignores unknown option(s) %s" % unknown
                return
            rate, answers = scenarios.ingest(server, self.files)
            self.results["ingest"]["plugin, StoreBinary"] = rate
            uri = Ids(answers).uri("studies", "archive")
            # The upload's change events renew the study's version for a while
            # after the last upload: measure once they are all in.
            wait_for_settled_version(server, Ids(answers).uri("studies", "shared-tags"))
            client = Client(server.http_port)
            found["first"] = client.timed_get(uri)[0]
            found["repeats"] = []
            for _ in range(3):
                offset = len(server.log_text())
                elapsed, answer = client.timed_get(uri)
                log = server.log_text()[offset:]
                hit = scenarios.count_log(log, "hit", uri) == 1
                found["repeats"].append({"ms": elapsed, "hit": hit})
            found["second"] = found["repeats"][0]["ms"]
            if not found["repeats"][0]["hit"]:
                found["problem"] = "the second request did not log a hit"
            elif answer.header("Content-Type") != "application/zip":
                found["problem"] = "Content-Type %s" % answer.header("Content-Type")


def code_version() -> str:
    """The commit of the checkout, marked when the plugin has local changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "orthanc_cache_plugin"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + (" + uncommitted plugin changes" if changed else "")


def parse(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=None, help="default 300")
    parser.add_argument("--size", type=int, default=512, help="rows and columns")
    parser.add_argument(
        "--quick", action="store_true", help="%d slices, shorter" % QUICK_SLICES
    )
    parser.add_argument(
        "--budget", type=float, default=None, help="seconds per route (default 5)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    options = parser.parse_args(argv)
    if options.slices is None:
        options.slices = QUICK_SLICES if options.quick else 300
    if options.budget is None:
        options.budget = 2.0 if options.quick else 5.0
    return options


def main(argv: Optional[Sequence[str]] = None) -> int:
    options = parse(argv)
    isolate_network()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        bench = Bench(options, Path(folder))
        bench.results["title"] = "orthanc-cache-plugin benchmark"
        progress("generating %d slices" % options.slices)
        bench.generate()
        bench.phase("side by side", bench.side_by_side)
        bench.phase("warm-up", bench.warm_up)
        bench.phase("binary storage", bench.binary)

    found = report.targets(bench.results)
    bench.results["targets"] = [target.as_dict() for target in found]
    bench.results["seconds"] = round(time.monotonic() - started, 1)
    if options.json:
        options.json.write_text(json.dumps(bench.results, indent=2) + "\n")
    print(report.render(bench.results, found))
    print("run time %.0f s" % bench.results["seconds"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
