"""One computation for concurrent requests of the same cold entry.

Sixteen viewers opening the same study at once must not make Orthanc compute
its ``instances-tags`` sixteen times: the first request computes, the others
wait for its result.
"""

import threading
from typing import Callable, Dict, Generic, Optional, Tuple, TypeVar

T = TypeVar("T")


class _Call(Generic[T]):
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Optional[T] = None
        self.error: Optional[BaseException] = None


class SingleFlight(Generic[T]):
    """Run ``compute`` once per key among the callers that overlap in time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: Dict[str, _Call[T]] = {}

    def run(self, key: str, compute: Callable[[], T]) -> Tuple[T, bool]:
        """Return the result and whether it was shared from another caller."""
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if call is None:
                call = self._calls[key] = _Call()

        if not leader:
            call.done.wait()
            if call.error is not None:
                raise call.error
            return call.result, True  # type: ignore[return-value]

        try:
            call.result = compute()
        except BaseException as error:
            call.error = error
            raise
        finally:
            with self._lock:
                del self._calls[key]
            call.done.set()
        return call.result, False
