"""How the Orthanc Docker images turn ``ORTHANC__…`` variables into configuration.

``ORTHANC__CACHE_PLUGIN__MAXIMUM_SIZE=4096`` becomes
``{"CachePlugin": {"MaximumSize": 4096}}``: each part between ``__`` is
CamelCased, and a value that reads as JSON is taken as JSON (else a string).
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

PREFIX = "ORTHANC__"


def camel(part: str) -> str:
    return "".join(word.capitalize() for word in part.lower().split("_"))


def variable_name(*path: str) -> str:
    """``("CachePlugin", "MaximumSize")`` -> ``ORTHANC__CACHE_PLUGIN__MAXIMUM_SIZE``."""
    snake = [re.sub(r"(?<!^)(?=[A-Z])", "_", part).upper() for part in path]
    return PREFIX + "__".join(snake)


def configuration_from(environment: Mapping[str, str]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for name, text in environment.items():
        if not name.startswith(PREFIX):
            continue
        *sections, option = [camel(part) for part in name[len(PREFIX) :].split("__")]
        target = config
        for section in sections:
            target = target.setdefault(section, {})
        target[option] = _value(text)
    return config


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
