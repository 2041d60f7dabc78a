"""Reading the plugin's decisions in Orthanc's log, and waiting for events."""

from __future__ import annotations

import re
import time
from typing import Callable, Optional

from tests.support.orthanc_server import OrthancServer

PATIENCE = 30.0  # seconds to wait for a log line
POLL = 0.1


def decisions(server: OrthancServer, word: str, uri: str) -> int:
    """How many times the plugin logged ``word`` (hit, miss, ...) for ``uri``."""
    pattern = r"cache-plugin: %s %s\n" % (re.escape(word), re.escape(uri))
    return len(re.findall(pattern, server.log_text()))


def wait_for_settled_version(server: OrthancServer, uri: str) -> None:
    """Wait until the change events of earlier uploads stop renewing ``uri``.

    Each change event gives the resource a new version, so right after an
    upload two requests may get two ETags.
    """
    tags = [server.request("GET", uri).header("ETag")]
    for _ in range(50):
        time.sleep(0.2)
        tags.append(server.request("GET", uri).header("ETag"))
        if tags[-1] == tags[-2]:
            return
    raise AssertionError("the version of %s never settled: %s" % (uri, tags))


def wait_for_log(
    server: OrthancServer,
    text: str,
    on_each_poll: Optional[Callable[[], None]] = None,
) -> None:
    """Wait until Orthanc's log contains ``text``, calling ``on_each_poll``.

    :raises AssertionError: when it does not appear within ``PATIENCE``.
    """
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        if on_each_poll is not None:
            on_each_poll()
        if text in server.log_text():
            return
        time.sleep(POLL)
    raise AssertionError("%r never appeared in the log" % text)
