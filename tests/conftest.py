"""Fixtures that start real Orthanc servers.

A missing Orthanc, Python plugin or sample file fails the tests that need them:
they are never skipped, so a machine that cannot run them cannot pass.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

import pytest

from tests.support.dicom_data import (
    MissingTestDataError,
    generate_test_study,
    sample_files,
)
from tests.support.netns import NetworkIsolationError, isolate_network
from tests.support.orthanc_runtime import (
    RuntimeSetupError,
    chroot_runtime,
    chroot_selected,
    default_shared_folders,
)
from tests.support.orthanc_server import (
    REPO_ROOT,
    MakeOrthanc,
    OrthancError,
    OrthancServer,
    check_installation,
)

EXAMPLE_SCRIPT = REPO_ROOT / "example.py"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session", autouse=True)
def orthanc_chroot_mounts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """With ORTHANC_RUNTIME=debian13, share the repo and temp dirs with the chroot.

    Done first, while the test process has no threads yet (a mount namespace
    needs that); undone at the end of the session, whatever happened. A chroot
    that is missing or cannot be prepared is reported by the tests that start
    Orthanc (``OrthancServer.start`` tries again and fails with the cause).
    """
    if not chroot_selected():
        yield
        return
    runtime = chroot_runtime()
    basetemp = tmp_path_factory.getbasetemp()
    if runtime.check(need_python_plugin=True) is None:
        with contextlib.suppress(RuntimeSetupError):
            runtime.prepare([*default_shared_folders(REPO_ROOT), basetemp])
    try:
        yield
    finally:
        runtime.release()


@pytest.fixture(scope="session")
def loopback_only() -> None:
    """Put the test process in a private network namespace (loopback only)."""
    try:
        isolate_network()
    except NetworkIsolationError as error:
        pytest.fail(f"cannot isolate the Orthanc servers on loopback: {error}")


@pytest.fixture(scope="session")
def test_data(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Sample files plus the 40-slice 64x64 synthetic CT study (seed 0)."""
    folder = tmp_path_factory.mktemp("dicom")
    try:
        files = sample_files(folder)
    except MissingTestDataError as error:
        pytest.fail(str(error))
    return files + generate_test_study(folder / "ct")


def _require_orthanc(need_python_plugin: bool) -> None:
    problem = check_installation(need_python_plugin)
    if problem is not None:
        pytest.fail(f"Orthanc is needed for these tests: {problem}")


def _require_example_script() -> None:
    if not EXAMPLE_SCRIPT.is_file():
        pytest.fail(f"the plugin entry script {EXAMPLE_SCRIPT} is missing")


def _cache_config(cache_dir: Path, extra: Mapping[str, Any]) -> dict[str, Any]:
    config = dict(extra)
    section = {"Directory": str(cache_dir)}
    section.update(config.get("CachePlugin", {}))
    config["CachePlugin"] = section
    return config


def _start(server: OrthancServer) -> OrthancServer:
    try:
        server.start()
    except OrthancError as error:
        server.close()
        pytest.fail(f"Orthanc did not start: {error}")
    return server


def _load(server: OrthancServer, files: list[Path]) -> None:
    for path in files:
        server.upload(path)


@pytest.fixture(scope="session")
def plain_orthanc(
    loopback_only: None,
    test_data: list[Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OrthancServer]:
    """Orthanc without any plugin, loaded with ``test_data``."""
    _require_orthanc(need_python_plugin=False)
    workdir = tmp_path_factory.mktemp("plain-orthanc")
    server = _start(OrthancServer(name="plain", workdir=workdir))
    _load(server, test_data)
    yield server
    server.close()


@pytest.fixture(scope="session")
def cached_orthanc(
    loopback_only: None,
    test_data: list[Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OrthancServer]:
    """Orthanc running ``example.py`` (the cache plugin), same data as plain."""
    _require_orthanc(need_python_plugin=True)
    _require_example_script()
    workdir = tmp_path_factory.mktemp("cached-orthanc")
    config = _cache_config(workdir / "cache", {})
    server = OrthancServer(
        script=EXAMPLE_SCRIPT, config=config, name="cached", workdir=workdir
    )
    _start(server)
    _load(server, test_data)
    yield server
    server.close()


@pytest.fixture
def make_orthanc(
    loopback_only: None,
    test_data: list[Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[MakeOrthanc]:
    """Factory for servers of one test, all stopped at its teardown.

    ``make_orthanc(cached=False, script=None, env=None, load_data=False,
    start=True, **config)``: ``cached=True`` runs ``example.py`` with a fresh
    ``CachePlugin.Directory`` (keys given in ``CachePlugin=...`` are merged in);
    other keyword arguments are Orthanc configuration options.
    """
    servers: list[OrthancServer] = []

    def make(
        cached: bool = False,
        script: Optional[Path] = None,
        env: Optional[Mapping[str, str]] = None,
        load_data: bool = False,
        start: bool = True,
        **config: Any,
    ) -> OrthancServer:
        workdir = tmp_path_factory.mktemp("orthanc")
        if cached:
            _require_example_script()
            script = script or EXAMPLE_SCRIPT
            config = _cache_config(workdir / "cache", config)
        _require_orthanc(need_python_plugin=script is not None)

        server = OrthancServer(script=script, config=config, env=env, workdir=workdir)
        servers.append(server)
        if start:
            _start(server)
        if start and load_data:
            _load(server, test_data)
        return server

    yield make
    for server in servers:
        server.close()
