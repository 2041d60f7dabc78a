"""orthanc-cache-plugin: disk cache and HTTP caching for Orthanc's REST answers.

In Orthanc's Python script::

    from orthanc_cache_plugin import enable_cache_plugin
    enable_cache_plugin()
"""

import logging
from typing import Any, Optional

from .config import ConfigurationError, load_settings
from .logs import forward_logging

__all__ = ["ConfigurationError", "enable_cache_plugin"]
__version__ = "0.1.0"

logger = logging.getLogger(__name__)


def enable_cache_plugin(
    api: Any = None, register_on_change: bool = True, **options: Any
) -> Optional[Any]:
    """Read the ``CachePlugin`` configuration and take over the cached routes.

    :param api: the ``orthanc`` module (imported when not given).
    :param register_on_change: register the plugin's on-change callback. Pass
        ``False`` if your script has its own, and call ``plugin.on_change``
        from it (Orthanc accepts one on-change callback per process).
    :param options: ``CachePlugin`` options, overriding the configuration file.
    :return: the plugin, or ``None`` when ``Enable`` is false.
    :raises ConfigurationError: a wrong option; Orthanc does not start.
    """
    if api is None:
        import orthanc as api  # type: ignore[no-redef]  # only inside Orthanc

    from .adapter import CachePlugin, check_warm_up_routes

    forward_logging(api)
    try:
        settings = load_settings(api.GetConfiguration(), options)
        check_warm_up_routes(settings)
    except ConfigurationError as error:
        logger.error("cannot start: %s", error)
        # Orthanc prints the traceback of what the script raises: keep it short.
        raise ConfigurationError(str(error)) from None

    if not settings.enable:
        logger.info("disabled by CachePlugin.Enable")
        return None

    plugin = CachePlugin(api, settings)
    plugin.register(register_on_change)
    return plugin
