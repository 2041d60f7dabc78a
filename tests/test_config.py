"""The CachePlugin section of Orthanc's configuration."""

import dataclasses
import json
import logging
import re
from typing import Any, Dict, Mapping

import pytest

from orthanc_cache_plugin.config import (
    DEFAULTS,
    ConfigurationError,
    Settings,
    load_settings,
    option_names,
)

LOGGER = "orthanc_cache_plugin.config"


def orthanc_json(section: Mapping[str, Any], **top_level: Any) -> str:
    """The text Orthanc would give for a configuration with this section."""
    configuration: Dict[str, Any] = dict(top_level)
    configuration["CachePlugin"] = dict(section)
    return json.dumps(configuration)


def test_defaults_without_a_section() -> None:
    settings = load_settings("{}", {})

    assert settings == Settings(
        enable=True,
        directory="/var/lib/orthanc/cache",
        maximum_size=1024,
        expiration=604800,
        memory_size=64,
        cache_control="auto",
        max_age=604800,
        visibility="auto",
        store_binary=False,
        maximum_entry_size=256,
        warm_up=True,
        warm_up_routes=("shared-tags", "instances-tags"),
        warm_up_queue_size=1000,
        shared_database=None,
        shared_database_interval=0.2,
        authentication_enabled=False,
    )


def test_an_empty_configuration_text_gives_the_defaults() -> None:
    assert load_settings("", {}) == load_settings("{}", {})


def test_option_names_are_the_defaults_table() -> None:
    assert option_names() == sorted(DEFAULTS)


def test_settings_are_frozen() -> None:
    settings = load_settings("{}", {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.enable = False  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "value", "field", "expected"),
    [
        ("Enable", False, "enable", False),
        ("Directory", "/tmp/cache", "directory", "/tmp/cache"),
        ("MaximumSize", 1, "maximum_size", 1),
        ("Expiration", 3600, "expiration", 3600),
        ("CacheControl", "no-store", "cache_control", "no-store"),
        ("CacheControl", "  max-age=5  ", "cache_control", "max-age=5"),
        ("MaxAge", 0, "max_age", 0),
        ("Visibility", "public", "visibility", "public"),
        ("WarmUp", False, "warm_up", False),
        ("StoreBinary", True, "store_binary", True),
        ("MaximumEntrySize", 16, "maximum_entry_size", 16),
        ("WarmUpRoutes", ["tags"], "warm_up_routes", ("tags",)),
        ("WarmUpRoutes", [], "warm_up_routes", ()),
        ("WarmUpQueueSize", 5, "warm_up_queue_size", 5),
        ("SharedDatabase", True, "shared_database", True),
        ("SharedDatabase", False, "shared_database", False),
        ("SharedDatabase", "auto", "shared_database", None),
        ("SharedDatabaseInterval", 50, "shared_database_interval", 0.05),
    ],
)
def test_each_option_is_read(name: str, value: Any, field: str, expected: Any) -> None:
    settings = load_settings(orthanc_json({name: value}), {})
    assert getattr(settings, field) == expected


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        # Wrong types.
        ("Enable", "true", "CachePlugin.Enable must be true or false, not 'true'"),
        ("Enable", 1, "CachePlugin.Enable must be true or false, not 1"),
        ("Enable", None, "CachePlugin.Enable must be true or false, not None"),
        ("MaximumSize", True, "CachePlugin.MaximumSize must be an integer, not True"),
        ("MaximumSize", "10", "CachePlugin.MaximumSize must be an integer, not '10'"),
        ("MaximumSize", 1.5, "CachePlugin.MaximumSize must be an integer, not 1.5"),
        ("Expiration", False, "CachePlugin.Expiration must be an integer, not False"),
        ("MaxAge", True, "CachePlugin.MaxAge must be an integer, not True"),
        ("WarmUpQueueSize", [1], "CachePlugin.WarmUpQueueSize must be an integer"),
        ("Directory", 5, "CachePlugin.Directory must be a string, not 5"),
        ("CacheControl", [], "CachePlugin.CacheControl must be a string, not []"),
        ("Visibility", True, "CachePlugin.Visibility must be a string, not True"),
        ("WarmUp", "no", "CachePlugin.WarmUp must be true or false, not 'no'"),
        ("WarmUpRoutes", 3, "CachePlugin.WarmUpRoutes must be a list, not 3"),
        ("WarmUpRoutes", "tags", "CachePlugin.WarmUpRoutes must be a list, not 'tags'"),
        (
            "WarmUpRoutes",
            ["tags", 3],
            "CachePlugin.WarmUpRoutes must be a list of strings, not ['tags', 3]",
        ),
        # Wrong values.
        ("MaximumSize", 0, "CachePlugin.MaximumSize must be > 0, not 0"),
        ("MaximumSize", -1, "CachePlugin.MaximumSize must be > 0, not -1"),
        ("Expiration", 0, "CachePlugin.Expiration must be > 0, not 0"),
        ("WarmUpQueueSize", -5, "CachePlugin.WarmUpQueueSize must be > 0, not -5"),
        ("MaximumEntrySize", 0, "CachePlugin.MaximumEntrySize must be > 0, not 0"),
        ("StoreBinary", 1, "CachePlugin.StoreBinary must be true or false, not 1"),
        ("MaxAge", -1, "CachePlugin.MaxAge must be >= 0, not -1"),
        ("Visibility", "Public", "CachePlugin.Visibility must be one of"),
        ("Visibility", "shared", "not 'shared'"),
        # Empty strings; regression: the message did not show the value.
        ("Directory", "", "CachePlugin.Directory must not be empty, not ''"),
        ("Directory", "   ", "CachePlugin.Directory must not be empty, not '   '"),
        ("CacheControl", "", "CachePlugin.CacheControl must not be empty, not ''"),
        (
            "SharedDatabase",
            "yes",
            "CachePlugin.SharedDatabase must be true, false or \"auto\", not 'yes'",
        ),
        ("SharedDatabase", 1, 'must be true, false or "auto", not 1'),
        ("SharedDatabaseInterval", 0, "SharedDatabaseInterval must be > 0, not 0"),
        ("SharedDatabaseInterval", 0.5, "must be an integer, not 0.5"),
    ],
)
def test_a_wrong_option_fails_naming_the_option_and_the_value(
    name: str, value: Any, message: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(orthanc_json({name: value}), {})

    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [("MaximumSize", 0), ("Visibility", "everyone"), ("Enable", "yes")],
)
def test_a_wrong_override_fails_like_a_wrong_file_option(name: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=re.escape("CachePlugin." + name)):
        load_settings("{}", {name: value})


