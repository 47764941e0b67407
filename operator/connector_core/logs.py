"""Per-task log capture.

Airflow 3 logs through structlog (``self.log`` of operators, hooks and triggers; a hook's subprocess output
too), libraries through the standard ``logging`` module. :func:`install` adds a structlog processor and a
root logging handler; both append to the :class:`TaskLog` bound in the current context (the engine binds
one per task in the contexts its worker threads and trigger coroutines run in). Lines still reach the
process's normal log output.
"""

from __future__ import annotations

import logging
import sys
from collections import deque
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

import structlog

current: ContextVar[TaskLog | None] = ContextVar("airflowtask_log", default=None)

_STRUCTLOG_FIELDS = ("timestamp", "level", "logger", "event", "logger_name", "loc", "exc_info", "positional_args")


class TaskLog:
    """The last ``limit`` log lines of one task; the buffer is made at the first line (waiting tasks often log none)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lines: deque[str] | None = None

    @property
    def lines(self) -> Sequence[str]:
        return () if self._lines is None else self._lines

    def append(self, line: str) -> None:
        if self._lines is None:
            self._lines = deque(maxlen=self.limit)
        self._lines.append(line)


def capture_structlog(logger: Any, method_name: str, event_dict: Any) -> Any:
    """structlog processor: copy the event into the current task's log."""
    sink = current.get()
    if sink is not None:
        sink.append(_structlog_line(event_dict))
    return event_dict


def _structlog_line(event: dict[str, Any]) -> str:
    extras = " ".join(f"{k}={v}" for k, v in event.items() if k not in _STRUCTLOG_FIELDS)
    line = f"{event.get('timestamp', '')} {str(event.get('level', 'info')).upper()} [{event.get('logger', '')}] "
    line += str(event.get("event", ""))
    if extras:
        line += f" {extras}"
    if exc_info := event.get("exc_info"):
        exception = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if exception is not None:
            line += f" ({type(exception).__name__}: {exception})"
    return line.strip()


class _TaskLogHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        sink = current.get()
        if sink is not None:
            sink.append(self.format(record))


_handler = _TaskLogHandler()


def install() -> None:
    """Hook capture into structlog and the root logger (idempotent; re-run if logging was reconfigured).

    The processor goes into structlog's configured processor list in place, just before the renderer, so
    loggers structlog already cached pick it up too.
    """
    processors = structlog.get_config()["processors"]
    if capture_structlog not in processors:
        processors.insert(max(len(processors) - 1, 0), capture_structlog)
    root = logging.getLogger()
    if _handler not in root.handlers:
        root.addHandler(_handler)
