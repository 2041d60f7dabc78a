"""The diskcache store, and how it fails open."""

import logging
import os
import stat
import time
from pathlib import Path
from typing import Iterator, List

import pytest

from orthanc_cache_plugin import store as store_module
from orthanc_cache_plugin.store import Store, StoredFile

LOGGER = "orthanc_cache_plugin.store"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(str(tmp_path / "cache"), size_limit_mb=16, expire=3600)
    yield opened
    opened.close()


def store_warnings(caplog: pytest.LogCaptureFixture) -> List[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == LOGGER and record.levelno >= logging.WARNING
    ]


def test_a_stored_body_is_read_back(store: Store) -> None:
    assert store.set("k", b"body", tag="study-1")

    assert store.get("k") == b"body"
    assert store.contains("k")


def test_a_large_body_is_read_back(store: Store) -> None:
    body = bytes(range(256)) * 1024  # above the 64 KiB kept inside SQLite
    assert store.set("big", body, tag="study-1")
    assert store.get("big") == body


def test_a_missing_key_is_a_miss(store: Store) -> None:
    assert store.get("nothing") is None
    assert not store.contains("nothing")
    assert store.healthy


def test_get_returns_only_bodies(store: Store) -> None:
    assert store.set_value("version", {"etag": "x"})

    assert store.get("version") is None
    assert store.get_value("version") == {"etag": "x"}


def test_a_value_is_replaced(store: Store) -> None:
    store.set("k", b"one", tag="t")
    store.set("k", b"two", tag="t")
    assert store.get("k") == b"two"


def test_clear_removes_everything_and_counts(store: Store) -> None:
    store.set("a", b"1", tag="t")
    store.set("b", b"2", tag="t")
    store.set_value("c", 3)

    assert store.clear() == 3
    assert store.get("a") is None
    assert store.get_value("c") is None
    assert store.clear() == 0


def test_the_directory_is_created_owner_only(tmp_path: Path) -> None:
    directory = tmp_path / "deep" / "cache"
    opened = Store(str(directory), size_limit_mb=16, expire=3600)
    try:
        assert opened.set("k", b"v", tag="t")
    finally:
        opened.close()

    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_entries_expire_after_their_lifetime(tmp_path: Path) -> None:
    opened = Store(str(tmp_path / "cache"), size_limit_mb=16, expire=1)
    try:
        opened.set("body", b"v", tag="t")
        opened.set_value("tagged", 1, tag="t")
        opened.set_value("untagged", 2)
        assert opened.contains("body")

        time.sleep(1.1)

        assert opened.get("body") is None
        assert not opened.contains("body")
        assert opened.get_value("tagged") is None
        assert opened.get_value("untagged") == 2
    finally:
        opened.close()


@pytest.fixture
def blocked_directory(tmp_path: Path) -> Path:
    """A cache directory that cannot be made, even by root: its parent is a file."""
    parent = tmp_path / "not-a-directory"
    parent.write_bytes(b"")
    return parent / "cache"


