"""HTTP caching headers and conditional requests on a real Orthanc with the plugin.

Every 200 of a taken route carries Date, Last-Modified, ETag, Cache-Control,
Expires (and Vary on image routes); a conditional GET that matches them is
answered 304 with the same validators, and only where the answer would be 200.
"""

from __future__ import annotations

import base64
import calendar
import re
import time
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Mapping, Optional

import pytest

from orthanc_cache_plugin.routes import INSTANCE_LEVEL, ROUTES, ROUTES_BY_NAME, Route
from tests.support.orthanc_server import MakeOrthanc, OrthancServer, Response
from tests.support.route_requests import Resources, list_resources, route_uri

ROUTE_IDS = [route.name for route in ROUTES]
WEEK = 604800
NO_CACHE = "no-cache, public"
MAX_AGE = "max-age=604800, public"
LITERAL_POLICY = "max-age=604800, s-maxage=604800, public"

IMF_FIXDATE = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
    r"[0-9]{2}:[0-9]{2}:[0-9]{2} GMT$"
)
STRONG_ETAG = re.compile(r'^"[\x21\x23-\x7e]+"$')
WEAK_ETAG = re.compile(r'^W/"[\x21\x23-\x7e]+"$')
JPEG2000 = "1.2.840.10008.1.2.4.91"
PDF_CLASS = "1.2.840.10008.5.1.4.1.1.104.1"
SETTLE_ATTEMPTS = 20
CACHING_HEADERS = ("ETag", "Last-Modified", "Cache-Control", "Vary")


@pytest.fixture(scope="module")
def resources(cached_orthanc: OrthancServer) -> Resources:
    return list_resources(cached_orthanc)


def _expected_policy(route: Route) -> str:
    # Instance content cannot change under its id; the rest can.
    if route.levels == INSTANCE_LEVEL and route.name != "metadata":
        return MAX_AGE
    return NO_CACHE


def _seconds(http_date: Optional[str]) -> int:
    assert http_date is not None and IMF_FIXDATE.match(http_date), http_date
    return calendar.timegm(parsedate_to_datetime(http_date).utctimetuple())


def _only(response: Response, name: str) -> str:
    values = response.header_list(name)
    assert len(values) == 1, (name, values)
    return values[0]


def _answering_uris(
    server: OrthancServer, route: Route, resources: Resources
) -> list[str]:
    """One URI per level of ``route`` that the server answers with 200."""
    uris = []
    for level in route.levels:
        candidates = resources.samples if level == "instances" else resources.ids[level]
        for resource_id in candidates:
            uri = route_uri(route, level, resource_id)
            if server.request("GET", uri).status == 200:
                uris.append(uri)
                break
    assert len(uris) == len(route.levels), route.name
    return uris


def _instance_with(server: OrthancServer, resources: Resources, key: str) -> str:
    for instance_id in resources.samples:
        found = server.get_json("/instances/%s/metadata?expand" % instance_id)
        if key in (found.get("TransferSyntax"), found.get("SopClassUid")):
            return instance_id
    raise AssertionError("no instance with %s in the test data" % key)


def _check_caching_headers(route: Route, answer: Response, policy: str) -> None:
    date = _seconds(_only(answer, "Date"))
    last_modified = _seconds(_only(answer, "Last-Modified"))
    etag = _only(answer, "ETag")
    lifetime = WEEK if "max-age" in policy else 0

    assert last_modified <= date
    assert (WEAK_ETAG if route.weak else STRONG_ETAG).match(etag), etag
    assert _only(answer, "Cache-Control") == policy
    assert _seconds(_only(answer, "Expires")) == date + lifetime
    assert answer.header_list("Vary") == (["Accept"] if route.formats else [])


# Headers of a 200.


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_every_200_carries_the_caching_headers(
    route: Route, resources: Resources, cached_orthanc: OrthancServer
) -> None:
    for uri in _answering_uris(cached_orthanc, route, resources):
        for _ in ("miss", "hit"):
            answer = cached_orthanc.request("GET", uri)

            assert answer.status == 200, uri
            _check_caching_headers(route, answer, _expected_policy(route))


