"""Following Orthanc's change log, for nodes that share one database.

Orthanc calls a plugin's on-change callback only for the changes made through
its own process. When several Orthanc nodes share a database (PostgreSQL),
the changes made through the others reach this node only through the change
log they all write (``GET /changes``). A daemon thread reads that log every
``SharedDatabaseInterval`` and renews the generations of what changed, as the
on-change callback does for local changes.

The log keeps no trace of deletions: Orthanc drops the entries of a deleted
resource and logs nothing for the deletion itself. The thread therefore also
reads the instance count. When the count is lower than the one the log
explains, instances were deleted, and since nothing tells which (nor through
which node), every entry is invalidated (a new epoch). The count is only
compared on a quiet snapshot: the log's last entry, read before and after the
count, is the same, so count and log describe the same moment.
"""

import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional

from .versions import NEW_INSTANCE, Versions, parse_logged_change

logger = logging.getLogger(__name__)

PAGE_SIZE = 1000

Lookup = Callable[[str], Optional[Dict[str, Any]]]
OnStable = Callable[[str, str], None]


@dataclass
class Snapshot:
    """The instance count at a known place of the change log."""

    seq: int
    instances: int


def read_snapshot(lookup: Lookup, attempts: int = 5) -> Optional[Snapshot]:
    """Read where the log stands and the instance count, at one moment.

    :return: None when unreadable, or when the log moved during each attempt.
    """
    for _ in range(attempts):
        before = last_change(lookup)
        count = instance_count(lookup)
        after = last_change(lookup)
        if before is None or after is None or count is None:
            return None
        if before == after:
            return Snapshot(after, count)
    return None


def last_change(lookup: Lookup) -> Optional[int]:
    found = lookup("/changes?last")
    last = found.get("Last") if found else None
    return last if isinstance(last, int) else None


def instance_count(lookup: Lookup) -> Optional[int]:
    found = lookup("/statistics")
    count = found.get("CountInstances") if found else None
    return count if isinstance(count, int) else None


class ChangeLogFollower:
    """Reads the changes other nodes write to the shared change log."""

    def __init__(
        self,
        lookup: Lookup,
        versions: Versions,
        on_stable: OnStable,
        interval: float,
    ) -> None:
        self._lookup = lookup
        self._versions = versions
        self._on_stable = on_stable
        self._interval = interval
        self._seq: Optional[int] = 0
        self._snapshot: Optional[Snapshot] = None
        self._new_instances = 0  # logged since the snapshot
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._failing = False

    def start(self, since: Optional[Snapshot]) -> None:
        """Follow the log from the change after ``since``.

        :param since: where the log stood, with the instance count then; None
            when unknown: the first read then invalidates every entry and
            goes on from the end of the log.
        """
        self._seq = since.seq if since else None
        self._snapshot = since
        self._thread = threading.Thread(
            target=self._run, name="cache-plugin-change-log", daemon=True
        )
        self._thread.start()
        logger.info(
            "following the shared change log from change %s, every %.3f s",
            self._seq,
            self._interval,
        )

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def finish(self, at: Snapshot) -> None:
        """After ``stop``: apply the log up to ``at``, the mark of this run's end.

        The next start replays from that mark only: what other nodes changed
        since the last read must count now.
        """
        if self._seq is not None and self._replay(self._seq, at.seq):
            self._check_count(at)

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self.poll()
            except Exception as error:  # noqa: BLE001 - the thread keeps going
                self._fail("change log not read: %s" % error)

    def poll(self) -> None:
        """Read the log once: apply new entries, then check the count."""
        before = last_change(self._lookup)
        count = instance_count(self._lookup)
        after = last_change(self._lookup)
        if before is None or after is None or count is None:
            self._fail("change log or instance count unreadable")
            return

        if self._seq is None:
            self._versions.bump_epoch("change log position unknown")
            self._seq = after
            self._snapshot = Snapshot(after, count) if before == after else None
            return
        if not self._replay(self._seq, after):
            return
        if before == after:
            self._check_count(Snapshot(after, count))
        if self._failing:
            logger.warning("change log readable again")
            self._failing = False

    def _replay(self, since: int, until: int) -> bool:
        """Apply the entries after ``since`` up to ``until``; False if unreadable."""
        while since < until:
            page = self._lookup("/changes?since=%d&limit=%d" % (since, PAGE_SIZE))
            changes = page.get("Changes") if page else None
            if page is None or not isinstance(changes, list):
                self._fail("change log page after %d unreadable" % since)
                return False
            for change in changes:
                seq = int(change.get("Seq", since))
                if seq > until:
                    break  # the next read's, so that the count stays explained
                self._apply(change)
                since = max(since, seq)
            self._seq = since
            if not changes or seq > until or page.get("Done", True):
                break
        self._seq = max(since, until)
        return True

    def _apply(self, change: Mapping[str, Any]) -> None:
        change_type, level, resource_id = parse_logged_change(change)
        if change_type is None:
            self._on_stable_change(change, level, resource_id)
            return
        self._versions.on_logged_change(change_type, level, resource_id)
        if change_type == NEW_INSTANCE:
            self._new_instances += 1

    def _on_stable_change(
        self, change: Mapping[str, Any], level: str, resource_id: str
    ) -> None:
        name = str(change.get("ChangeType"))
        if name.startswith("Stable") and level:
            self._on_stable(level, resource_id)

    def _check_count(self, now: Snapshot) -> None:
        previous, self._snapshot = self._snapshot, now
        new_instances, self._new_instances = self._new_instances, 0
        if previous is None:
            return
        explained = previous.instances + new_instances
        if now.instances < explained:
            self._versions.bump_epoch(
                "%d instances deleted (shared database)" % (explained - now.instances)
            )

    def _fail(self, message: str) -> None:
        if not self._failing:
            logger.warning(message)
        self._failing = True
