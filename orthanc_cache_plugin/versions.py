"""Resource versions: what ``LastUpdate`` shows, plus what it does not.

Orthanc's ``LastUpdate`` has one-second resolution and does not move on
metadata or attachment writes, nor (before 1.12.1) on parents when a child is
deleted. Each such change arrives as a change event; the plugin then gives the
resource a new *generation*: a random token, so a version never goes back to
an older entry. Generations are kept in the store so that they survive a
restart; the changes made while the plugin was not running are replayed from
Orthanc's ``/changes`` log at start-up.

Generations and parents are written behind, in one transaction at most once a
second and when Orthanc stops, so that an upload's change events do not cost a
store write each. Until written they are read from memory. After a crash
nothing is lost: without the stop's note the next start invalidates every
entry.
"""

import logging
import threading
import time
import uuid
from collections import OrderedDict
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from .store import Store

logger = logging.getLogger(__name__)

# Orthanc's change types (orthanc.ChangeType), by number and by name in /changes.
DELETED, NEW_CHILD_INSTANCE, NEW_INSTANCE, NEW_PATIENT = 1, 2, 3, 4
NEW_SERIES, NEW_STUDY, UPDATED_ATTACHMENT, UPDATED_METADATA = 5, 6, 12, 13
CHANGE_NAMES = {
    "Deleted": DELETED,
    "NewChildInstance": NEW_CHILD_INSTANCE,
    "NewInstance": NEW_INSTANCE,
    "NewPatient": NEW_PATIENT,
    "NewSeries": NEW_SERIES,
    "NewStudy": NEW_STUDY,
    "UpdatedAttachment": UPDATED_ATTACHMENT,
    "UpdatedMetadata": UPDATED_METADATA,
}

# orthanc.ResourceType names in /changes, and the level names of the REST API.
LEVELS_BY_NAME = {
    "Patient": "patients",
    "Study": "studies",
    "Series": "series",
    "Instance": "instances",
}

# Where to find the parent of a new resource: (REST level, parent field).
PARENT_LOOKUP = {
    NEW_INSTANCE: ("instances", "ParentSeries"),
    NEW_SERIES: ("series", "ParentStudy"),
    NEW_STUDY: ("studies", "ParentPatient"),
}

# The field of a resource's REST answer that names its parent, by level.
PARENT_FIELDS = {
    "instances": "ParentSeries",
    "series": "ParentStudy",
    "studies": "ParentPatient",
}
PARENT_LEVELS = {"instances": "series", "series": "studies", "studies": "patients"}

# How many ancestors a resource of each level has.
ANCESTOR_COUNT = {"instances": 3, "series": 2, "studies": 1, "patients": 0}

NO_GENERATION: Tuple[str, float] = ("", 0.0)
MEMORY_ENTRIES = 100_000
FLUSH_PERIOD = 1.0  # seconds between two writes of pending generations

Lookup = Callable[[str], Optional[Dict[str, Any]]]


def parse_logged_change(change: Mapping[str, Any]) -> Tuple[Optional[int], str, str]:
    """Return (change type or None, REST level, resource id) of a /changes entry."""
    change_type = CHANGE_NAMES.get(str(change.get("ChangeType")))
    level = LEVELS_BY_NAME.get(str(change.get("ResourceType")), "")
    return change_type, level, str(change.get("ID"))


