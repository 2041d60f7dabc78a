"""What the plugin answers, independent of how it is sent to Orthanc."""

from dataclasses import dataclass, field
from typing import Iterator, List, Protocol, Tuple, Union

Headers = List[Tuple[str, str]]


class BodyFile(Protocol):
    """A stored body too large to hold in memory: read from its file in chunks.

    Its ``length`` was checked against the file before it was handed out, so
    that a damaged entry never starts an answer that it cannot finish.
    """

    @property
    def length(self) -> int: ...

    def chunks(self) -> Iterator[bytes]:
        """Yield the body in order; raise ``OSError`` if the file ends early."""
        ...

    def read(self) -> bytes:
        """Return the whole body; raise ``OSError`` if the file ends early."""
        ...

    def close(self) -> None: ...


# A body as stored: a view into what was read from disk, not a copy of it, or
# for a large one its open file.
Body = Union[bytes, memoryview, BodyFile]


@dataclass
class Answer:
    """One HTTP answer: status, headers, body.

    ``content_type`` is empty for answers Orthanc sends without one (its empty
    404 and 415, its 304). ``allowed`` lists the methods of a 405.
    """

    status: int
    body: Body = b""
    content_type: str = ""
    headers: Headers = field(default_factory=list)
    allowed: str = ""
