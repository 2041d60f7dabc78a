"""A request that Orthanc would refuse is refused, cache or not.

Orthanc checks credentials and runs authorization filters before any REST
callback, the plugin's included: these tests show it on every taken route,
before the entry is cached, once it is, and once the warm-up stored it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping, Optional

from orthanc_cache_plugin.routes import ROUTES
from tests.support.orthanc_server import MakeOrthanc, OrthancServer
from tests.support.plugin_log import decisions, wait_for_log
from tests.support.study_routes import (
    Study,
    basic_auth,
    expected_status,
    synthetic_ct_files,
    upload,
)

ALICE = basic_auth("alice", "secret")
REFUSED_CREDENTIALS: tuple[Mapping[str, str], ...] = (
    {},
    basic_auth("alice", "wrong"),
    basic_auth("mallory", "secret"),
    {"Authorization": "Bearer secret"},
)
ADMIN = {"X-Role": "admin"}
NOT_ADMIN: tuple[Mapping[str, str], ...] = ({}, {"X-Role": "viewer"})
STORED_ROUTES = tuple(route.path for route in ROUTES if route.stored)
WARMED_ROUTES = ("shared-tags", "instances-tags")  # the default WarmUpRoutes
POST_ROUTES = tuple(route.path for route in ROUTES if "POST" in route.methods)

FILTER_SCRIPT = """\
import json

import orthanc
from orthanc_cache_plugin import enable_cache_plugin

PROTECTED_IDS = {protected!r}

enable_cache_plugin()


def protected_ids():
    try:
        with open(PROTECTED_IDS) as listing:
            return set(json.load(listing))
    except FileNotFoundError:
        return set()


def allow(uri, **request):
    if request.get("headers", {{}}).get("x-role") == "admin":
        return True
    parts = uri.split("/")
    return len(parts) < 3 or parts[2] not in protected_ids()


orthanc.RegisterIncomingHttpRequestFilter(allow)
"""


def _plugin_lines(server: OrthancServer, uri: str) -> int:
    """How many decisions (hit, miss, 304, bypass...) the plugin logged on uri."""
    pattern = r"cache-plugin: \S+ %s(?:[: ]|\n)" % re.escape(uri)
    return len(re.findall(pattern, server.log_text()))


def _get(
    server: OrthancServer, uri: str, *header_sets: Optional[Mapping[str, str]]
) -> Any:
    headers: dict[str, str] = {}
    for extra in header_sets:
        headers.update(extra or {})
    return server.request("GET", uri, headers=headers)


def _refusals(
    server: OrthancServer,
    uris: list[str],
    header_sets: tuple[Mapping[str, str], ...],
    refused: int,
    extra: Optional[Mapping[str, str]] = None,
) -> list[str]:
    """Describe every request of ``uris`` x ``header_sets`` not answered ``refused``."""
    wrong = []
    for uri in uris:
        for headers in header_sets:
            response = _get(server, uri, headers, extra)
            if response.status != refused or response.header("ETag") is not None:
                wrong.append("%s %r: %d" % (uri, headers, response.status))
    return wrong


def _conditional_refusals(
    server: OrthancServer,
    validators: dict[str, tuple[str, str]],
    header_sets: tuple[Mapping[str, str], ...],
    refused: int,
) -> list[str]:
    wrong = []
    for uri, (etag, last_modified) in validators.items():
        for condition in (
            {"If-None-Match": etag},
            {"If-Modified-Since": last_modified},
        ):
            wrong += _refusals(server, [uri], header_sets, refused, condition)
    return wrong


def _fetch_allowed(
    server: OrthancServer, uris: list[str], headers: Mapping[str, str]
) -> dict[str, tuple[str, str]]:
    """GET every URI as an allowed client; return the 200s' validators."""
    validators = {}
    for uri in uris:
        response = _get(server, uri, headers)
        assert response.status == expected_status(uri), (uri, response.status)
        if response.status == 200:
            validators[uri] = (
                response.header("ETag"),
                response.header("Last-Modified"),
            )
    return validators


# Orthanc's own authentication.


def _authenticated_server(make_orthanc: MakeOrthanc, **config: Any) -> OrthancServer:
    return make_orthanc(
        cached=True,
        AuthenticationEnabled=True,
        RegisteredUsers={"alice": "secret"},
        **config,
    )


def test_every_taken_route_refuses_missing_or_wrong_credentials(
    make_orthanc: MakeOrthanc, test_data: list[Path]
) -> None:
    server = _authenticated_server(make_orthanc)
    study = upload(server, synthetic_ct_files(test_data), ALICE)
    uris = study.uris()

    refused = _refusals(server, uris, REFUSED_CREDENTIALS, 401)
    posts = [
        server.request("POST", "/studies/%s/%s" % (study.study, path), body=b"{}")
        for path in POST_ROUTES
    ]

    assert refused == []
    assert [post.status for post in posts] == [401] * len(POST_ROUTES)
    assert all(post.header("WWW-Authenticate") for post in posts)
    assert sum(_plugin_lines(server, uri) for uri in uris) == 0


def test_a_cached_answer_still_needs_valid_credentials(
    make_orthanc: MakeOrthanc, test_data: list[Path]
) -> None:
    server = _authenticated_server(make_orthanc)
    study = upload(server, synthetic_ct_files(test_data), ALICE)
    uris = study.uris()

    _fetch_allowed(server, uris, ALICE)
    validators = _fetch_allowed(server, uris, ALICE)
    stored = [uri for uri in uris if uri.endswith(STORED_ROUTES)]

    assert all(decisions(server, "hit", uri) == 1 for uri in stored)
    assert _refusals(server, uris, REFUSED_CREDENTIALS, 401) == []
    assert _conditional_refusals(server, validators, REFUSED_CREDENTIALS, 401) == []
    for uri, (etag, _) in validators.items():
        assert _get(server, uri, ALICE, {"If-None-Match": etag}).status == 304


