"""What differs between the Orthanc versions the plugin runs on, each pinned.

The plugin answers what the running Orthanc answers. Where versions differ, it
tells them apart by feature detection (``orthanc_features`` reads the version;
a changed API call is tried). The integration tests run on either runtime:
Debian 12's Orthanc 1.10.1 with Python plugin 4.0 (default) or Debian 13's
1.12.7 with plugin 5.0 (``ORTHANC_RUNTIME=debian13``). Here:

- ``SendHttpStatus``: ``(status, str, size)`` before Python plugin 4.2,
  ``(status, bytes)`` from 4.2;
- the error codes of ``RestApiGet``: the plugin rebuilds the status that they
  do not carry;
- a frame that does not decode: 404 or 415 (``FRAME_ERRORS_DROPPED``).

Elsewhere: the ``Content-Disposition`` of ``/file``, ``/archive`` and
``/media`` in ``test_download_names``; labels (1.12.0) and the parents'
``LastUpdate`` moved by a deletion (1.12.1) in ``test_freshness``.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any, Iterator

import pytest

from orthanc_cache_plugin import enable_cache_plugin
from orthanc_cache_plugin.adapter import CachePlugin
from orthanc_cache_plugin.orthanc_features import FRAME_ERRORS_DROPPED, detect
from orthanc_cache_plugin.routes import ROUTES, ROUTES_BY_NAME, Route
from tests.support.fake_orthanc import FakeOrthanc, OrthancException, RestOutput
from tests.support.orthanc_server import OrthancServer
from tests.support.route_requests import differences, list_resources, route_uri

REPO_ROOT = Path(__file__).resolve().parent.parent
FRAME_ROUTES = [route for route in ROUTES if "{frame}" in route.path]
STUDY = "0a1b2c3d-00000000-00000000-00000000-00000000"
INSTANCE = "9f8e7d6c-00000000-00000000-00000000-00000000"
UNKNOWN_ID = "00000000-00000000-00000000-00000000-00000000"
SENDS_BYTES_FROM = (4, 2)  # Python plugin version of SendHttpStatus(status, bytes)

# As Orthanc's image routes read them (boost::lexical_cast<unsigned int>): a
# sign is allowed and a minus wraps; spaces, other digits and overflow are not
# numbers. One past the end of a 1-frame and of a 2-frame instance: "1", "2".
ODD_FRAMES = (
    "1",
    "2",
    "99",
    "-1",
    "+1",
    "01",
    "-0",
    " 1",
    "4294967295",
    "4294967296",
    "-4294967295",
    "-4294967296",
    "\uff11",
    "1e2",
    "abc",
)


def _version(server: OrthancServer) -> tuple[int, ...]:
    version = str(server.get_json("/system")["Version"])
    return tuple(int(part) for part in version.split("."))


def _python_plugin_version(server: OrthancServer) -> tuple[int, ...]:
    version = str(server.get_json("/plugins/python")["Version"])
    return tuple(int(part) for part in version.split(".")[:2])


# SendHttpStatus: the plugin tries the newer signature, then the older one.


class BytesRestOutput(RestOutput):
    """An output of Python plugin 4.2 and later: ``SendHttpStatus(status, bytes)``."""

    def SendHttpStatus(self, status: int, body: bytes) -> None:  # type: ignore[override]
        if not isinstance(body, bytes):
            raise TypeError("SendHttpStatus() argument 2 must be bytes")
        self.status, self.body = status, body


def _unknown_study_answer(plugin: CachePlugin, output: RestOutput) -> RestOutput:
    uri = "/studies/%s/shared-tags" % UNKNOWN_ID
    request = {"method": "GET", "groups": ("studies", UNKNOWN_ID), "headers": {}}
    plugin.answer(output, ROUTES_BY_NAME["shared-tags"], uri, request)
    return output


def _fake_plugin(tmp_path: Path, api: FakeOrthanc) -> CachePlugin:
    api.configuration = {"CachePlugin": {"Directory": str(tmp_path / "cache")}}
    api.set_json("/changes?last", {"Changes": [], "Done": True, "Last": 0})
    plugin = enable_cache_plugin(api, WarmUp=False)
    assert isinstance(plugin, CachePlugin)
    plugin.on_change(10, 4, "")  # ORTHANC_STARTED: the plugin becomes ready
    return plugin


def test_error_bodies_are_sent_with_either_signature(tmp_path: Path) -> None:
    # One plugin per process, and one Python plugin version: the signature that
    # worked is kept, so each output gets its own plugin.
    plugins = [_fake_plugin(tmp_path / name, FakeOrthanc()) for name in "ab"]

    older = _unknown_study_answer(plugins[0], RestOutput())
    newer = _unknown_study_answer(plugins[1], BytesRestOutput())

    assert older.status == newer.status == 404
    assert older.body == newer.body
    assert json.loads(newer.body)["OrthancStatus"] == 17


# What RestApiGet raises: the plugin rebuilds the status that it does not carry.


class FailingOrthanc(FakeOrthanc):
    """``RestApiGet`` of some URIs raises an Orthanc error code; a version."""

    def __init__(self, version: tuple[int, int, int] = (1, 10, 1)) -> None:
        super().__init__()
        self.version = version
        self.failures: dict[str, int] = {}

    def CheckVersionAdvanced(self, major: int, minor: int, revision: int) -> bool:
        return self.version >= (major, minor, revision)

    def RestApiGet(self, uri: str) -> bytes:
        if uri in self.failures:
            self.calls.append(uri)
            raise OrthancException(self.failures[uri], "Orthanc error")
        return super().RestApiGet(uri)


def _answer(plugin: CachePlugin, route: Route, uri: str, groups: tuple) -> RestOutput:
    output = RestOutput()
    request = {"method": "GET", "groups": groups, "get": {}, "headers": {}}
    plugin.answer(output, route, uri, request)
    return output


@pytest.mark.parametrize(
    ("code", "status"), [(3, 400), (8, 400), (17, 404), (29, 401), (3000, 415)]
)
def test_an_error_code_of_a_json_route_is_answered_with_its_status(
    tmp_path: Path, code: int, status: int
) -> None:
    api = FailingOrthanc()
    uri = "/studies/%s/shared-tags" % STUDY
    api.set_json("/studies/%s/metadata?expand" % STUDY, {})
    api.failures[uri] = code
    plugin = _fake_plugin(tmp_path, api)

    answer = _answer(plugin, ROUTES_BY_NAME["shared-tags"], uri, ("studies", STUDY))

    assert answer.status == status
    assert json.loads(answer.body)["OrthancStatus"] == code
    assert json.loads(answer.body)["HttpStatus"] == status


@pytest.mark.parametrize(
    ("version", "numpy_code", "status"),
    [
        ((1, 10, 1), 3, 404),  # parameter out of range: no such frame
        ((1, 10, 1), 17, 404),  # unknown resource: no such instance
        ((1, 10, 1), 2, 415),  # not implemented: undecodable
        ((1, 12, 4), 3, 404),
        (FRAME_ERRORS_DROPPED, 3, 415),  # the decoders' errors are dropped
        (FRAME_ERRORS_DROPPED, 17, 404),
        (FRAME_ERRORS_DROPPED, 15, 415),
    ],
)
def test_a_frame_that_does_not_decode_is_answered_as_that_orthanc_does(
    tmp_path: Path, version: tuple[int, int, int], numpy_code: int, status: int
) -> None:
    api = FailingOrthanc(version)
    api.set_json("/instances/%s/metadata?expand" % INSTANCE, {})
    preview = "/instances/%s/frames/1/preview" % INSTANCE
    api.failures[preview] = 17  # what RestApiGet raises for an empty 404 or 415
    api.failures["/instances/%s/frames/1/numpy" % INSTANCE] = numpy_code
    plugin = _fake_plugin(tmp_path, api)

    answer = _answer(
        plugin, ROUTES_BY_NAME["frames/preview"], preview, ("instances", INSTANCE, "1")
    )

    assert detect(api).frame_errors_dropped == (version >= FRAME_ERRORS_DROPPED)
    assert (answer.status, answer.body) == (status, b"")


@pytest.mark.parametrize(
    ("frame", "numpy_frame"),
    [
        ("1", "1"),
        ("+1", "1"),
        ("01", "1"),
        ("-1", "4294967295"),
        ("-0", "0"),
        ("4294967295", "4294967295"),
        ("-4294967295", "1"),
        ("4294967296", None),
        ("-4294967296", None),
        (" 1", None),
        ("\uff11", None),
        ("1e2", None),
        ("+", None),
        ("", "0"),  # /preview: frame 0
    ],
)
def test_the_frame_is_read_as_orthanc_reads_it(
    tmp_path: Path, frame: str, numpy_frame: str | None
) -> None:
    api = FailingOrthanc()
    api.set_json("/instances/%s/metadata?expand" % INSTANCE, {})
    route = ROUTES_BY_NAME["frames/preview" if frame else "preview"]
    uri = "/instances/%s/%s" % (INSTANCE, route.path.replace("{frame}", frame))
    plugin = _fake_plugin(tmp_path, api)

    answer = _answer(plugin, route, uri, ("instances", INSTANCE, frame))
    numpy_calls = [call for call in api.calls if call.endswith("/numpy")]

    assert (answer.status, answer.body) == (404, b"")
    if numpy_frame is None:
        assert numpy_calls == []
    else:
        assert numpy_calls == [
            "/instances/%s/frames/%s/numpy" % (INSTANCE, numpy_frame)
        ]


# Against the running Orthanc.

PROBE_SCRIPT = """
import json
import urllib.parse

