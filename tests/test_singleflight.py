"""Concurrent callers of one key share one computation."""

from __future__ import annotations

import threading
import time

import pytest

from orthanc_cache_plugin.singleflight import SingleFlight


def test_sixteen_overlapping_callers_compute_once() -> None:
    flights: SingleFlight[bytes] = SingleFlight()
    started = threading.Event()
    release = threading.Event()
    computations = []

    def compute() -> bytes:
        computations.append(1)
        started.set()
        release.wait(5)
        return b"answer"

    results: list[tuple[bytes, bool]] = []
    threads = [
        threading.Thread(target=lambda: results.append(flights.run("k", compute)))
        for _ in range(16)
    ]
    threads[0].start()
    started.wait(5)
    for thread in threads[1:]:
        thread.start()
    time.sleep(0.2)  # let the followers reach the wait, whatever the scheduling
    release.set()
    for thread in threads:
        thread.join(5)

    assert len(computations) == 1
    assert [body for body, _ in results] == [b"answer"] * 16
    assert sorted(shared for _, shared in results) == [False] + [True] * 15


def test_later_caller_computes_again() -> None:
    flights: SingleFlight[int] = SingleFlight()
    calls = iter(range(10))

    first = flights.run("k", lambda: next(calls))
    second = flights.run("k", lambda: next(calls))

    assert first == (0, False)
    assert second == (1, False)


def test_error_reaches_every_waiting_caller_and_is_not_kept() -> None:
    flights: SingleFlight[int] = SingleFlight()

    def fail() -> int:
        raise RuntimeError("Orthanc failed")

    with pytest.raises(RuntimeError):
        flights.run("k", fail)
    assert flights.run("k", lambda: 7) == (7, False)
