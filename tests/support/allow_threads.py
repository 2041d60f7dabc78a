"""A pytest plugin: every Orthanc the tests start gets Python's AllowThreads.

With ``"Python": {"AllowThreads": true}``, Python plugin 4.3 and later release
the GIL during every call into Orthanc (docs/performance.md). To run tests that
way, on Debian 13's Orthanc (plugin 5.0)::

    ORTHANC_RUNTIME=debian13 .venv/bin/python -m pytest \\
        -p tests.support.allow_threads tests/test_transparency.py

Plugin 4.0 (Debian 12's Orthanc 1.10.1) does not know the option and ignores
it. A test that sets its own ``"Python"`` section keeps its own value.
"""

from __future__ import annotations

from typing import Any

from tests.support.orthanc_server import OrthancServer

_configuration = OrthancServer.config


def _with_allow_threads(server: OrthancServer) -> dict[str, Any]:
    config = _configuration(server)
    python = dict(config.get("Python") or {})
    python.setdefault("AllowThreads", True)
    config["Python"] = python
    return config


OrthancServer.config = _with_allow_threads  # type: ignore[method-assign, assignment]


def pytest_report_header() -> str:
    return 'every Orthanc started with "Python": {"AllowThreads": true}'
