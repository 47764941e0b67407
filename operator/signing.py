"""The operator's key for what it writes and must trust again: the step record in ``status.resourceMeta``.

A user granted ``patch`` on ``airflowtasks/status`` can write any ``resourceMeta``; what the operator reads back
there (which Pod, which step, which trigger) is believed only when it carries the operator's signature for that
AirflowTask (HMAC-SHA256 over the task's uid and the record), so a record can be neither planted nor copied from
another task.

The key is ``AIRFLOWTASK_SIGNING_KEY`` when set, else the Secret ``airflowtask-signing-key`` of the operator's
namespace, made by the first replica that finds none (every replica must hold the same key).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

from airflowtask.kube import Kube

log = logging.getLogger(__name__)

KEY_SECRET = "airflowtask-signing-key"
KEY_FIELD = "key"


class RecordSigner:
    """Signs and checks records bound to one AirflowTask (its uid)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the signing key must be at least 16 bytes")
        self._key = key

    def sign(self, uid: str, record: bytes) -> str:
        return hmac.new(self._key, uid.encode() + b"\n" + record, hashlib.sha256).hexdigest()

    def verify(self, uid: str, record: bytes, signature: str) -> bool:
        return hmac.compare_digest(self.sign(uid, record), signature)

    def derive(self, purpose: str) -> bytes:
        """A key of its own for ``purpose`` (a WarmPool's channel): every replica derives the same one, and
        none reveals this key or another purpose's."""
        return hmac.new(self._key, b"derive\n" + purpose.encode(), hashlib.sha256).digest()


async def load_signer(kube: Kube, configured: bytes | None, namespace: str) -> RecordSigner:
    """The signer of this operator: the configured key, else the shared Secret's (made when missing)."""
    if configured:
        return RecordSigner(configured)
    made = await kube.ensure_secret_key(namespace, KEY_SECRET, KEY_FIELD, secrets.token_hex(32))
    log.info("signing status records with the key of Secret %s/%s", namespace, KEY_SECRET)
    return RecordSigner(made.encode())