def test_an_unopenable_store_fails_open_with_one_warning(
    blocked_directory: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(store_module, "REOPEN_DELAY", 0.0)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    failing = Store(str(blocked_directory), size_limit_mb=16, expire=3600)

    for _ in range(20):
        assert failing.get("k") is None
        assert failing.set("k", b"v", tag="t") is False
        assert failing.contains("k") is False
        assert failing.get_value("k") is None
        assert failing.set_value("k", 1) is False
        assert failing.clear() == 0

    assert not failing.healthy
    warnings = store_warnings(caplog)
    assert len(warnings) == 1
    assert str(blocked_directory) in warnings[0]


def test_an_unopenable_store_recovers_once_the_fault_is_gone(
    blocked_directory: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(store_module, "REOPEN_DELAY", 0.0)
    caplog.set_level(logging.INFO, logger=LOGGER)
    recovering = Store(str(blocked_directory), size_limit_mb=16, expire=3600)
    assert recovering.set("k", b"v", tag="t") is False

    blocked_directory.parent.unlink()
    blocked_directory.parent.mkdir()
    try:
        assert recovering.set("k", b"v", tag="t")
        assert recovering.get("k") == b"v"
        assert recovering.healthy
    finally:
        recovering.close()

    messages = store_warnings(caplog)
    assert len(messages) == 2
    assert "available again" in messages[1]


def test_reopening_waits_for_the_reopen_delay(
    blocked_directory: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(store_module, "REOPEN_DELAY", 3600.0)
    waiting = Store(str(blocked_directory), size_limit_mb=16, expire=3600)
    assert waiting.get("k") is None

    blocked_directory.parent.unlink()
    blocked_directory.parent.mkdir()

    assert waiting.set("k", b"v", tag="t") is False
    assert not blocked_directory.exists()


def sqlite_file(directory: Path) -> Path:
    return directory / "cache.db"


def exercise(opened: Store) -> None:
    """Call every operation; each must answer, whatever the answer is."""
    assert opened.get("k") in (b"v", None)
    assert opened.set("k2", b"v", tag="t") in (True, False)
    assert opened.contains("k") in (True, False)
    assert opened.get_value("k3") in (1, None)
    assert opened.set_value("k3", 1) in (True, False)
    assert opened.clear() >= 0


def test_a_deleted_database_file_raises_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    opened = Store(str(directory), size_limit_mb=16, expire=3600)
    try:
        assert opened.set("k", b"v", tag="t")
        os.remove(sqlite_file(directory))

        for _ in range(3):
            exercise(opened)
    finally:
        opened.close()


def test_a_database_file_garbled_while_open_raises_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    opened = Store(str(directory), size_limit_mb=16, expire=3600)
    try:
        assert opened.set("k", b"v", tag="t")
        sqlite_file(directory).write_bytes(b"not an SQLite database" * 1000)

        for _ in range(3):
            exercise(opened)
    finally:
        opened.close()


def test_a_garbled_database_file_is_a_miss_with_one_warning(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(store_module, "REOPEN_DELAY", 0.0)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o700)
    sqlite_file(directory).write_bytes(b"not an SQLite database" * 1000)
    opened = Store(str(directory), size_limit_mb=16, expire=3600)

    for _ in range(5):
        assert opened.get("k") is None
        assert opened.set("k", b"v", tag="t") is False
        assert opened.contains("k") is False
        assert opened.clear() == 0

    opened.close()
    warnings = store_warnings(caplog)
    assert len(warnings) == 1
    assert "not a database" in warnings[0]


# Large bodies: handed out as their checked value files.

LARGE = 100_000  # a stream threshold above the 64 KiB kept inside SQLite


@pytest.fixture
def small_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "STREAM_THRESHOLD", LARGE)
    monkeypatch.setattr(store_module, "CHUNK_SIZE", 32 * 1024)


def large_body() -> bytes:
    return os.urandom(3 * LARGE + 7)


def value_files(directory: Path) -> List[Path]:
    return sorted(directory.rglob("*.val"))


def test_a_large_body_comes_as_its_file_in_chunks(
    store: Store, small_threshold: None
) -> None:
    body = large_body()
    assert store.set("big", body, tag="study-1")

    found = store.get_streamable("big")

    assert isinstance(found, StoredFile)
    try:
        assert found.length == len(body)
        chunks = list(found.chunks())
    finally:
        found.close()
    assert b"".join(chunks) == body
    assert max(len(chunk) for chunk in chunks) == store_module.CHUNK_SIZE
    assert store.get("big") == body  # read whole when asked so


def test_a_body_under_the_threshold_is_read_whole(
    store: Store, small_threshold: None
) -> None:
    body = os.urandom(LARGE)
    store.set("medium", body, tag="t")

    assert store.get_streamable("medium") == body


def test_a_large_body_is_never_kept_in_memory(
    tmp_path: Path, small_threshold: None
) -> None:
    opened = Store(str(tmp_path / "cache"), 16, 3600, memory_mb=64)
    try:
        opened.set("big", large_body(), tag="t")
        for _ in range(2):
            found = opened.get_streamable("big")
            assert isinstance(found, StoredFile)
            found.close()
    finally:
        opened.close()


def test_a_cut_large_entry_is_a_miss_never_a_file(
    tmp_path: Path, small_threshold: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    directory = tmp_path / "cache"
    opened = Store(str(directory), size_limit_mb=16, expire=3600)
    try:
        opened.set("big", large_body(), tag="t")
        (path,) = value_files(directory)
        os.truncate(path, path.stat().st_size - 1)

        assert opened.get_streamable("big") is None
        assert not opened.contains("big")
    finally:
        opened.close()
    assert len(store_warnings(caplog)) == 1
    assert "cache entry damaged" in store_warnings(caplog)[0]


def test_a_file_cut_while_it_is_read_raises_and_is_removed(
    tmp_path: Path, small_threshold: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    directory = tmp_path / "cache"
    opened = Store(str(directory), size_limit_mb=16, expire=3600)
    try:
        opened.set("big", large_body(), tag="t")
        found = opened.get_streamable("big")
        assert isinstance(found, StoredFile)
        (path,) = value_files(directory)
        os.truncate(path, LARGE)

        with pytest.raises(store_module.DamagedEntry):
            list(found.chunks())
        found.close()
        assert not opened.contains("big")
    finally:
        opened.close()
    assert len(store_warnings(caplog)) == 1


def test_an_open_file_outlives_the_removal_of_its_entry(
    store: Store, small_threshold: None
) -> None:
    body = large_body()
    store.set("big", body, tag="study-1")
    found = store.get_streamable("big")
    assert isinstance(found, StoredFile)

    store.evict("study-1")

    try:
        assert found.read() == body
    finally:
        found.close()
    assert store.get_streamable("big") is None


def test_a_large_entry_used_long_after_it_was_stored_is_stored_again(
    tmp_path: Path, small_threshold: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "REFRESH", -60.0)  # every hit refreshes
    directory = tmp_path / "cache"
    opened = Store(str(directory), size_limit_mb=16, expire=3600)
    body = large_body()
    try:
        opened.set("big", body, tag="t")
        before = value_files(directory)
        found = opened.get_streamable("big")
        assert isinstance(found, StoredFile)
        try:
            assert b"".join(found.chunks()) == body
        finally:
            found.close()
        after = value_files(directory)
        assert opened.get("big") == body
    finally:
        opened.close()
    assert len(before) == len(after) == 1
    assert before != after
