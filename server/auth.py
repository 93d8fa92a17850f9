"""Bearer tokens, recorded as facts in the event log.

A token is 32 random bytes (URL-safe text); the log only ever holds its SHA-256, in a
``TokenIssued`` event on the token's own stream. Every server replica derives the same
registry of valid tokens by projecting those events, so a token issued by any process sharing
the log (another replica, ``canopy tokens issue``) becomes valid everywhere without a restart,
and a ``TokenRevoked`` event withdraws it everywhere.
"""

from __future__ import annotations

import getpass
import hashlib
import logging
import secrets
from dataclasses import dataclass
from typing import Final

from canopy.bridge import (
    ALL_TENANTS,
    Documents,
    EventFilter,
    EventStore,
    NewEvent,
    Producer,
    Projection,
    ProjectionRunner,
    RecordedEvent,
    Topic,
)

from . import __version__

__all__ = [
    "LOCAL_TENANT",
    "TOKEN_EVENT_TYPES",
    "Principal",
    "TokenRegistry",
    "bootstrap_token",
    "issue_token",
    "lookup_token",
    "os_user",
    "token_digest",
]

log = logging.getLogger(__name__)

TOKEN_EVENT_TYPES: Final = frozenset({"TokenIssued", "TokenRevoked"})
LOCAL_TENANT: Final = "local"
PRODUCER: Final = Producer("canopy-server", __version__)
_MAX_TOKEN_LENGTH: Final = 512


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: every request under ``/api/`` acts as exactly one user of one tenant."""

    user_id: str
    tenant_id: str
    token_id: str


def token_digest(secret: str) -> str:
    """The SHA-256 (hex) under which a token is recorded and looked up. Issued tokens are
    ASCII; what a client sends may hold any bytes (aiohttp keeps undecodable ones as lone
    surrogates), and must hash to some digest, so that it is simply an unknown token."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


class TokenRegistry(Projection):
    """Valid tokens across all tenants: documents keyed by token digest, holding
    ``{token_id, user_id, tenant_id}``.

    Every replica sharing a log saves this projection under the same name; that is safe
    because applying an event twice leaves the same documents (a reloaded replica that finds
    documents ahead of the stored checkpoint re-applies those events harmlessly).
    """

    name = "auth.tokens"
    version = 1

    def event_filter(self) -> EventFilter:
        return EventFilter.of(ALL_TENANTS, topics=[Topic.INTERNAL], types=sorted(TOKEN_EVENT_TYPES))

    def apply(self, documents: Documents, event: RecordedEvent) -> None:
        payload = event.payload
        if event.type == "TokenIssued":
            documents.put(
                payload["token_sha256"],
                {
                    "token_id": payload["token_id"],
                    "user_id": payload["user_id"],
                    "tenant_id": event.tenant_id,
                },
            )
        elif event.type == "TokenRevoked":
            # Revocations are rare and name the token by id: a scan is cheaper than an index.
            revoked = [
                digest
                for digest, doc in documents.items()
                if doc["token_id"] == payload["token_id"] and doc["tenant_id"] == event.tenant_id
            ]
            for digest in revoked:
                documents.delete(digest)


def lookup_token(documents: Documents, secret: str) -> Principal | None:
    """The principal a presented token stands for, or None.

    Only digests are compared, by dictionary lookup: timing can at most reveal bits of a
    stored SHA-256, which does not help to find a token that hashes to it, so no secret is
    ever compared with ``==`` (where one is, use ``hmac.compare_digest``).
    """
    if not secret or len(secret) > _MAX_TOKEN_LENGTH:
        return None
    document = documents.get(token_digest(secret))
    if document is None:
        return None
    return Principal(document["user_id"], document["tenant_id"], document["token_id"])


async def issue_token(store: EventStore, user_id: str, tenant_id: str, label: str = "") -> str:
    """Record a new token for ``user_id`` in ``tenant_id`` and return its secret, which is
    shown once and stored nowhere by Canopy (only its digest is)."""
    secret = secrets.token_urlsafe(32)
    token_id = secrets.token_hex(8)
    payload = {
        "token_id": token_id,
        "token_sha256": token_digest(secret),
        "user_id": user_id,
        "label": label,
    }
    event = NewEvent(
        tenant_id=tenant_id,
        topic=Topic.INTERNAL,
        stream=f"token/{token_id}",
        type="TokenIssued",
        payload=payload,
        producer=PRODUCER,
        expected_version=0,
    )
    await store.append([event])
    log.info("issued token %s for user %s in tenant %s", token_id, user_id, tenant_id)
    return secret


async def bootstrap_token(tokens: ProjectionRunner, known: str | None) -> str:
    """The token for the local developer: ``known`` (the one in the discovery file) while the
    registry still accepts it, so restarts keep clients working; otherwise a new one for the
    current OS user in the ``local`` tenant. ``tokens`` must not be following live events
    yet: the new token is applied by catching up."""
    if known and lookup_token(tokens.documents, known) is not None:
        return known
    secret = await issue_token(tokens.store, os_user(), LOCAL_TENANT, "canopy serve")
    await tokens.catch_up()
    return secret


def os_user() -> str:
    """The login name, or a neutral one where the OS knows none (e.g. a container's uid)."""
    try:
        return getpass.getuser() or "developer"
    except (KeyError, OSError):
        return "developer"
