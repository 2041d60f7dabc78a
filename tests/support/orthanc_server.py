"""Start and drive a real Orthanc process for the tests.

Each server gets its own temporary storage, free ports and log file. Orthanc
1.10.1 listens on every interface (it has no bind-address option), so the test
session first moves itself into a private network namespace (see ``netns``);
``RemoteAccessAllowed`` is false all the same.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Mapping, Optional, Union

from tests.support.netns import isolate_network
from tests.support.orthanc_runtime import (
    RuntimeSetupError,
    chroot_runtime,
    chroot_selected,
    default_shared_folders,
    unknown_runtime,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
ORTHANC_BINARY = "Orthanc"
PYTHON_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancPython.so")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
LOG_TAIL_LINES = 40


class OrthancError(RuntimeError):
    """Orthanc could not be started or answered unexpectedly."""


class Response:
    """One HTTP answer: status, every header (repeats kept) and the body."""

    def __init__(
        self, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header_list(self, name: str) -> list[str]:
        """Return every value of header ``name`` (any case), in order."""
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    def header(self, name: str) -> Optional[str]:
        """Return the first value of header ``name``, or None."""
        values = self.header_list(name)
        return values[0] if values else None

    def json(self) -> Any:
        """Decode the body as JSON."""
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<Response {self.status} {len(self.body)} bytes>"


def http_request(
    host: str,
    port: int,
    method: str,
    path: str,
    body: Optional[bytes] = None,
    headers: Optional[Mapping[str, str]] = None,
    timeout: float = 120.0,
) -> Response:
    """Send one request on a fresh connection and read the whole answer."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        answer = connection.getresponse()
        data = answer.read()
        return Response(answer.status, answer.getheaders(), data)
    finally:
        connection.close()


