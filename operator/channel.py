"""The channel on which the operator hands steps to a warm worker: signed JSON request lines, JSON answer lines.

A worker starts locked: its Pod's spec holds only the SHA-256 of the pool's key, and the operator hands it the key once
(:func:`unlock`). A request is then one line of JSON: ``{"op": ..., <fields>, "ts": <Unix seconds>, "mac": <hex>}``,
where ``mac`` is HMAC-SHA256 under the pool's key of the request's canonical JSON without ``mac``, and it is answered by
one line; a connection carries requests one after another (:class:`Connections` keeps it open). A worker refuses a
request whose ``mac`` does not match or whose ``ts`` is more than :data:`MAX_SKEW_SECONDS` from its clock, and answers
it with ``{"error": ...}``. Only the operator (and the pool's own steps) hold a pool's key, so another pool's steps, a
reader of Pod specs or any other Pod on the network can neither submit, read nor cancel a pool's steps. Every operation
is idempotent (a step is named by the caller), so a replayed request changes nothing; the answer is not signed: the
operator believes nothing a worker says without checking it (:mod:`airflowtask.reports`).

This module is shared by both ends and imports neither Airflow nor Kubernetes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any

MAX_SKEW_SECONDS = 30.0
PORT = 8790
"""The port a warm worker serves on."""
KEY_SHA256_ENV = "AIRFLOWTASK_POOL_KEY_SHA256"
SLOTS_ENV = "AIRFLOWTASK_WARM_SLOTS"
LINE_LIMIT = 4 << 20
"""Bytes of one request or answer line (a work order carries the task's parameters)."""


class ChannelError(Exception):
    """A request or answer that cannot be used; the message says why."""


def _canonical(request: dict[str, Any]) -> bytes:
    return json.dumps(request, sort_keys=True, separators=(",", ":")).encode()


def _mac(key: bytes | bytearray, request: dict[str, Any]) -> str:
    return hmac.new(bytes(key), _canonical(request), hashlib.sha256).hexdigest()


def sign(key: bytes | bytearray, request: dict[str, Any], now: float | None = None) -> bytes:
    """``request`` stamped and signed, as the line to send."""
    stamped = {**request, "ts": time.time() if now is None else now}
    return _canonical({**stamped, "mac": _mac(key, stamped)}) + b"\n"


def verify(key: bytes | bytearray, line: bytes, now: float | None = None) -> dict[str, Any]:
    """The request in ``line`` when it is signed with ``key`` and fresh; ChannelError otherwise."""
    try:
        request = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ChannelError(f"the request is not JSON: {exc}") from exc
    if not isinstance(request, dict) or not isinstance(request.get("mac"), str):
        raise ChannelError("the request is not a signed JSON object")
    mac = request.pop("mac")
    if not hmac.compare_digest(_mac(key, request), mac):
        raise ChannelError("the request's signature does not match this pool's key")
    stamp = request.get("ts")
    clock = time.time() if now is None else now
    if isinstance(stamp, bool) or not isinstance(stamp, int | float) or abs(clock - stamp) > MAX_SKEW_SECONDS:
        raise ChannelError(f"the request's time {stamp!r} is more than {MAX_SKEW_SECONDS:g} s from the worker's")
    return request


class Connections:
    """Connections to workers kept open between requests: one request at a time on each, at most ``keep`` idle
    ones per worker. A request on a kept connection the worker has closed meanwhile goes again on a new one (every
    operation is idempotent)."""

    def __init__(self, keep: int = 8) -> None:
        self.keep = keep
        self._idle: dict[tuple[str, int], list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = {}

    async def call(self, host: str, port: int, key: bytes | bytearray, request: dict[str, Any],
                   timeout: float = 10.0) -> Any:
        """Send ``request`` signed to the worker at ``host:port``; its answer (ChannelError when it refused)."""
        async with asyncio.timeout(timeout):
            return _answer(host, port, await self._exchange(host, port, sign(key, request)))

    async def unlock(self, host: str, port: int, key: bytes | bytearray, timeout: float = 10.0) -> Any:
        """Hand a locked worker its pool's key (it checks the key's SHA-256 against the one in its Pod's spec)."""
        line = json.dumps({"op": "unlock", "key": bytes(key).hex()}).encode() + b"\n"
        async with asyncio.timeout(timeout):
            return _answer(host, port, await self._exchange(host, port, line))

    def drop(self, host: str, port: int = PORT) -> None:
        """Close the idle connections to a worker that is gone."""
        for _, writer in self._idle.pop((host, port), []):
            writer.close()

    def close(self) -> None:
        for host, port in list(self._idle):
            self.drop(host, port)

    async def _exchange(self, host: str, port: int, data: bytes) -> bytes:
        idle = self._idle.get((host, port), [])
        while idle:
            reader, writer = idle.pop()
            if line := await self._over(reader, writer, data, fresh=False):
                self._put(host, port, reader, writer)
                return line
        reader, writer = await asyncio.open_connection(host, port, limit=LINE_LIMIT)
        line = await self._over(reader, writer, data, fresh=True)
        if line:
            self._put(host, port, reader, writer)
        return line

    @staticmethod
    async def _over(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes, fresh: bool) -> bytes:
        """The answer line to ``data`` on this connection, b"" when a kept connection turned out closed (the
        connection is then closed here, as it is on any error)."""
        try:
            writer.write(data)
            await writer.drain()
            line = await reader.readline()
        except ConnectionError:
            writer.close()
            if fresh:
                raise
            return b""
        except BaseException:
            writer.close()
            raise
        if not line.endswith(b"\n"):
            writer.close()
        return line

    def _put(self, host: str, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        idle = self._idle.setdefault((host, port), [])
        if len(idle) < self.keep and not writer.is_closing():
            idle.append((reader, writer))
        else:
            writer.close()


async def call(host: str, port: int, key: bytes | bytearray, request: dict[str, Any], timeout: float = 10.0) -> Any:
    """One request on a connection of its own."""
    return await Connections(keep=0).call(host, port, key, request, timeout)


async def unlock(host: str, port: int, key: bytes | bytearray, timeout: float = 10.0) -> Any:
    """Unlock a worker on a connection of its own."""
    return await Connections(keep=0).unlock(host, port, key, timeout)


def _answer(host: str, port: int, line: bytes) -> Any:
    if not line:
        raise ChannelError(f"the worker at {host}:{port} closed the connection without an answer")
    try:
        answer = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ChannelError(f"the worker at {host}:{port} answered with something that is not JSON: {exc}") from exc
    if isinstance(answer, dict) and "error" in answer:
        raise ChannelError(f"the worker at {host}:{port} refused the request: {answer['error']}")
    return answer
