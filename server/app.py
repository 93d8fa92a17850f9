"""The aiohttp application: routes, middlewares and the background tasks of one server.

Everything with a lifetime is a ``cleanup_ctx`` entry, started in order before the server
accepts requests and stopped in reverse order after it stopped accepting them: the event store
(unless the caller owns it), the token registry following the log, and the retention task.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

from aiohttp import WSCloseCode, web
from sqlalchemy.engine import make_url

from canopy.bridge import (
    BridgeError,
    ConfigurationError,
    EventStore,
    ProjectionRunner,
    RetentionRule,
    open_store,
)
from canopy.bridge.client import read_discovery
from canopy.bridge.sql import SqlEventStore

from .api.audit import read_audit
from .api.control import add_control_routes
from .api.events import append_events, read_events, subscribe_events
from .api.evidence import (
    ingest_lines,
    otlp_logs,
    read_evidence,
    read_signatures,
    sentry_envelope,
    sentry_store,
)
from .api.health import health
from .api.keys import (
    EVIDENCE,
    LOCAL_TOKEN,
    PODS,
    PRINCIPAL,
    ROOTS,
    SETTINGS,
    SOCKETS,
    STORE,
    TOKENS,
    WORKSPACE,
)
from .api.limits import (
    add_rate_limits,
    body_deadline_middleware,
    open_requests_middleware,
    rate_limit_middleware,
)
from .api.metrics import METRICS, add_metrics, metrics_middleware, observe_pods
from .api.middleware import OPENAPI_PATH, access_log_middleware, auth_middleware
from .api.openapi import serve_openapi
from .api.pods import connect_pod, delete_my_pod, ensure_my_pod, get_my_pod
from .api.problems import problem_middleware
from .api.trees import get_tree, list_trees, upload_tree
from .auth import TokenRegistry, bootstrap_token
from .config import Settings
from .incidents import EvidenceStore, evidence_store
from .incidents.otlp import LOGS_PATH
from .llm.providers import model_environment
from .pods.manager import PodManager, PodPolicy
from .pods.protocol import CONNECT_PATH, SERVER_CERT_VARIABLE
from .pods.provider import PodLimits, PodProvider
from .pods.roots import WorkspaceRoots
from .pods.sandbox import SandboxError, landlock_abi
from .telemetry import instrument_event_log

__all__ = [
    "LOCAL_TOKEN",
    "PODS",
    "PRINCIPAL",
    "SETTINGS",
    "SOCKETS",
    "STORE",
    "TOKENS",
    "create_app",
    "stop_pods",
]

log = logging.getLogger(__name__)

SQLITE_SIDE_FILES: Final = ("-wal", "-shm", "-journal")
RETRY_SECONDS: Final = 1.0
"""Pause before a background task retries after the log failed it (e.g. database restart)."""


def create_app(
    settings: Settings,
    store: EventStore | None = None,
    *,
    pod_provider: PodProvider | None = None,
    workspace: Path | None = None,
) -> web.Application:
    """The server for ``settings``. Without ``store``, the app opens the log at
    ``settings.database_url`` on startup and closes it on cleanup; a given ``store`` must be
    started, and stays the caller's to close. Pods run on ``pod_provider`` (default: the one
    ``settings.pods`` names); relative programs are found under ``workspace`` (default: the
    working directory)."""
    app = web.Application(
        client_max_size=settings.max_request_bytes,
        middlewares=[
            access_log_middleware,
            metrics_middleware,
            problem_middleware,
            auth_middleware,
            rate_limit_middleware,
            open_requests_middleware,
            body_deadline_middleware,
        ],
    )
    app[SETTINGS] = settings
    add_metrics(app)
    add_rate_limits(app, settings)
    app[SOCKETS] = set()
    app[WORKSPACE] = (workspace or Path.cwd()).resolve()
    app[ROOTS] = WorkspaceRoots(workspace_roots(settings, app[WORKSPACE]), server_files(settings))
    if store is None:
        app.cleanup_ctx.append(_owned_store)
    else:
        app[STORE] = store
    app.cleanup_ctx.append(_evidence)
    app.cleanup_ctx.append(_token_registry)
    if settings.retention:
        app.cleanup_ctx.append(_retention)
    app.cleanup_ctx.append(_pod_manager(pod_provider))
    app.on_shutdown.append(_close_sockets)
    app.on_shutdown.append(stop_pods)
    app.router.add_get("/healthz", health)
    app.router.add_post("/api/v1/events", append_events)
    app.router.add_get("/api/v1/events", read_events)
    app.router.add_get("/api/v1/events/subscribe", subscribe_events)
    app.router.add_get("/api/v1/audit", read_audit)
    app.router.add_post("/api/{project}/envelope/", sentry_envelope)
    app.router.add_post("/api/{project}/store/", sentry_store)
    app.router.add_get("/api/v1/evidence", read_evidence)
    app.router.add_get("/api/v1/evidence/signatures", read_signatures)
    app.router.add_post("/api/v1/evidence/lines", ingest_lines)
    app.router.add_post(LOGS_PATH, otlp_logs)
    add_control_routes(app)
    app.router.add_get("/api/v1/pods/me", get_my_pod)
    app.router.add_put("/api/v1/pods/me", ensure_my_pod)
    app.router.add_delete("/api/v1/pods/me", delete_my_pod)
    app.router.add_get(CONNECT_PATH, connect_pod)
    app.router.add_post("/api/v1/trees", upload_tree)
    app.router.add_get("/api/v1/trees", list_trees)
    app.router.add_get("/api/v1/trees/{name}", get_tree)
    app.router.add_get(OPENAPI_PATH, serve_openapi)
    return app


def _pod_provider(settings: Settings, workspace: Path) -> PodProvider:
    """The provider ``settings.pods`` names, configured from the settings."""
    if settings.pods == "kubernetes":
        from .pods.kubernetes import KubernetesPodProvider

        return KubernetesPodProvider(
            namespace=settings.kubernetes_namespace, image=settings.kubernetes_image
        )
    from .pods.local import LocalPodProvider

    check_sandbox(settings.pod_sandbox)
    return LocalPodProvider(
        settings.data_dir / "pods",
        workspace=workspace,
        warm=settings.pod_spare,
        sandbox=settings.pod_sandbox,
        readable=workspace_roots(settings, workspace),
        hidden=server_files(settings),
        passed=settings.pod_env,
    )


def workspace_roots(settings: Settings, workspace: Path) -> tuple[Path, ...]:
    """Where programs may come from and pods may read: the configured roots, else the
    server's workspace."""
    return tuple(root.resolve() for root in settings.workspace_roots) or (workspace,)


