"""Variants derived from the full answer are Orthanc's own bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orthanc_cache_plugin.json_variants import derive, styled_json
from tests.support.dicom_data import generate_ct_study
from tests.support.orthanc_server import MakeOrthanc, OrthancServer
from tests.support.plugin_log import decisions, wait_for_log

ROUTES_BY_LEVEL = {
    "studies": ("instances-tags", "shared-tags"),
    "series": ("instances-tags", "shared-tags"),
    "instances": ("tags",),
}


def test_styled_json_writes_orthancs_bytes(plain_orthanc: OrthancServer) -> None:
    checked = 0
    for level, routes in ROUTES_BY_LEVEL.items():
        for resource_id in plain_orthanc.get_json("/" + level):
            for route in routes:
                for query in ("", "?short", "?simplify"):
                    uri = "/%s/%s/%s%s" % (level, resource_id, route, query)
                    body = plain_orthanc.request("GET", uri).body
                    assert styled_json(json.loads(body)).encode() == body, uri
                    checked += 1
    assert checked > 100


@pytest.mark.parametrize("variant", ["short", "simplify"])
def test_derived_variants_equal_orthancs_answers(
    plain_orthanc: OrthancServer, variant: str
) -> None:
    for level, routes in ROUTES_BY_LEVEL.items():
        for resource_id in plain_orthanc.get_json("/" + level):
            for route in routes:
                uri = "/%s/%s/%s" % (level, resource_id, route)
                full = plain_orthanc.request("GET", uri).body
                expected = plain_orthanc.request("GET", uri + "?" + variant).body
                assert derive(route, full, variant) == expected, uri


def test_unknown_tag_type_is_left_to_orthanc() -> None:
    full = json.dumps(
        {"0010,0010": {"Name": "PatientName", "Type": "Binary", "Value": "AAE="}}
    ).encode()

    assert derive("shared-tags", full, "short") is None
    assert derive("archive", b"{}", "short") is None


def test_warm_up_stores_variants_from_one_full_answer(
    make_orthanc: MakeOrthanc, tmp_path: Path
) -> None:
    routes = [
        "shared-tags",
        "instances-tags",
        "instances-tags?short",
        "shared-tags?simplify",
    ]
    server = make_orthanc(
        cached=True, StableAge=1, CachePlugin={"WarmUpRoutes": routes}
    )
    files = generate_ct_study(tmp_path, slices=4, rows=16, cols=16, seed=601)
    answers = [server.upload(path) for path in files]
    study = answers[0]["ParentStudy"]
    wait_for_log(server, "warmed studies %s" % study)

    for spec in routes:
        uri = "/studies/%s/%s" % (study, spec)
        cached = server.request("GET", uri)
        computed = server.request("GET", uri + ("&" if "?" in uri else "?") + "x")
        assert cached.body == computed.body, uri
        assert decisions(server, "hit", uri) == 1, uri
    full_uri = "/studies/%s/instances-tags" % study
    assert decisions(server, "miss", full_uri) == 1
    assert decisions(server, "miss", full_uri + "?short") == 0
    assert "stored %s?short (derived)" % full_uri in server.log_text()
