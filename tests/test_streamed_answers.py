"""Large stored answers sent from their files in chunks, with the fake module."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import pytest

from orthanc_cache_plugin import enable_cache_plugin
from orthanc_cache_plugin import store as store_module
from orthanc_cache_plugin.adapter import CachePlugin
from orthanc_cache_plugin.routes import ROUTES_BY_NAME
from tests.support.fake_orthanc import FakeOrthanc, RestOutput, StreamingRestOutput

STUDY = "0a1b2c3d-00000000-00000000-00000000-00000000"
ARCHIVE = "/studies/%s/archive" % STUDY
METADATA = "/studies/%s/metadata?expand" % STUDY
THRESHOLD = 100_000
CHUNK = 32 * 1024
BODY = os.urandom(4 * THRESHOLD + 3)


@pytest.fixture(autouse=True)
def small_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "STREAM_THRESHOLD", THRESHOLD)
    monkeypatch.setattr(store_module, "CHUNK_SIZE", CHUNK)


def _plugin(tmp_path: Path, streaming: bool) -> tuple[FakeOrthanc, CachePlugin]:
    configuration = {"CachePlugin": {"Directory": str(tmp_path / "cache")}}
    api = FakeOrthanc(configuration, streaming=streaming)
    api.set_json(METADATA, {"LastUpdate": "20261204T101010"})
    api.set_json("/changes?last", {"Changes": [], "Done": True, "Last": 0})
    api.answers[ARCHIVE] = BODY
    plugin = enable_cache_plugin(api, WarmUp=False, StoreBinary=True)
    assert isinstance(plugin, CachePlugin)
    plugin.on_change(10, 4, "")  # ORTHANC_STARTED: the plugin becomes ready
    return api, plugin


def _get(plugin: CachePlugin, output: Optional[RestOutput] = None) -> RestOutput:
    output = output or plugin.api.RestOutput()
    request = {"method": "GET", "groups": ("studies", STUDY), "get": {}, "headers": {}}
    plugin.answer(output, ROUTES_BY_NAME["archive"], ARCHIVE, request)
    return output


def _headers(output: RestOutput, *left_out: str) -> dict[str, str]:
    # Date and Expires follow the clock.
    skipped = {"Date", "Expires", *left_out}
    return {name: value for name, value in output.headers if name not in skipped}


def _value_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache").rglob("*.val"))


def test_a_large_hit_is_streamed_with_the_headers_of_the_miss(
    tmp_path: Path,
) -> None:
    api, plugin = _plugin(tmp_path, streaming=True)

    miss, hit = _get(plugin), _get(plugin)

    assert isinstance(hit, StreamingRestOutput)
    assert isinstance(miss, StreamingRestOutput)
    assert miss.chunks == []  # the miss had the body in memory already
    assert len(hit.chunks) == -(-len(BODY) // CHUNK)
    assert hit.status == miss.status == 200
    assert hit.body == miss.body == BODY
    assert hit.content_type == miss.content_type == "application/zip"
    assert _headers(hit, "Content-Length") == _headers(miss)
    assert dict(hit.headers)["Content-Length"] == str(len(BODY))
    assert api.calls.count(ARCHIVE) == 1


def test_without_streaming_a_large_hit_is_read_whole(tmp_path: Path) -> None:
    api, plugin = _plugin(tmp_path, streaming=False)

    miss, hit = _get(plugin), _get(plugin)

    assert not isinstance(hit, StreamingRestOutput)
    assert hit.body == miss.body == BODY
    assert _headers(hit) == _headers(miss)
    assert api.calls.count(ARCHIVE) == 1


def test_a_client_gone_mid_stream_leaves_the_entry_stored(tmp_path: Path) -> None:
    api, plugin = _plugin(tmp_path, streaming=True)
    _get(plugin)

    cut = _get(plugin, StreamingRestOutput(refuse_after=2))
    whole = _get(plugin)

    assert len(cut.body) == 2 * CHUNK
    assert whole.body == BODY
    assert api.calls.count(ARCHIVE) == 1
    assert any("cut short" in text for level, text in api.logs if level == "info")


class _CuttingOutput(StreamingRestOutput):
    """Cuts the stored value file once the first chunk has gone out."""

    def __init__(self, files: list[Path]) -> None:
        super().__init__()
        self.files = files

    def SendStreamChunk(self, chunk: bytes) -> None:
        super().SendStreamChunk(chunk)
        for path in self.files:
            os.truncate(path, CHUNK)


def test_a_file_cut_mid_stream_is_never_answered_whole_and_is_removed(
    tmp_path: Path,
) -> None:
    api, plugin = _plugin(tmp_path, streaming=True)
    _get(plugin)

    cut = _get(plugin, _CuttingOutput(_value_files(tmp_path)))
    again = _get(plugin)

    # The status went out with the full length: a client sees a short body.
    assert dict(cut.headers)["Content-Length"] == str(len(BODY))
    assert len(cut.body) < len(BODY)
    assert again.body == BODY
    assert api.calls.count(ARCHIVE) == 2  # removed, so computed again
    warnings = [text for level, text in api.logs if level == "warning"]
    assert len([text for text in warnings if "cache entry damaged" in text]) == 1


def test_a_file_cut_before_the_hit_is_a_miss(tmp_path: Path) -> None:
    api, plugin = _plugin(tmp_path, streaming=True)
    _get(plugin)
    for path in _value_files(tmp_path):
        os.truncate(path, path.stat().st_size // 2)

    answer = _get(plugin)

    assert answer.body == BODY
    assert isinstance(answer, StreamingRestOutput)
    assert answer.chunks == []  # computed and answered from memory
    assert api.calls.count(ARCHIVE) == 2
