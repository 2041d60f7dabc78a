"""The table of taken routes."""

import re
from typing import List, Optional, Tuple

import pytest

from orthanc_cache_plugin.routes import (
    JSON,
    RAW_FRAME_TYPES,
    ROUTES,
    ROUTES_BY_NAME,
    Route,
)

ROUTE_IDS = [route.name for route in ROUTES]


def matching(uri: str) -> List[Tuple[str, Tuple[Optional[str], ...]]]:
    """Every route whose regex matches the whole URI, with its groups.

    Orthanc matches a registered regex against the whole URI, hence fullmatch.
    """
    found = []
    for route in ROUTES:
        match = re.fullmatch(route.regex, uri)
        if match:
            found.append((route.name, match.groups()))
    return found


def example_uri(route: Route, level: str) -> str:
    return "/%s/some-id/%s" % (level, route.path.replace("{frame}", "7"))


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_every_regex_compiles(route: Route) -> None:
    re.compile(route.regex)


def test_route_names_are_unique() -> None:
    assert len(ROUTE_IDS) == len(set(ROUTE_IDS))
    assert set(ROUTES_BY_NAME) == set(ROUTE_IDS)


@pytest.mark.parametrize(
    "route", [route for route in ROUTES if route.stored], ids=lambda r: r.name
)
def test_every_stored_route_is_json(route: Route) -> None:
    assert route.content_type == JSON


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("/studies/abc/shared-tags", [("shared-tags", ("studies", "abc"))]),
        ("/patients/p1/instances-tags", [("instances-tags", ("patients", "p1"))]),
        ("/series/s.1/archive", [("archive", ("series", "s.1"))]),
        ("/instances/x/tags", [("tags", ("instances", "x"))]),
        ("/instances/x/frames", [("frames", ("instances", "x"))]),
        ("/instances/x/frames/0/raw", [("frames/raw", ("instances", "x", "0"))]),
        (
            "/instances/x/frames/0/raw.gz",
            [("frames/raw.gz", ("instances", "x", "0"))],
        ),
        (
            "/instances/x/frames/12/image-uint16",
            [("frames/image-uint16", ("instances", "x", "12"))],
        ),
        ("/studies/abc/shared-tags/extra", []),
        ("/studies/abc/shared-tags/", []),
        ("studies/abc/shared-tags", []),
        ("/studies/abc/def/shared-tags", []),
        ("/studies//shared-tags", []),
        ("/studies/abc/shared-tagsx", []),
        ("/instances/x/shared-tags", []),
        ("/studies/abc/tags", []),
        ("/instances/x/frames/0/rawXgz", []),
        ("/instances/x/frames/0/raw.gz/more", []),
        ("/instances/x/frames//raw", []),
        ("/instances/x/frames/0/1/raw", []),
        ("/tools/now", []),
    ],
)
def test_uris_match_exactly_one_route_or_none(
    uri: str, expected: List[Tuple[str, Tuple[str, ...]]]
) -> None:
    assert matching(uri) == expected


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_each_route_takes_its_own_uris_only(route: Route) -> None:
    for level in route.levels:
        groups: Tuple[str, ...] = (level, "some-id")
        if "{frame}" in route.path:
            groups += ("7",)

        assert matching(example_uri(route, level)) == [(route.name, groups)]


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_the_regex_has_level_id_and_frame_groups(route: Route) -> None:
    expected = 3 if "{frame}" in route.path else 2
    assert re.compile(route.regex).groups == expected


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_routes_varying_on_accept_are_the_image_routes(route: Route) -> None:
    assert route.varies_on_accept is (route.content_type == "image")


def test_raw_frame_types_are_image_types() -> None:
    assert all(value.startswith("image/") for value in RAW_FRAME_TYPES.values())
