"""What the running Orthanc does differently, told by its version.

``orthanc.RestApiGet`` returns no headers, so differences in the headers of
Orthanc's own routes cannot be observed by the plugin: they are derived from
the version of the running Orthanc (``orthanc.CheckVersionAdvanced``). An API
without that function (the test fake) behaves as Orthanc 1.10.
"""

from dataclasses import dataclass
from typing import Any, Tuple

# "?filename=" names the download of /archive and /media (Orthanc's NEWS, 1.11.0).
ARCHIVE_FILENAME_OPTION = (1, 11, 0)
# /file is named "<instance id>.dcm" instead of the uuid of its attachment, and
# honours "?filename=". Seen on 1.12.7, not on 1.10.1: the first version that
# does it lies in between and was not checked, so this is the one seen.
FILE_NAMED_BY_INSTANCE = (1, 12, 7)
# Image routes decode a frame by trying every decoder in turn and dropping
# their errors (Orthanc's NEWS and sources, 1.12.5: a new fallback when
# decoding a frame), so any frame that does not decode is a 415, one past the
# end included; earlier versions answer "parameter out of range" with 404.
# Seen on 1.12.7 (415) and 1.10.1 (404); the versions between were not run.
FRAME_ERRORS_DROPPED = (1, 12, 5)


@dataclass(frozen=True)
class OrthancFeatures:
    """The version-dependent behaviours of Orthanc that the plugin repeats."""

    archive_filename_option: bool = False
    file_named_by_instance: bool = False
    frame_errors_dropped: bool = False


def at_least(api: Any, version: Tuple[int, int, int]) -> bool:
    """Tell whether the running Orthanc is ``version`` or later."""
    check = getattr(api, "CheckVersionAdvanced", None)
    if check is None:
        return False
    try:
        return bool(check(*version))
    except Exception:  # noqa: BLE001 - an unknown version behaves as the oldest
        return False


def detect(api: Any) -> OrthancFeatures:
    """Read the running Orthanc's version once, at start-up."""
    return OrthancFeatures(
        archive_filename_option=at_least(api, ARCHIVE_FILENAME_OPTION),
        file_named_by_instance=at_least(api, FILE_NAMED_BY_INSTANCE),
        frame_errors_dropped=at_least(api, FRAME_ERRORS_DROPPED),
    )
