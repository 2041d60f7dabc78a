"""The plugin is transparent: the cached server answers as plain Orthanc does.

Each test sends the same request to a plain Orthanc and to one running the
plugin, both loaded with the same data, and compares status, body,
Content-Type and Content-Disposition. Requests to the cached server are sent
twice, so that both the miss and the hit (or the stored-copy answer) are seen.
"""

from __future__ import annotations

from typing import Optional

import pytest

from orthanc_cache_plugin.routes import ROUTES, Route
from tests.support.orthanc_server import OrthancServer
from tests.support.route_requests import (
    Resources,
    attachment_uuid,
    differences,
    list_resources,
)

ROUTE_IDS = [route.name for route in ROUTES]


@pytest.fixture(scope="module")
def resources(
    plain_orthanc: OrthancServer, cached_orthanc: OrthancServer
) -> Resources:
    found = list_resources(plain_orthanc)
    assert found.ids == list_resources(cached_orthanc).ids
    return found


def _compare(
    plain: OrthancServer,
    cached: OrthancServer,
    uri: str,
    times: int = 2,
    disposition: Optional[tuple[str, str]] = None,
) -> list[str]:
    expected = plain.request("GET", uri)
    found = []
    for attempt in range(times):
        answer = cached.request("GET", uri)
        label = "%s (request %d)" % (uri, attempt + 1)
        found += differences(label, expected, answer, disposition)
    return found


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_every_resource_answers_as_plain_orthanc(
    route: Route,
    resources: Resources,
    plain_orthanc: OrthancServer,
    cached_orthanc: OrthancServer,
) -> None:
    mismatches = []

    for uri in resources.uris(route):
        disposition = None
        if route.name == "file":
            instance_id = uri.split("/")[2]
            disposition = (
                attachment_uuid(plain_orthanc, instance_id),
                attachment_uuid(cached_orthanc, instance_id),
            )
        mismatches += _compare(plain_orthanc, cached_orthanc, uri, 2, disposition)

    assert mismatches == []