def server_files(settings: Settings) -> tuple[Path, ...]:
    """What of the server a pod must never read, even inside a workspace root: the data
    directory (the log, the discovery file with the admin token, the server log, the pods'
    folders) and a SQLite log kept elsewhere, with its journal files."""
    files = [settings.data_dir.resolve()]
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(str(url.database)).resolve()
        if not path.is_relative_to(files[0]):
            files += [path, *(path.with_name(path.name + end) for end in SQLITE_SIDE_FILES)]
    return tuple(files)


def check_sandbox(mode: str) -> None:
    """Say at start-up what the pod sandbox ``mode`` gets on this kernel: refuse to start when
    ``landlock`` is required and missing; warn under ``auto``."""
    abi = landlock_abi()
    if mode == "none" or abi > 0:
        log.info("pod sandbox", extra={"fields": {"mode": mode, "landlock_abi": abi}})
        return
    if mode == "landlock":
        raise SandboxError(
            "pod_sandbox is 'landlock' but this kernel does not offer Landlock (Linux 5.13+"
            " with landlock among its security modules); use 'auto' to run pods unsandboxed"
        )
    log.warning(
        "this kernel does not offer Landlock: local pods can read every file the server can",
        extra={"fields": {"mode": mode, "landlock_abi": 0}},
    )


def pod_policy(settings: Settings, environ: Mapping[str, str] = os.environ) -> PodPolicy:
    """How pods run, from the settings. A worker of a TLS server checks the server's
    certificate with that certificate itself, given as text (read when the server starts).
    The language model the server's ``environ`` configures (provider, key, base URL) reaches
    every pod, local or not, since its agents call it."""
    worker_env = [
        *model_environment(environ).items(),
        ("CANOPY_POD_ORPHAN_POLICY", settings.pod_orphan_policy),
        ("CANOPY_POD_ORPHAN_TIMEOUT", str(settings.pod_orphan_timeout)),
        ("CANOPY_POD_SERVER_GRACE", str(settings.pod_server_grace)),
        ("CANOPY_LOG_LEVEL", settings.log_level),
    ]
    if settings.tls_cert is not None:
        worker_env.append((SERVER_CERT_VARIABLE, settings.tls_cert.read_text(errors="replace")))
    return PodPolicy(
        max_sessions=settings.pod_max_sessions,
        idle_seconds=settings.pod_idle_timeout,
        start_timeout=settings.pod_start_timeout,
        call_timeout=settings.pod_call_timeout,
        limits=PodLimits(settings.pod_memory_mb * 1024 * 1024, settings.pod_cpus),
        worker_env=tuple(worker_env),
    )


