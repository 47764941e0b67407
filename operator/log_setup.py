"""The operator's log: kopf's handler and format, quiet by default.

At the default level the log has one line per task transition (``airflowtask.reconcile``), the leadership
changes, and one WARNING per API outage (``airflowtask.outage``); not kopf's line per handler run and watch
event (``--verbose`` brings them back), and not one line per failed request while the API server is away
(kopf's retries are counted as one outage).
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import kopf
from airflowtask.outage import OUTAGE, is_transient_status

KOPF_REQUESTS = "kopf's requests"
"""The outage part kopf's own API requests report under; kopf logs no success, so a failure expires."""
KOPF_RETRY_SECONDS = 1.0
"""How often kopf retries a failed request (``settings.networking.error_backoffs``, set in airflowtask.handlers)."""


class QuietKopf(logging.Filter):
    """Drops kopf's per-object chatter below WARNING and its failures to post events into deleted namespaces;
    turns its request retries, and the pauses it takes after an object's processing failed on API trouble
    (``Throttling for ...``, with a traceback), into outage reports."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("kopf") and record.getMessage().startswith("Request attempt"):
            detail = record.getMessage().rsplit(" -> ", 1)[-1][:200]
            OUTAGE.failed(KOPF_REQUESTS, detail, expires=KOPF_RETRY_SECONDS * 3)
            return False
        if record.name.startswith("kopf") and record.getMessage().startswith("Throttling for") and record.exc_info:
            error = record.exc_info[1]
            if error is not None and _is_kopf_api_trouble(error):
                OUTAGE.failed(KOPF_REQUESTS, repr(error)[:200], expires=KOPF_RETRY_SECONDS * 3)
                return False
        if record.getMessage().startswith("Failed to post an event") and _namespace_gone(record.getMessage()):
            return False  # an event about an object whose namespace is being deleted
        return not (record.name == "kopf.objects" and record.levelno < logging.WARNING)


def _is_kopf_api_trouble(error: BaseException) -> bool:
    """kopf's own API errors (its classes are not public: told by module and HTTP status) that heal by
    themselves, and its connection failures."""
    if isinstance(error, aiohttp.ClientConnectionError | asyncio.TimeoutError):
        return True
    status = getattr(error, "status", None)
    return (type(error).__module__.startswith("kopf.") and isinstance(status, int)
            and is_transient_status(status, str(error)))


def _namespace_gone(message: str) -> bool:
    return "being terminated" in message or ("namespaces" in message and "not found" in message)


def configure(verbose: bool, json: bool) -> None:
    """kopf's log handler on the root logger (JSON lines or text), with :class:`QuietKopf` unless ``verbose``."""
    logging.getLogger().handlers.clear()  # Airflow installed a root handler on import; kopf's is the one we want
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.JSON if json else kopf.LogFormat.FULL)
    if not verbose:
        for handler in logging.getLogger().handlers:
            handler.addFilter(QuietKopf())
        logging.getLogger("urllib3").setLevel(logging.ERROR)  # its retry warnings: the outage says it once