def test_weak_etags_are_exactly_those_of_archive_and_media() -> None:
    assert {route.name for route in ROUTES if route.weak} == {"archive", "media"}


def test_jpeg_and_png_of_one_preview_have_different_etags(
    resources: Resources, cached_orthanc: OrthancServer
) -> None:
    uri = "/instances/%s/preview" % resources.samples[0]

    png = cached_orthanc.request("GET", uri, headers={"Accept": "image/png"})
    jpeg = cached_orthanc.request("GET", uri, headers={"Accept": "image/jpeg"})
    again = cached_orthanc.request("GET", uri, headers={"Accept": "image/png"})

    assert (png.status, jpeg.status) == (200, 200)
    assert png.header("ETag") != jpeg.header("ETag")
    assert again.header("ETag") == png.header("ETag")


# Conditional requests.


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_conditional_requests(
    route: Route, resources: Resources, cached_orthanc: OrthancServer
) -> None:
    uri = _answering_uris(cached_orthanc, route, resources)[0]
    first = _settled(cached_orthanc, uri)
    etag = _only(first, "ETag")
    last_modified = _only(first, "Last-Modified")
    other_form = etag[2:] if etag.startswith("W/") else "W/" + etag
    earlier = time.strftime(
        "%a, %d %b %Y %H:%M:%S GMT", time.gmtime(_seconds(last_modified) - 1)
    )

    def status(headers: Mapping[str, str]) -> int:
        return cached_orthanc.request("GET", uri, headers=headers).status

    assert status({"If-None-Match": '"other", ' + etag}) == 304
    assert status({"If-None-Match": other_form}) == 304
    assert status({"If-None-Match": '"other"'}) == 200
    assert status({"If-None-Match": "*"}) == 304
    assert status({"If-Modified-Since": last_modified}) == 304
    assert status({"If-Modified-Since": _rfc850(last_modified)}) == 304
    assert status({"If-Modified-Since": _asctime(last_modified)}) == 304
    assert status({"If-Modified-Since": earlier}) == 200
    # RFC 9110 13.2.2: If-None-Match is evaluated instead of If-Modified-Since.
    both = {"If-None-Match": '"other"', "If-Modified-Since": last_modified}
    assert status(both) == 200


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_304_carries_the_validators_of_the_200(
    route: Route, resources: Resources, cached_orthanc: OrthancServer
) -> None:
    uri = _answering_uris(cached_orthanc, route, resources)[0]
    full = _settled(cached_orthanc, uri)

    answer = cached_orthanc.request(
        "GET", uri, headers={"If-None-Match": _only(full, "ETag")}
    )

    assert answer.status == 304
    assert answer.body == b""
    for name in CACHING_HEADERS:
        assert answer.header_list(name) == full.header_list(name), name
    policy = _only(answer, "Cache-Control")
    lifetime = WEEK if "max-age" in policy else 0
    date = _seconds(_only(answer, "Date"))
    assert _seconds(_only(answer, "Expires")) == date + lifetime


def test_star_on_the_undecodable_preview_is_415(
    resources: Resources, cached_orthanc: OrthancServer
) -> None:
    uri = "/instances/%s/preview" % _instance_with(cached_orthanc, resources, JPEG2000)

    answers = [
        cached_orthanc.request("GET", uri, headers={"If-None-Match": "*"})
        for _ in range(2)
    ]

    assert [(answer.status, answer.body) for answer in answers] == [(415, b"")] * 2


def test_star_on_the_pdf_of_a_non_pdf_instance_is_404(
    resources: Resources, cached_orthanc: OrthancServer
) -> None:
    pdf = _instance_with(cached_orthanc, resources, PDF_CLASS)
    other = next(instance for instance in resources.samples if instance != pdf)
    star = {"If-None-Match": "*"}

    found = cached_orthanc.request("GET", "/instances/%s/pdf" % pdf, headers=star)
    missing = cached_orthanc.request("GET", "/instances/%s/pdf" % other, headers=star)

    assert found.status == 304
    assert (missing.status, missing.body) == (404, b"")


