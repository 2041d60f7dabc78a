"""Peak memory of Orthanc while the plugin answers a large stored archive.

As root (a private network namespace; for Debian 13 a chroot and its mounts)::

    .venv/bin/python bench/stream_rss.py [--runtime debian12|debian13]
                                          [--slices 512] [--size 1024]

Starts Orthanc with the plugin (``StoreBinary`` on, entries up to 4 GB) on
loopback, loads a study of incompressible slices (by default 512 of 1024x1024,
16 bits: a 1 GiB archive), then asks for its archive twice: the miss (Orthanc
computes it, the plugin stores it) and the hit (the plugin answers it from its
file). The client reads each answer in 1 MiB pieces and throws them away.

The memory of the Orthanc process is read from ``/proc/<pid>/status``: VmRSS
every 10 ms, and VmHWM, the kernel's own peak, reset before each request
through ``/proc/<pid>/clear_refs`` (the larger of the two is printed). A third
request, after a restart of Orthanc, shows the hit without what the process
kept from the miss. The study, the store and Orthanc's storage are removed at
the end.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.dicom_data import generate_ct_study
from tests.support.orthanc_runtime import RUNTIME_VARIABLE
from tests.support.orthanc_server import OrthancServer
from tests.support.plugin_log import decisions, wait_for_settled_version

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "example.py"
SAMPLE_PERIOD = 0.01
PIECE = 1024 * 1024
MB = 1024 * 1024
TIMEOUT = 1800.0


class MemoryWatch:
    """Samples the resident memory of one process until stopped."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> MemoryWatch:
        reset_peak(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, status_kb(self.pid, "VmHWM"))

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, status_kb(self.pid, "VmRSS"))
            time.sleep(SAMPLE_PERIOD)


def status_kb(pid: int, field: str) -> int:
    """One ``kB`` field of ``/proc/<pid>/status`` (0 once the process is gone)."""
    try:
        lines = Path("/proc/%d/status" % pid).read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0])
    return 0


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current VmRSS (Linux 4.0 and later); tell if it worked."""
    try:
        Path("/proc/%d/clear_refs" % pid).write_text("5")
    except OSError:
        return False
    return True


def load_study(server: OrthancServer, folder: Path, slices: int, size: int) -> str:
    """Write the study, upload it and remove the files."""
    files = generate_ct_study(folder, slices, rows=size, cols=size, seed=7, noise=True)
    study = ""
    for path in files:
        study = str(server.upload(path)["ParentStudy"])
    shutil.rmtree(folder)
    return study


def fetch(port: int, uri: str) -> Dict[str, Any]:
    """GET ``uri``, reading the body in pieces; its length, digest and headers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    digest = hashlib.sha1()
    size = 0
    started = time.monotonic()
    try:
        connection.request("GET", uri)
        answer = connection.getresponse()
        while True:
            piece = answer.read(PIECE)
            if not piece:
                break
            digest.update(piece)
            size += len(piece)
    finally:
        connection.close()
    return {
        "status": answer.status,
        "bytes": size,
        "sha1": digest.hexdigest(),
        "seconds": round(time.monotonic() - started, 1),
        "streamed": answer.getheader("Connection") == "close",
        "content_length": answer.getheader("Content-Length"),
    }


PHASES = ("miss", "hit", "hit after restart")


def measure(server: OrthancServer, uri: str) -> Dict[str, Any]:
    """Memory before and during the miss, the hit, and a hit in a new process."""
    result: Dict[str, Any] = {}
    for phase in PHASES:
        if phase == "hit after restart":
            server.restart()
            time.sleep(3.0)  # the plugin catches up with Orthanc's change log
        pid = server.pid
        assert pid is not None
        time.sleep(2.0)
        before_kb = status_kb(pid, "VmRSS")
        result["peak_reset_supported"] = reset_peak(pid)
        with MemoryWatch(pid) as watch:
            answer = fetch(server.http_port, uri)
        answer["rss_before_mb"] = before_kb / 1024
        answer["peak_rss_mb"] = watch.peak_kb / 1024
        result[phase] = answer
    log = server.log_text()
    result["decisions"] = {
        "miss": decisions(server, "miss", uri),
        "stored": log.count("cache-plugin: stored %s (" % uri),
        "hit": decisions(server, "hit", uri),
    }
    return result


def run(options: argparse.Namespace, folder: Path) -> Dict[str, Any]:
    config = {
        "StableAge": 3600,
        "CachePlugin": {
            "Directory": str(folder / "orthanc" / "cache"),
            "StoreBinary": True,
            "MaximumEntrySize": 4096,
            "MaximumSize": 8192,
            "WarmUp": False,
        },
    }
    server = OrthancServer(
        script=SCRIPT, config=config, name="stream-rss", workdir=folder / "orthanc"
    )
    server.start()
    try:
        versions = {
            "orthanc": server.get_json("/system")["Version"],
            "python_plugin": server.get_json("/plugins/python")["Version"],
        }
        progress("%s: loading %d slices" % (json.dumps(versions), options.slices))
        study = load_study(server, folder / "dicom", options.slices, options.size)
        wait_for_settled_version(server, "/studies/%s/shared-tags" % study)
        progress("measuring the archive of study %s" % study)
        result = measure(server, "/studies/%s/archive" % study)
        result.update(versions)
        return result
    finally:
        server.stop()


def progress(text: str) -> None:
    print("[%s] %s" % (time.strftime("%H:%M:%S"), text), file=sys.stderr, flush=True)


def report(runtime: str, result: Dict[str, Any]) -> str:
    lines = [
        "%s: Orthanc %s, Python plugin %s, archive %.0f MB"
        % (
            runtime,
            result["orthanc"],
            result["python_plugin"],
            result["hit"]["bytes"] / MB,
        ),
        "  %-18s %10s %10s %8s  %s" % ("", "RSS before", "peak RSS", "time", "sent"),
    ]
    for phase in PHASES:
        answer = result[phase]
        lines.append(
            "  %-18s %7.0f MB %7.0f MB %6.1f s  %s"
            % (
                phase,
                answer["rss_before_mb"],
                answer["peak_rss_mb"],
                answer["seconds"],
                "streamed" if answer["streamed"] else "one buffer",
            )
        )
    digests = {result[phase]["sha1"] for phase in PHASES}
    lines.append(
        "  hits identical to the miss: %s; plugin log: %s"
        % (len(digests) == 1, result["decisions"])
    )
    return "\n".join(lines)


def free_gb(path: str) -> float:
    found = shutil.disk_usage(path)
    return found.free / 1024**3


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", choices=("debian12", "debian13"))
    parser.add_argument("--slices", type=int, default=512)
    parser.add_argument("--size", type=int, default=1024, help="rows and columns")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    options = parser.parse_args(argv)
    if options.runtime:
        os.environ[RUNTIME_VARIABLE] = options.runtime
    runtime = os.environ.get(RUNTIME_VARIABLE) or "debian12"

    # Orthanc's storage, the stored archive and one more copy while it is
    # written, with room to spare.
    needed = 4 * options.slices * options.size**2 * 2 / 1024**3 + 2
    if free_gb(tempfile.gettempdir()) < needed:
        print("not enough disk space: %.0f GB needed" % needed, file=sys.stderr)
        return 1
    folder = Path(tempfile.mkdtemp(prefix="stream-rss-"))
    try:
        result = run(options, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(report(runtime, result))
    if options.json:
        options.json.write_text(json.dumps({runtime: result}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
