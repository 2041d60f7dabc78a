"""The cache store: the only code that touches diskcache, and it fails open.

Any trouble with the cache directory (missing, not writable, full, corrupted)
turns a lookup into a miss and a write into a no-op: Orthanc answers uncached.
One warning is logged when trouble starts and one line when it is over.

Bodies are stored behind a small header that holds their length, so that a
value file cut short on disk is a miss, never a truncated answer. A large body
can be handed out as its open value file (``StoredFile``), checked against that
length first, to be sent in chunks rather than read into memory.
"""

import contextlib
import io
import logging
import os
import threading
import time
from collections import OrderedDict
from typing import (
    Any,
    Callable,
    Dict,
    Iterator,
    NamedTuple,
    Optional,
    Tuple,
    TypeVar,
    Union,
)

import diskcache

logger = logging.getLogger(__name__)

T = TypeVar("T")

# After a failure to open the store, wait this long before trying again.
REOPEN_DELAY = 5.0

# How often the database file is checked for removal or replacement.
CHECK_PERIOD = 1.0

# A hit on an entry stored longer ago than this stores it again (see _refresh):
# least-recently-used eviction, to the hour, with no write on most hits.
REFRESH = 3600.0

# Before each body: a marker and the body's length (8 bytes, big-endian).
BODY_MARKER = b"ocp1"
HEADER_SIZE = len(BODY_MARKER) + 8
DATABASE_FILE = "cache.db"  # diskcache's SQLite file

# A body larger than this is handed out as its open value file, to be sent in
# chunks where Orthanc can stream an answer, and is never kept in memory. The
# memory layer's default (a quarter of 64 MB) keeps nothing larger either.
STREAM_THRESHOLD = 16 * 1024 * 1024
CHUNK_SIZE = 1024 * 1024  # read from a value file at a time


class _OwnerOnlyDisk(diskcache.Disk):  # type: ignore[misc]
    """diskcache's file storage, with owner-only folders for value files.

    diskcache creates the two levels of folders of a value file itself, with
    the default mode, and the store directory too if it was removed: then it
    would no longer be owner-only. Here the folders are made 0700, and a
    removed store directory fails the write instead.
    """

    def filename(self, *args: Any, **kwargs: Any) -> Tuple[str, str]:
        name, full_path = super().filename(*args, **kwargs)
        folder = os.path.dirname(full_path)
        for path in (os.path.dirname(folder), folder):
            with contextlib.suppress(FileExistsError):
                os.mkdir(path, 0o700)
        return name, full_path


