"""The request pipeline with the fake ``orthanc`` module: fast, no server."""

from __future__ import annotations

from pathlib import Path

import pytest

from orthanc_cache_plugin import enable_cache_plugin
from orthanc_cache_plugin.adapter import CachePlugin
from orthanc_cache_plugin.routes import ROUTES_BY_NAME
from tests.support.fake_orthanc import FakeOrthanc, RestOutput

STUDY = "0a1b2c3d-00000000-00000000-00000000-00000000"
SHARED_TAGS = "/studies/%s/shared-tags" % STUDY
METADATA = "/studies/%s/metadata?expand" % STUDY


def _plugin(tmp_path: Path, **options: object) -> tuple[FakeOrthanc, CachePlugin]:
    api = FakeOrthanc({"CachePlugin": {"Directory": str(tmp_path / "cache")}})
    api.set_json(METADATA, {"LastUpdate": "20261204T101010"})
    api.set_json(SHARED_TAGS, {"0010,0010": {"Value": "DOE^JOHN"}})
    api.set_json("/changes?last", {"Changes": [], "Done": True, "Last": 0})
    plugin = enable_cache_plugin(api, WarmUp=False, **options)
    assert isinstance(plugin, CachePlugin)
    plugin.on_change(10, 4, "")  # ORTHANC_STARTED: the plugin becomes ready
    return api, plugin


def _get(plugin: CachePlugin, headers: dict[str, str] | None = None) -> RestOutput:
    output = RestOutput()
    request = {
        "method": "GET",
        "groups": ("studies", STUDY),
        "get": {},
        "headers": headers or {},
    }
    plugin.answer(output, ROUTES_BY_NAME["shared-tags"], SHARED_TAGS, request)
    return output


def _body_calls(api: FakeOrthanc) -> int:
    return api.calls.count(SHARED_TAGS)


def test_second_request_is_answered_from_the_store(tmp_path: Path) -> None:
    api, plugin = _plugin(tmp_path)

    first, second = _get(plugin), _get(plugin)

    assert first.status == second.status == 200
    assert first.body == second.body
    assert _body_calls(api) == 1
    assert plugin.statistics.snapshot()["hits"] == 1


def test_new_generation_makes_the_stored_answer_unreachable(tmp_path: Path) -> None:
    api, plugin = _plugin(tmp_path)
    before = _get(plugin)

    plugin.on_change(2, 1, STUDY)  # NEW_CHILD_INSTANCE on the study
    after = _get(plugin)

    assert _body_calls(api) == 2
    assert dict(before.headers)["ETag"] != dict(after.headers)["ETag"]


def test_matching_tag_is_answered_304_without_computing(tmp_path: Path) -> None:
    api, plugin = _plugin(tmp_path)
    etag = dict(_get(plugin).headers)["ETag"]
    api.answers.pop(SHARED_TAGS)  # a computation would now fail

    answer = _get(plugin, {"if-none-match": 'W/"x", ' + etag})

    assert answer.status == 304
    assert answer.body == b""
    assert {name for name, _ in answer.headers} >= {
        "Date",
        "Last-Modified",
        "ETag",
        "Cache-Control",
        "Expires",
    }


def test_unknown_study_gets_orthancs_404_through_the_old_signature(
    tmp_path: Path,
) -> None:
    api, plugin = _plugin(tmp_path)
    api.answers.pop(METADATA)
    api.answers.pop(SHARED_TAGS)

    answer = _get(plugin)

    assert answer.status == 404
    assert b'"OrthancStatus" : 17' in answer.body
    assert b'"Uri" : "%s"' % SHARED_TAGS.encode() in answer.body


def test_unusable_store_answers_uncached(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    api, plugin = _plugin(tmp_path, Directory=str(blocker / "cache"), MemorySize=0)

    answers = [_get(plugin) for _ in range(3)]

    assert [answer.status for answer in answers] == [200, 200, 200]
    assert _body_calls(api) == 3
    warnings = [text for level, text in api.logs if level == "warning"]
    assert len([text for text in warnings if "unavailable" in text]) == 1


def test_no_answer_is_read_before_orthanc_started(tmp_path: Path) -> None:
    api, plugin = _plugin(tmp_path)
    _get(plugin)
    plugin.handler.ready = False

    answer = _get(plugin)

    assert answer.status == 200
    assert _body_calls(api) == 2


def test_users_own_change_callback_can_forward_to_the_plugin(tmp_path: Path) -> None:
    api = FakeOrthanc({"CachePlugin": {"Directory": str(tmp_path / "cache")}})
    seen: list[str] = []
    plugin = enable_cache_plugin(api, register_on_change=False, WarmUp=False)
    assert plugin is not None

    def users_callback(change_type: int, level: int, resource: str) -> None:
        seen.append(resource)
        plugin.on_change(change_type, level, resource)

    api.RegisterOnChangeCallback(users_callback)
    before = plugin.versions.generation(STUDY)
    assert api.on_change is not None
    api.on_change(13, 1, STUDY)  # UPDATED_METADATA

    assert seen == [STUDY]
    assert plugin.versions.generation(STUDY) != before


def test_plugin_fault_is_answered_without_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, plugin = _plugin(tmp_path)

    def broken(*_: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(plugin.handler, "handle", broken)
    answer = _get(plugin)

    assert answer.status == 200
    assert answer.content_type == "application/json; charset=utf-8"


@pytest.mark.parametrize(("memory", "computed"), [(1, 1), (0, 4)])
def test_memory_layer_answers_hits_without_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memory: int, computed: int
) -> None:
    api, plugin = _plugin(tmp_path, MemorySize=memory)
    _get(plugin)
    monkeypatch.setattr(plugin.store, "_run", lambda *_: None)  # no disk at all

    answers = [_get(plugin) for _ in range(3)]

    assert [answer.status for answer in answers] == [200, 200, 200]
    assert _body_calls(api) == computed
