"""A fake ``orthanc`` module for fast unit tests of the handler and adapter.

It answers ``RestApiGet`` from a dictionary and records what a REST callback
sends. ``tests/test_fake_orthanc.py`` checks each name here against the real
module inside a running Orthanc, so the fake cannot drift into an API that
Orthanc does not have.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Optional


class OrthancException(Exception):
    """Raised like the real one: ``args == (code, text)``."""


class ErrorCode:
    UNKNOWN_RESOURCE = 17
    BAD_FILE_FORMAT = 15


class ImageFormat:
    PNG = 0
    JPEG = 1


class PixelFormat:
    GRAYSCALE8 = 1
    GRAYSCALE16 = 2
    SIGNED_GRAYSCALE16 = 3
    RGB24 = 4
    RGBA32 = 5


class MetricsType:
    DEFAULT = 0
    TIMER = 1


class RestOutput:
    """Records what a callback sends, as Orthanc's output would carry it."""

    def __init__(self) -> None:
        self.status: Optional[int] = None
        self.headers: list[tuple[str, str]] = []
        self.body = b""
        self.content_type = ""
        self.allowed = ""

    def SetHttpHeader(self, name: str, value: str) -> None:
        self.headers.append((name, value))

    def AnswerBuffer(self, body: bytes, content_type: str) -> None:
        self.status, self.body, self.content_type = 200, bytes(body), content_type

    def SendHttpStatusCode(self, status: int) -> None:
        self.status = status

    def SendHttpStatus(self, status: int, body: str, size: int) -> None:
        # Python plugin 4.0's signature (str and size); 4.2 takes bytes.
        if not isinstance(body, str):
            raise TypeError("SendHttpStatus() argument 2 must be str")
        self.status, self.body = status, body.encode("utf-8")[:size]

    def SendMethodNotAllowed(self, allowed: str) -> None:
        self.status, self.allowed = 405, allowed


class StreamingRestOutput(RestOutput):
    """The output of Python plugin 5.0, which can also stream an answer.

    ``refuse_after`` chunks, the client is gone: Orthanc then raises
    "Error in the network protocol" (code 9) from ``SendStreamChunk``.
    """

    def __init__(self, refuse_after: Optional[int] = None) -> None:
        super().__init__()
        self.chunks: list[bytes] = []
        self.refuse_after = refuse_after

    def StartStreamAnswer(self, content_type: str) -> None:
        self.status, self.content_type = 200, content_type

    def SendStreamChunk(self, chunk: bytes) -> None:
        if self.status != 200:
            raise OrthancException(1, "Internal error")
        if self.refuse_after is not None and len(self.chunks) >= self.refuse_after:
            raise OrthancException(9, "Error in the network protocol")
        self.chunks.append(bytes(chunk))
        self.body += bytes(chunk)


class FakeOrthanc:
    """The module's functions, bound to a table of REST answers."""

    OrthancException = OrthancException
    ErrorCode = ErrorCode
    ImageFormat = ImageFormat
    PixelFormat = PixelFormat
    MetricsType = MetricsType
    RestOutput = RestOutput

    def __init__(
        self, configuration: Optional[dict[str, Any]] = None, streaming: bool = False
    ) -> None:
        # Python plugin 5.0 and later (streaming) or 4.x.
        self.RestOutput = StreamingRestOutput if streaming else RestOutput
        self.configuration = configuration or {}
        self.answers: dict[str, bytes] = {}
        self.calls: list[str] = []
        self.routes: dict[str, Callable[..., None]] = {}
        self.on_change: Optional[Callable[[int, int, str], None]] = None
        self.logs: list[tuple[str, str]] = []
        self.metrics: dict[str, float] = {}
        self.global_properties: dict[int, str] = {}

    def set_json(self, uri: str, value: Any) -> None:
        self.answers[uri] = json.dumps(value).encode("utf-8")

    def GetConfiguration(self) -> str:
        return json.dumps(self.configuration)

    def RestApiGet(self, uri: str) -> bytes:
        self.calls.append(uri)
        if uri not in self.answers:
            raise OrthancException(17, "Unknown resource")
        return self.answers[uri]

    def RestApiPost(self, uri: str, body: bytes) -> bytes:
        self.calls.append("POST " + uri)
        return self.RestApiGet(uri)

    def RegisterRestCallback(self, regex: str, callback: Callable[..., None]) -> None:
        self.routes[regex] = callback

    def RegisterOnChangeCallback(
        self, callback: Callable[[int, int, str], None]
    ) -> None:
        if self.on_change is not None:
            raise OrthancException(-1, "only one on-change callback")
        self.on_change = callback

    def GetGlobalProperty(self, key: int, default: str) -> str:
        return self.global_properties.get(key, default)

    def SetGlobalProperty(self, key: int, value: str) -> None:
        self.global_properties[key] = value

    def SetMetricsValue(self, name: str, value: float, kind: int) -> None:
        self.metrics[name] = value

    def LogInfo(self, message: str) -> None:
        self.logs.append(("info", message))

    def LogWarning(self, message: str) -> None:
        self.logs.append(("warning", message))

    def LogError(self, message: str) -> None:
        self.logs.append(("error", message))


# Names the fake provides, checked against the real module.
MODULE_NAMES = sorted(
    name for name in vars(FakeOrthanc) if name[0].isupper() and not name.startswith("_")
)
OUTPUT_NAMES = sorted(name for name in vars(RestOutput) if name[0].isupper())
STREAM_OUTPUT_NAMES = sorted(
    name for name in vars(StreamingRestOutput) if name[0].isupper()
)
