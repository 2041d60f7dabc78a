"""Counters of cache decisions, shared by the request threads."""

import threading
from typing import Dict


class Statistics:
    """Thread-safe counters: hits, misses, 304s, stored, errors, bypasses."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Dict[str, int] = {}

    def count(self, name: str, increment: int = 1) -> None:
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + increment

    def snapshot(self) -> Dict[str, int]:
        with self._lock:
            return dict(self._counts)
