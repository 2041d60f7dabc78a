"""nginx ``proxy_cache`` in front of plain Orthanc: the mark a cache hit aims at.

The configuration, cache and pid file live in a temporary folder; nginx runs in
the foreground (``daemon off;``) and listens on one loopback port only.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Optional

from tests.support.orthanc_server import free_port, http_request

NGINX_BINARY = "nginx"
START_TIMEOUT = 10.0

CONFIG = """\
daemon off;
user root;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy_temp;
    fastcgi_temp_path {folder}/fastcgi_temp;
    uwsgi_temp_path {folder}/uwsgi_temp;
    scgi_temp_path {folder}/scgi_temp;
    proxy_cache_path {folder}/cache levels=1:2 keys_zone=bench:10m
        max_size=4g inactive=60m use_temp_path=off;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_read_timeout 300s;
            proxy_cache bench;
            proxy_cache_valid 200 10m;
            add_header X-Cache-Status $upstream_cache_status;
        }}
    }}
}}
"""


class NginxCache:
    """An nginx process caching every 200 of one upstream for 10 minutes."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
        self.process: Optional[subprocess.Popen[bytes]] = None

    @property
    def config_path(self) -> Path:
        return self.folder / "nginx.conf"

    def start(self) -> None:
        """Write the configuration, check it, start nginx and wait for its port.

        :raises RuntimeError: nginx is missing, refuses the configuration or
            does not answer in time.
        """
        if shutil.which(NGINX_BINARY) is None:
            raise RuntimeError("nginx is not installed (run scripts/bench.sh)")
        self.config_path.write_text(
            CONFIG.format(
                folder=self.folder, port=self.port, upstream=self.upstream_port
            )
        )
        command = [NGINX_BINARY, "-p", str(self.folder), "-c", str(self.config_path)]
        subprocess.run([*command, "-t", "-q"], check=True)

        with open(self.folder / "stdout.log", "wb") as log:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError("nginx exited: %s" % self.error_log())
            try:
                http_request("127.0.0.1", self.port, "GET", "/system", timeout=5)
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("nginx not ready in %s s" % START_TIMEOUT)

    def error_log(self) -> str:
        path = self.folder / "error.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        """Stop nginx (SIGTERM: fast shutdown) and remove its folder."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> NginxCache:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.stop()
