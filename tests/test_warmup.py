"""The warm-up worker and its bounded, de-duplicated queue."""

import logging
import threading
from typing import Iterator, List, Set, Tuple

import pytest

from orthanc_cache_plugin.warmup import WarmUp

LOGGER = "orthanc_cache_plugin.warmup"
# Bound on waits for the worker thread; the tests never measure time.
PATIENCE = 10.0


class Recorder:
    """A warm callable that records its calls and can be held or made to fail."""

    def __init__(self) -> None:
        self.calls: List[Tuple[str, str]] = []
        self.failing: Set[str] = set()
        self.started = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self._called = threading.Condition()

    def __call__(self, level: str, resource_id: str) -> None:
        with self._called:
            self.calls.append((level, resource_id))
            self._called.notify_all()
        self.started.set()
        self.release.wait(PATIENCE)
        if resource_id in self.failing:
            raise RuntimeError("cannot warm %s" % resource_id)

    def wait_for(self, count: int) -> bool:
        """Wait until at least ``count`` calls have been made."""
        with self._called:
            return self._called.wait_for(lambda: len(self.calls) >= count, PATIENCE)


def start_worker(warm_up: WarmUp) -> threading.Thread:
    """Start the worker and return its thread."""
    before = set(threading.enumerate())
    warm_up.start()
    (thread,) = set(threading.enumerate()) - before
    return thread


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def worker(recorder: Recorder) -> Iterator[WarmUp]:
    warm_up = WarmUp(recorder, queue_size=10)
    yield warm_up
    recorder.release.set()
    warm_up.stop()


def test_a_submitted_resource_is_warmed(worker: WarmUp, recorder: Recorder) -> None:
    start_worker(worker)

    assert worker.submit("studies", "s1")

    assert recorder.wait_for(1)
    assert recorder.calls == [("studies", "s1")]


def test_a_waiting_resource_is_not_queued_twice(worker: WarmUp) -> None:
    assert worker.submit("studies", "s1")
    assert not worker.submit("studies", "s1")
    assert worker.submit("series", "s1")

    assert worker.waiting == 2


def test_a_resource_in_progress_can_be_queued_again(
    worker: WarmUp, recorder: Recorder
) -> None:
    # It may have changed since its warm-up began.
    recorder.release.clear()
    worker.start()
    worker.submit("studies", "s1")
    assert recorder.started.wait(PATIENCE)

    assert worker.submit("studies", "s1")

    recorder.release.set()
    assert recorder.wait_for(2)
    assert recorder.calls == [("studies", "s1"), ("studies", "s1")]


def test_a_full_queue_refuses_with_one_warning(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    warm_up = WarmUp(recorder, queue_size=2)

    assert warm_up.submit("studies", "a")
    assert warm_up.submit("studies", "b")
    assert not warm_up.submit("studies", "c")

    warnings = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(warnings) == 1
    assert "studies c" in warnings[0]
    assert warm_up.waiting == 2


def test_a_refused_resource_can_be_submitted_once_there_is_room(
    recorder: Recorder,
) -> None:
    warm_up = WarmUp(recorder, queue_size=1)
    warm_up.submit("studies", "a")
    assert not warm_up.submit("studies", "b")

    warm_up.start()
    try:
        assert recorder.wait_for(1)
        assert warm_up.submit("studies", "b")
        assert recorder.wait_for(2)
    finally:
        warm_up.stop()


def test_a_failing_warm_up_does_not_stop_the_worker(
    worker: WarmUp, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    recorder.failing.add("bad")
    worker.start()

    worker.submit("studies", "bad")
    worker.submit("studies", "good")

    assert recorder.wait_for(2)
    assert recorder.calls == [("studies", "bad"), ("studies", "good")]
    assert any("cannot warm bad" in r.getMessage() for r in caplog.records)


def test_stop_drops_the_waiting_resources(recorder: Recorder) -> None:
    recorder.release.clear()
    warm_up = WarmUp(recorder, queue_size=5)
    thread = start_worker(warm_up)
    for number in range(5):
        warm_up.submit("studies", str(number))
    assert recorder.started.wait(PATIENCE)

    warm_up.stop(timeout=0)
    recorder.release.set()
    thread.join(PATIENCE)

    assert not thread.is_alive()
    assert recorder.calls == [("studies", "0")]


def test_stop_with_a_full_queue_ends_the_worker(recorder: Recorder) -> None:
    # The queue has no room left for the stop marker.
    recorder.release.clear()
    warm_up = WarmUp(recorder, queue_size=2)
    thread = start_worker(warm_up)
    warm_up.submit("studies", "0")
    assert recorder.started.wait(PATIENCE)
    assert warm_up.submit("studies", "1")
    assert warm_up.submit("studies", "2")

    warm_up.stop(timeout=0)
    recorder.release.set()
    thread.join(PATIENCE)

    assert not thread.is_alive()
    assert recorder.calls == [("studies", "0")]


def test_stop_of_an_idle_worker_ends_its_thread(worker: WarmUp) -> None:
    thread = start_worker(worker)

    worker.stop()

    assert not thread.is_alive()


def test_stop_without_start_returns(worker: WarmUp) -> None:
    worker.submit("studies", "s1")
    worker.stop()
    assert not worker.submit("studies", "s2")


def test_nothing_is_queued_after_stop(worker: WarmUp, recorder: Recorder) -> None:
    thread = start_worker(worker)
    worker.stop()

    assert not worker.submit("studies", "s1")
    assert not thread.is_alive()
    assert recorder.calls == []
