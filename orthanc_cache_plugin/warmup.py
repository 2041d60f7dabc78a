"""The warm-up worker: computes a stable resource's answers in the background.

Orthanc's change thread only enqueues; a single daemon thread does the work,
one resource at a time. The queue is bounded and a resource already waiting is
not queued twice. The worker is stopped when Orthanc stops, so that Orthanc's
shutdown never waits for it.
"""

import contextlib
import logging
import queue
import threading
from typing import Callable, Optional, Set, Tuple

logger = logging.getLogger(__name__)

Job = Tuple[str, str]  # (level, resource id)


class WarmUp:
    """A bounded, de-duplicated queue of resources to warm, and its worker."""

    def __init__(self, warm: Callable[[str, str], None], queue_size: int) -> None:
        self._warm = warm
        self._queue: queue.Queue[Optional[Job]] = queue.Queue(maxsize=queue_size)
        self._pending: Set[Job] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._refused = 0

    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name="cache-plugin-warm-up", daemon=True
        )
        self._thread.start()

    def submit(self, level: str, resource_id: str) -> bool:
        """Queue a resource; tell whether it was queued (not full, not waiting)."""
        job = (level, resource_id)
        with self._lock:
            if job in self._pending or self._stopping.is_set():
                return False
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                self._refused += 1
                if self._refused == 1:  # one warning per period of overflow
                    logger.warning("warm-up queue full, %s %s not warmed", *job)
                return False
            self._pending.add(job)
        if self._refused:
            logger.warning("warm-up queue had %d refusals", self._refused)
            self._refused = 0
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the resource in progress; drop the ones waiting."""
        self._stopping.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            job = self._queue.get()
            if job is None:
                return
            with self._lock:
                self._pending.discard(job)
            self._warm_one(job)

    def _warm_one(self, job: Job) -> None:
        if self._stopping.is_set():
            return
        try:
            self._warm(*job)
        except Exception as error:  # noqa: BLE001 - one resource, not the worker
            logger.warning("warm-up of %s %s failed: %s", job[0], job[1], error)
