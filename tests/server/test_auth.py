"""Tokens as facts in the log: only digests are recorded, the registry is a projection, and a
restarted server keeps the local developer's token while the log still knows it."""

from __future__ import annotations

import hashlib

from canopy.bridge import EventFilter, NewEvent, Producer, ProjectionRunner, Topic
from canopy.bridge.sql import SqlEventStore
from canopy.server.auth import (
    LOCAL_TENANT,
    Principal,
    TokenRegistry,
    bootstrap_token,
    issue_token,
    lookup_token,
)


async def registry(store: SqlEventStore) -> ProjectionRunner:
    runner = ProjectionRunner(store, TokenRegistry())
    await runner.load()
    await runner.catch_up()
    return runner


async def test_only_the_digest_of_a_token_is_recorded(store: SqlEventStore) -> None:
    secret = await issue_token(store, "alice", "acme", "laptop")
    [event] = (await store.read(EventFilter("acme"))).events
    assert (event.type, event.topic, event.stream.startswith("token/")) == (
        "TokenIssued",
        Topic.INTERNAL,
        True,
    )
    assert event.payload["token_sha256"] == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(event.to_json())


async def test_the_registry_maps_tokens_to_their_user_and_tenant(store: SqlEventStore) -> None:
    alice = await issue_token(store, "alice", "acme")
    bob = await issue_token(store, "bob", "globex")
    tokens = await registry(store)
    for secret, user, tenant in ((alice, "alice", "acme"), (bob, "bob", "globex")):
        found = lookup_token(tokens.documents, secret)
        assert isinstance(found, Principal)
        assert (found.user_id, found.tenant_id) == (user, tenant)
    assert lookup_token(tokens.documents, alice + "x") is None
    assert lookup_token(tokens.documents, "") is None


async def test_a_revoked_token_is_forgotten(store: SqlEventStore) -> None:
    secret = await issue_token(store, "alice", "acme")
    tokens = await registry(store)
    principal = lookup_token(tokens.documents, secret)
    assert principal is not None
    revoke = NewEvent(
        "acme",
        Topic.INTERNAL,
        f"token/{principal.token_id}",
        "TokenRevoked",
        {"token_id": principal.token_id, "reason": "laptop lost"},
        Producer("tests", "1"),
    )
    await store.append([revoke])
    await tokens.catch_up()
    assert lookup_token(tokens.documents, secret) is None


async def test_a_revocation_in_another_tenant_does_not_touch_the_token(
    store: SqlEventStore,
) -> None:
    secret = await issue_token(store, "alice", "acme")
    tokens = await registry(store)
    principal = lookup_token(tokens.documents, secret)
    assert principal is not None
    forged = NewEvent(
        "globex",
        Topic.INTERNAL,
        f"token/{principal.token_id}",
        "TokenRevoked",
        {"token_id": principal.token_id},
        Producer("tests", "1"),
    )
    await store.append([forged])
    await tokens.catch_up()
    assert lookup_token(tokens.documents, secret) == principal


async def test_the_registry_rebuilds_identically_from_the_log(store: SqlEventStore) -> None:
    for user in ("alice", "bob", "carol"):
        await issue_token(store, user, "acme")
    tokens = await registry(store)
    digest = tokens.digest()
    await tokens.rebuild()
    assert tokens.digest() == digest


async def test_bootstrap_keeps_a_known_token_and_replaces_an_unknown_one(
    store: SqlEventStore,
) -> None:
    tokens = await registry(store)
    first = await bootstrap_token(tokens, None)
    principal = lookup_token(tokens.documents, first)
    assert principal is not None
    assert principal.tenant_id == LOCAL_TENANT
    assert await bootstrap_token(tokens, first) == first
    replaced = await bootstrap_token(tokens, "not-a-token-the-log-knows")
    assert replaced != first
    assert lookup_token(tokens.documents, replaced) is not None
