"""What the plugin answers, independent of how it is sent to Orthanc."""

from dataclasses import dataclass, field
from typing import List, Tuple, Union

Headers = List[Tuple[str, str]]

# A body as stored: a view into what was read from disk, not a copy of it.
Body = Union[bytes, memoryview]


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
