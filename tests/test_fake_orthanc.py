"""The fake ``orthanc`` module has only names that the real one has."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import fake_orthanc
from tests.support.orthanc_server import MakeOrthanc

DUMP_SCRIPT = """
import json, orthanc
names = {
    "module": dir(orthanc),
    "output": dir(orthanc.RestOutput),
    "ErrorCode": dir(orthanc.ErrorCode),
    "PixelFormat": dir(orthanc.PixelFormat),
    "ImageFormat": dir(orthanc.ImageFormat),
}
values = {
    "UNKNOWN_RESOURCE": orthanc.ErrorCode.UNKNOWN_RESOURCE,
    "GRAYSCALE8": orthanc.PixelFormat.GRAYSCALE8,
    "GRAYSCALE16": orthanc.PixelFormat.GRAYSCALE16,
    "SIGNED_GRAYSCALE16": orthanc.PixelFormat.SIGNED_GRAYSCALE16,
    "RGB24": orthanc.PixelFormat.RGB24,
    "RGBA32": orthanc.PixelFormat.RGBA32,
    "PNG": orthanc.ImageFormat.PNG,
    "DEFAULT": orthanc.MetricsType.DEFAULT,
}
with open(%r, "w") as target:
    json.dump({"names": names, "values": values}, target)
"""


def _real_names(make_orthanc: MakeOrthanc, tmp_path: Path) -> dict:
    target = tmp_path / "names.json"
    script = tmp_path / "dump.py"
    script.write_text(DUMP_SCRIPT % str(target))
    make_orthanc(script=script)
    return json.loads(target.read_text())


def test_fake_module_matches_the_real_module(
    make_orthanc: MakeOrthanc, tmp_path: Path
) -> None:
    real = _real_names(make_orthanc, tmp_path)
    names, values = real["names"], real["values"]

    assert set(fake_orthanc.MODULE_NAMES) <= set(names["module"])
    assert set(fake_orthanc.OUTPUT_NAMES) <= set(names["output"])
    if "StartStreamAnswer" in names["output"]:  # Python plugin 5.0 and later
        assert set(fake_orthanc.STREAM_OUTPUT_NAMES) <= set(names["output"])
    assert values["UNKNOWN_RESOURCE"] == fake_orthanc.ErrorCode.UNKNOWN_RESOURCE
    assert values["PNG"] == fake_orthanc.ImageFormat.PNG
    assert values["DEFAULT"] == fake_orthanc.MetricsType.DEFAULT
    for name in ("GRAYSCALE8", "GRAYSCALE16", "SIGNED_GRAYSCALE16", "RGB24", "RGBA32"):
        assert values[name] == getattr(fake_orthanc.PixelFormat, name), name