def free_port() -> int:
    """Return a loopback TCP port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_installation(need_python_plugin: bool) -> Optional[str]:
    """Return why Orthanc cannot run here, or None when it can."""
    # ORTHANC_RUNTIME=debian13: Debian 13's Orthanc in a chroot (orthanc_runtime).
    problem = unknown_runtime()
    if problem is not None:
        return problem
    if chroot_selected():
        return chroot_runtime().check(need_python_plugin)

    if shutil.which(ORTHANC_BINARY) is None:
        return "the Orthanc binary is not on PATH (run scripts/setup.sh)"
    if need_python_plugin and not PYTHON_PLUGIN.is_file():
        return f"the Orthanc Python plugin {PYTHON_PLUGIN} is missing"
    return None


class OrthancServer:
    """A real Orthanc process on loopback with its own temporary storage."""

    def __init__(
        self,
        script: Optional[Union[str, Path]] = None,
        config: Optional[Mapping[str, Any]] = None,
        env: Optional[Mapping[str, str]] = None,
        name: str = "orthanc-test",
        workdir: Optional[Union[str, Path]] = None,
        isolate: bool = True,
    ) -> None:
        self.script = Path(script) if script is not None else None
        self.extra_config = dict(config or {})
        self.extra_env = dict(env or {})
        self.name = name
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="orthanc-test-"))
        self.http_port = free_port()
        self.dicom_port = free_port()
        self.isolate = isolate
        self.hung_on_stop = False
        self.process: Optional[subprocess.Popen[bytes]] = None

    # -- paths and configuration -------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def storage_dir(self) -> Path:
        return self.workdir / "storage"

    @property
    def config_path(self) -> Path:
        return self.workdir / "config.json"

    @property
    def log_path(self) -> Path:
        return self.workdir / "orthanc.log"

    def config(self) -> dict[str, Any]:
        """Return the configuration Orthanc is (or will be) started with."""
        config: dict[str, Any] = {
            "Name": self.name,
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "StorageDirectory": str(self.storage_dir),
            "IndexDirectory": str(self.storage_dir),
            "Plugins": [],
            "StableAge": 2,
        }
        if self.script is not None:
            config["Plugins"] = [str(PYTHON_PLUGIN)]
            config["PythonScript"] = str(self.script)
        config.update(self.extra_config)
        return config

    def environment(self) -> dict[str, str]:
        """Return the environment of the Orthanc process."""
        env = dict(os.environ)
        env.update(self.extra_env)
        paths = [str(REPO_ROOT)]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        return env

    # -- life cycle ----------------------------------------------------------

    def start(self) -> None:
        """Start Orthanc and wait until ``GET /system`` answers.

        Unless ``isolate`` is false, the calling process first moves into a
        private network namespace (see ``netns``), once.

        :raises OrthancError: when Orthanc is missing, dies, or is not ready in
            time; the message ends with the tail of its log.
        :raises NetworkIsolationError: when that namespace cannot be made.
        """
        if self.is_running():
            return
        problem = check_installation(self.script is not None)
        if problem is not None:
            raise OrthancError(problem)
        if self.isolate:
            # Orthanc listens on every interface: keep it on a loopback-only net.
            isolate_network()
        if chroot_selected():
            self._prepare_chroot()

        self.storage_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(self.config(), indent=2))
        self.hung_on_stop = False
        self.process = self._spawn()

        self._wait_until_ready()

    def _prepare_chroot(self) -> None:
        # The chroot's Orthanc needs this server's folder at the same path.
        self.workdir.mkdir(parents=True, exist_ok=True)
        shared = [*default_shared_folders(REPO_ROOT), self.workdir]
        try:
            chroot_runtime().prepare(shared)
        except RuntimeSetupError as error:
            raise OrthancError(f"Debian 13 chroot not prepared: {error}") from None

    def _spawn(self) -> subprocess.Popen[bytes]:
        command = [ORTHANC_BINARY, "--verbose", str(self.config_path)]
        if chroot_selected():
            command[:1] = chroot_runtime().command(self.workdir)
        with open(self.log_path, "ab") as log:
            return subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.environment(),
                cwd=str(self.workdir),
            )

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if not self.is_running():
                raise OrthancError(self._failure("Orthanc exited during start-up"))
            if self._answers():
                return
            time.sleep(0.1)

        self.stop()
        raise OrthancError(self._failure(f"Orthanc not ready in {START_TIMEOUT} s"))

    def _answers(self) -> bool:
        try:
            # 401: up, with authentication on; the tests send credentials.
            return self.request("GET", "/system").status in (200, 401)
        except OSError:
            return False

    def _failure(self, what: str) -> str:
        code = self.process.poll() if self.process is not None else None
        return f"{what} (exit code {code}); log tail:\n{self.log_tail()}"

    def stop(self) -> None:
        """Stop Orthanc: SIGTERM, then SIGKILL after 20 s (``hung_on_stop``)."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.hung_on_stop = True
                process.kill()
                process.wait()
        self.process = None

    def restart(self) -> None:
        """Stop and start again on the same ports and storage."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop Orthanc and remove the temporary directory it owns."""
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> Optional[int]:
        return self.process.pid if self.process is not None else None

    def __enter__(self) -> OrthancServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.close()

    # -- logs ------------------------------------------------------------------

    def log_text(self) -> str:
        """Return everything Orthanc wrote so far (all runs of this server)."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    # -- HTTP ------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: Optional[bytes] = None,
        headers: Optional[Mapping[str, str]] = None,
        timeout: float = 120.0,
    ) -> Response:
        """Send one HTTP request to this Orthanc."""
        return http_request(
            "127.0.0.1", self.http_port, method, path, body, headers, timeout
        )

    def get_json(self, path: str) -> Any:
        """GET ``path`` and return its JSON body, raising unless 200."""
        response = self.request("GET", path)
        if response.status != 200:
            raise OrthancError(f"GET {path} answered {response.status}")
        return response.json()

    def upload(self, data: Union[str, Path, bytes]) -> dict[str, Any]:
        """POST one DICOM file to ``/instances`` and return Orthanc's answer."""
        if not isinstance(data, bytes):
            data = Path(data).read_bytes()
        response = self.request(
            "POST",
            "/instances",
            body=data,
            headers={"Content-Type": "application/dicom"},
        )
        if response.status != 200:
            detail = response.body[:500].decode(errors="replace")
            raise OrthancError(f"upload answered {response.status}: {detail}")
        answer: dict[str, Any] = response.json()
        return answer


# The type of the ``make_orthanc`` fixture (see tests/conftest.py).
MakeOrthanc = Callable[..., OrthancServer]
