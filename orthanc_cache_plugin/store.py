"""The cache store: the only code that touches diskcache, and it fails open.

Any trouble with the cache directory (missing, not writable, full, corrupted)
turns a lookup into a miss and a write into a no-op: Orthanc answers uncached.
One warning is logged when trouble starts and one line when it is over.
"""

import contextlib
import logging
import os
import threading
import time
from typing import Any, Callable, Dict, Optional, TypeVar

import diskcache

logger = logging.getLogger(__name__)

T = TypeVar("T")

# After a failure to open the store, wait this long before trying again.
REOPEN_DELAY = 5.0


class Store:
    """A diskcache store opened once per process: LRU eviction, size limit, expiry."""

    def __init__(self, directory: str, size_limit_mb: int, expire: int) -> None:
        self.directory = directory
        self.size_limit = size_limit_mb * 1024 * 1024
        self.expire = expire
        self._cache: Optional[diskcache.Cache] = None
        self._lock = threading.Lock()
        self._failing = False
        self._next_open = 0.0

    @property
    def healthy(self) -> bool:
        """Whether the last operation on the store succeeded."""
        return not self._failing

    def get(self, key: str) -> Optional[bytes]:
        """Return the stored body, or ``None`` on a miss or any trouble."""
        value = self._run("read", lambda cache: cache.get(key, retry=True))
        return value if isinstance(value, bytes) else None

    def set(self, key: str, body: bytes, tag: str) -> bool:
        """Store a body under ``key``, tagged with its resource id."""
        stored = self._run(
            "write",
            lambda cache: cache.set(key, body, expire=self.expire, tag=tag, retry=True),
        )
        return bool(stored)

    def contains(self, key: str) -> bool:
        """Tell whether an unexpired entry is stored under ``key``."""
        return bool(self._run("read", lambda cache: key in cache))

    def get_value(self, key: str) -> Any:
        """Return a small bookkeeping value (versions, change sequence)."""
        return self._run("read", lambda cache: cache.get(key, retry=True))

    def set_value(self, key: str, value: Any, tag: Optional[str] = None) -> bool:
        """Store a small bookkeeping value; with a tag it expires like entries."""
        expire = self.expire if tag else None
        return bool(
            self._run(
                "write",
                lambda cache: cache.set(key, value, expire=expire, tag=tag, retry=True),
            )
        )

    def clear(self) -> int:
        """Remove every entry; return how many were removed."""
        return int(self._run("clear", lambda cache: cache.clear(retry=True)) or 0)

    def evict(self, tag: str) -> int:
        """Remove the entries of one resource; return how many were removed."""
        return int(self._run("evict", lambda cache: cache.evict(tag, retry=True)) or 0)

    def usage(self) -> Dict[str, int]:
        """Entries and bytes on disk (zeros when the store is unavailable)."""
        found = self._run("read", lambda cache: (len(cache), cache.volume()))
        entries, volume = found if found else (0, 0)
        return {"entries": entries, "bytes": volume}

    def close(self) -> None:
        with self._lock:
            if self._cache is not None:
                self._cache.close()
                self._cache = None

    def _run(
        self, action: str, operation: Callable[[diskcache.Cache], T]
    ) -> Optional[T]:
        cache = self._open()
        if cache is None:
            return None
        try:
            result = operation(cache)
        except Exception as error:  # noqa: BLE001 - the cache fails open
            self._trouble("%s failed: %s" % (action, error))
            self._drop(cache)
            return None
        self._recovered()
        return result

    def _open(self) -> Optional[diskcache.Cache]:
        cache = self._cache
        if cache is not None:
            return cache
        with self._lock:
            if self._cache is not None or time.monotonic() < self._next_open:
                return self._cache
            try:
                self._cache = self._create()
            except Exception as error:  # noqa: BLE001 - the cache fails open
                self._next_open = time.monotonic() + REOPEN_DELAY
                self._trouble("cannot open %s: %s" % (self.directory, error))
            return self._cache

    def _create(self) -> diskcache.Cache:
        # Owner-only: cached answers hold patient data.
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        return diskcache.Cache(
            self.directory,
            size_limit=self.size_limit,
            eviction_policy="least-recently-used",
            tag_index=True,
            disk_min_file_size=64 * 1024,
        )

    def _drop(self, cache: diskcache.Cache) -> None:
        # A failed operation may mean the files were removed or corrupted:
        # reopen on the next request rather than keep a broken handle.
        with self._lock:
            if self._cache is cache:
                self._cache = None
                self._next_open = time.monotonic() + REOPEN_DELAY
        with contextlib.suppress(Exception):  # closing a broken store
            cache.close()

    def _trouble(self, cause: str) -> None:
        if not self._failing:
            self._failing = True
            logger.warning("cache store unavailable, answering uncached: %s", cause)

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            logger.warning("cache store available again: %s", self.directory)
