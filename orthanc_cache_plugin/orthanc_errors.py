"""Orthanc's own error answers, rebuilt from what ``RestApiGet`` raises.

``orthanc.RestApiGet`` gives no status and no headers: a failure is an
``OrthancException(code, text)``. Orthanc's built-in route would have answered
that failure with the HTTP status of the error code and a JSON description;
this module rebuilds both, byte for byte as Orthanc 1.10 writes them.
"""

import json
from dataclasses import dataclass
from typing import Dict, Tuple

PARAMETER_OUT_OF_RANGE = 3
UNKNOWN_RESOURCE = 17

# Orthanc's error codes that do not mean "500 Internal Server Error".
# NotImplemented (2) is one of those that do: Orthanc 1.10 answers it with 500.
HTTP_STATUS_OF_CODE: Dict[int, int] = {
    3: 400,  # ParameterOutOfRange
    5: 400,  # BadParameterType
    7: 404,  # InexistentItem
    8: 400,  # BadRequest
    12: 400,  # UriSyntax
    13: 404,  # InexistentFile
    15: 400,  # BadFileFormat
    17: 404,  # UnknownResource
    21: 404,  # InexistentTag
    28: 400,  # BadJson
    29: 401,  # Unauthorized
    33: 400,  # EmptyRequest
    34: 406,  # NotAcceptable
    36: 503,  # DatabaseUnavailable
    41: 416,  # BadRange
    43: 409,  # Revision
    3000: 415,  # UnsupportedMediaType
}

REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    406: "Not Acceptable",
    409: "Conflict",
    415: "Unsupported Media Type",
    416: "Requested Range Not Satisfiable",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class ErrorAnswer:
    """An answer that is not a 200: its status and its body (maybe empty)."""

    status: int
    body: bytes = b""


def error_code(exception: BaseException) -> int:
    """The Orthanc error code carried by an ``OrthancException`` (else 500's)."""
    args: Tuple[object, ...] = tuple(getattr(exception, "args", ()))
    code = args[0] if args else None
    return code if isinstance(code, int) else -1


def error_text(exception: BaseException) -> str:
    args: Tuple[object, ...] = tuple(getattr(exception, "args", ()))
    return str(args[1]) if len(args) > 1 else "Internal error"


def described_error(code: int, text: str, method: str, uri: str) -> ErrorAnswer:
    """The JSON error Orthanc answers when one of its routes raises ``code``."""
    status = HTTP_STATUS_OF_CODE.get(code, 500)
    description = {
        "HttpError": REASONS.get(status, "Internal Server Error"),
        "HttpStatus": status,
        "Message": text,
        "Method": method,
        "OrthancError": text,
        "OrthancStatus": code,
        "Uri": uri,
    }
    return ErrorAnswer(status, _styled_json(description))


def _styled_json(value: Dict[str, object]) -> bytes:
    # Orthanc writes errors with JsonCpp's styled writer: tabs, " : ", sorted keys.
    lines = [
        '\t"%s" : %s' % (key, json.dumps(value[key], ensure_ascii=False))
        for key in sorted(value)
    ]
    return ("{\n" + ",\n".join(lines) + "\n}\n").encode("utf-8")
