"""Orthanc's JSON error answers, rebuilt byte for byte."""

import json

import pytest

from orthanc_cache_plugin.orthanc_errors import (
    HTTP_STATUS_OF_CODE,
    REASONS,
    described_error,
    error_code,
    error_text,
)

# Answered by a real Orthanc 1.10.1 to GET /studies/nope/instances-tags.
UNKNOWN_STUDY_BODY = (
    b'{\n\t"HttpError" : "Not Found",\n\t"HttpStatus" : 404,\n'
    b'\t"Message" : "Unknown resource",\n\t"Method" : "GET",\n'
    b'\t"OrthancError" : "Unknown resource",\n\t"OrthancStatus" : 17,\n'
    b'\t"Uri" : "/studies/nope/instances-tags"\n}\n'
)


def test_unknown_resource_is_answered_as_orthanc_1_10_1_does() -> None:
    answer = described_error(
        17, "Unknown resource", "GET", "/studies/nope/instances-tags"
    )

    assert answer.status == 404
    assert answer.body == UNKNOWN_STUDY_BODY


def test_bad_file_format_is_a_bad_request() -> None:
    answer = described_error(15, "Bad file format", "POST", "/studies/x/archive")

    assert answer.status == 400
    assert json.loads(answer.body) == {
        "HttpError": "Bad Request",
        "HttpStatus": 400,
        "Message": "Bad file format",
        "Method": "POST",
        "OrthancError": "Bad file format",
        "OrthancStatus": 15,
        "Uri": "/studies/x/archive",
    }


@pytest.mark.parametrize(
    ("code", "status", "reason"),
    [
        (7, 404, "Not Found"),
        (29, 401, "Unauthorized"),
        (34, 406, "Not Acceptable"),
        (36, 503, "Service Unavailable"),
        (41, 416, "Requested Range Not Satisfiable"),
        (3000, 415, "Unsupported Media Type"),
        (-1, 500, "Internal Server Error"),
        (1, 500, "Internal Server Error"),
        (9999, 500, "Internal Server Error"),
    ],
)
def test_status_and_reason_of_a_code(code: int, status: int, reason: str) -> None:
    answer = described_error(code, "text", "GET", "/instances/x/tags")

    assert answer.status == status
    assert json.loads(answer.body)["HttpError"] == reason


def test_every_mapped_status_has_its_reason_phrase() -> None:
    assert set(HTTP_STATUS_OF_CODE.values()) <= set(REASONS)


def test_quotes_and_backslashes_in_the_uri_are_escaped() -> None:
    answer = described_error(17, "Unknown resource", "GET", '/studies/a"b\\c/tags')
    assert json.loads(answer.body)["Uri"] == '/studies/a"b\\c/tags'


class FakeOrthancException(Exception):
    """Stands for ``orthanc.OrthancException(code, text)``."""


@pytest.mark.parametrize(
    ("exception", "code", "text"),
    [
        (FakeOrthancException(17, "Unknown resource"), 17, "Unknown resource"),
        (FakeOrthancException(15), 15, "Internal error"),
        (FakeOrthancException("17", "Unknown resource"), -1, "Unknown resource"),
        (RuntimeError(), -1, "Internal error"),
        (KeyboardInterrupt(), -1, "Internal error"),
    ],
)
def test_code_and_text_of_an_exception(
    exception: BaseException, code: int, text: str
) -> None:
    assert error_code(exception) == code
    assert error_text(exception) == text