import orthanc

used = {}


def raised(output, uri, **request):
    target = urllib.parse.unquote(request["get"]["uri"])
    try:
        orthanc.RestApiGet(target)
        code = None
    except orthanc.OrthancException as error:
        code = error.args[0]
    output.AnswerBuffer(json.dumps({"code": code}), "application/json")


def send_status(output, uri, **request):
    body = b'{"sent": true}'
    try:
        output.SendHttpStatus(400, body)
        used["signature"] = "bytes"
    except TypeError:
        output.SendHttpStatus(400, body.decode(), len(body))
        used["signature"] = "str"


def signature(output, uri, **request):
    output.AnswerBuffer(json.dumps(used), "application/json")


orthanc.RegisterRestCallback("/probe/raised", raised)
orthanc.RegisterRestCallback("/probe/send-status", send_status)
orthanc.RegisterRestCallback("/probe/signature", signature)
"""


@pytest.fixture(scope="module")
def probe(
    loopback_only: None,
    test_data: list[Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OrthancServer]:
    """Orthanc with a script that reports what the plugin API does."""
    workdir = tmp_path_factory.mktemp("probe")
    script = workdir / "probe.py"
    script.write_text(PROBE_SCRIPT)
    server = OrthancServer(script=script, name="probe", workdir=workdir)
    server.start()
    for path in test_data:
        server.upload(path)
    yield server
    server.close()


def _raised(server: OrthancServer, uri: str) -> Any:
    query = urllib.parse.urlencode({"uri": uri})
    return server.get_json("/probe/raised?" + query)["code"]


def _decodable_instance(server: OrthancServer, frames: int) -> str:
    resources = list_resources(server)
    for instance in resources.samples:
        uri = "/instances/%s/frames/0/preview" % instance
        count = resources.frame_counts[instance]
        if count == frames and server.request("GET", uri).status == 200:
            return instance
    raise AssertionError("no decodable instance of %d frames in the data" % frames)


def _jpeg2000_instance(server: OrthancServer) -> str:
    for instance in server.get_json("/instances"):
        metadata = server.get_json("/instances/%s/metadata?expand" % instance)
        if metadata.get("TransferSyntax") == "1.2.840.10008.1.2.4.91":
            return str(instance)
    raise AssertionError("no JPEG 2000 instance in the data")


def test_send_http_status_signature_follows_the_python_plugin(
    probe: OrthancServer,
) -> None:
    answer = probe.request("GET", "/probe/send-status")
    used = probe.get_json("/probe/signature")["signature"]

    assert (answer.status, answer.body) == (400, b'{"sent": true}')
    newer = _python_plugin_version(probe) >= SENDS_BYTES_FROM
    assert used == ("bytes" if newer else "str")


def test_rest_api_get_reports_empty_404_and_415_as_unknown_resource(
    probe: OrthancServer,
) -> None:
    # On 1.10.1 and 1.12.7 alike: the status is lost, never 8, 29 or 3000.
    one_frame = _decodable_instance(probe, frames=1)
    undecodable = _jpeg2000_instance(probe)
    cases = {
        "/instances/%s/preview" % undecodable: (415, 17),
        "/instances/%s/frames/abc/preview" % one_frame: (404, 17),
        "/instances/%s/frames/1/preview" % one_frame: (None, 17),
        "/studies/%s/shared-tags" % UNKNOWN_ID: (404, 17),
        "/instances/%s/frames/1/numpy" % one_frame: (400, 3),
    }

    for uri, (status, code) in cases.items():
        if status is not None:
            assert probe.request("GET", uri).status == status, uri
        assert _raised(probe, uri) == code, uri


def test_one_frame_past_the_end_is_404_then_415(probe: OrthancServer) -> None:
    one_frame = _decodable_instance(probe, frames=1)
    newer = _version(probe) >= FRAME_ERRORS_DROPPED

    for route in ("preview", "rendered", "image-uint8"):
        uri = "/instances/%s/frames/1/%s" % (one_frame, route)
        answer = probe.request("GET", uri)
        assert (answer.status, answer.body) == ((415 if newer else 404), b""), uri


@pytest.mark.parametrize("route", FRAME_ROUTES, ids=[r.name for r in FRAME_ROUTES])
def test_odd_frames_answer_as_plain_orthanc(
    route: Route, plain_orthanc: OrthancServer, cached_orthanc: OrthancServer
) -> None:
    instances = [_decodable_instance(plain_orthanc, frames) for frames in (1, 2)]
    mismatches = []

    for instance in instances:
        for frame in ODD_FRAMES:
            quoted = urllib.parse.quote(frame)
            uri = route_uri(route, "instances", instance, quoted)
            expected = plain_orthanc.request("GET", uri)
            for _ in range(2):
                mismatches += differences(
                    uri, expected, cached_orthanc.request("GET", uri)
                )

    assert mismatches == []