@pytest.mark.parametrize("section", ["[]", '"on"', "1", "null"])
def test_a_section_that_is_not_an_object_fails(section: str) -> None:
    with pytest.raises(ConfigurationError, match="CachePlugin must be a JSON object"):
        load_settings('{"CachePlugin": %s}' % section, {})


def test_an_unknown_option_is_logged_and_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)

    settings = load_settings(orthanc_json({"MaximumSise": 5}), {})

    assert settings == load_settings("{}", {})
    warnings = [r for r in caplog.records if r.name == LOGGER]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "'MaximumSise'" in warnings[0].getMessage()


def test_an_unknown_override_is_logged_and_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)

    settings = load_settings("{}", {"Colour": "blue"})

    assert settings == load_settings("{}", {})
    assert any("'Colour'" in r.getMessage() for r in caplog.records)


def test_overrides_win_over_the_file() -> None:
    text = orthanc_json({"MaximumSize": 10, "WarmUp": True, "MaxAge": 5})

    settings = load_settings(text, {"MaximumSize": 20, "WarmUp": False})

    assert settings.maximum_size == 20
    assert not settings.warm_up
    assert settings.max_age == 5


def test_a_wrong_file_option_fails_even_when_an_override_fixes_it() -> None:
    # Every given value is checked, so a wrong file is reported, not hidden.
    with pytest.raises(ConfigurationError, match=re.escape("CachePlugin.MaximumSize")):
        load_settings(orthanc_json({"MaximumSize": 0}), {"MaximumSize": 20})


@pytest.mark.parametrize(
    ("visibility", "top_level", "private"),
    [
        ("auto", {}, False),
        ("auto", {"AuthenticationEnabled": True}, True),
        ("auto", {"AuthenticationEnabled": False}, False),
        ("auto", {"RemoteAccessAllowed": True}, True),
        ("auto", {"RemoteAccessAllowed": False}, False),
        ("auto", {"RemoteAccessAllowed": True, "AuthenticationEnabled": False}, False),
        ("auto", {"RemoteAccessAllowed": False, "AuthenticationEnabled": True}, True),
        ("public", {"AuthenticationEnabled": True}, False),
        ("public", {}, False),
        ("private", {"AuthenticationEnabled": False}, True),
        ("private", {}, True),
    ],
)
def test_private_follows_visibility_and_authentication(
    visibility: str, top_level: Dict[str, Any], private: bool
) -> None:
    text = orthanc_json({"Visibility": visibility}, **top_level)
    assert load_settings(text, {}).private is private
