"""Which Orthanc the integration tests start: Debian 12's, or Debian 13's in a chroot.

``ORTHANC_RUNTIME`` picks it:

- ``debian12`` (the default): the host's ``Orthanc`` (1.10.1, Python plugin 4.0).
- ``debian13``: ``/usr/sbin/Orthanc`` of the chroot made by
  ``scripts/debian13-chroot.sh`` (Orthanc 1.12.7, Python plugin 5.0, Python 3.13),
  in ``DEBIAN13_ROOT`` (default ``/var/cache/orthanc-cache-plugin/debian13``).

A chrooted Orthanc must see the repository (its ``PYTHONPATH``) and the tests'
temporary folders (configuration, storage, cache, log) at the same paths as the
test process. They are bind-mounted into the chroot, together with ``/proc``,
inside a private mount namespace of the test process: the mounts are invisible
to the rest of the machine (two sessions cannot disturb each other, and removing
the chroot can never reach through them) and vanish with the process even if it
is killed. The chroot stays in the test process's network namespace, so the
loopback-only isolation of ``netns`` applies to it too.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Union

RUNTIME_VARIABLE = "ORTHANC_RUNTIME"
DEFAULT_RUNTIME = "debian12"
CHROOT_RUNTIME = "debian13"
ROOT_VARIABLE = "DEBIAN13_ROOT"
DEFAULT_CHROOT = Path("/var/cache/orthanc-cache-plugin/debian13")
# Written by scripts/debian13-chroot.sh once the packages are installed.
READY_STAMP = ".orthanc-packages-complete"
CHROOT_ORTHANC = "/usr/sbin/Orthanc"
CHROOT_PYTHON_PLUGIN = "/usr/share/orthanc/plugins/libOrthancPython.so"
SETUP_HINT = "run scripts/debian13-chroot.sh as root"

CLONE_NEWNS = 0x00020000


class RuntimeSetupError(RuntimeError):
    """The selected Orthanc runtime cannot be used."""


def runtime_name() -> str:
    """Return the value of ``ORTHANC_RUNTIME`` (``debian12`` when unset)."""
    return os.environ.get(RUNTIME_VARIABLE, "").strip() or DEFAULT_RUNTIME


def chroot_selected() -> bool:
    """Return whether the tests run Debian 13's Orthanc in its chroot."""
    return runtime_name() == CHROOT_RUNTIME


def unknown_runtime() -> Optional[str]:
    """Return why ``ORTHANC_RUNTIME`` is not a known runtime, or None."""
    name = runtime_name()
    if name in (DEFAULT_RUNTIME, CHROOT_RUNTIME):
        return None
    return (
        f"{RUNTIME_VARIABLE}={name!r} is unknown: "
        f"use {DEFAULT_RUNTIME} (default) or {CHROOT_RUNTIME}"
    )


