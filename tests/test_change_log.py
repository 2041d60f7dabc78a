"""The change-log follower, on a scripted log (no Orthanc: see
test_shared_database.py for real nodes on PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

from orthanc_cache_plugin.change_log import (
    ChangeLogFollower,
    Snapshot,
    read_snapshot,
)
from orthanc_cache_plugin.store import Store
from orthanc_cache_plugin.versions import Versions

PARENTS = {
    "/instances/i1": {"ParentSeries": "s1"},
    "/instances/i2": {"ParentSeries": "s1"},
    "/series/s1": {"ParentStudy": "st1"},
    "/studies/st1": {"ParentPatient": "p1"},
}


class ScriptedOrthanc:
    """What the follower reads: a change log, an instance count, resources."""

    def __init__(self) -> None:
        self.changes: list[dict[str, Any]] = []
        self.instances = 0
        self.asked: list[str] = []

    def log(self, change_type: str, resource_type: str, resource_id: str) -> None:
        seq = len(self.changes) + 1
        self.changes.append(
            {
                "Seq": seq,
                "ChangeType": change_type,
                "ResourceType": resource_type,
                "ID": resource_id,
            }
        )
        if change_type == "NewInstance":
            self.instances += 1

    def lookup(self, uri: str) -> Optional[dict[str, Any]]:
        self.asked.append(uri)
        last = self.changes[-1]["Seq"] if self.changes else 0
        if uri == "/changes?last":
            return {"Last": last}
        if uri == "/statistics":
            return {"CountInstances": self.instances}
        if uri.startswith("/changes?since="):
            since, limit = (int(part.split("=")[1]) for part in uri[9:].split("&"))
            page = [c for c in self.changes if c["Seq"] > since][:limit]
            done = not page or page[-1]["Seq"] == last
            return {"Changes": page, "Done": done, "Last": last}
        return PARENTS.get(uri)


@pytest.fixture
def versions(tmp_path: Path) -> Iterator[Versions]:
    store = Store(str(tmp_path / "cache"), size_limit_mb=16, expire=3600)
    yield Versions(store, lambda uri: PARENTS.get(uri))
    store.close()


def follower_of(orthanc: ScriptedOrthanc, versions: Versions) -> ChangeLogFollower:
    stable: list[tuple[str, str]] = []
    follower = ChangeLogFollower(
        orthanc.lookup, versions, lambda *job: stable.append(job), 0.2
    )
    follower._seq = 0  # as start(0) does, without its thread
    return follower


def test_a_logged_new_instance_renews_it_and_every_ancestor(
    versions: Versions,
) -> None:
    orthanc = ScriptedOrthanc()
    follower = follower_of(orthanc, versions)
    before = {r: versions.generation(r) for r in ("i1", "s1", "st1", "p1")}

    orthanc.log("NewInstance", "Instance", "i1")
    follower.poll()

    for resource, generation in before.items():
        assert versions.generation(resource) != generation, resource


def test_a_count_lower_than_the_log_explains_invalidates_everything(
    versions: Versions,
) -> None:
    orthanc = ScriptedOrthanc()
    follower = follower_of(orthanc, versions)
    orthanc.log("NewInstance", "Instance", "i1")
    orthanc.log("NewInstance", "Instance", "i2")
    follower.poll()
    epoch = versions.epoch

    orthanc.instances -= 1  # deleted through another node: no log entry
    follower.poll()

    assert versions.epoch != epoch
    assert versions.epoch_at > 0


def test_new_instances_alone_keep_the_epoch(versions: Versions) -> None:
    orthanc = ScriptedOrthanc()
    follower = follower_of(orthanc, versions)
    follower.poll()
    epoch = versions.epoch

    for _ in range(3):
        orthanc.log("NewInstance", "Instance", "i1")
        follower.poll()

    assert versions.epoch == epoch


def test_entries_are_read_in_pages_up_to_the_last(versions: Versions) -> None:
    orthanc = ScriptedOrthanc()
    follower = follower_of(orthanc, versions)
    for _ in range(2500):
        orthanc.log("UpdatedMetadata", "Study", "st1")

    follower.poll()

    pages = [uri for uri in orthanc.asked if uri.startswith("/changes?since=")]
    assert pages == [
        "/changes?since=0&limit=1000",
        "/changes?since=1000&limit=1000",
        "/changes?since=2000&limit=1000",
    ]
    assert follower._seq == 2500


def test_an_unknown_position_invalidates_everything_once(versions: Versions) -> None:
    orthanc = ScriptedOrthanc()
    orthanc.log("UpdatedMetadata", "Study", "st1")
    follower = follower_of(orthanc, versions)
    follower._seq = None
    epoch = versions.epoch

    follower.poll()
    after_first = versions.epoch
    follower.poll()

    assert after_first != epoch
    assert versions.epoch == after_first
    assert follower._seq == 1


def test_an_unreadable_log_is_one_warning(
    versions: Versions, caplog: pytest.LogCaptureFixture
) -> None:
    follower = ChangeLogFollower(lambda uri: None, versions, lambda *job: None, 0.2)
    follower._seq = 0

    for _ in range(3):
        follower.poll()

    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert [r.getMessage() for r in warnings] == [
        "change log or instance count unreadable"
    ]


def test_logged_stable_changes_are_warmed(versions: Versions) -> None:
    orthanc = ScriptedOrthanc()
    stable: list[tuple[str, str]] = []
    follower = ChangeLogFollower(
        orthanc.lookup, versions, lambda *job: stable.append(job), 0.2
    )
    follower._seq = 0
    orthanc.log("StableStudy", "Study", "st1")
    orthanc.log("NewInstance", "Instance", "i1")

    follower.poll()

    assert stable == [("studies", "st1")]


def test_a_deletion_before_the_first_read_is_compared_with_the_start(
    versions: Versions,
) -> None:
    orthanc = ScriptedOrthanc()
    orthanc.log("NewInstance", "Instance", "i1")
    orthanc.log("NewInstance", "Instance", "i2")
    follower = follower_of(orthanc, versions)
    follower._snapshot = read_snapshot(orthanc.lookup)  # as start() is given
    follower._seq = 2
    epoch = versions.epoch

    orthanc.instances -= 1
    follower.poll()

    assert versions.epoch != epoch


def test_finish_applies_what_was_logged_after_the_last_read(
    versions: Versions,
) -> None:
    orthanc = ScriptedOrthanc()
    follower = follower_of(orthanc, versions)
    follower.poll()
    before = versions.generation("st1")

    orthanc.log("UpdatedAttachment", "Study", "st1")
    follower.finish(Snapshot(seq=1, instances=orthanc.instances))

    assert versions.generation("st1") != before


def test_a_snapshot_is_not_taken_while_the_log_moves() -> None:
    orthanc = ScriptedOrthanc()

    def busy(uri: str) -> Optional[dict[str, Any]]:
        if uri == "/statistics":
            orthanc.log("NewInstance", "Instance", "i1")  # between the reads
        return orthanc.lookup(uri)

    assert read_snapshot(busy, attempts=3) is None
    assert read_snapshot(orthanc.lookup) == Snapshot(seq=3, instances=3)
