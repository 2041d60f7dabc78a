"""Throughput with concurrent clients, measured by Debian's ``wrk``."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Dict

WRK_BINARY = "wrk"
CONNECTIONS = 8
THREADS = 2
DURATION = "5s"


def throughput(url: str) -> Dict[str, float]:
    """Run ``wrk -c 8 -t 2 -d 5s`` on a loopback ``url``.

    :return: requests per second and the count of non-2xx/3xx answers.
    :raises RuntimeError: wrk is missing or failed, or ``url`` is not loopback.
    """
    if not url.startswith("http://127.0.0.1:"):
        raise RuntimeError("wrk targets loopback only, not %s" % url)
    if shutil.which(WRK_BINARY) is None:
        raise RuntimeError("wrk is not installed (run scripts/bench.sh)")
    command = [
        WRK_BINARY,
        "-c",
        str(CONNECTIONS),
        "-t",
        str(THREADS),
        "-d",
        DURATION,
        "--timeout",
        "10s",
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    found = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if done.returncode != 0 or found is None:
        raise RuntimeError("wrk failed: %s %s" % (done.stdout, done.stderr))
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", done.stdout)
    return {
        "requests_per_s": float(found.group(1)),
        "bad_answers": float(errors.group(1)) if errors else 0.0,
    }
