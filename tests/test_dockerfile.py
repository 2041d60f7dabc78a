"""What can be checked of the Dockerfile without a Docker engine.

The image is not built here. These tests read the Dockerfile, map its
``ORTHANC__…`` variables to configuration the way the Orthanc images do, and
run the script it ships in a real Orthanc with that configuration.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

from tests.support.docker_env import configuration_from
from tests.support.orthanc_server import MakeOrthanc

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO_ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def _environment() -> dict[str, str]:
    found: dict[str, str] = {}
    for keyword, arguments in _instructions():
        if keyword == "ENV":
            for pair in shlex.split(arguments):
                name, _, value = pair.partition("=")
                found[name] = value
    return found


def _configuration_from(environment: dict[str, str]) -> dict[str, object]:
    return configuration_from(environment)


KEYWORDS = {"ARG", "FROM", "COPY", "RUN", "ENV", "VOLUME", "LABEL", "WORKDIR"}


def test_dockerfile_lint() -> None:
    instructions = _instructions()
    keywords = [keyword for keyword, _ in instructions]

    assert set(keywords) <= KEYWORDS
    assert keywords[: keywords.index("FROM") + 1] == ["ARG", "FROM"]
    assert keywords.count("FROM") == 1
    for keyword, arguments in instructions:
        assert arguments.strip(), keyword
        if keyword == "COPY":
            assert not arguments.startswith("--from"), arguments
        if keyword == "RUN":
            assert "set -e" in arguments
            shell = subprocess.run(["sh", "-n", "-c", arguments], check=False)
            assert shell.returncode == 0, arguments


def test_base_image_is_a_build_argument_defaulting_to_osimis() -> None:
    instructions = _instructions()
    assert instructions[0] == ("ARG", "BASE_IMAGE=osimis/orthanc")
    assert ("FROM", "${BASE_IMAGE}") in instructions


def test_image_installs_the_package_and_ships_the_script() -> None:
    instructions = dict(_instructions()[::-1])
    assert "pip install" in instructions["RUN"]
    copies = [args for keyword, args in _instructions() if keyword == "COPY"]
    assert "example.py /etc/orthanc/cache-plugin.py" in copies
    for source in " ".join(copies).split():
        if not source.startswith("/"):
            assert (REPO_ROOT / source).exists(), source


def test_environment_enables_the_plugin_with_the_cache_on_a_volume() -> None:
    environment = _environment()
    config = _configuration_from(environment)

    assert environment["PYTHON_PLUGIN_ENABLED"] == "true"
    assert config["PythonScript"] == "/etc/orthanc/cache-plugin.py"
    assert config["CachePlugin"] == {
        "Enable": True,
        "Directory": "/var/lib/orthanc/cache",
    }
    volumes = [args for keyword, args in _instructions() if keyword == "VOLUME"]
    assert volumes and "/var/lib/orthanc/cache" in volumes[0]


def test_shipped_script_runs_with_the_shipped_configuration(
    make_orthanc: MakeOrthanc, tmp_path: Path
) -> None:
    config = _configuration_from(_environment())
    section = dict(config["CachePlugin"])  # type: ignore[call-overload]
    section["Directory"] = str(tmp_path / "cache")  # the volume, here

    server = make_orthanc(
        script=REPO_ROOT / "example.py", CachePlugin=section, load_data=True
    )
    study = server.get_json("/studies")[0]
    answer = server.request("GET", "/studies/%s/shared-tags" % study)

    assert answer.status == 200
    assert answer.header("ETag")
    assert re.search(r"cache-plugin: caching \d+ routes in", server.log_text())
