"""The plugin inside a real Orthanc: configuration, warm-up, logging, stop, faults."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.dicom_data import generate_ct_study
from tests.support.orthanc_server import MakeOrthanc, OrthancError, OrthancServer
from tests.support.plugin_log import decisions, wait_for_log, wait_for_settled_version

STUDY_ROUTES = ("shared-tags", "instances-tags")


def _upload_study(server: OrthancServer, tmp_path: Path, seed: int) -> str:
    files = generate_ct_study(tmp_path, slices=4, rows=16, cols=16, seed=seed)
    answers = [server.upload(path) for path in files]
    return str(answers[0]["ParentStudy"])


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [
        ("MaximumSize", "big", "CachePlugin.MaximumSize must be an integer, not 'big'"),
        ("Expiration", 0, "CachePlugin.Expiration must be > 0, not 0"),
        ("Enable", "yes", "CachePlugin.Enable must be true or false, not 'yes'"),
        ("Visibility", "open", "CachePlugin.Visibility must be one of"),
        ("WarmUpRoutes", ["archive"], "'archive' is not a stored route"),
    ],
)
def test_wrong_option_stops_start_up_with_one_line_naming_it(
    make_orthanc: MakeOrthanc, option: str, value: object, named: str
) -> None:
    server = make_orthanc(cached=True, start=False, CachePlugin={option: value})

    with pytest.raises(OrthancError):
        server.start()

    errors = [
        line
        for line in server.log_text().splitlines()
        if "cache-plugin: cannot start:" in line
    ]
    assert len(errors) == 1
    assert named in errors[0]
    assert not server.is_running()


def test_unknown_option_is_a_warning_and_orthanc_starts(
    make_orthanc: MakeOrthanc,
) -> None:
    server = make_orthanc(cached=True, CachePlugin={"MaximumSzie": 10})

    assert server.request("GET", "/system").status == 200
    assert "unknown option 'MaximumSzie' is ignored" in server.log_text()


def test_keyword_arguments_override_the_configuration(
    make_orthanc: MakeOrthanc, tmp_path: Path
) -> None:
    script = tmp_path / "script.py"
    script.write_text(
        "from orthanc_cache_plugin import enable_cache_plugin\n"
        "enable_cache_plugin(CacheControl='max-age=60, private')\n"
    )
    server = make_orthanc(
        cached=True, script=script, CachePlugin={"CacheControl": "no-store"}
    )
    study = _upload_study(server, tmp_path, seed=201)

    answer = server.request("GET", "/studies/%s/shared-tags" % study)

    assert answer.header("Cache-Control") == "max-age=60, private"


def test_disabled_plugin_takes_no_route(
    make_orthanc: MakeOrthanc, tmp_path: Path
) -> None:
    server = make_orthanc(cached=True, CachePlugin={"Enable": False})
    study = _upload_study(server, tmp_path, seed=202)

    answer = server.request("GET", "/studies/%s/shared-tags" % study)

    assert answer.status == 200
    assert answer.header("ETag") is None
    assert "disabled by CachePlugin.Enable" in server.log_text()


def test_second_request_is_a_hit_and_decisions_are_logged(
    make_orthanc: MakeOrthanc, tmp_path: Path
) -> None:
    server = make_orthanc(cached=True, CachePlugin={"WarmUp": False})
    study = _upload_study(server, tmp_path, seed=203)
    uri = "/studies/%s/shared-tags" % study
    wait_for_settled_version(server, uri)
    counts = {word: decisions(server, word, uri) for word in LOGGED}

    first = server.request("GET", uri)
    second = server.request("GET", uri)
    not_modified = server.request(
        "GET", uri, headers={"If-None-Match": str(second.header("ETag"))}
    )

    assert first.body == second.body
    assert not_modified.status == 304
    assert not_modified.body == b""
    for word, expected in (("miss", 0), ("stored", 0), ("hit", 2), ("304", 1)):
        assert decisions(server, word, uri) - counts[word] == expected, word


LOGGED = ("miss", "stored", "hit", "304")


def test_stable_study_is_warmed_so_the_first_request_is_a_hit(
    make_orthanc: MakeOrthanc, tmp_path: Path
) -> None:
    server = make_orthanc(cached=True, StableAge=1)
    study = _upload_study(server, tmp_path, seed=204)

    wait_for_log(server, "warmed studies %s" % study)
    for route in STUDY_ROUTES:
        uri = "/studies/%s/%s" % (study, route)
        assert server.request("GET", uri).status == 200
        assert decisions(server, "hit", uri) == 1
        assert decisions(server, "miss", uri) == 1  # by the worker, not a viewer


def test_orthanc_stops_cleanly_with_warm_up_running(
    make_orthanc: MakeOrthanc, tmp_path: Path
) -> None:
    server = make_orthanc(cached=True, StableAge=1)
    _upload_study(server, tmp_path, seed=205)
    wait_for_log(server, "warmed studies")

    server.stop()

    assert not server.hung_on_stop
    assert "cache-plugin: stopped at change" in server.log_text()


@pytest.mark.parametrize("trouble", ["parent is a file", "directory is a file"])
def test_unusable_cache_directory_answers_uncached_with_one_warning(
    make_orthanc: MakeOrthanc, tmp_path: Path, trouble: str
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    directory = blocker / "cache" if trouble == "parent is a file" else blocker
    server = make_orthanc(
        cached=True, CachePlugin={"Directory": str(directory), "WarmUp": False}
    )
    study = _upload_study(server, tmp_path, seed=206)
    uri = "/studies/%s/instances-tags" % study
    reference = server.request("GET", "/studies/%s/instances" % study)

    answers = [server.request("GET", uri) for _ in range(5)]

    assert reference.status == 200
    assert all(answer.status == 200 for answer in answers)
    assert len({answer.body for answer in answers}) == 1
    assert server.log_text().count("cache store unavailable") == 1
    assert "Traceback" not in server.log_text()


def test_restart_reuses_entries_of_unchanged_resources(
    make_orthanc: MakeOrthanc, tmp_path: Path
) -> None:
    server = make_orthanc(cached=True, CachePlugin={"WarmUp": False})
    study = _upload_study(server, tmp_path, seed=207)
    uri = "/studies/%s/shared-tags" % study
    wait_for_settled_version(server, uri)
    before = server.request("GET", uri)
    hits = decisions(server, "hit", uri)

    server.restart()
    after = server.request("GET", uri)

    assert after.body == before.body
    assert after.header("ETag") == before.header("ETag")
    assert decisions(server, "hit", uri) == hits + 1


@pytest.mark.parametrize("change", ["metadata", "deletion", "new instance"])
def test_change_made_while_the_plugin_was_disabled_is_seen_after_restart(
    make_orthanc: MakeOrthanc, tmp_path: Path, change: str
) -> None:
    server = make_orthanc(
        cached=True, UserMetadata={"Note": 1024}, CachePlugin={"WarmUp": False}
    )
    files = generate_ct_study(tmp_path, slices=4, rows=16, cols=16, seed=208)
    answers = [server.upload(path) for path in files[:3]]
    study, instance = answers[0]["ParentStudy"], answers[0]["ID"]
    paths = ["/studies/%s/instances-tags" % study, "/instances/%s/metadata" % instance]
    for path in paths:
        wait_for_settled_version(server, path)

    _restart_with(server, {"Enable": False})
    _change(server, change, instance, files[3])
    expected = {path: server.request("GET", path) for path in paths}
    _restart_with(server, {"Enable": True, "WarmUp": False})

    for path in paths:
        found = server.request("GET", path)
        assert found.status == expected[path].status, path
        assert found.body == expected[path].body, path


def _restart_with(server: OrthancServer, section: dict[str, object]) -> None:
    server.stop()
    server.extra_config["CachePlugin"] = dict(
        server.extra_config["CachePlugin"], **section
    )
    server.start()


def _change(server: OrthancServer, change: str, instance: str, new: Path) -> None:
    if change == "metadata":
        path = "/instances/%s/metadata/Note" % instance
        assert server.request("PUT", path, body=b"while disabled").status == 200
    elif change == "deletion":
        assert server.request("DELETE", "/instances/%s" % instance).status == 200
    else:
        server.upload(new)
