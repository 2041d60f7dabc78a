"""The Content-Disposition of /file, /archive and /media, on every Orthanc.

Orthanc changed how it names these downloads: 1.10.1 names /file after the
uuid of its DICOM attachment and ignores "?filename="; 1.12.7 names it
"<instance id>.dcm", and "?filename=" (Orthanc 1.11+) names /file, /archive
and /media. The plugin repeats the running Orthanc's names (feature detection
in ``orthanc_features``). These tests run on either runtime (ORTHANC_RUNTIME).
"""

from __future__ import annotations

import pytest

from orthanc_cache_plugin.orthanc_features import FILE_NAMED_BY_INSTANCE
from tests.support.orthanc_runtime import chroot_selected
from tests.support.orthanc_server import OrthancServer
from tests.support.route_requests import attachment_uuid

QUERIES = ("", "?filename=a.dcm", "?filename=", "?filename=a%20b", "?FILENAME=c")


def _instance(server: OrthancServer) -> str:
    return str(server.get_json("/instances")[0])


def _version(server: OrthancServer) -> tuple[int, ...]:
    version = str(server.get_json("/system")["Version"])
    return tuple(int(part) for part in version.split("."))


def _dispositions(server: OrthancServer, uri: str) -> list[str]:
    response = server.request("GET", uri)
    assert response.status == 200, uri
    return response.header_list("Content-Disposition")


def test_the_runtime_is_the_one_asked_for(plain_orthanc: OrthancServer) -> None:
    expected = (1, 12, 7) if chroot_selected() else (1, 10, 1)
    assert _version(plain_orthanc) == expected


def test_file_is_named_as_by_the_running_orthanc(
    plain_orthanc: OrthancServer,
) -> None:
    instance = _instance(plain_orthanc)

    found = _dispositions(plain_orthanc, "/instances/%s/file" % instance)

    if _version(plain_orthanc) >= FILE_NAMED_BY_INSTANCE:
        assert found == ['filename="%s.dcm"' % instance]
    else:
        uuid = attachment_uuid(plain_orthanc, instance)
        assert found == ['filename="%s.dcm"' % uuid]


@pytest.mark.parametrize("query", QUERIES)
def test_file_disposition_is_that_of_plain_orthanc(
    query: str, plain_orthanc: OrthancServer, cached_orthanc: OrthancServer
) -> None:
    instance = _instance(plain_orthanc)
    uri = "/instances/%s/file%s" % (instance, query)
    expected = _dispositions(plain_orthanc, uri)
    # Orthanc 1.10 draws the attachment's uuid at random on each server.
    uuids = (
        attachment_uuid(plain_orthanc, instance),
        attachment_uuid(cached_orthanc, instance),
    )

    for _ in range(2):
        found = _dispositions(cached_orthanc, uri)
        assert [value.replace(uuids[1], uuids[0]) for value in found] == expected


@pytest.mark.parametrize("route", ["archive", "media"])
@pytest.mark.parametrize("query", QUERIES)
def test_zip_disposition_is_that_of_plain_orthanc(
    route: str,
    query: str,
    plain_orthanc: OrthancServer,
    cached_orthanc: OrthancServer,
) -> None:
    series = str(plain_orthanc.get_json("/series")[0])
    uri = "/series/%s/%s%s" % (series, route, query)
    expected = _dispositions(plain_orthanc, uri)

    assert _dispositions(cached_orthanc, uri) == expected