@dataclass
class ChrootRuntime:
    """Debian 13's Orthanc, run with ``chroot`` from the test process."""

    root: Path
    mounted: list[Path] = field(default_factory=list)
    namespace_entered: bool = False

    def check(self, need_python_plugin: bool) -> Optional[str]:
        """Return why this chroot cannot run Orthanc, or None when it can."""
        if not (self.root / READY_STAMP).is_file():
            return f"the Debian 13 chroot {self.root} is not ready ({SETUP_HINT})"
        if not self.inside(CHROOT_ORTHANC).is_file():
            return f"{CHROOT_ORTHANC} is missing in {self.root} ({SETUP_HINT})"
        plugin = self.inside(CHROOT_PYTHON_PLUGIN)
        if need_python_plugin and not plugin.is_file():
            return f"{CHROOT_PYTHON_PLUGIN} is missing in {self.root} ({SETUP_HINT})"
        return None

    def inside(self, path: Union[str, Path]) -> Path:
        """Return where the chroot's ``path`` lies on the host."""
        return self.root / Path(path).relative_to("/")

    def view(self, path: Path) -> Optional[Path]:
        """Return where a chrooted Orthanc sees ``path``: None if it does not."""
        path = path.resolve()
        shared = [done for done in self.mounted if not done.is_relative_to(self.root)]
        if any(path.is_relative_to(source) for source in shared):
            return self.inside(path)
        return None

    def command(self, workdir: Path) -> list[str]:
        """Return the command that starts the chroot's Orthanc in ``workdir``.

        ``chroot`` changes directory to the new root; ``env --chdir`` goes back
        to the server's folder, which is mounted at the same path.
        """
        return [
            "chroot",
            str(self.root),
            "/usr/bin/env",
            f"--chdir={workdir}",
            CHROOT_ORTHANC,
        ]

    def prepare(self, shared: Iterable[Path]) -> None:
        """Make ``shared`` folders and ``/proc`` visible in the chroot (idempotent).

        :raises RuntimeSetupError: when the mount namespace or a mount fails.
        """
        self._enter_mount_namespace()
        for source in [Path("/proc"), *shared]:
            self._bind(source.resolve())

    def release(self) -> None:
        """Unmount what ``prepare`` mounted, the last mount first."""
        problems = []
        while self.mounted:
            target = self.mounted.pop()
            result = _run(["umount", "--lazy", str(target)])
            if result is not None:
                problems.append(result)
        if problems:
            raise RuntimeSetupError("; ".join(problems))

    def _enter_mount_namespace(self) -> None:
        if self.namespace_entered:
            return
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWNS) != 0:
            errno = ctypes.get_errno()
            raise RuntimeSetupError(
                f"unshare(CLONE_NEWNS) failed: {os.strerror(errno)} (it needs root "
                "and a process that has not started threads yet)"
            )
        # Without this, mounts would propagate back to the host's namespace.
        problem = _run(["mount", "--make-rprivate", "/"])
        if problem is not None:
            raise RuntimeSetupError(problem)
        self.namespace_entered = True

    def _bind(self, source: Path) -> None:
        target = self.inside(source)
        if target in self.mounted or any(
            source.is_relative_to(done) for done in self.mounted
        ):
            return
        target.mkdir(parents=True, exist_ok=True)
        # A shared source (in this namespace only): what a test mounts under it
        # later (a small tmpfs cache folder) shows in the chroot too, and so
        # does a change of that filesystem (full, read only). The flags of a
        # mount do not propagate (a read-only bind mount): see server_views.
        for command in (
            ["mount", "--bind", str(source), str(source)],
            ["mount", "--make-shared", str(source)],
            ["mount", "--bind", str(source), str(target)],
        ):
            problem = _run(command)
            if problem is not None:
                raise RuntimeSetupError(problem)
        self.mounted.extend([source, target])


def _run(command: list[str]) -> Optional[str]:
    """Run ``command``; return None on success, else what went wrong."""
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode == 0:
        return None
    detail = result.stderr.strip() or f"exit code {result.returncode}"
    return f"{' '.join(command)}: {detail}"


def default_shared_folders(repo_root: Path) -> list[Path]:
    """Return the folders a chrooted Orthanc needs: the repository and the temp dir."""
    return [repo_root, Path(tempfile.gettempdir())]


def server_views(path: Path) -> list[Path]:
    """Return every path at which the tests' Orthanc servers reach ``path``.

    With the Debian 13 runtime, a shared folder is seen in the chroot through a
    bind mount of its own: a later mount under it shows there too, but a flag
    of one mount (read only) does not, and must be set on each view.
    """
    view = chroot_runtime().view(path) if chroot_selected() else None
    return [path] if view is None else [path, view]


_chroot: Optional[ChrootRuntime] = None


def chroot_runtime() -> ChrootRuntime:
    """Return the one ``ChrootRuntime`` of this process."""
    global _chroot
    if _chroot is None:
        root = Path(os.environ.get(ROOT_VARIABLE) or DEFAULT_CHROOT)
        _chroot = ChrootRuntime(root=root)
    return _chroot
