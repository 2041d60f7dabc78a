"""The real-Orthanc test harness works: servers start, data loads, both agree."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.support.dicom_data import ct_study_uids, orthanc_id
from tests.support.orthanc_server import MakeOrthanc, OrthancServer

COUNT_KEYS = ("CountPatients", "CountStudies", "CountSeries", "CountInstances")


def _counts(server: OrthancServer) -> dict[str, int]:
    statistics = server.get_json("/statistics")
    return {key: statistics[key] for key in COUNT_KEYS}


def test_plain_server_answers_system(plain_orthanc: OrthancServer) -> None:
    response = plain_orthanc.request("GET", "/system")

    assert response.status == 200
    assert response.json()["Name"] == "plain"
    assert response.header("CONTENT-TYPE") == "application/json; charset=utf-8"


def test_plain_server_holds_every_test_file(
    plain_orthanc: OrthancServer, test_data: list[Path]
) -> None:
    assert _counts(plain_orthanc)["CountInstances"] == len(test_data)


def test_both_servers_hold_the_same_data(
    plain_orthanc: OrthancServer, cached_orthanc: OrthancServer
) -> None:
    assert _counts(cached_orthanc) == _counts(plain_orthanc)


def test_synthetic_study_has_predictable_id(plain_orthanc: OrthancServer) -> None:
    study_id = orthanc_id(*ct_study_uids(seed=0))

    study = plain_orthanc.get_json(f"/studies/{study_id}")

    assert len(plain_orthanc.get_json(f"/studies/{study_id}/instances")) == 40
    assert study["PatientMainDicomTags"]["PatientID"] == "SYNTH-CT-0"


def test_uploading_again_is_reported_as_already_stored(
    plain_orthanc: OrthancServer, test_data: list[Path]
) -> None:
    answer = plain_orthanc.upload(test_data[0])

    assert answer["Status"] == "AlreadyStored"


def test_requests_from_threads_reach_the_server(
    plain_orthanc: OrthancServer,
) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(
            pool.map(lambda _: plain_orthanc.request("GET", "/system").status, range(8))
        )

    assert statuses == [200] * 8


def test_restart_keeps_storage_and_port(make_orthanc: MakeOrthanc) -> None:
    server = make_orthanc(load_data=True)
    before = _counts(server)
    url = server.url

    server.restart()

    assert server.url == url
    assert _counts(server) == before
    assert "Orthanc has started" in server.log_text()


def test_stop_is_clean_without_plugins(make_orthanc: MakeOrthanc) -> None:
    server = make_orthanc()

    server.stop()

    assert not server.is_running()
    assert not server.hung_on_stop


def test_jpeg2000_sample_cannot_be_decoded(
    plain_orthanc: OrthancServer, test_data: list[Path]
) -> None:
    jpeg2000 = next(path for path in test_data if path.name == "JPEG2000.dcm")
    instance_id = plain_orthanc.upload(jpeg2000)["ID"]

    response = plain_orthanc.request("GET", f"/instances/{instance_id}/preview")

    assert response.status == 415
