"""nginx ``proxy_cache`` with the recipe of docs/nginx.md in front of the plugin.

nginx stores the plugin's answers, revalidates ``no-cache`` and ``private`` ones
with it on every use (``304``, no body), serves immutable public instance
content by itself, and never gives an answer to a client Orthanc would refuse.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Mapping, Optional

import pytest

from orthanc_cache_plugin.routes import ROUTES
from tests.support.nginx_server import NginxError, NginxServer
from tests.support.orthanc_server import MakeOrthanc, OrthancServer, Response
from tests.support.plugin_log import decisions
from tests.support.route_requests import comparable_body, route_uri
from tests.support.study_routes import (
    Study,
    basic_auth,
    expected_status,
    synthetic_ct_files,
    upload,
    wait_for_new_etag,
)

ALICE = basic_auth("alice", "secret")
REFUSED_CREDENTIALS: tuple[Mapping[str, str], ...] = (
    {},
    basic_auth("alice", "wrong"),
    basic_auth("mallory", "secret"),
)
IMMUTABLE_ROUTES = tuple(
    route for route in ROUTES if not route.mutable and route.name != "pdf"
)

MakeNginx = Callable[[OrthancServer], NginxServer]


@pytest.fixture
def make_nginx() -> Iterator[MakeNginx]:
    """Factory: the documented nginx in front of one Orthanc, stopped at teardown."""
    servers: list[NginxServer] = []
    # A short folder: the recipe's Unix socket path must fit in 108 bytes.
    folder = Path(tempfile.mkdtemp(prefix="nginx-test-"))

    def make(orthanc: OrthancServer) -> NginxServer:
        nginx = NginxServer(orthanc.http_port, folder / str(len(servers)))
        servers.append(nginx)
        try:
            nginx.start()
        except NginxError as error:
            pytest.fail("nginx did not start: %s" % error)
        return nginx

    yield make
    for nginx in servers:
        nginx.stop()
    shutil.rmtree(folder, ignore_errors=True)


def _authenticated(make_orthanc: MakeOrthanc) -> OrthancServer:
    return make_orthanc(
        cached=True, AuthenticationEnabled=True, RegisteredUsers={"alice": "secret"}
    )


def _get(
    nginx: NginxServer, uri: str, *header_sets: Optional[Mapping[str, str]]
) -> Response:
    headers: dict[str, str] = {}
    for extra in header_sets:
        headers.update(extra or {})
    return nginx.request("GET", uri, headers=headers)


def _cache_status(response: Response) -> Optional[str]:
    return response.header("X-Cache-Status")


def _body_reads(server: OrthancServer, uri: str) -> int:
    """How many times the plugin read a body for ``uri`` (store or Orthanc)."""
    return decisions(server, "hit", uri) + decisions(server, "miss", uri)


def test_an_unauthenticated_client_never_gets_an_authenticated_answer(
    make_orthanc: MakeOrthanc, make_nginx: MakeNginx, test_data: list[Path]
) -> None:
    server = _authenticated(make_orthanc)
    study = upload(server, synthetic_ct_files(test_data), ALICE)
    nginx = make_nginx(server)
    uris = study.uris()

    stored = {uri: _get(nginx, uri, ALICE) for uri in uris}
    again = {uri: _get(nginx, uri, ALICE) for uri in uris}
    wrong = []
    for uri, answer in stored.items():
        conditions = [{}, {"If-None-Match": answer.header("ETag") or "*"}]
        for credentials in REFUSED_CREDENTIALS:
            for condition in conditions:
                refused = _get(nginx, uri, credentials, condition)
                # MISS: not even a stale entry of another client's is found.
                if refused.status != 401 or _cache_status(refused) != "MISS":
                    wrong.append("%s %r: %r" % (uri, credentials, refused))

    assert wrong == []
    for uri in uris:
        assert stored[uri].status == expected_status(uri), uri
        assert again[uri].body == stored[uri].body, uri
        assert again[uri].header("X-Accel-Expires") is None, uri
    # Every authenticated answer is private: stored, but asked to Orthanc again.
    assert {_cache_status(again[u]) for u in uris if again[u].status == 200} == {
        "REVALIDATED"
    }


def test_a_no_cache_route_is_revalidated_with_the_plugin_not_refetched(
    make_orthanc: MakeOrthanc, make_nginx: MakeNginx, test_data: list[Path]
) -> None:
    server = _authenticated(make_orthanc)
    study = upload(server, synthetic_ct_files(test_data), ALICE)
    nginx = make_nginx(server)
    uris = [
        "/studies/%s/shared-tags" % study.study,
        "/studies/%s/instances-tags" % study.study,
        "/series/%s/shared-tags" % study.series,
        "/patients/%s/attachments" % study.patient,
        "/instances/%s/metadata" % study.instance,
        "/studies/%s/archive" % study.study,
    ]

    for uri in uris:
        first = _get(nginx, uri, ALICE)
        reads = _body_reads(server, uri)
        second = _get(nginx, uri, ALICE)

        assert "no-cache" in (first.header("Cache-Control") or ""), uri
        assert [_cache_status(first), _cache_status(second)] == [
            "MISS",
            "REVALIDATED",
        ], uri
        assert second.status == 200 and second.body == first.body, uri
        assert decisions(server, "304", uri) == 1, uri
        assert _body_reads(server, uri) == reads == 1, uri


def test_a_change_in_orthanc_reaches_clients_through_nginx(
    make_orthanc: MakeOrthanc, make_nginx: MakeNginx, test_data: list[Path]
) -> None:
    files = synthetic_ct_files(test_data)
    server = _authenticated(make_orthanc)
    study = upload(server, files[:-1], ALICE)
    plain = make_orthanc()
    upload(plain, files)
    nginx = make_nginx(server)
    uris = [
        "/%s/%s/instances-tags" % (level, study.id_of(level))
        for level in ("patients", "studies", "series")
    ] + ["/studies/%s/shared-tags" % study.study]

    before = {uri: _get(nginx, uri, ALICE) for uri in uris}
    upload(server, files[-1:], ALICE)
    for uri in uris:
        wait_for_new_etag(server, uri, before[uri].header("ETag") or "", ALICE)
    after = {uri: _get(nginx, uri, ALICE) for uri in uris}
    again = {uri: _get(nginx, uri, ALICE) for uri in uris}

    for uri in uris:
        reference = plain.request("GET", uri)
        assert _cache_status(after[uri]) == "EXPIRED", uri
        assert after[uri].status == reference.status == 200, uri
        assert comparable_body(after[uri]) == comparable_body(reference), uri
        assert _cache_status(again[uri]) == "REVALIDATED", uri
        assert again[uri].body == after[uri].body, uri
    for uri in uris[:3]:
        assert after[uri].body != before[uri].body, uri


def _instance_uris(study: Study) -> list[str]:
    return [route_uri(route, "instances", study.instance) for route in IMMUTABLE_ROUTES]


def test_public_instance_content_is_served_by_nginx_without_the_plugin(
    make_orthanc: MakeOrthanc, make_nginx: MakeNginx, test_data: list[Path]
) -> None:
    server = make_orthanc(cached=True)
    study = upload(server, synthetic_ct_files(test_data))
    nginx = make_nginx(server)

    for uri in _instance_uris(study):
        first = _get(nginx, uri)
        log = server.log_text()
        second = _get(nginx, uri)
        third = _get(nginx, uri, {"If-None-Match": first.header("ETag") or ""})

        assert first.header("Cache-Control") == "max-age=604800, public", uri
        assert [_cache_status(first), _cache_status(second)] == ["MISS", "HIT"], uri
        assert second.status == 200 and second.body == first.body, uri
        assert third.status == 304 and _cache_status(third) == "HIT", uri
        assert server.log_text() == log, uri


def test_nginx_keeps_one_variant_per_accept_value(
    make_orthanc: MakeOrthanc, make_nginx: MakeNginx, test_data: list[Path]
) -> None:
    server = make_orthanc(cached=True)
    study = upload(server, synthetic_ct_files(test_data))
    nginx = make_nginx(server)
    uri = "/instances/%s/preview" % study.instance
    png, jpeg = {"Accept": "image/png"}, {"Accept": "image/jpeg"}

    answers = [_get(nginx, uri, accept) for accept in (png, jpeg, png, jpeg)]
    direct = [server.request("GET", uri, headers=accept) for accept in (png, jpeg)]

    assert [_cache_status(answer) for answer in answers] == [
        "MISS",
        "MISS",
        "HIT",
        "HIT",
    ]
    assert [answer.header("Content-Type") for answer in answers] == [
        "image/png",
        "image/jpeg",
    ] * 2
    assert [answer.body for answer in answers] == [d.body for d in direct] * 2
    assert all(answer.header("Vary") == "Accept" for answer in answers)
