"""The cluster-secret proofs of the ``tcp`` transport's handshake: pure functions, no I/O.

Each end of a peer connection proves it knows the cluster secret with an
HMAC-SHA256 over the handshake's transcript: both nonces and both node ids.
A label says which end computed it (``listener`` or ``connector``), so a
proof one end sends can never be replayed as the other end's. The secret
itself never leaves the process.

During a rotation a node may accept several secrets: it proves with the
first and accepts a proof made with any of them.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence

__all__ = [
    "CONNECTOR",
    "LISTENER",
    "NONCE_BYTES",
    "PROOF_BYTES",
    "Role",
    "new_nonce",
    "proof",
    "verify",
]

#: Bytes of each side's fresh random challenge.
NONCE_BYTES = 16
#: Bytes of a proof (an HMAC-SHA256 digest).
PROOF_BYTES = 32

#: Which end computed a proof; part of what is authenticated (domain separation).
Role = bytes
LISTENER: Role = b"dtk-peer-auth-v1 listener"
CONNECTOR: Role = b"dtk-peer-auth-v1 connector"


def new_nonce() -> bytes:
    """A fresh challenge from the operating system's random source."""
    return os.urandom(NONCE_BYTES)


def _field(value: bytes) -> bytes:
    # Length-prefixed, so no two transcripts encode to the same bytes.
    return len(value).to_bytes(4, "big") + value


def proof(
    secret: bytes,
    role: Role,
    connector_id: str,
    listener_id: str,
    connector_nonce: bytes,
    listener_nonce: bytes,
) -> bytes:
    """The HMAC-SHA256, keyed by ``secret``, of ``role`` and the handshake's transcript."""
    transcript = b"".join(
        _field(part)
        for part in (
            role,
            connector_id.encode(),
            listener_id.encode(),
            connector_nonce,
            listener_nonce,
        )
    )
    return hmac.new(secret, transcript, hashlib.sha256).digest()


def verify(
    secrets: Sequence[bytes],
    received: object,
    role: Role,
    connector_id: str,
    listener_id: str,
    connector_nonce: bytes,
    listener_nonce: bytes,
) -> bool:
    """True when ``received`` is ``role``'s proof under one of ``secrets``.

    Compared in constant time; every secret is tried, so the time taken does
    not tell which one matched.
    """
    if not isinstance(received, bytes) or len(received) != PROOF_BYTES:
        return False
    matched = False
    for secret in secrets:
        expected = proof(secret, role, connector_id, listener_id, connector_nonce, listener_nonce)
        matched |= hmac.compare_digest(expected, received)
    return matched
