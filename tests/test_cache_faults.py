"""Cache faults and permissions, against real Orthanc servers.

Each fault is injected under a running Orthanc with the plugin while a scripted
run of requests goes on before, during and after it. Every answer must equal
plain Orthanc's (0 failed requests), the log must show one warning per incident,
and the store must come back by itself once the fault is gone: a later request
is a hit again. Mounts are tmpfs inside the test's temporary folder, unmounted
at teardown.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, Optional

import pydicom
import pytest

from orthanc_cache_plugin.store import CHECK_PERIOD
from tests.support.dicom_data import generate_ct_study
from tests.support.orthanc_runtime import server_views
from tests.support.orthanc_server import MakeOrthanc, OrthancServer, Response
from tests.support.plugin_log import decisions, wait_for_settled_version
from tests.support.route_requests import without_details

UNAVAILABLE = "cache store unavailable"
AVAILABLE_AGAIN = "cache store available again"
DAMAGED = "cache entry damaged"
RUN = 48  # requests per phase of a scripted run
RECOVERY_TRIES = 60  # seconds to wait for a hit once the fault is gone


# Data and references.


def _upload(server: OrthancServer, files: list[Path]) -> tuple[str, list[str]]:
    answers = [server.upload(path) for path in files]
    return str(answers[0]["ParentStudy"]), [str(a["ID"]) for a in answers]


def _study_uris(study: str, instances: list[str]) -> list[str]:
    uris = ["/studies/%s/%s" % (study, route) for route in STUDY_ROUTES]
    uris += ["/studies/%s/shared-tags?short" % study]
    uris += ["/instances/%s/tags" % instance for instance in instances[:4]]
    return uris


STUDY_ROUTES = ("shared-tags", "instances-tags")


class Scripted:
    """Plain Orthanc and Orthanc with the plugin, holding the same study."""

    def __init__(
        self,
        plain: OrthancServer,
        cached: OrthancServer,
        uris: list[str],
    ) -> None:
        self.plain = plain
        self.cached = cached
        self.uris = uris
        self.references = {uri: plain.request("GET", uri) for uri in uris}
        self.answered = 0
        self.failures: list[str] = []

    def run(self, count: int = RUN, uris: Optional[list[str]] = None) -> int:
        """Send ``count`` requests over ``uris``; return how many were answered."""
        chosen = uris or self.uris
        for index in range(count):
            uri = chosen[index % len(chosen)]
            answer = self.cached.request("GET", uri)
            self.answered += 1
            if not _same(answer, self.references[uri]):
                self.failures.append("%s: %r" % (uri, answer))
        return count


def _same(answer: Response, reference: Response) -> bool:
    if answer.status != reference.status:
        return False
    if answer.header("Content-Type") == "application/zip":
        return _members(answer) == _members(reference)
    return answer.body == reference.body


def _members(answer: Response) -> dict[str, bytes]:
    # Archives carry the time they were made: compare what they hold.
    with zipfile.ZipFile(io.BytesIO(answer.body)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _scripted(
    make_orthanc: MakeOrthanc,
    tmp_path: Path,
    seed: int,
    directory: Path,
    slices: int = 6,
    size: int = 16,
    **options: object,
) -> Scripted:
    files = generate_ct_study(
        tmp_path / "data", slices, rows=size, cols=size, seed=seed
    )
    plain = make_orthanc()
    # MemorySize 0: these tests are about the disk store, which memory would hide.
    section = {"Directory": str(directory), "WarmUp": False, "MemorySize": 0}
    section.update(options)
    cached = make_orthanc(cached=True, CachePlugin=section)
    study, instances = _upload(plain, files)
    _upload(cached, files)
    uris = _study_uris(study, instances)
    wait_for_settled_version(cached, uris[0])
    return Scripted(plain, cached, uris)


# Log reading.


def _count(server: OrthancServer, text: str) -> int:
    return server.log_text().count(text)


def _hits(server: OrthancServer, uri: str) -> int:
    return decisions(server, "hit", uri)


def _wait_for_hit(server: OrthancServer, uri: str) -> bool:
    """Request ``uri`` until one answer is a hit (the store reopens lazily)."""
    for _ in range(RECOVERY_TRIES):
        before = _hits(server, uri)
        server.request("GET", uri)
        server.request("GET", uri)
        if _hits(server, uri) > before:
            return True
        time.sleep(1)
    return False


# Mounts, always unmounted.


@pytest.fixture
def mounts() -> Iterator[list[Path]]:
    mounted: list[Path] = []
    yield mounted
    for point in reversed(mounted):
        # Orthanc may still hold files there: detach lazily if busy.
        if subprocess.run(["umount", str(point)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(point)], check=True)


def _tmpfs(mounted: list[Path], point: Path, size: str) -> Path:
    point.mkdir(parents=True)
    options = "size=%s,mode=0700" % size
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], check=True
    )
    mounted.append(point)
    return point


def _remount(point: Path, options: str) -> None:
    subprocess.run(["mount", "-o", "remount," + options, str(point)], check=True)


def _bind_read_only(mounted: list[Path], point: Path) -> None:
    """Put a read-only bind mount over ``point``, wherever Orthanc sees it.

    The bind mount shows in the Debian 13 chroot too, but read only is a flag
    of each mount, which never propagates: every view is remounted. Unmounting
    the host's one unmounts the others.
    """
    subprocess.run(["mount", "--bind", str(point), str(point)], check=True)
    mounted.append(point)
    for view in server_views(point):
        _remount(view, "bind,ro")


def _writable(point: Path) -> list[bool]:
    """Whether each view Orthanc has of ``point`` can be written."""
    return [os.access(view, os.W_OK) for view in server_views(point)]


def _files_under(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


# Faults.


def test_missing_directory_is_created_owner_only_and_a_deleted_one_comes_back(
    make_orthanc: MakeOrthanc, tmp_path: Path
) -> None:
    directory = tmp_path / "missing" / "parents" / "cache"
    script = _scripted(make_orthanc, tmp_path, seed=601, directory=directory)
    server = script.cached

    script.run()
    created_mode = directory.stat().st_mode & 0o777
    hits_before = _hits(server, script.uris[0])
    shutil.rmtree(directory)
    time.sleep(CHECK_PERIOD + 0.1)  # the store looks at its file once a second
    during = script.run()
    recovered = _wait_for_hit(server, script.uris[0])
    script.run()

    assert created_mode == 0o700
    assert hits_before > 0
    assert during == RUN
    assert script.failures == []
    assert _count(server, UNAVAILABLE) == 1
    assert re.search(UNAVAILABLE + r".*cache\.db", server.log_text())
    assert recovered
    assert _count(server, AVAILABLE_AGAIN) == 1
    assert directory.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("when", ["at start", "while running"])
def test_read_only_directory_answers_uncached_and_recovers_when_writable(
    make_orthanc: MakeOrthanc, tmp_path: Path, mounts: list[Path], when: str
) -> None:
    # Remounting read only is refused while SQLite has its file open for
    # writing: while running, a read-only bind mount goes over the directory.
    directory = _tmpfs(mounts, tmp_path / "cache", "16m")
    if when == "at start":
        _remount(directory, "ro")
    script = _scripted(make_orthanc, tmp_path, seed=602, directory=directory, slices=40)
    server = script.cached
    small = [uri for uri in script.uris if uri != script.uris[1]]

    script.run(uris=small)
    if when == "while running":
        _bind_read_only(mounts, directory)
    writable_during = _writable(directory)
    during = script.run()
    unavailable_during = _count(server, UNAVAILABLE)
    if when == "at start":
        _remount(directory, "rw")
    else:
        subprocess.run(["umount", "-l", str(directory)], check=True)
        mounts.remove(directory)
    writable_after = _writable(directory)
    recovered = _wait_for_hit(server, script.uris[1])
    script.run()

    # The fault reached Orthanc: read only in every view (host, chroot), then not.
    assert len(writable_during) == len(server_views(directory))
    assert not any(writable_during)
    assert all(writable_after)
    assert during == RUN
    assert script.failures == []
    assert unavailable_during == 1
    assert _count(server, UNAVAILABLE) == 1
    assert recovered
    assert _count(server, AVAILABLE_AGAIN) == 1


def test_full_directory_answers_uncached_and_recovers_when_space_is_back(
    make_orthanc: MakeOrthanc, tmp_path: Path, mounts: list[Path]
) -> None:
    directory = _tmpfs(mounts, tmp_path / "cache", "2m")
    script = _scripted(
        make_orthanc,
        tmp_path,
        seed=603,
        directory=directory,
        slices=24,
        size=256,
        StoreBinary=True,
    )
    server = script.cached
    study = script.uris[0].split("/")[2]
    series = script.plain.get_json("/studies/%s" % study)["Series"][0]
    archives = ["/studies/%s/archive" % study, "/series/%s/archive" % series]
    script.references.update(
        {uri: script.plain.request("GET", uri) for uri in archives}
    )

    script.run()
    during = script.run(uris=archives + script.uris)
    full = _count(server, UNAVAILABLE)
    _remount(directory, "size=64m")
    recovered = _wait_for_hit(server, archives[0])
    script.run(uris=archives + script.uris)

    assert all(len(script.references[uri].body) > 1024 * 1024 for uri in archives)
    assert during == RUN
    assert script.failures == []
    assert full == 1
    assert re.search("No space left on device|disk is full", server.log_text())
    assert _count(server, UNAVAILABLE) == 1
    assert recovered
    assert _count(server, AVAILABLE_AGAIN) == 1


@pytest.mark.parametrize("damage", ["garbled", "deleted"])
def test_sqlite_file_damaged_while_running_is_a_miss_with_one_warning(
    make_orthanc: MakeOrthanc, tmp_path: Path, damage: str
) -> None:
    directory = tmp_path / "cache"
    script = _scripted(make_orthanc, tmp_path, seed=604, directory=directory)
    server = script.cached
    database = directory / "cache.db"

    script.run()
    if damage == "garbled":
        # In place: SQLite keeps its open file, now full of garbage. Pages it
        # holds in memory still answer; a new entry makes it read the file.
        with open(database, "r+b") as target:
            target.write(os.urandom(database.stat().st_size))
        server.request("GET", script.uris[0] + "?short")
    else:
        database.unlink()
    time.sleep(CHECK_PERIOD + 0.1)  # the store looks at its file once a second
    during = script.run()
    if damage == "garbled":
        # The operator removes what cannot be read: the fault is gone.
        database.unlink()
    recovered = _wait_for_hit(server, script.uris[0])
    script.run()

    assert during == RUN
    assert script.failures == []
    assert _count(server, UNAVAILABLE) == 1
    assert recovered
    assert _count(server, AVAILABLE_AGAIN) == 1


def _value_files(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.val"))


@pytest.mark.parametrize("damage", ["truncated", "deleted"])
def test_damaged_value_file_is_never_served(
    make_orthanc: MakeOrthanc, tmp_path: Path, damage: str
) -> None:
    directory = tmp_path / "cache"
    script = _scripted(make_orthanc, tmp_path, seed=605, directory=directory, slices=40)
    server = script.cached
    big = script.uris[1]  # the study's instances-tags, stored as a file

    script.run(count=2, uris=[big])
    files = _value_files(directory)
    for path in files:
        if damage == "truncated":
            os.truncate(path, path.stat().st_size // 2)
        else:
            path.unlink()
    hits = _hits(server, big)
    during = script.run()
    recovered = _wait_for_hit(server, big)

    assert len(script.references[big].body) > 64 * 1024
    assert len(files) == 1
    assert _hits(server, big) > hits
    assert during == RUN
    assert script.failures == []
    assert _count(server, UNAVAILABLE) == 0
    assert _count(server, DAMAGED) == (1 if damage == "truncated" else 0)
    assert recovered


# Two Orthanc servers, one cache directory.


def test_two_servers_on_one_directory_each_answer_their_own_data(
    make_orthanc: MakeOrthanc, tmp_path: Path
) -> None:
    shared = tmp_path / "shared-cache"
    script = _scripted(make_orthanc, tmp_path, seed=606, directory=shared)
    first = script.cached
    second = make_orthanc(
        cached=True,
        CachePlugin={"Directory": str(shared), "WarmUp": False, "MemorySize": 0},
    )
    files = sorted((tmp_path / "data").glob("*.dcm"))
    _, instances = _upload(second, files)
    wait_for_settled_version(second, script.uris[0])
    other = Scripted(script.plain, second, script.uris)

    for _ in range(2):
        script.run(count=RUN // 2)
        other.run(count=RUN // 2)
    # A change on the first server only: its answers change, not the second's.
    deleted = instances[-1]
    assert first.request("DELETE", "/instances/%s" % deleted).status == 200
    assert script.plain.request("DELETE", "/instances/%s" % deleted).status == 200
    changed = Scripted(script.plain, first, script.uris)
    wait_for_settled_version(first, script.uris[0])
    for _ in range(2):
        changed.run(count=RUN // 2)
        other.run(count=RUN // 2)

    assert script.answered + other.answered + changed.answered == 4 * RUN
    assert script.failures == other.failures == changed.failures == []
    assert any(
        changed.references[uri].body != other.references[uri].body
        for uri in script.uris
    )
    for server in (first, second):
        assert _count(server, UNAVAILABLE) == 0
        assert _hits(server, script.uris[0]) > 0


def _variant(source: Path, target: Path, description: str) -> Path:
    # Same UIDs (same Orthanc ids), different content.
    dataset = pydicom.dcmread(str(source))
    dataset.StudyDescription = description
    target.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(str(target))
    return target


def _middle_of_a_second() -> None:
    # Not its start: there, Orthanc's clock (time(2), which the kernel updates
    # at each tick) can still tell the previous second for a few milliseconds
    # (seen on both runtimes: two uploads 1 ms apart, two LastUpdate seconds).
    time.sleep((1.5 - time.time() % 1) % 1)


SAME_SECOND_TRIES = 3


def _one_study_in_the_same_second(
    servers: list[OrthancServer], folder: Path
) -> tuple[str, list[bytes]]:
    """Upload one study, other content on each server, within one second.

    Return the study and each server's LastUpdate of it. Should a loaded
    machine let the uploads straddle two seconds, a new study is tried (the
    same on both servers, whose change logs stay alike).
    """
    for attempt in range(SAME_SECOND_TRIES):
        seed = 607 + attempt
        source = generate_ct_study(folder / str(seed), 1, rows=16, cols=16, seed=seed)
        files = [
            _variant(source[0], folder / name / source[0].name, description)
            for name, description in (("a", "FIRST DATABASE"), ("b", "SECOND DATABASE"))
        ]
        _middle_of_a_second()
        with ThreadPoolExecutor(len(servers)) as pool:
            uploads = [pool.submit(_upload, s, [f]) for s, f in zip(servers, files)]
            studies = [upload.result()[0] for upload in uploads]
        assert studies[0] == studies[1]
        uri = "/studies/%s/metadata/LastUpdate" % studies[0]
        stamps = [server.request("GET", uri).body for server in servers]
        if stamps[0] == stamps[1]:
            break
    return studies[0], stamps


def test_entries_of_another_orthanc_database_are_never_used(
    make_orthanc: MakeOrthanc, tmp_path: Path
) -> None:
    # Two databases hold the same ids with different content, uploaded in the
    # same second: same LastUpdate. Used one after the other on one cache
    # directory, the second inherits the first's versions (its change log
    # looks the same); only the database identity tells their entries apart.
    shared = tmp_path / "shared-cache"
    servers = [
        make_orthanc(
            cached=True,
            CachePlugin={"Directory": str(shared), "WarmUp": False, "MemorySize": 0},
        )
        for _ in range(2)
    ]
    study, stamps = _one_study_in_the_same_second(servers, tmp_path / "data")
    uri = "/studies/%s/shared-tags" % study
    time.sleep(4)  # both reach the same change log: stable events included

    first, second = servers
    second.stop()
    first.stop()
    first.start()
    own = first.request("GET", uri)
    first.stop()
    second.start()
    answers = [second.request("GET", uri) for _ in range(2)]

    assert stamps[0] == stamps[1]
    assert b"FIRST DATABASE" in own.body
    for answer in answers:
        assert answer.status == 200
        assert b"SECOND DATABASE" in answer.body
    assert _hits(second, uri) == 1  # its own entry, stored by the first answer


# Permissions.


def test_value_folders_are_owner_only(
    make_orthanc: MakeOrthanc, tmp_path: Path
) -> None:
    directory = tmp_path / "cache"
    script = _scripted(make_orthanc, tmp_path, seed=608, directory=directory, slices=40)

    script.run(count=4)
    folders = [path for path in directory.rglob("*") if path.is_dir()]

    assert script.failures == []
    assert _value_files(directory)
    assert folders
    for folder in [directory, *folders]:
        assert folder.stat().st_mode & 0o777 == 0o700, folder


HOSTILE_IDS = (
    "..%2F..%2F..%2Ftmp%2Fcache-plugin-escape",
    "..%2F..%2Fcache.db",
    "%2E%2E",
    "x" * 4000,
    "%00%0A..%5C..%5Cescape",
    "..%252F..%252Fescape",
)


def test_no_request_chooses_where_anything_is_written(
    make_orthanc: MakeOrthanc, tmp_path: Path
) -> None:
    directory = tmp_path / "cache"
    script = _scripted(make_orthanc, tmp_path, seed=609, directory=directory)
    server = script.cached
    script.run(count=len(script.uris))
    outside = {
        folder: _files_under(folder)
        # Not all of /tmp: other programs write there while this runs.
        for folder in (tmp_path, server.workdir)
    }
    outside_cache = _files_under(tmp_path) - {
        str(Path("cache") / name) for name in _files_under(directory)
    }

    answers = []
    for hostile in HOSTILE_IDS:
        for route in (
            "studies/%s/shared-tags",
            "instances/%s/tags",
            "studies/%s/archive",
        ):
            path = "/" + route % hostile
            answers.append(
                (server.request("GET", path), script.plain.request("GET", path))
            )
    after = {folder: _files_under(folder) for folder in outside}
    after_outside_cache = _files_under(tmp_path) - {
        str(Path("cache") / name) for name in _files_under(directory)
    }

    for mine, plain in answers:
        assert mine.status == plain.status
        # Byte for byte, but for the "Details" that Orthanc 1.12 adds to some
        # errors and the plugin cannot repeat (test_transparency pins it).
        assert mine.body == without_details(plain.body)
    assert after_outside_cache == outside_cache
    assert after[server.workdir] - outside[server.workdir] == set()
    assert not (Path("/tmp") / "cache-plugin-escape").exists()
    for name in _files_under(directory):
        assert re.fullmatch(
            r"cache\.db(-wal|-shm)?|[0-9a-f]{2}(/[0-9a-f]{2}(/[0-9a-f]{28}\.val)?)?",
            name,
        ), name


COLLIDING = (
    # Naively joined, each pair gives one string: the query's key or value
    # holds the separator of the next field.
    ("shared-tags?simplify%3D1", "shared-tags?simplify=1"),
    ("shared-tags?x=a%26short", "shared-tags?x=a&short"),
    ("instances-tags?short%26", "instances-tags?short&"),
)


@pytest.mark.parametrize(("one", "other"), COLLIDING)
def test_keys_cannot_be_steered_into_another_entry(
    make_orthanc: MakeOrthanc, tmp_path: Path, one: str, other: str
) -> None:
    script = _scripted(make_orthanc, tmp_path, seed=610, directory=tmp_path / "cache")
    study = script.uris[0].split("/")[2]
    pair = ["/studies/%s/%s" % (study, suffix) for suffix in (one, other)]
    script.references.update({uri: script.plain.request("GET", uri) for uri in pair})
    with_query = r"cache-plugin: %%s /studies/%s/[a-z-]+\?" % study

    script.run(count=6, uris=pair)
    log = script.cached.log_text()

    assert script.references[pair[0]].body != script.references[pair[1]].body
    assert script.failures == []
    assert len(re.findall(with_query % "stored", log)) == 2
    assert len(re.findall(with_query % "hit", log)) == 4
