"""A throw-away PostgreSQL server for the shared-database tests.

Debian's ``postgresql`` package provides the binaries; the cluster is made by
``initdb`` in a temporary folder, run as the ``postgres`` user (PostgreSQL
refuses root), and listens on 127.0.0.1 only, on a port the test chooses.
Authentication is ``trust``: nothing but the test process can reach it (it
runs in the tests' private network namespace).
"""

from __future__ import annotations

import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from tests.support.netns import isolate_network
from tests.support.orthanc_server import free_port

BINARIES = Path("/usr/lib/postgresql")
SYSTEM_USER = "postgres"
START_TIMEOUT = 30.0
INDEX_PLUGIN = "/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so"


class PostgresError(RuntimeError):
    """PostgreSQL is missing or did not start."""


def binaries() -> Path:
    """Return the ``bin`` folder of the newest PostgreSQL installed."""
    found = sorted(BINARIES.glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise PostgresError(f"no PostgreSQL under {BINARIES} (run scripts/setup.sh)")
    return found[-1].parent


class PostgresServer:
    """One PostgreSQL cluster on 127.0.0.1, removed when closed."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="orthanc-cache-pg-"))
        self.process: Optional[subprocess.Popen[bytes]] = None
        self._databases = 0

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    def start(self) -> None:
        """Make the cluster and start the server (in the loopback-only net).

        :raises PostgresError: with the tail of the server's log.
        """
        isolate_network()
        bin_dir = binaries()
        user = pwd.getpwnam(SYSTEM_USER)
        self.root.chmod(0o755)  # the postgres user must reach its folder
        self.data.mkdir(mode=0o700)
        shutil.chown(self.data, user.pw_uid, user.pw_gid)
        initdb = [str(bin_dir / "initdb"), "-D", str(self.data), "-U", SYSTEM_USER]
        self._as_postgres([*initdb, "--auth=trust", "--encoding=UTF8", "--no-sync"])
        self.log_path.touch()
        shutil.chown(self.log_path, user.pw_uid, user.pw_gid)
        self.process = self._spawn(bin_dir)
        self._wait_until_ready(bin_dir)

    def create_database(self) -> str:
        """Create an empty database; return its name."""
        self._databases += 1
        name = "orthanc%d" % self._databases
        self._as_postgres([str(binaries() / "createdb"), *self._client_args(), name])
        return name

    def orthanc_section(self, database: str) -> dict[str, Any]:
        """The ``PostgreSQL`` configuration section of an Orthanc node."""
        return {
            "EnableIndex": True,
            "EnableStorage": False,
            "Host": "127.0.0.1",
            "Port": self.port,
            "Database": database,
            "Username": SYSTEM_USER,
            "Password": "",
            "EnableSsl": False,
            "Lock": False,  # several Orthanc nodes on one database
        }

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # "smart" shutdown
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def _spawn(self, bin_dir: Path) -> subprocess.Popen[bytes]:
        command = [str(bin_dir / "postgres"), "-D", str(self.data)]
        command += ["-c", "listen_addresses=127.0.0.1", "-p", str(self.port)]
        command += ["-c", "unix_socket_directories=%s" % self.data]
        command += ["-c", "fsync=off", "-c", "max_connections=200"]
        with open(self.log_path, "ab") as log:
            return subprocess.Popen(
                ["runuser", "-u", SYSTEM_USER, "--", *command],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _wait_until_ready(self, bin_dir: Path) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise PostgresError("PostgreSQL exited:\n" + self._log_tail())
            ready = subprocess.run(
                [str(bin_dir / "pg_isready"), "-q", *self._client_args()],
                check=False,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise PostgresError("PostgreSQL not ready in time:\n" + self._log_tail())

    def _client_args(self) -> list[str]:
        return ["-h", "127.0.0.1", "-p", str(self.port), "-U", SYSTEM_USER]

    def _as_postgres(self, command: list[str]) -> None:
        result = subprocess.run(
            ["runuser", "-u", SYSTEM_USER, "--", *command],
            capture_output=True,
            text=True,
            check=False,
            cwd=str(self.root),
        )
        if result.returncode != 0:
            raise PostgresError(
                "%s failed: %s" % (Path(command[0]).name, result.stderr.strip())
            )

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return "(no log)"
