"""The channel on which the operator hands steps to a warm worker: one signed JSON request, one JSON answer.

A worker starts locked: its Pod's spec holds only the SHA-256 of the pool's key, and the operator hands it the key
once (:func:`unlock`). A request is then one line of JSON: ``{"op": ..., <fields>, "ts": <Unix seconds>, "mac":
<hex>}``, where ``mac`` is HMAC-SHA256 under the pool's key of the request's canonical JSON without ``mac``. A worker
refuses a request whose ``mac`` does not match or whose ``ts`` is more than :data:`MAX_SKEW_SECONDS` from its clock,
and answers it with ``{"error": ...}``. Only the operator (and the pool's own steps) hold a pool's key, so another
pool's steps, a reader of Pod specs or any other Pod on the network can neither submit, read nor cancel a pool's
steps. Every operation is idempotent (a step is named by the caller), so a replayed request changes nothing; the
answer is not signed: the operator believes nothing a worker says without checking it (:mod:`airflowtask.reports`).

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


async def call(host: str, port: int, key: bytes | bytearray, request: dict[str, Any], timeout: float = 10.0) -> Any:
    """Send ``request`` signed to the worker at ``host:port``; its answer (ChannelError when it refused)."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port, limit=LINE_LIMIT)
        try:
            writer.write(sign(key, request))
            await writer.drain()
            line = await reader.readline()
        finally:
            writer.close()
    return _answer(host, port, line)


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


async def unlock(host: str, port: int, key: bytes | bytearray, timeout: float = 10.0) -> Any:
    """Hand a locked worker its pool's key (it checks the key's SHA-256 against the one in its Pod's spec)."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port, limit=LINE_LIMIT)
        try:
            writer.write(json.dumps({"op": "unlock", "key": bytes(key).hex()}).encode() + b"\n")
            await writer.drain()
            line = await reader.readline()
        finally:
            writer.close()
    return _answer(host, port, line)
