"""Opt-in storage of binary answers, and concurrent first requests."""

from __future__ import annotations

import io
import threading
import zipfile
from pathlib import Path

from tests.support.dicom_data import generate_ct_study
from tests.support.orthanc_server import MakeOrthanc, OrthancServer, Response
from tests.support.plugin_log import decisions, wait_for_settled_version


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