class Versions:
    """Generations of resources, bumped by change events, kept in the store."""

    def __init__(self, store: Store, lookup: Lookup) -> None:
        self._store = store
        self._lookup = lookup
        self._lock = threading.Lock()
        self._memory: OrderedDict[str, Tuple[str, float]] = OrderedDict()
        self._pending: Dict[str, Any] = {}
        self._flushed = time.monotonic()
        self._lost = False
        self._epoch, self._epoch_at = self._load_epoch()

    @property
    def epoch(self) -> str:
        """A token that changes when the plugin cannot tell what changed."""
        return self._epoch

    @property
    def epoch_at(self) -> float:
        """When the epoch changed: anything may have changed then."""
        return self._epoch_at

    def generation(self, resource_id: str) -> Tuple[str, float]:
        """Return ``(token, time of the change)`` for a resource."""
        with self._lock:
            known = self._memory.get(resource_id)
        if known is not None:
            return known

        with self._lock:
            pending = self._pending.get("gen:" + resource_id)
        stored = pending or self._store.get_value("gen:" + resource_id)
        found = NO_GENERATION
        if isinstance(stored, (tuple, list)) and len(stored) == 2:
            found = (str(stored[0]), float(stored[1]))
        if self._store.healthy:
            # Never remember an absence that may only be a store failure, nor
            # replace a generation that a change event gave while the store
            # was read (other threads run meanwhile).
            self._remember(resource_id, found, replace=False)
        return found

    def on_change(self, change_type: int, level: str, resource_id: str) -> None:
        """Account for one change event of Orthanc.

        :param level: ``patients``, ``studies``, ``series`` or ``instances``.
        """
        if change_type in (NEW_INSTANCE, NEW_SERIES, NEW_STUDY):
            self._learn_parent(change_type, resource_id)

        if change_type == DELETED:
            self._bump_with_ancestors(resource_id, level)
        elif change_type in CHANGE_NAMES.values():
            self.bump(resource_id)

        if time.monotonic() - self._flushed > FLUSH_PERIOD:
            self.flush()

    def on_logged_change(self, change_type: int, level: str, resource_id: str) -> None:
        """Account for one entry of Orthanc's change log (``/changes``).

        The log has no ``NewChildInstance``: a new instance renews its
        ancestors here. Used for the changes other Orthanc nodes make.
        """
        self.on_change(change_type, level, resource_id)
        if change_type == NEW_INSTANCE:
            self._bump_with_ancestors(resource_id, level)

    def flush(self) -> bool:
        """Write the pending generations and parents in one transaction.

        :return: whether every generation ever made is now in the store.
        """
        with self._lock:
            pending, self._pending = self._pending, {}
        self._flushed = time.monotonic()
        if pending and not self._store.set_values(pending):
            # Lost generations could bring old entries back: once the store
            # works again, invalidate everything instead.
            self._lost = True
        elif self._lost and self._store.healthy:
            self._lost = False
            self.bump_epoch("generations lost while the store was unavailable")
        return not self._lost

    def bump(self, resource_id: str) -> None:
        """Give a resource a new generation: its old entries are never used again."""
        generation = (uuid.uuid4().hex[:16], time.time())
        self._remember(resource_id, generation)
        with self._lock:
            self._pending["gen:" + resource_id] = generation
        logger.debug("new generation of %s", resource_id)

    def bump_epoch(self, reason: str) -> None:
        """Invalidate every entry at once (without scanning the store)."""
        self._epoch, self._epoch_at = uuid.uuid4().hex[:16], time.time()
        if not self._store.set_value("epoch", (self._epoch, self._epoch_at)):
            self._lost = True  # written again by the next flush that works
        logger.info("every entry invalidated: %s", reason)

    def _bump_with_ancestors(self, resource_id: str, level: str) -> None:
        self.bump(resource_id)
        current = resource_id
        for _ in range(ANCESTOR_COUNT.get(level, 0)):
            parent = self._parent(current, level)
            if not isinstance(parent, str):
                # Its study may be cached under a version that does not show
                # the change, and nothing tells which study that is.
                self.bump_epoch("change of %s with unknown parents" % resource_id)
                return
            self.bump(parent)
            current, level = parent, PARENT_LEVELS[level]

    def _learn_parent(self, change_type: int, resource_id: str) -> None:
        level, field = PARENT_LOOKUP[change_type]
        resource = self._lookup("/%s/%s" % (level, resource_id))
        parent = resource.get(field) if resource else None
        if isinstance(parent, str):
            with self._lock:
                self._pending["parent:" + resource_id] = parent

    def _parent(self, resource_id: str, level: str) -> Any:
        with self._lock:
            pending = self._pending.get("parent:" + resource_id)
        known = pending or self._store.get_value("parent:" + resource_id)
        if known is not None:
            return known

        # Not learned from a change event (made before this run, or through
        # another node): ask Orthanc, which fails for a deleted resource.
        resource = self._lookup("/%s/%s" % (level, resource_id))
        parent = resource.get(PARENT_FIELDS[level]) if resource else None
        if isinstance(parent, str):
            with self._lock:
                self._pending["parent:" + resource_id] = parent
        return parent

    def _remember(
        self, resource_id: str, generation: Tuple[str, float], replace: bool = True
    ) -> None:
        with self._lock:
            if replace or resource_id not in self._memory:
                self._memory[resource_id] = generation
            self._memory.move_to_end(resource_id)
            while len(self._memory) > MEMORY_ENTRIES:
                self._memory.popitem(last=False)

    def _load_epoch(self) -> Tuple[str, float]:
        epoch = self._store.get_value("epoch")
        if isinstance(epoch, (tuple, list)) and len(epoch) == 2:
            return str(epoch[0]), float(epoch[1])
        return "", 0.0
