"""A keep-alive HTTP client and the statistics of timed samples.

Every server of the benchmark is measured through the same client, one
persistent connection per server, so the client's own cost is the same on
every side of a ratio.
"""

from __future__ import annotations

import http.client
import math
import statistics
import time
from typing import Dict, List, Mapping, Optional

from tests.support.orthanc_server import Response

TIMEOUT = 300.0


class Client:
    """One persistent HTTP/1.1 connection to a loopback server."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self._connection: Optional[http.client.HTTPConnection] = None

    def get(self, path: str, headers: Optional[Mapping[str, str]] = None) -> Response:
        """GET ``path``; reconnect once if the server closed the connection."""
        return self.request("GET", path, headers=headers)

    def request(
        self,
        method: str,
        path: str,
        body: Optional[bytes] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> Response:
        """Send one request; reconnect once if the server closed the connection."""
        try:
            return self._send(method, path, body, headers)
        except (http.client.HTTPException, ConnectionError):
            self.close()
            return self._send(method, path, body, headers)

    def timed_get(
        self, path: str, headers: Optional[Mapping[str, str]] = None
    ) -> tuple[float, Response]:
        """GET ``path`` and return (milliseconds, answer)."""
        started = time.perf_counter()
        answer = self.get(path, headers)
        return (time.perf_counter() - started) * 1000, answer

    def _send(
        self,
        method: str,
        path: str,
        body: Optional[bytes],
        headers: Optional[Mapping[str, str]],
    ) -> Response:
        if self._connection is None:
            self._connection = http.client.HTTPConnection(
                self.host, self.port, timeout=TIMEOUT
            )
        self._connection.request(method, path, body=body, headers=dict(headers or {}))
        answer = self._connection.getresponse()
        body = answer.read()
        return Response(answer.status, answer.getheaders(), body)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def percentile(samples: List[float], fraction: float) -> float:
    """Return the nearest-rank percentile of ``samples`` (not empty)."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summary(samples: List[float]) -> Dict[str, float]:
    """Median, p95, max and count of millisecond samples."""
    if not samples:
        return {}
    return {
        "median": statistics.median(samples),
        "p95": percentile(samples, 0.95),
        "max": max(samples),
        "n": len(samples),
    }
