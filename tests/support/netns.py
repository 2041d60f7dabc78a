"""Move the current process into a private network namespace.

Orthanc 1.10.1 has no option to choose the address it binds to: its HTTP and
DICOM servers listen on every interface. Inside a new network namespace the
only interface is loopback, so a server started from the test process (which
inherits the namespace) is reachable from 127.0.0.1 and from nowhere else.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct

CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

_isolated = False


class NetworkIsolationError(RuntimeError):
    """The process could not get a private network namespace."""


def isolate_network() -> None:
    """Enter a new network namespace with only loopback up (idempotent).

    :raises NetworkIsolationError: when unshare(2) is refused (not root, or a
        sandbox that forbids namespaces).
    """
    global _isolated
    if _isolated:
        return

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise NetworkIsolationError(
            f"unshare(CLONE_NEWNET) failed: {os.strerror(errno)}"
        )

    _bring_loopback_up()
    _isolated = True


def _bring_loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        answer = fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, request)
        flags = struct.unpack("16sH14x", answer)[1]
        request = struct.pack("16sH14x", b"lo", flags | IFF_UP)
        fcntl.ioctl(sock.fileno(), SIOCSIFFLAGS, request)
