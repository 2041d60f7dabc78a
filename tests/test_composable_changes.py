"""A startup script with its own on-change callback keeps it and the plugin's.

Orthanc accepts one Python on-change callback per process: the script registers
its own and forwards every change to the plugin, as the README shows.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.dicom_data import generate_ct_study
from tests.support.orthanc_server import MakeOrthanc
from tests.support.plugin_log import wait_for_settled_version

SCRIPT = """
import orthanc
from orthanc_cache_plugin import enable_cache_plugin

plugin = enable_cache_plugin(register_on_change=False)

def on_change(change_type, level, resource_id):
    with open(%r, "a") as seen:
        seen.write("%%d %%s\\n" %% (change_type, resource_id))
    plugin.on_change(change_type, level, resource_id)

orthanc.RegisterOnChangeCallback(on_change)
"""


def test_users_callback_and_the_plugin_both_get_every_change(
    make_orthanc: MakeOrthanc, tmp_path: Path
) -> None:
    seen = tmp_path / "seen.txt"
    script = tmp_path / "script.py"
    script.write_text(SCRIPT % str(seen))
    server = make_orthanc(
        cached=True,
        script=script,
        UserMetadata={"Note": 1024},
        CachePlugin={"WarmUp": False},
    )
    files = generate_ct_study(tmp_path / "dicom", slices=3, rows=16, cols=16, seed=701)
    answers = [server.upload(path) for path in files]
    study = answers[0]["ParentStudy"]
    uri = "/studies/%s/instances-tags" % study
    wait_for_settled_version(server, uri)
    before = server.request("GET", uri).json()

    # Orthanc 1.10 leaves the study's LastUpdate alone on a deletion: only the
    # DELETED event, forwarded by the script, tells the plugin.
    server.request("DELETE", "/instances/%s" % answers[0]["ID"])
    wait_for_settled_version(server, uri)
    after = server.request("GET", uri).json()

    assert len(before) == 3
    assert sorted(after) == sorted(a["ID"] for a in answers[1:])
    lines = seen.read_text().splitlines()
    assert "3 %s" % answers[0]["ID"] in lines  # NEW_INSTANCE reached the script
    assert "1 %s" % answers[0]["ID"] in lines  # and DELETED
    assert "cannot start" not in server.log_text()
