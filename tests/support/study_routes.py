"""One loaded study and the URIs of every taken route over its resources.

For the tests of authentication, authorization filters and shared caches:
they upload with their own headers (credentials), so the study is uploaded
here rather than with ``make_orthanc(load_data=True)``.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

from orthanc_cache_plugin.routes import ROUTES
from tests.support.orthanc_server import OrthancError, OrthancServer
from tests.support.route_requests import route_uri

# Bound on waits for Orthanc's asynchronous work; the tests never measure time.
PATIENCE = 20.0
POLL = 0.1


def basic_auth(user: str, password: str) -> dict[str, str]:
    """The ``Authorization`` header of HTTP basic authentication."""
    token = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
    return {"Authorization": "Basic " + token}


@dataclass(frozen=True)
class Study:
    """The identifiers of one uploaded study, one of each level."""

    patient: str
    study: str
    series: str
    instance: str

    def id_of(self, level: str) -> str:
        return {
            "patients": self.patient,
            "studies": self.study,
            "series": self.series,
            "instances": self.instance,
        }[level]

    @property
    def ids(self) -> set[str]:
        return {self.patient, self.study, self.series, self.instance}

    def uris(self) -> list[str]:
        """One URI per taken route and level (frame 0 for frame routes)."""
        return [
            route_uri(route, level, self.id_of(level))
            for route in ROUTES
            for level in route.levels
        ]


def synthetic_ct_files(test_data: list[Path]) -> list[Path]:
    """The 40 slices of the synthetic CT study in ``test_data``."""
    return sorted(path for path in test_data if path.parent.name == "ct")


def upload(
    server: OrthancServer,
    files: list[Path],
    headers: Optional[Mapping[str, str]] = None,
) -> Study:
    """Upload ``files`` (one study) and return the identifiers of the first."""
    answers = []
    for path in files:
        response = server.request(
            "POST", "/instances", body=path.read_bytes(), headers=headers
        )
        if response.status != 200:
            raise OrthancError("upload answered %d" % response.status)
        answers.append(response.json())
    first = answers[0]
    return Study(
        patient=first["ParentPatient"],
        study=first["ParentStudy"],
        series=first["ParentSeries"],
        instance=first["ID"],
    )


def expected_status(uri: str) -> int:
    """What Orthanc answers an allowed client on a CT study's URI."""
    # A CT slice holds no encapsulated PDF: Orthanc answers an empty 404.
    return 404 if uri.endswith("/pdf") else 200


def wait_for_new_etag(
    server: OrthancServer,
    uri: str,
    old_etag: str,
    headers: Optional[Mapping[str, str]] = None,
) -> str:
    """Wait until the plugin's ``ETag`` of ``uri`` differs from ``old_etag``.

    The change events that renew a resource's version are delivered by Orthanc
    a moment after the upload (see docs/freshness.md).
    """
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        etag = server.request("GET", uri, headers=headers).header("ETag")
        if etag is not None and etag != old_etag:
            return etag
        time.sleep(POLL)
    raise AssertionError("the ETag of %s stayed %s" % (uri, old_etag))
