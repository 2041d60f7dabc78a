"""Start a real nginx with the recipe of docs/nginx.md in front of one Orthanc.

The recipe is read from the page's ``nginx`` code block; only its ports and
paths are replaced, so the tests run what the page documents. nginx runs in
the foreground (``daemon off;``) with its pid, logs, temporary files and cache
in a test folder, and listens on one loopback port and one Unix socket only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Mapping, Optional

from tests.support.orthanc_server import REPO_ROOT, Response, free_port, http_request

NGINX_BINARY = "nginx"
RECIPE_PAGE = REPO_ROOT / "docs" / "nginx.md"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 20.0

# The documented values that a test run replaces, and what replaces them.
DOC_CACHE_PATH = "/var/cache/nginx/orthanc"
DOC_HOP_SOCKET = "/run/nginx-orthanc.sock"
DOC_ORTHANC = "http://127.0.0.1:8042;"
DOC_LISTEN = "listen 8080;"

WRAPPER = """\
daemon off;
{user}worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy_temp;
    fastcgi_temp_path {folder}/fastcgi_temp;
    uwsgi_temp_path {folder}/uwsgi_temp;
    scgi_temp_path {folder}/scgi_temp;
{recipe}
}}
"""


class NginxError(RuntimeError):
    """nginx is missing, refused its configuration or did not start."""


def documented_recipe(page: Path = RECIPE_PAGE) -> str:
    """Return the first ``nginx`` code block of ``page``."""
    found = re.search(r"^```nginx\n(.*?)^```", page.read_text(), re.M | re.S)
    if found is None:
        raise NginxError("%s has no nginx code block" % page)
    return found.group(1)


def _replace_once(text: str, old: str, new: str) -> str:
    # Each documented value must be there: a page that drifts fails loudly.
    if text.count(old) < 1:
        raise NginxError("the recipe no longer contains %r" % old)
    return text.replace(old, new)


def local_recipe(recipe: str, folder: Path, port: int, orthanc_port: int) -> str:
    """The recipe with this run's cache folder, socket and ports."""
    recipe = _replace_once(recipe, DOC_CACHE_PATH, str(folder / "cache"))
    recipe = _replace_once(recipe, DOC_HOP_SOCKET, str(folder / "hop.sock"))
    recipe = _replace_once(recipe, DOC_ORTHANC, "http://127.0.0.1:%d;" % orthanc_port)
    recipe = _replace_once(recipe, DOC_LISTEN, "listen 127.0.0.1:%d;" % port)

    for listen in re.findall(r"^\s*listen\s+([^;\s]+)", recipe, re.M):
        if not listen.startswith(("127.0.0.1:", "unix:")):
            raise NginxError("the recipe listens on %r, not loopback" % listen)
    return recipe


class NginxServer:
    """A foreground nginx serving the documented recipe in front of Orthanc."""

    # A path that answers once nginx listens.
    ready_path = "/nginx-ready"

    def __init__(self, orthanc_port: int, folder: Path) -> None:
        self.orthanc_port = orthanc_port
        self.folder = Path(folder)
        self.port = free_port()
        self.process: Optional[subprocess.Popen[bytes]] = None

    @property
    def config_path(self) -> Path:
        return self.folder / "nginx.conf"

    def config(self) -> str:
        recipe = local_recipe(
            documented_recipe(), self.folder, self.port, self.orthanc_port
        )
        # Workers of a root master run as "nobody", who cannot enter the
        # test's private temporary folder.
        user = "user root;\n" if os.geteuid() == 0 else ""
        return WRAPPER.format(user=user, folder=self.folder, recipe=recipe)

    def start(self) -> None:
        """Write and check the configuration, start nginx, wait for its port.

        :raises NginxError: nginx is not installed (``scripts/setup.sh``
            installs Debian's ``nginx-light``), refuses the configuration or
            does not answer in time.
        """
        if shutil.which(NGINX_BINARY) is None:
            raise NginxError("nginx is not installed (run scripts/setup.sh)")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config())
        command = [NGINX_BINARY, "-p", str(self.folder), "-c", str(self.config_path)]
        checked = subprocess.run(
            [*command, "-t", "-q"], capture_output=True, text=True, check=False
        )
        if checked.returncode != 0:
            raise NginxError("nginx refused the recipe: %s" % checked.stderr)

        with open(self.folder / "stdout.log", "wb") as log:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise NginxError("nginx exited: %s" % self.error_log())
            try:
                self.request("GET", self.ready_path, timeout=5)
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise NginxError("nginx not ready in %s s" % START_TIMEOUT)

    def error_log(self) -> str:
        path = self.folder / "error.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def request(
        self,
        method: str,
        path: str,
        headers: Optional[Mapping[str, str]] = None,
        body: Optional[bytes] = None,
        timeout: float = 120.0,
    ) -> Response:
        """Send one request to nginx."""
        return http_request(
            "127.0.0.1", self.port, method, path, body, headers, timeout
        )

    def stop(self) -> None:
        """Stop nginx (SIGTERM, then SIGKILL after 20 s)."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.process = None

    def __enter__(self) -> NginxServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.stop()
