"""The requests the integration tests send to the plugin's routes.

Resources are listed from the plain server (both servers hold the same data and
Orthanc identifiers are derived from DICOM UIDs, so they are the same on both).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass
from typing import Any, Optional

import pydicom
from pydicom.tag import Tag

from orthanc_cache_plugin.routes import Route
from tests.support.orthanc_server import OrthancServer, Response

LEVELS = ("patients", "studies", "series", "instances")
NON_NUMERIC_FRAME = "abc"
SYNTHETIC_PATIENT = "SYNTH-CT-0"  # 40 slices alike: one stands for all

# The first line of an Orthanc JSON error that has "Details" (a JSON string).
_DETAILS_LINE = re.compile(rb'\A\{\n\t"Details" : "(?:[^"\\\n]|\\.)*",\n')

# Byte offsets inside a DICOMDIR: they depend on the length of its own UID.
DICOMDIR_OFFSETS = {
    Tag(0x0004, 0x1200),
    Tag(0x0004, 0x1202),
    Tag(0x0004, 0x1400),
    Tag(0x0004, 0x1420),
}


@dataclass(frozen=True)
class Resources:
    """Every resource of the loaded data, by level, and the frames of instances."""

    ids: dict[str, list[str]]
    frame_counts: dict[str, int]
    samples: list[str]  # one instance of each kind of image: no two CT slices

    def frames_to_try(self, instance_id: str) -> list[str]:
        """Frame 0; for multi-frame instances the last and one past the end too."""
        count = self.frame_counts.get(instance_id, 0)
        frames = ["0"]
        if count > 1:
            frames += [str(count - 1), str(count)]
        return [*frames, NON_NUMERIC_FRAME]

    def uris(self, route: Route, query: str = "") -> list[str]:
        """Every URI of ``route`` over the resources of its levels."""
        suffix = "?" + query if query else ""
        found = []
        for level in route.levels:
            for resource_id in self.ids[level]:
                frames = (
                    self.frames_to_try(resource_id) if "{frame}" in route.path else [""]
                )
                for frame in frames:
                    found.append(route_uri(route, level, resource_id, frame) + suffix)
        return found


def route_uri(route: Route, level: str, resource_id: str, frame: str = "0") -> str:
    return "/%s/%s/%s" % (level, resource_id, route.path.replace("{frame}", frame))


def list_resources(server: OrthancServer) -> Resources:
    ids = {level: sorted(server.get_json("/" + level)) for level in LEVELS}
    frame_counts = {}
    samples = []
    for instance_id in ids["instances"]:
        tags = server.get_json("/instances/%s/simplified-tags" % instance_id)
        frame_counts[instance_id] = int(tags.get("NumberOfFrames", "1") or 1)
        if tags.get("PatientID") != SYNTHETIC_PATIENT or tags["InstanceNumber"] == "1":
            samples.append(instance_id)
    return Resources(ids, frame_counts, samples)


def attachment_uuid(server: OrthancServer, instance_id: str) -> str:
    info = server.get_json("/instances/%s/attachments/dicom/info" % instance_id)
    return str(info["Uuid"])


def comparable_body(response: Response) -> Any:
    """The part of a body that must be equal on both servers.

    JSON is compared parsed; a zip by its members' names and contents (entries
    carry the time they were written); anything else byte for byte. The
    "Details" of Orthanc's JSON errors are left out: see ``error_details``.
    """
    content_type = response.header("Content-Type") or ""
    if content_type.startswith("application/json") and response.body:
        return ("json", _json_or_bytes(response.body))
    if response.status != 200 and response.body.startswith(b"{"):
        # Orthanc's JSON errors come without a Content-Type.
        value = _json_or_bytes(response.body)
        if isinstance(value, dict):
            value.pop("Details", None)
        return ("error", value)
    if content_type == "application/zip" and response.status == 200:
        with zipfile.ZipFile(io.BytesIO(response.body)) as archive:
            return (
                "zip",
                [
                    (name, _member_content(name, archive.read(name)))
                    for name in archive.namelist()
                ],
            )
    return ("bytes", response.body)


def error_details(response: Response) -> Optional[str]:
    """The "Details" of an Orthanc JSON error, or None.

    ``orthanc.RestApiGet`` raises an exception with the error code and its
    generic text only, so the plugin cannot repeat them (a known shortcoming).
    """
    value = _json_or_bytes(response.body)
    return value.get("Details") if isinstance(value, dict) else None


def without_details(body: bytes) -> bytes:
    """``body`` with the "Details" of an Orthanc JSON error taken out, if any.

    Orthanc writes its errors with sorted keys, one per line: "Details" comes
    first. See ``error_details`` for why the plugin cannot repeat them.
    """
    return _DETAILS_LINE.sub(b"{\n", body, count=1)


def _member_content(name: str, data: bytes) -> Any:
    # A DICOMDIR gets a new SOP Instance UID at each generation, and its offsets
    # follow that UID's length: compare its records, offsets left out.
    if name.rsplit("/", 1)[-1] != "DICOMDIR":
        return data
    dicomdir = pydicom.dcmread(io.BytesIO(data))
    top = _elements(dicomdir)
    records = [_elements(record) for record in dicomdir.DirectoryRecordSequence]
    return ("DICOMDIR", top, records)


def _elements(dataset: Any) -> list[tuple[Any, str]]:
    return [
        (element.tag, str(element.value))
        for element in dataset
        if element.tag not in DICOMDIR_OFFSETS and element.VR != "SQ"
    ]


def _json_or_bytes(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body


def differences(
    uri: str,
    plain: Response,
    cached: Response,
    disposition: Optional[tuple[str, str]] = None,
) -> list[str]:
    """Describe how two answers to ``uri`` differ (empty when they do not).

    :param disposition: (plain, cached) attachment uuids to compare the
        ``Content-Disposition`` of ``/file`` without its server-specific name.
    """
    found = []
    if plain.status != cached.status:
        found.append("%s: status %d != %d" % (uri, plain.status, cached.status))
    for name in ("Content-Type", "Content-Disposition"):
        expected = plain.header_list(name)
        actual = cached.header_list(name)
        if disposition is not None and name == "Content-Disposition":
            expected = [value.replace(disposition[0], "UUID") for value in expected]
            actual = [value.replace(disposition[1], "UUID") for value in actual]
        if expected != actual:
            found.append("%s: %s %r != %r" % (uri, name, expected, actual))
    if comparable_body(plain) != comparable_body(cached):
        found.append("%s: body %r != %r" % (uri, plain.body[:200], cached.body[:200]))
    return found