def _pod_manager(
    provider: PodProvider | None,
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def run(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        manager = PodManager(
            app[STORE],
            provider or _pod_provider(settings, app[WORKSPACE]),
            pod_policy(settings),
            settings.pod_server_url or None,
        )
        app[PODS] = manager
        observe_pods(app[METRICS], manager)
        manager.start()
        try:
            yield
        finally:
            await manager.close()  # already done on shutdown, unless startup failed

    return run


async def _owned_store(app: web.Application) -> AsyncIterator[None]:
    store = open_store(app[SETTINGS].database_url)
    await store.start()
    log.info("event log opened", extra={"fields": {"database": store.describe()}})
    instrument_event_log(store.engine)
    app[STORE] = store
    try:
        yield
    finally:
        await store.close()


async def _evidence(app: web.Application) -> AsyncIterator[None]:
    """Evidence in the log's database (its tables come with the log's migrations), pruned
    every ``retention_interval`` when ``[evidence] retention_days`` is set."""
    store = app[STORE]
    if not isinstance(store, SqlEventStore):
        raise ConfigurationError("evidence needs the log in a SQL database (SQLite or PostgreSQL)")
    evidence = app[EVIDENCE] = evidence_store(store.engine)
    settings = app[SETTINGS]
    if not settings.evidence_retention_days:
        yield
        return
    age = timedelta(days=settings.evidence_retention_days)
    prune = _prune_evidence(evidence, age, settings.retention_interval)
    async with _background(prune, "canopy-evidence-retention"):
        yield


async def _prune_evidence(evidence: EvidenceStore, age: timedelta, interval: float) -> None:
    """Delete evidence older than ``age`` now and then every ``interval`` seconds; a failed
    round is logged and left to the next one."""
    while True:
        try:
            deleted = await evidence.delete_older_than(age)
            log.info("evidence retention applied", extra={"fields": {"deleted": deleted}})
        except BridgeError as exc:
            log.warning("evidence retention failed: %s", exc)
        await asyncio.sleep(interval)


async def _token_registry(app: web.Application) -> AsyncIterator[None]:
    """Catch the registry up (so the first request already sees every token), make sure the
    local developer has a token, then follow the log for tokens issued elsewhere."""
    tokens = ProjectionRunner(app[STORE], TokenRegistry())
    await tokens.load()
    await tokens.catch_up()
    known = read_discovery(app[SETTINGS].data_dir)
    app[LOCAL_TOKEN] = await bootstrap_token(tokens, known.token if known else None)
    app[TOKENS] = tokens
    async with _background(_retrying(tokens.run), "canopy-token-registry"):
        yield


async def _retention(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    prune = _prune_periodically(app[STORE], settings.retention, settings.retention_interval)
    async with _background(prune, "canopy-retention"):
        yield


async def _prune_periodically(
    store: EventStore, rules: tuple[RetentionRule, ...], interval: float
) -> None:
    """Apply the retention rules now and then every ``interval`` seconds; a failed round is
    logged and left to the next one."""
    while True:
        try:
            deleted = await store.apply_retention(rules)
            log.info("retention applied", extra={"fields": {"deleted": sum(deleted.values())}})
        except BridgeError as exc:
            log.warning("retention failed: %s", exc)
        await asyncio.sleep(interval)


async def _retrying(run: Callable[[], Awaitable[None]]) -> None:
    """Keep a follower running across event-log failures (it resumes from its checkpoint)."""
    while True:
        try:
            await run()
        except BridgeError as exc:
            log.warning("token registry stopped (%s); restarting", exc)
            await asyncio.sleep(RETRY_SECONDS)


@asynccontextmanager
async def _background(work: Coroutine[Any, Any, None], name: str) -> AsyncIterator[None]:
    """Run ``work`` as a task for the duration of the block; cancel it (and wait for it) on
    the way out."""
    task = asyncio.create_task(work, name=name)
    task.add_done_callback(_report_failure)
    try:
        yield
    finally:
        task.cancel()
        await asyncio.wait([task])


def _report_failure(task: asyncio.Task[None]) -> None:
    """A background task must only end by cancellation; say so loudly if it did not."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("background task %s died", task.get_name(), exc_info=exc)


async def stop_pods(app: web.Application) -> None:
    """Stop the pods while the server still takes their last events: each worker ends its
    executions and flushes them before it exits. Call it before the runner's cleanup, which
    closes every connection (pod links included) before ``on_shutdown`` runs; there it only
    catches pods a caller forgot, whose unshipped events are then lost."""
    await app[PODS].close()


async def _close_sockets(app: web.Application) -> None:
    """Close open subscriptions with "going away", so clients reconnect elsewhere or later
    instead of waiting for a shutdown timeout."""
    sockets = app[SOCKETS]
    for ws in list(sockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