class PerThread:
    """Per-thread attributes keyed by the OS thread, for diskcache's connections.

    diskcache keeps one SQLite connection per thread in a ``threading.local``.
    Orthanc's HTTP threads enter Python afresh for each request, with a new
    thread state, so a ``threading.local`` is empty every time and diskcache
    would open a new connection per request (measured: 0.45 ms of a 0.9 ms
    hit). The OS thread, and so its connection, lives on.
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_values", {})

    def _mine(self) -> Dict[str, Any]:
        values: Dict[int, Dict[str, Any]] = object.__getattribute__(self, "_values")
        return values.setdefault(threading.get_ident(), {})

    def __getattr__(self, name: str) -> Any:
        try:
            return self._mine()[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self._mine()[name] = value

    def __delattr__(self, name: str) -> None:
        self._mine().pop(name, None)


class MemoryLayer:
    """The most recently used bodies, kept in memory too, bounded in bytes.

    A hit from memory makes no SQLite call and no file read: each of those
    releases the GIL, and with several clients every release is a wait to get
    it back. Keys hold the version, so memory never holds a stale answer.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._entries: OrderedDict[str, Tuple[memoryview, str]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> Optional[memoryview]:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            self._entries.move_to_end(key)
            return found[0]

    def put(self, key: str, body: memoryview, tag: str) -> None:
        # One entry may take a quarter of the space, no more; one that is
        # streamed from its file is never held here.
        if len(body) * 4 > self._limit or len(body) > STREAM_THRESHOLD:
            return
        with self._lock:
            self._drop(key)
            self._entries[key] = (body, tag)
            self._size += len(body)
            while self._size > self._limit:
                self._drop(next(iter(self._entries)))

    def evict(self, tag: str) -> None:
        with self._lock:
            for key in [k for k, (_, t) in self._entries.items() if t == tag]:
                self._drop(key)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._size = 0

    def _drop(self, key: str) -> None:
        found = self._entries.pop(key, None)
        if found is not None:
            self._size -= len(found[0])


class DamagedEntry(OSError):
    """A value file ended before the length its header announced."""


class StoredFile:
    """A large stored body: its open value file, read after the header.

    The length in the header was checked against the file's size when it was
    opened. An open file stays readable when diskcache removes the entry
    meanwhile (eviction, a newer answer): it never rewrites a file in place.
    """

    def __init__(
        self, handle: io.BufferedIOBase, length: int, damaged: Callable[[], None]
    ) -> None:
        self._handle = handle
        self._length = length
        self._damaged = damaged

    @property
    def length(self) -> int:
        return self._length

    def chunks(self) -> Iterator[bytes]:
        """Yield the body in order; raise ``DamagedEntry`` if the file ends early."""
        remaining = self._length
        while remaining:
            chunk = self._handle.read(min(CHUNK_SIZE, remaining))
            if not chunk:
                self._fail(remaining)
            remaining -= len(chunk)
            yield chunk

    def read(self) -> bytes:
        """Return the whole body; raise ``DamagedEntry`` if the file ends early."""
        body = self._handle.read(self._length)
        if len(body) != self._length:
            self._fail(self._length - len(body))
        return body

    def copy(self, write: Callable[[io.BufferedIOBase], T]) -> T:
        """Call ``write`` with the whole value file, header included."""
        self._handle.seek(0)
        try:
            return write(self._handle)
        finally:
            self._handle.seek(HEADER_SIZE)

    def close(self) -> None:
        self._handle.close()

    def _fail(self, missing: int) -> None:
        # Changed on disk after it was checked: the answer has started already.
        self._damaged()
        raise DamagedEntry("value file ended %d bytes early" % missing)


Found = Union[memoryview, StoredFile]


class _Entry(NamedTuple):
    """What a lookup found: the body (None if damaged) and its bookkeeping."""

    body: Optional[Found]
    size_on_disk: int
    expire_time: Optional[float]
    tag: Optional[str]


class Store:
    """A diskcache store opened once per process: LRU eviction, size limit, expiry."""

    def __init__(
        self, directory: str, size_limit_mb: int, expire: int, memory_mb: int = 0
    ) -> None:
        self.directory = directory
        self.size_limit = size_limit_mb * 1024 * 1024
        self.expire = expire
        self._cache: Optional[diskcache.Cache] = None
        self._lock = threading.Lock()
        self._failing = False
        self._next_open = 0.0
        self._database: Optional[Tuple[int, int]] = None  # (device, inode)
        self._checked = 0.0
        self._memory = MemoryLayer(memory_mb * 1024 * 1024) if memory_mb else None

    @property
    def healthy(self) -> bool:
        """Whether the last operation on the store succeeded."""
        return not self._failing

    def get(self, key: str) -> Optional[memoryview]:
        """Return the stored body, or ``None`` on a miss or any trouble."""
        found = self._fetch(key, whole=True)
        return found if isinstance(found, memoryview) else None

    def get_streamable(self, key: str) -> Optional[Found]:
        """Like ``get``, but a body over STREAM_THRESHOLD comes as its open file.

        The caller closes the ``StoredFile``.
        """
        return self._fetch(key, whole=False)

    def _fetch(self, key: str, whole: bool) -> Optional[Found]:
        if self._memory is not None:
            remembered = self._memory.get(key)
            if remembered is not None:
                return remembered
        entry = self._run("read", lambda cache: self._lookup(cache, key, whole))
        if entry is None:
            return None
        if entry.body is None:
            self._damaged(key, entry.size_on_disk)
            return None

        body, expire_time, tag = entry.body, entry.expire_time, entry.tag
        if expire_time and expire_time - self.expire < time.time() - REFRESH:
            self._refresh(key, body, tag)
        if self._memory is not None and tag and isinstance(body, memoryview):
            self._memory.put(key, body, tag)
        return body

    def _lookup(
        self, cache: diskcache.Cache, key: str, whole: bool
    ) -> Optional[_Entry]:
        found = cache.get(key, read=True, expire_time=True, tag=True, retry=True)
        value, expire_time, tag = found
        if isinstance(value, bytes):  # a small body, kept inside SQLite
            return _Entry(_unframed(value), len(value), expire_time, tag)
        if not isinstance(value, io.BufferedIOBase):
            return None  # no entry, or a bookkeeping value
        with contextlib.ExitStack() as stack:
            stack.callback(value.close)
            body, size = self._opened(key, value, whole)
            if isinstance(body, StoredFile):
                stack.pop_all()  # the caller closes it
            return _Entry(body, size, expire_time, tag)

    def _opened(
        self, key: str, handle: io.BufferedIOBase, whole: bool
    ) -> Tuple[Optional[Found], int]:
        size = os.fstat(handle.fileno()).st_size
        if whole or size <= HEADER_SIZE + STREAM_THRESHOLD:
            value = handle.read()
            return _unframed(value), len(value)

        # Checked before anything is sent: once an answer streams, its status
        # and length cannot change any more.
        length = _framed_length(handle.read(HEADER_SIZE))
        if length is None or size != HEADER_SIZE + length:
            return None, size
        return StoredFile(handle, length, lambda: self._damaged(key, size)), size

    def _damaged(self, key: str, size: int) -> None:
        # A value file cut short (or an entry of another format): never
        # answer it; remove it so that the next answer is stored again.
        logger.warning("cache entry damaged (%d bytes on disk), removed: %s", size, key)
        self._run("write", lambda cache: cache.delete(key, retry=True))

    def _refresh(self, key: str, body: Found, tag: Optional[str]) -> None:
        # Eviction goes by the time an entry was stored: storing a used entry
        # again (at most once per REFRESH) makes that least recently used,
        # without a write on every hit.
        def store_again(cache: diskcache.Cache) -> bool:
            if isinstance(body, StoredFile):
                return body.copy(lambda whole: self._put(cache, key, whole, tag))
            return self._put(cache, key, _framed(body), tag)

        self._run("write", store_again)

    def set(self, key: str, body: bytes, tag: str) -> bool:
        """Store a body under ``key``, tagged with its resource id."""
        if len(body) > STREAM_THRESHOLD:
            # Copied to its file piece by piece, not framed in memory first.
            reader = _FramedReader(body)
            return bool(
                self._run("write", lambda cache: self._put(cache, key, reader, tag))
            )

        framed = _framed(body)
        if self._memory is not None:
            self._memory.put(key, memoryview(framed)[HEADER_SIZE:], tag)
        stored = self._run("write", lambda cache: self._put(cache, key, framed, tag))
        return bool(stored)

    def _put(
        self, cache: diskcache.Cache, key: str, value: Any, tag: Optional[str]
    ) -> bool:
        # bytes are stored as they are; a file-like value is read in pieces.
        read = not isinstance(value, bytes)
        return bool(
            cache.set(key, value, read=read, expire=self.expire, tag=tag, retry=True)
        )

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

    def set_values(self, values: Dict[str, Any]) -> bool:
        """Store several bookkeeping values in one transaction."""

        def write_all(cache: diskcache.Cache) -> bool:
            with cache.transact(retry=True):
                for key, value in values.items():
                    cache.set(key, value)
            return True

        return bool(self._run("write", write_all))

    def clear(self) -> int:
        """Remove every entry; return how many were removed."""
        if self._memory is not None:
            self._memory.clear()
        return int(self._run("clear", lambda cache: cache.clear(retry=True)) or 0)

    def evict(self, tag: str) -> int:
        """Remove the entries of one resource; return how many were removed."""
        if self._memory is not None:
            self._memory.evict(tag)
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
            self._check_database()
            result = operation(cache)
        except Exception as error:  # noqa: BLE001 - the cache fails open
            self._trouble("%s failed: %s" % (action, error))
            self._drop(cache)
            return None
        if action != "read":
            # A read may still work on a store that cannot take writes (read
            # only, full): only a write proves that the trouble is over.
            self._recovered()
        return result

    def _check_database(self) -> None:
        # SQLite keeps using a database file that was removed or replaced
        # under it: entries would go to a file nobody will ever open again.
        # Once a second: a stat releases the GIL, which costs under load.
        now = time.monotonic()
        if now - self._checked < CHECK_PERIOD:
            return
        self._checked = now
        found = os.stat(os.path.join(self.directory, DATABASE_FILE))
        if (found.st_dev, found.st_ino) != self._database:
            raise OSError("%s was removed or replaced" % DATABASE_FILE)

    def _open(self) -> Optional[diskcache.Cache]:
        cache = self._cache
        if cache is not None:
            return cache
        with self._lock:
            if self._cache is not None or time.monotonic() < self._next_open:
                return self._cache
            try:
                cache = self._create()
                found = os.stat(os.path.join(self.directory, DATABASE_FILE))
                self._database = (found.st_dev, found.st_ino)
                self._cache = cache
            except Exception as error:  # noqa: BLE001 - the cache fails open
                self._next_open = time.monotonic() + REOPEN_DELAY
                self._trouble("cannot open %s: %s" % (self.directory, error))
            return self._cache

    def _create(self) -> diskcache.Cache:
        # Owner-only: cached answers hold patient data.
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        cache = diskcache.Cache(
            self.directory,
            disk=_OwnerOnlyDisk,
            size_limit=self.size_limit,
            eviction_policy="least-recently-stored",  # see _refresh
            tag_index=True,
            disk_min_file_size=64 * 1024,
        )
        cache._local = PerThread()  # one connection per OS thread: see PerThread
        return cache

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


class _FramedReader:
    """A body behind its header, read in pieces like a file (diskcache's read=True)."""

    def __init__(self, body: Union[bytes, memoryview]) -> None:
        self._parts = [memoryview(_header(len(body))), memoryview(body)]

    def read(self, size: int = -1) -> bytes:
        while self._parts and not self._parts[0]:
            self._parts.pop(0)
        if not self._parts:
            return b""
        part = self._parts[0]
        piece = part if size < 0 else part[:size]
        self._parts[0] = part[len(piece) :]
        return bytes(piece)


def _header(length: int) -> bytes:
    return BODY_MARKER + length.to_bytes(8, "big")


def _framed(body: Union[bytes, memoryview]) -> bytes:
    return _header(len(body)) + body


def _framed_length(value: bytes) -> Optional[int]:
    """The body length a header announces, or None if ``value`` has none."""
    if len(value) < HEADER_SIZE or not value.startswith(BODY_MARKER):
        return None
    return int.from_bytes(value[len(BODY_MARKER) : HEADER_SIZE], "big")


def _unframed(value: bytes) -> Optional[memoryview]:
    # A length check only: cheap on every hit, and it catches a cut file. The
    # body is a view into the value, not a copy (12 MB for instances-tags).
    length = _framed_length(value)
    if length is None or len(value) != HEADER_SIZE + length:
        return None
    return memoryview(value)[HEADER_SIZE:]
