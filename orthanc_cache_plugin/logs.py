"""Python logging forwarded to Orthanc's log."""

import logging
from typing import Any

PACKAGE_LOGGER = "orthanc_cache_plugin"


class OrthancLogHandler(logging.Handler):
    """Send each record to ``orthanc.LogError``, ``LogWarning`` or ``LogInfo``."""

    def __init__(self, api: Any) -> None:
        super().__init__()
        self._api = api

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            if record.levelno >= logging.ERROR:
                self._api.LogError(message)
            elif record.levelno >= logging.WARNING:
                self._api.LogWarning(message)
            else:
                self._api.LogInfo(message)
        except Exception:  # noqa: BLE001 - logging must never break a request
            self.handleError(record)


def forward_logging(api: Any, level: int = logging.INFO) -> None:
    """Send the package's log records to Orthanc (one handler, the latest API)."""
    logger = logging.getLogger(PACKAGE_LOGGER)
    logger.setLevel(level)
    logger.propagate = False
    for old in [h for h in logger.handlers if isinstance(h, OrthancLogHandler)]:
        logger.removeHandler(old)
    handler = OrthancLogHandler(api)
    handler.setFormatter(logging.Formatter("cache-plugin: %(message)s"))
    logger.addHandler(handler)
