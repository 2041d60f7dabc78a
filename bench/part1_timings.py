"""Plain Orthanc against Orthanc with the plugin, on a generated CT study.

Starts both servers (loopback only, in a private network namespace), loads the
same study into each, and prints the median time of ``shared-tags`` and
``instances-tags`` of the study and ``tags`` of one instance: plain, plugin miss,
plugin hit and plugin 304. Run as root from the repository root::

    .venv/bin/python bench/part1_timings.py --slices 300
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.dicom_data import generate_ct_study
from tests.support.netns import isolate_network
from tests.support.orthanc_server import OrthancServer, Response

REPO_ROOT = Path(__file__).resolve().parents[1]


def timed(call: Callable[[], Response], expected: int) -> float:
    started = time.perf_counter()
    answer = call()
    elapsed = time.perf_counter() - started
    if answer.status != expected:
        raise SystemExit("expected %d, got %r" % (expected, answer))
    return elapsed * 1000


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def measure(plain: OrthancServer, cached: OrthancServer, uri: str, runs: int) -> dict:
    results = {
        "plain": median(
            [timed(lambda: plain.request("GET", uri), 200) for _ in range(runs)]
        ),
        # A distinct, ignored query argument makes each request a cold entry.
        "miss": median(
            [
                timed(lambda n=n: cached.request("GET", "%s?bench=%d" % (uri, n)), 200)
                for n in range(runs)
            ]
        ),
    }
    cached.request("GET", uri)
    results["hit"] = median(
        [timed(lambda: cached.request("GET", uri), 200) for _ in range(runs * 4)]
    )
    etag = str(cached.request("GET", uri).header("ETag"))
    results["304"] = median(
        [
            timed(
                lambda: cached.request("GET", uri, headers={"If-None-Match": etag}), 304
            )
            for _ in range(runs * 4)
        ]
    )
    return results


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args(argv)

    isolate_network()
    with tempfile.TemporaryDirectory() as folder:
        files = generate_ct_study(
            Path(folder) / "ct",
            slices=options.slices,
            rows=options.size,
            cols=options.size,
            seed=300,
        )
        cache = Path(folder) / "cache"
        plain = OrthancServer(name="plain", config={"StableAge": 3600})
        cached = OrthancServer(
            name="cached",
            script=REPO_ROOT / "example.py",
            config={
                "StableAge": 3600,
                "CachePlugin": {"Directory": str(cache), "WarmUp": False},
            },
        )
        with plain, cached:
            for path in files:
                plain.upload(path)
                answer = cached.upload(path)
            study, instance = answer["ParentStudy"], answer["ID"]
            time.sleep(2)  # let the upload's change events settle
            uris = [
                "/studies/%s/shared-tags" % study,
                "/studies/%s/instances-tags" % study,
                "/instances/%s/tags" % instance,
            ]
            print(
                "%d slices of %dx%d, median ms of %d runs (hit, 304: %d runs)"
                % (
                    options.slices,
                    options.size,
                    options.size,
                    options.runs,
                    options.runs * 4,
                )
            )
            print(
                "%-16s %9s %9s %9s %9s %10s"
                % ("route", "plain", "miss", "hit", "304", "plain/hit")
            )
            for uri in uris:
                found = measure(plain, cached, uri, options.runs)
                print(
                    "%-16s %9.2f %9.2f %9.2f %9.2f %9.0fx"
                    % (
                        uri.rsplit("/", 1)[1],
                        found["plain"],
                        found["miss"],
                        found["hit"],
                        found["304"],
                        found["plain"] / found["hit"],
                    )
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
