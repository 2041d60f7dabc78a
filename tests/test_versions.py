"""Generations of resources, as request threads and the change thread see them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orthanc_cache_plugin.store import Store
from orthanc_cache_plugin.versions import Versions


def test_a_change_during_a_first_read_is_not_forgotten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A request thread reads a generation from the store (other threads run
    # meanwhile: SQLite releases the GIL) while the change thread gives the
    # resource a new one. The value read must not replace the new one in
    # memory, or the resource's old entries would be answered again.
    store = Store(str(tmp_path / "cache"), 16, 3600)
    earlier = Versions(store, lambda uri: None)
    earlier.bump("study")
    assert earlier.flush()
    before = earlier.generation("study")
    versions = Versions(store, lambda uri: None)  # after a restart: nothing in memory
    read = store.get_value

    def read_during_a_change(key: str) -> Any:
        value = read(key)
        if key == "gen:study":
            versions.bump("study")
        return value

    monkeypatch.setattr(store, "get_value", read_during_a_change)
    during = versions.generation("study")
    monkeypatch.setattr(store, "get_value", read)
    after = versions.generation("study")
    assert versions.flush()

    assert during == before  # that request began before the change
    assert after != before
    assert after == tuple(read("gen:study"))  # the change's, as written
