"""Generated hostile and malformed requests: the plugin answers as Orthanc does.

Hypothesis draws a taken route, an id (real, of another level, deleted,
unknown, very long, control characters, non-ASCII), a query string and request
headers. Each request goes to plain Orthanc and to Orthanc with the plugin;
status, Content-Type, Content-Disposition and body must agree, the plugin must
never answer 500 where Orthanc does not, and its log must gain no traceback.
Afterwards, normal requests still agree: nothing hostile was stored for them.
"""

from __future__ import annotations

import urllib.parse

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orthanc_cache_plugin.routes import ROUTES
from tests.support.orthanc_server import OrthancServer
from tests.support.route_requests import differences, list_resources, route_uri

EXAMPLES = 80
UNKNOWN_ID = "f" * 8 + "-00000000-00000000-00000000-00000000"

ascii_text = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40)
any_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"),
    max_size=60,
)
header_value = st.one_of(
    ascii_text,
    st.sampled_from(["*", "W/", '"', '""', ",,,", 'W/"a", *', "x" * 3000]),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300),
    any_text.map(lambda text: text.encode("utf-8").decode("latin-1", "replace")),
)
headers = st.dictionaries(
    st.sampled_from(
        ["If-None-Match", "If-Modified-Since", "Accept", "Range", "X-Anything"]
    ),
    header_value,
    max_size=3,
)
query = st.lists(
    st.tuples(
        st.sampled_from(["short", "simplify", "full", "quality", "expand", "x", ""]),
        st.one_of(st.just(""), ascii_text, any_text),
    ),
    max_size=4,
).map(
    lambda pairs: "&".join(
        urllib.parse.quote(key, safe="")
        + ("=" + urllib.parse.quote(value) if value else "")
        for key, value in pairs
    )
)


def _id_choices(plain: OrthancServer) -> list[str]:
    resources = list_resources(plain)
    ids = [resources.ids[level][0] for level in ("patients", "studies", "series")]
    return [*ids, *resources.samples[:3], UNKNOWN_ID, "x" * 2000, "..", "%2e%2e", "é"]


def test_generated_hostile_requests_answer_as_plain_orthanc(
    plain_orthanc: OrthancServer, cached_orthanc: OrthancServer
) -> None:
    ids = _id_choices(plain_orthanc)
    log_before = cached_orthanc.log_text()
    seen: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        route=st.sampled_from(ROUTES),
        resource_id=st.sampled_from(ids),
        frame=st.sampled_from(["0", "1", "99", "-1", "abc", "0" * 50]),
        query_string=query,
        request_headers=headers,
    )
    def check(route, resource_id, frame, query_string, request_headers) -> None:  # type: ignore[no-untyped-def]
        level = route.levels[0]
        path = route_uri(route, level, urllib.parse.quote(resource_id), frame)
        if query_string:
            path += "?" + query_string
        plain = plain_orthanc.request("GET", path, headers=request_headers)
        cached = cached_orthanc.request("GET", path, headers=request_headers)
        seen.append(path)

        if cached.status == 304:
            # A conditional request may be answered 304 only for a 200.
            assert plain.status == 200, path
            return
        assert not (cached.status == 500 and plain.status != 500), path
        assert differences(path, plain, cached) == [], request_headers

    check()

    new_log = cached_orthanc.log_text()[len(log_before) :]
    assert len(seen) >= 50
    assert "Traceback" not in new_log
    assert "fault on" not in new_log


def test_normal_requests_after_hostile_ones_still_agree(
    plain_orthanc: OrthancServer, cached_orthanc: OrthancServer
) -> None:
    resources = list_resources(plain_orthanc)
    for route in ROUTES:
        if not route.stored:
            continue
        level = route.levels[0]
        for resource_id in resources.ids[level][:2]:
            path = route_uri(route, level, resource_id)
            plain = plain_orthanc.request("GET", path)
            cached = cached_orthanc.request("GET", path)
            assert differences(path, plain, cached) == []
