"""The operator's log: kopf's handler and format, quiet by default.

At the default level the log has one line per task transition (``airflowtask.reconcile``), the leadership
changes, and one WARNING per API outage (``airflowtask.outage``); not kopf's line per handler run and watch
event (``--verbose`` brings them back), and not one line per failed request while the API server is away
(kopf's retries are counted as one outage).
"""

from __future__ import annotations

import asyncio
import logging
import re

import aiohttp
import kopf
from airflowtask.outage import OUTAGE, is_transient_status

KOPF_REQUESTS = "kopf's requests"
"""The outage part kopf's own API requests report under; kopf logs no success, so a failure expires."""
KOPF_RETRY_SECONDS = 1.0
"""How often kopf retries a failed request (``settings.networking.error_backoffs``, set in airflowtask.handlers)."""


class QuietKopf(logging.Filter):
    """Drops kopf's per-object chatter below WARNING and its failures to post events into deleted namespaces;
    turns its request retries, its events lost to API trouble, and the pauses it takes after an object's
    processing failed on API trouble (``Throttling for ...``, with a traceback), into outage reports."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("kopf") and record.getMessage().startswith("Request attempt"):
            return _kopf_failed(record.getMessage().rsplit(" -> ", 1)[-1])
        if record.name.startswith("kopf") and record.getMessage().startswith("Throttling for") and record.exc_info:
            error = record.exc_info[1]
            if error is not None and _is_kopf_api_trouble(error):
                return _kopf_failed(repr(error))
        if record.getMessage().startswith("Failed to post an event"):
            return _event_not_posted(record.getMessage())
        return not (record.name == "kopf.objects" and record.levelno < logging.WARNING)


def _kopf_failed(detail: str) -> bool:
    """Report one of kopf's failed requests to the outage record (it expires: kopf logs no success); drop the line."""
    OUTAGE.failed(KOPF_REQUESTS, detail[:200], expires=KOPF_RETRY_SECONDS * 3)
    return False


def _event_not_posted(message: str) -> bool:
    """kopf lost an event (it does not retry): say so, unless the namespace is being deleted (nobody will read it)
    or the API is in trouble (the outage says it once; the status has it all)."""
    if _namespace_gone(message):
        return False
    code = re.search(r"Code: (\d+)\.", message)
    if code and is_transient_status(int(code.group(1)), message):
        return _kopf_failed(message.split(" Message: ", 1)[-1])
    return True


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