def test_authenticated_answers_are_private(
    make_orthanc: MakeOrthanc, test_data: list[Path]
) -> None:
    server = _authenticated_server(make_orthanc)
    study = upload(server, synthetic_ct_files(test_data), ALICE)

    policies = {}
    for uri in study.uris():
        response = _get(server, uri, ALICE)
        if response.status == 200:
            policies[uri] = response.header_list("Cache-Control")

    assert len(policies) == len(study.uris()) - 1  # all but the PDF
    for uri, policy in policies.items():
        assert len(policy) == 1 and "private" in policy[0], (uri, policy)
        assert "public" not in policy[0], (uri, policy)


def test_a_warmed_answer_still_needs_valid_credentials(
    make_orthanc: MakeOrthanc, test_data: list[Path]
) -> None:
    server = _authenticated_server(make_orthanc, StableAge=1)
    study = upload(server, synthetic_ct_files(test_data), ALICE)
    uris = ["/studies/%s/%s" % (study.study, path) for path in WARMED_ROUTES]
    during: list[str] = []

    # Asked again and again while the study becomes stable and is warmed.
    wait_for_log(
        server,
        "cache-plugin: warmed studies %s" % study.study,
        lambda: during.extend(_refusals(server, uris, REFUSED_CREDENTIALS, 401)),
    )
    after = _refusals(server, uris, REFUSED_CREDENTIALS, 401)
    misses = [decisions(server, "miss", uri) for uri in uris]
    validators = _fetch_allowed(server, uris, ALICE)

    assert during == [] and after == []
    assert [decisions(server, "hit", uri) for uri in uris] == [1, 1]
    assert [decisions(server, "miss", uri) for uri in uris] == misses
    assert _conditional_refusals(server, validators, REFUSED_CREDENTIALS, 401) == []


# An authorization filter in the same script as the plugin.


def _filtered_server(
    make_orthanc: MakeOrthanc, tmp_path: Path, **config: Any
) -> tuple[OrthancServer, Path]:
    listing = tmp_path / "protected-ids.json"
    script = tmp_path / "filtered.py"
    script.write_text(FILTER_SCRIPT.format(protected=str(listing)))
    server = make_orthanc(cached=True, script=script, **config)
    return server, listing


def _protect(server: OrthancServer, study: Study, listing: Path) -> None:
    instances = server.get_json("/studies/%s/instances" % study.study)
    ids = sorted(study.ids | {instance["ID"] for instance in instances})
    listing.write_text(json.dumps(ids))


def _other_study(server: OrthancServer, test_data: list[Path]) -> Study:
    return upload(server, [p for p in test_data if p.name == "CT_small.dcm"])


def test_a_filtered_study_is_refused_on_every_route_cached_or_not(
    make_orthanc: MakeOrthanc, test_data: list[Path], tmp_path: Path
) -> None:
    server, listing = _filtered_server(make_orthanc, tmp_path)
    study = upload(server, synthetic_ct_files(test_data))
    _protect(server, study, listing)
    uris = study.uris()

    before = _refusals(server, uris, NOT_ADMIN, 403)
    untouched = sum(_plugin_lines(server, uri) for uri in uris)
    _fetch_allowed(server, uris, ADMIN)
    validators = _fetch_allowed(server, uris, ADMIN)
    stored = [uri for uri in uris if uri.endswith(STORED_ROUTES)]

    assert before == [] and untouched == 0
    assert all(decisions(server, "hit", uri) == 1 for uri in stored)
    assert _refusals(server, uris, NOT_ADMIN, 403) == []
    assert _conditional_refusals(server, validators, NOT_ADMIN, 403) == []


def test_a_warmed_filtered_study_is_still_refused(
    make_orthanc: MakeOrthanc, test_data: list[Path], tmp_path: Path
) -> None:
    server, listing = _filtered_server(make_orthanc, tmp_path, StableAge=1)
    study = upload(server, synthetic_ct_files(test_data))
    _protect(server, study, listing)
    uris = ["/studies/%s/%s" % (study.study, path) for path in WARMED_ROUTES]
    during: list[str] = []

    wait_for_log(
        server,
        "cache-plugin: warmed studies %s" % study.study,
        lambda: during.extend(_refusals(server, uris, NOT_ADMIN, 403)),
    )
    after = _refusals(server, uris, NOT_ADMIN, 403)
    validators = _fetch_allowed(server, uris, ADMIN)

    assert during == [] and after == []
    assert [decisions(server, "hit", uri) for uri in uris] == [1, 1]
    assert _conditional_refusals(server, validators, NOT_ADMIN, 403) == []


def test_other_studies_pass_the_filter_and_private_visibility_applies(
    make_orthanc: MakeOrthanc, test_data: list[Path], tmp_path: Path
) -> None:
    server, listing = _filtered_server(
        make_orthanc, tmp_path, CachePlugin={"Visibility": "private"}
    )
    study = upload(server, synthetic_ct_files(test_data))
    other = _other_study(server, test_data)
    _protect(server, study, listing)

    _fetch_allowed(server, study.uris(), ADMIN)
    answers = {uri: _get(server, uri, NOT_ADMIN[1]) for uri in other.uris()}

    assert _refusals(server, study.uris(), NOT_ADMIN, 403) == []
    for uri, response in answers.items():
        assert response.status == expected_status(uri), (uri, response.status)
        if response.status == 200:
            assert "private" in (response.header("Cache-Control") or ""), uri
