"""The ``CachePlugin`` section of Orthanc's configuration, read once at start-up.

All defaults live in ``DEFAULTS``; ``Settings`` is the typed, frozen result.
"""

import json
import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

logger = logging.getLogger(__name__)

SECTION = "CachePlugin"

# Option name -> default value. The type of the default is the option's type.
DEFAULTS: Dict[str, Any] = {
    "Enable": True,
    "Directory": "/var/lib/orthanc/cache",
    "MaximumSize": 1024,  # MB
    "Expiration": 604800,  # seconds an entry stays on disk
    "MemorySize": 64,  # MB of recently used bodies also kept in memory; 0: none
    "CacheControl": "auto",  # "auto" or a literal Cache-Control for every route
    "MaxAge": 604800,  # seconds of freshness for instance content (auto policy)
    "Visibility": "auto",  # "auto", "public" or "private"
    "StoreBinary": False,  # also store archive, media, preview, rendered frames
    "MaximumEntrySize": 256,  # MB; larger answers are not stored
    "WarmUp": True,
    "WarmUpRoutes": ["shared-tags", "instances-tags"],
    "WarmUpQueueSize": 1000,
    "SharedDatabase": "auto",  # true, false, or "auto": on with a database plugin
    "SharedDatabaseInterval": 200,  # ms between two reads of the change log
}

_POSITIVE = (
    "MaximumSize",
    "Expiration",
    "WarmUpQueueSize",
    "MaximumEntrySize",
    "SharedDatabaseInterval",
)
_NON_NEGATIVE = ("MaxAge", "MemorySize")
_CHOICES = {"Visibility": ("auto", "public", "private")}
_BOOLEAN_OR_AUTO = ("SharedDatabase",)


class ConfigurationError(ValueError):
    """A ``CachePlugin`` option has a wrong type or value."""


@dataclass(frozen=True)
class Settings:
    """The plugin's configuration, checked and complete."""

    enable: bool
    directory: str
    maximum_size: int
    expiration: int
    memory_size: int
    cache_control: str
    max_age: int
    visibility: str
    store_binary: bool
    maximum_entry_size: int
    warm_up: bool
    warm_up_routes: Tuple[str, ...]
    warm_up_queue_size: int
    shared_database: Optional[bool]  # None: decided from Orthanc's database
    shared_database_interval: float  # seconds
    authentication_enabled: bool

    @property
    def private(self) -> bool:
        """Whether answers are marked ``private`` for shared caches."""
        if self.visibility == "auto":
            return self.authentication_enabled
        return self.visibility == "private"


def load_settings(orthanc_json: str, overrides: Mapping[str, Any]) -> Settings:
    """Read the ``CachePlugin`` section of Orthanc's configuration.

    :param orthanc_json: the text of ``orthanc.GetConfiguration()``.
    :param overrides: options given to ``enable_cache_plugin()``; they win.
    :raises ConfigurationError: naming the first wrong option and its value.
    """
    configuration = json.loads(orthanc_json or "{}")
    section = configuration.get(SECTION, {})
    if not isinstance(section, dict):
        raise ConfigurationError(
            "%s must be a JSON object, not %r" % (SECTION, section)
        )

    options = dict(DEFAULTS)
    for name, value in list(section.items()) + list(overrides.items()):
        if name not in DEFAULTS:
            logger.warning("%s: unknown option %r is ignored", SECTION, name)
            continue
        options[name] = _checked(name, value)

    return _settings_from(options, _authentication_enabled(configuration))


def _checked(name: str, value: Any) -> Any:
    if name in _BOOLEAN_OR_AUTO:
        return _boolean_or_auto(name, value)

    expected = type(DEFAULTS[name])
    wrong_type = not isinstance(value, expected) or (
        expected is int and isinstance(value, bool)
    )
    if wrong_type:
        raise ConfigurationError(
            "%s.%s must be %s, not %r" % (SECTION, name, _type_name(expected), value)
        )

    if name in _POSITIVE and value <= 0:
        raise ConfigurationError("%s.%s must be > 0, not %r" % (SECTION, name, value))
    if name in _NON_NEGATIVE and value < 0:
        raise ConfigurationError("%s.%s must be >= 0, not %r" % (SECTION, name, value))
    if name in _CHOICES and value not in _CHOICES[name]:
        raise ConfigurationError(
            "%s.%s must be one of %s, not %r"
            % (SECTION, name, ", ".join(_CHOICES[name]), value)
        )
    if isinstance(value, list) and not all(isinstance(item, str) for item in value):
        raise ConfigurationError(
            "%s.%s must be a list of strings, not %r" % (SECTION, name, value)
        )
    if isinstance(value, str) and not value.strip():
        raise ConfigurationError(
            "%s.%s must not be empty, not %r" % (SECTION, name, value)
        )
    return value


def _boolean_or_auto(name: str, value: Any) -> Any:
    if isinstance(value, bool) or value == "auto":
        return value
    raise ConfigurationError(
        '%s.%s must be true, false or "auto", not %r' % (SECTION, name, value)
    )


def _type_name(expected: type) -> str:
    names = {bool: "true or false", int: "an integer", str: "a string", list: "a list"}
    return names.get(expected, expected.__name__)


def _authentication_enabled(configuration: Mapping[str, Any]) -> bool:
    # Orthanc turns authentication on by itself when remote access is allowed
    # and "AuthenticationEnabled" is not given.
    if "AuthenticationEnabled" in configuration:
        return bool(configuration["AuthenticationEnabled"])
    return bool(configuration.get("RemoteAccessAllowed", False))


def _settings_from(options: Mapping[str, Any], authentication: bool) -> Settings:
    return Settings(
        enable=options["Enable"],
        directory=options["Directory"],
        maximum_size=options["MaximumSize"],
        expiration=options["Expiration"],
        memory_size=options["MemorySize"],
        cache_control=options["CacheControl"].strip(),
        max_age=options["MaxAge"],
        visibility=options["Visibility"],
        store_binary=options["StoreBinary"],
        maximum_entry_size=options["MaximumEntrySize"],
        warm_up=options["WarmUp"],
        warm_up_routes=tuple(options["WarmUpRoutes"]),
        warm_up_queue_size=options["WarmUpQueueSize"],
        shared_database=_auto_is_none(options["SharedDatabase"]),
        shared_database_interval=options["SharedDatabaseInterval"] / 1000.0,
        authentication_enabled=authentication,
    )


def _auto_is_none(value: Any) -> Optional[bool]:
    return None if value == "auto" else bool(value)


def option_names() -> List[str]:
    """The names of every ``CachePlugin`` option, for documentation and checks."""
    return sorted(DEFAULTS)
