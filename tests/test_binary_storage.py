"""Opt-in storage of binary answers, and concurrent first requests."""

from __future__ import annotations

import http.client
import io
import math
import os
import threading
import time
import zipfile
from pathlib import Path

from orthanc_cache_plugin.store import STREAM_THRESHOLD
from tests.support.dicom_data import generate_ct_study
from tests.support.orthanc_server import MakeOrthanc, OrthancServer, Response
from tests.support.plugin_log import decisions, wait_for_settled_version

DAMAGED = "cache entry damaged"
# Headers that go with a representation; Date and Expires follow the clock, the
# others (Connection, Keep-Alive, Content-Length) with how the body is sent.
REPRESENTATION_HEADERS = (
    "Content-Type",
    "Content-Disposition",
    "ETag",
    "Last-Modified",
    "Cache-Control",
    "Vary",
)


def _study(server: OrthancServer, tmp_path: Path, seed: int) -> tuple[str, str]:
    files = generate_ct_study(tmp_path, slices=4, rows=32, cols=32, seed=seed)
    answers = [server.upload(path) for path in files]
    return str(answers[0]["ParentStudy"]), str(answers[0]["ID"])


def _members(answer: Response) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(answer.body)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_archive_is_stored_only_when_binary_storage_is_on(
    make_orthanc: MakeOrthanc, tmp_path: Path
) -> None:
    off = make_orthanc(cached=True, CachePlugin={"WarmUp": False})
    on = make_orthanc(cached=True, CachePlugin={"WarmUp": False, "StoreBinary": True})
    study, _ = _study(off, tmp_path / "off", seed=401)
    _study(on, tmp_path / "on", seed=401)
    uri = "/studies/%s/archive" % study
    for server in (off, on):
        wait_for_settled_version(server, "/studies/%s/shared-tags" % study)

    off_answers = [off.request("GET", uri) for _ in range(2)]
    on_answers = [on.request("GET", uri) for _ in range(2)]

    assert decisions(off, "stored", uri) == 0
    assert decisions(off, "miss", uri) == 2
    assert decisions(on, "miss", uri) == 1
    assert decisions(on, "hit", uri) == 1
    assert on_answers[0].body == on_answers[1].body
    assert _members(on_answers[1]) == _members(off_answers[0])
    for answer in on_answers:
        assert answer.header("Content-Type") == "application/zip"
        assert answer.header("Content-Disposition") == 'filename="%s.zip"' % study
        assert str(answer.header("ETag")).startswith('W/"')


def test_answer_over_the_entry_size_cap_is_not_stored(
    make_orthanc: MakeOrthanc, tmp_path: Path
) -> None:
    server = make_orthanc(
        cached=True,
        CachePlugin={"WarmUp": False, "StoreBinary": True, "MaximumEntrySize": 1},
    )
    files = generate_ct_study(tmp_path, slices=24, rows=256, cols=256, seed=402)
    answers = [server.upload(path) for path in files]
    study = answers[0]["ParentStudy"]
    uri = "/studies/%s/archive" % study
    wait_for_settled_version(server, "/studies/%s/shared-tags" % study)

    archives = [server.request("GET", uri) for _ in range(2)]

    assert [archive.status for archive in archives] == [200, 200]
    assert len(archives[0].body) > 1024 * 1024
    assert decisions(server, "miss", uri) == 2
    assert "over MaximumEntrySize" in server.log_text()


def test_sixteen_concurrent_first_requests_compute_once(
    make_orthanc: MakeOrthanc, tmp_path: Path
) -> None:
    server = make_orthanc(cached=True, CachePlugin={"WarmUp": False})
    study, _ = _study(server, tmp_path, seed=403)
    uri = "/studies/%s/instances-tags" % study
    wait_for_settled_version(server, "/studies/%s/shared-tags" % study)
    gate = threading.Barrier(16)
    answers: list[Response] = []

    def ask() -> None:
        gate.wait(10)
        answers.append(server.request("GET", uri))

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert [answer.status for answer in answers] == [200] * 16
    assert len({answer.body for answer in answers}) == 1
    assert decisions(server, "miss", uri) == 1
    assert decisions(server, "hit", uri) + decisions(server, "shared", uri) == 15


# Large stored archives: streamed from their file where the plugin API can.


def _streams(server: OrthancServer) -> bool:
    """Whether the server's Python plugin can stream (5.0 and later)."""
    version = str(server.get_json("/plugins/python")["Version"])
    return int(version.split(".")[0]) >= 5


