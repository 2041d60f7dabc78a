"""The plugin's REST surface under /cache-plugin/ and its Orthanc metrics."""

from __future__ import annotations

import re
import time
from pathlib import Path

from tests.support.dicom_data import generate_ct_study
from tests.support.orthanc_server import MakeOrthanc, OrthancServer
from tests.support.plugin_log import decisions, wait_for_settled_version


def _study(server: OrthancServer, tmp_path: Path, seed: int) -> str:
    files = generate_ct_study(tmp_path, slices=3, rows=16, cols=16, seed=seed)
    answers = [server.upload(path) for path in files]
    return str(answers[0]["ParentStudy"])


def test_statistics_count_decisions_and_show_in_metrics(
    make_orthanc: MakeOrthanc, tmp_path: Path
) -> None:
    server = make_orthanc(cached=True, CachePlugin={"WarmUp": False})
    study = _study(server, tmp_path, seed=501)
    uri = "/studies/%s/shared-tags" % study
    wait_for_settled_version(server, uri)
    for _ in range(3):
        server.request("GET", uri)
    time.sleep(1.1)  # metrics are published at most once a second
    server.request("GET", uri)

    report = server.get_json("/cache-plugin/statistics")
    metrics = server.request("GET", "/tools/metrics-prometheus").body.decode()

    assert report["hits"] >= 3
    assert report["misses"] >= 1
    assert report["entries"] >= 1
    assert report["bytes"] > 0
    assert 0 < report["hit_ratio"] <= 1
    assert re.search(r"^orthanc_cache_plugin_hits \d+", metrics, re.MULTILINE)
    assert "orthanc_cache_plugin_hit_ratio" in metrics


def test_purge_of_one_resource_and_of_everything(
    make_orthanc: MakeOrthanc, tmp_path: Path
) -> None:
    server = make_orthanc(cached=True, CachePlugin={"WarmUp": False})
    study = _study(server, tmp_path, seed=502)
    uri = "/studies/%s/instances-tags" % study
    wait_for_settled_version(server, uri)
    before = decisions(server, "miss", uri)

    purged = server.request("DELETE", "/cache-plugin/cache/%s" % study)
    server.request("GET", uri)
    everything = server.request("DELETE", "/cache-plugin/cache")
    server.request("GET", uri)

    assert purged.status == 200 and purged.json()["Removed"] >= 1
    assert everything.status == 200
    assert decisions(server, "miss", uri) == before + 2
    assert server.request("GET", "/cache-plugin/cache").status == 405
    assert server.request("POST", "/cache-plugin/statistics").status == 405


def test_operations_need_the_same_credentials_as_orthanc(
    make_orthanc: MakeOrthanc,
) -> None:
    server = make_orthanc(
        cached=True, AuthenticationEnabled=True, RegisteredUsers={"alice": "secret"}
    )

    anonymous = server.request("GET", "/cache-plugin/statistics")
    purge = server.request("DELETE", "/cache-plugin/cache")

    assert anonymous.status == 401
    assert purge.status == 401
