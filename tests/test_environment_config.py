"""Every option works as an ``ORTHANC__CACHE_PLUGIN__…`` variable, as documented."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orthanc_cache_plugin.config import DEFAULTS, load_settings
from tests.support.docker_env import configuration_from, variable_name

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"

# A value other than the default for each option, as an environment string.
NON_DEFAULTS = {
    "Enable": "false",
    "Directory": "/srv/cache",
    "MaximumSize": "4096",
    "Expiration": "3600",
    "MemorySize": "0",
    "CacheControl": "max-age=604800, s-maxage=604800, public",
    "MaxAge": "60",
    "Visibility": "private",
    "StoreBinary": "true",
    "MaximumEntrySize": "64",
    "WarmUp": "false",
    "WarmUpRoutes": '["shared-tags", "instances-tags?short"]',
    "WarmUpQueueSize": "10",
    "SharedDatabase": "true",
    "SharedDatabaseInterval": "50",
}


def test_every_option_has_a_non_default_case() -> None:
    assert sorted(NON_DEFAULTS) == sorted(DEFAULTS)


@pytest.mark.parametrize("option", sorted(DEFAULTS))
def test_option_set_from_the_environment(option: str) -> None:
    name = variable_name("CachePlugin", option)
    config = configuration_from({name: NON_DEFAULTS[option]})

    settings = load_settings(json.dumps(config), {})
    defaults = load_settings("{}", {})

    assert config == {"CachePlugin": {option: json_or_text(NON_DEFAULTS[option])}}
    assert settings != defaults


@pytest.mark.parametrize("option", sorted(DEFAULTS))
def test_option_documented_with_its_variable_and_default(option: str) -> None:
    text = DOC.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `%s`" % option))

    assert variable_name("CachePlugin", option) in row
    assert json.dumps(DEFAULTS[option]) in row


def json_or_text(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text
