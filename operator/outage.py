"""API trouble, told once: a WARNING when the API server stops answering (or refuses), an INFO when it is back.

Every part that talks to the API server (the Lease, the Pod watch, the status writes, kopf's own requests)
reports its failures and successes here under its own name. The outage starts with the first failure of any
part and ends when every part that failed has succeeded again: a Lease that renews while status writes are
still refused (an RBAC binding removed) does not end it. Errors that are not API trouble are not for here.
"""

from __future__ import annotations

import logging
import threading
import time

import urllib3
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("airflowtask.outage")

_TRANSIENT_STATUSES = frozenset({0, 401, 403, 408, 429, 500, 502, 503, 504})
"""HTTP statuses that heal without anyone changing the request: the server is away, overloaded, or the
operator's credentials or RBAC are (being) repaired."""


def is_api_trouble(error: BaseException) -> bool:
    """True for errors that say the API server is unreachable, overloaded or refusing, not that a request is wrong."""
    if isinstance(error, ApiException):
        return is_transient_status(error.status, str(error.body or ""))
    return isinstance(error, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError)


def is_transient_status(status: int, body: str) -> bool:
    """True for an HTTP status (with its response ``body``) that heals by itself; a namespace being deleted
    refuses new objects (403 NamespaceTerminating) for good."""
    return status in _TRANSIENT_STATUSES and "NamespaceTerminating" not in body


def describe(error: BaseException) -> str:
    """An API error in a few words: the HTTP status and reason, else the first line of its message."""
    if isinstance(error, ApiException):
        return f"HTTP {error.status} {error.reason}"
    text = str(error).splitlines()[0][:200] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class Outage:
    """Which parts fail now, and since when; thread-safe."""

    def __init__(self, aftershock_seconds: float = 10.0, forget_seconds: float = 30.0) -> None:
        self._lock = threading.Lock()
        self._failing: dict[str, float] = {}
        """Failing parts, each with the time its failure expires unless it fails again or succeeds first."""
        self._forget = forget_seconds
        """A part that neither failed again nor succeeded for this long counts as working: nothing asked it, and
        an outage must not stay open (silencing the next one) because one kind of request was not made again."""
        self._since: float | None = None
        self._ended: float | None = None
        self._aftershock = aftershock_seconds
        """A failure this soon after an outage ended belongs to it (a server still starting): told at INFO."""

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def failed(self, part: str, error: BaseException | str, expires: float | None = None) -> None:
        """``part`` failed: the first failure of an outage is logged (WARNING), the rest only at DEBUG.

        A part counts as working again once it succeeds, or ``expires`` seconds after its last failure (a part
        whose successes are not seen, kopf's own requests, passes a short one), by default ``forget_seconds``.
        """
        detail = error if isinstance(error, str) else describe(error)
        now = time.monotonic()
        with self._lock:
            self._failing[part] = now + (expires if expires is not None else self._forget)
            first = self._since is None
            if first:
                self._since = now
            aftershock = self._ended is not None and now - self._ended < self._aftershock
        if not first:
            log.debug("%s still fails: %s", part, detail)
            return
        log.log(logging.INFO if aftershock else logging.WARNING,
                "the Kubernetes API cannot be used (%s: %s); retrying, tasks wait until it answers", part, detail)

    def succeeded(self, part: str) -> None:
        """``part`` works (again); the outage ends (one INFO line) when no part fails any more."""
        if not self._failing:
            return
        now = time.monotonic()
        with self._lock:
            self._failing.pop(part, None)
            for expired in [name for name, until in self._failing.items() if until <= now]:
                del self._failing[expired]
            if self._failing or self._since is None:
                return
            since, self._since, self._ended = self._since, None, now
        log.info("the Kubernetes API answers again, after %.1fs", now - since)


OUTAGE = Outage()
"""The process's one record of API trouble."""