def _large_study(
    servers: tuple[OrthancServer, ...], tmp_path: Path, slices: int
) -> str:
    # Incompressible 512x512 16-bit slices: 0.5 MB each in the archive too.
    files = generate_ct_study(tmp_path, slices=slices, seed=404, noise=True)
    study = ""
    for server in servers:
        answers = [server.upload(path) for path in files]
        study = str(answers[0]["ParentStudy"])
    for server in servers:
        wait_for_settled_version(server, "/studies/%s/shared-tags" % study)
    # A renewal's Last-Modified is rounded up to the next second, and an
    # answer's is capped at the present: past that second, both answers of a
    # test give the same one.
    time.sleep(math.ceil(time.time()) - time.time() + 0.05)
    return study


def _large_value_files(server: OrthancServer) -> list[Path]:
    found = (server.workdir / "cache").rglob("*.val")
    return [path for path in found if path.stat().st_size > STREAM_THRESHOLD]


def test_a_large_stored_archive_is_answered_whole_with_the_same_headers(
    make_orthanc: MakeOrthanc, tmp_path: Path
) -> None:
    plain = make_orthanc()
    cached = make_orthanc(
        cached=True, CachePlugin={"WarmUp": False, "StoreBinary": True}
    )
    study = _large_study((plain, cached), tmp_path, slices=40)
    uri = "/studies/%s/archive" % study

    reference = plain.request("GET", uri)
    miss, hit = cached.request("GET", uri), cached.request("GET", uri)

    assert decisions(cached, "miss", uri) == 1
    assert decisions(cached, "hit", uri) == 1
    assert len(hit.body) > STREAM_THRESHOLD
    assert hit.body == miss.body  # the stored bytes, unchanged
    assert _members(hit) == _members(reference)
    for name in REPRESENTATION_HEADERS:
        assert hit.header_list(name) == miss.header_list(name), name
    for name in ("Content-Type", "Content-Disposition"):
        assert hit.header_list(name) == reference.header_list(name), name
    assert hit.header_list("Content-Length") == [str(len(hit.body))]
    # Orthanc closes the connection after a streamed answer, which has no
    # length of its own; an answer from memory keeps it open.
    streamed = hit.header("Connection") == "close"
    assert streamed == _streams(cached)


def test_a_large_stored_archive_cut_on_disk_is_a_miss(
    make_orthanc: MakeOrthanc, tmp_path: Path
) -> None:
    cached = make_orthanc(
        cached=True, CachePlugin={"WarmUp": False, "StoreBinary": True}
    )
    study = _large_study((cached,), tmp_path, slices=40)
    uri = "/studies/%s/archive" % study
    first = cached.request("GET", uri)
    files = _large_value_files(cached)
    for path in files:
        os.truncate(path, path.stat().st_size - 1)

    second = cached.request("GET", uri)

    assert len(files) == 1
    assert second.status == 200
    assert _members(second) == _members(first)
    assert decisions(cached, "miss", uri) == 2
    assert cached.log_text().count(DAMAGED) == 1


def test_a_large_stored_archive_cut_while_it_is_sent_is_never_whole(
    make_orthanc: MakeOrthanc, tmp_path: Path
) -> None:
    cached = make_orthanc(
        cached=True, CachePlugin={"WarmUp": False, "StoreBinary": True}
    )
    # Larger than what the sockets buffer, so that the cut comes mid-answer.
    study = _large_study((cached,), tmp_path, slices=100)
    uri = "/studies/%s/archive" % study
    whole = cached.request("GET", uri)
    files = _large_value_files(cached)

    connection = http.client.HTTPConnection("127.0.0.1", cached.http_port, timeout=60)
    try:
        connection.request("GET", uri)
        answer = connection.getresponse()
        time.sleep(1.0)  # the plugin fills the socket buffers, then waits
        for path in files:
            os.truncate(path, 1024 * 1024)
        try:
            received = answer.read()
        except http.client.IncompleteRead as error:
            received = error.partial
    finally:
        connection.close()
    again = cached.request("GET", uri)

    assert len(files) == 1
    assert answer.status == 200
    assert answer.getheader("Content-Length") == str(len(whole.body))
    if _streams(cached):
        # Too late to change the status: the client sees fewer bytes than the
        # announced length, and the damaged entry is gone.
        assert len(received) < len(whole.body)
        assert cached.log_text().count(DAMAGED) == 1
        assert decisions(cached, "miss", uri) == 2
    else:
        # Read whole before the answer started: the cut came too late.
        assert received == whole.body
    assert _members(again) == _members(whole)
