"""Reading the plugin's decisions in Orthanc's log, and waiting for events."""

from __future__ import annotations

import re
import time

from tests.support.orthanc_server import OrthancServer


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
