"""docs/routes.md is the rendering of the route table."""

from pathlib import Path

from orthanc_cache_plugin.routes import ROUTES
from orthanc_cache_plugin.routes_doc import render

DOC = Path(__file__).resolve().parent.parent / "docs" / "routes.md"


def test_routes_doc_is_up_to_date() -> None:
    assert DOC.read_text() == render(), "run: python -m orthanc_cache_plugin.routes_doc"


def test_every_route_has_a_row() -> None:
    text = DOC.read_text()
    for route in ROUTES:
        assert "| `%s` |" % route.path in text