def test_unreadable_dates_give_200(
    resources: Resources, cached_orthanc: OrthancServer
) -> None:
    uri = "/instances/%s/tags" % resources.samples[0]
    cached_orthanc.request("GET", uri)

    for value in ("garbage", "Sun, 06 Nov 1994 08:49:37", ""):
        answer = cached_orthanc.request(
            "GET", uri, headers={"If-Modified-Since": value}
        )
        assert answer.status == 200, value


def _settled(server: OrthancServer, uri: str) -> Response:
    """GET ``uri`` once its Last-Modified is before the Date of the answer.

    Within the second of a change, the plugin rounds the version's time up
    and shows Last-Modified no later than Date: an If-Modified-Since copied
    from it matches only from the next second on (a 200 until then is right).
    """
    for _ in range(SETTLE_ATTEMPTS):
        answer = server.request("GET", uri)
        if _seconds(answer.header("Last-Modified")) < _seconds(answer.header("Date")):
            return answer
        time.sleep(0.25)
    raise AssertionError("%s: Last-Modified stays at Date" % uri)


def _rfc850(imf_fixdate: str) -> str:
    moment = time.gmtime(_seconds(imf_fixdate))
    return time.strftime("%A, %d-%b-%y %H:%M:%S GMT", moment)


def _asctime(imf_fixdate: str) -> str:
    moment = time.gmtime(_seconds(imf_fixdate))
    return "%s %2d %s" % (
        time.strftime("%a %b", moment),
        moment.tm_mday,
        time.strftime("%H:%M:%S %Y", moment),
    )


# Policies from the configuration.


def _upload(server: OrthancServer, path: Path, headers: Mapping[str, str]) -> str:
    answer = server.request(
        "POST", "/instances", body=path.read_bytes(), headers=headers
    )
    assert answer.status == 200, answer.body
    return str(answer.json()["ID"])


def test_authentication_makes_answers_private(
    make_orthanc: MakeOrthanc, test_data: list[Path]
) -> None:
    server = make_orthanc(
        cached=True, AuthenticationEnabled=True, RegisteredUsers={"u": "p"}
    )
    auth = {"Authorization": "Basic " + base64.b64encode(b"u:p").decode()}
    instance_id = _upload(server, test_data[0], auth)

    tags = server.request("GET", "/instances/%s/tags" % instance_id, headers=auth)
    study = server.request("GET", "/instances/%s/study" % instance_id, headers=auth)
    study_id = study.json()["ID"]
    shared = server.request("GET", "/studies/%s/shared-tags" % study_id, headers=auth)

    assert tags.header_list("Cache-Control") == ["max-age=604800, private"]
    assert shared.header_list("Cache-Control") == ["no-cache, private"]


def test_private_visibility_option(
    make_orthanc: MakeOrthanc, test_data: list[Path]
) -> None:
    server = make_orthanc(cached=True, CachePlugin={"Visibility": "private"})
    instance_id = _upload(server, test_data[0], {})

    tags = server.request("GET", "/instances/%s/tags" % instance_id)
    metadata = server.request("GET", "/instances/%s/metadata" % instance_id)

    assert tags.header_list("Cache-Control") == ["max-age=604800, private"]
    assert metadata.header_list("Cache-Control") == ["no-cache, private"]


def test_literal_cache_control_applies_to_every_route(
    make_orthanc: MakeOrthanc, test_data: list[Path]
) -> None:
    server = make_orthanc(cached=True, CachePlugin={"CacheControl": LITERAL_POLICY})
    instance_id = _upload(server, test_data[0], {})
    study_id = server.get_json("/instances/%s/study" % instance_id)["ID"]
    uris = [
        "/instances/%s/tags" % instance_id,
        "/instances/%s/preview" % instance_id,
        route_uri(ROUTES_BY_NAME["shared-tags"], "studies", study_id),
    ]

    for uri in uris:
        answer = server.request("GET", uri)

        assert answer.status == 200, uri
        assert answer.header_list("Cache-Control") == [LITERAL_POLICY]
        date = _seconds(_only(answer, "Date"))
        assert _seconds(_only(answer, "Expires")) == date + WEEK
