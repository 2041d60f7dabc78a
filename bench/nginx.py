"""nginx ``proxy_cache`` in front of plain Orthanc: the mark a cache hit aims at.

The configuration, cache and pid file live in a temporary folder; nginx runs in
the foreground (``daemon off;``) and listens on one loopback port only.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from tests.support.nginx_server import NginxServer

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


class NginxCache(NginxServer):
    """An nginx process caching every 200 of one upstream for 10 minutes."""

    ready_path = "/system"  # through to plain Orthanc

    def __init__(self, upstream_port: int) -> None:
        super().__init__(upstream_port, Path(tempfile.mkdtemp(prefix="bench-nginx-")))

    def config(self) -> str:
        return CONFIG.format(
            folder=self.folder, port=self.port, upstream=self.orthanc_port
        )

    def stop(self) -> None:
        """Stop nginx and remove its folder."""
        super().stop()
        shutil.rmtree(self.folder, ignore_errors=True)
