"""Typed keys for what the application and each request carry, instead of module globals:
everything a handler needs hangs off ``request.app`` or ``request``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

from aiohttp import web

from canopy.bridge import EventStore, ProjectionRunner

from ..auth import Principal
from ..config import Settings
from ..incidents import EvidenceStore
from ..incidents.sentry import SentryKey

if TYPE_CHECKING:  # only for the annotation: the keys module stays free of the pods package
    from ..pods.manager import PodManager
from ..pods.roots import WorkspaceRoots

__all__ = [
    "EVIDENCE",
    "LOCAL_TOKEN",
    "PODS",
    "PRINCIPAL",
    "ROOTS",
    "SENTRY_SOURCE",
    "SETTINGS",
    "SOCKETS",
    "STORE",
    "TOKENS",
    "WORKSPACE",
]

SETTINGS: Final = web.AppKey("settings", Settings)
STORE: Final = web.AppKey("store", EventStore)
EVIDENCE: Final = web.AppKey("evidence", EvidenceStore)
"""Error reports from running services, in the log's database beside the log."""
TOKENS: Final = web.AppKey("tokens", ProjectionRunner)
"""The token registry (a :class:`server.auth.TokenRegistry` runner), following the log."""
LOCAL_TOKEN: Final = web.AppKey("local_token", str)
"""The local developer's token, written to the discovery file by ``canopy serve``."""
SOCKETS: Final = web.AppKey[set[web.WebSocketResponse]]("sockets")
"""Open subscription sockets, closed with "going away" when the server shuts down."""
PRINCIPAL: Final = web.RequestKey("principal", Principal)
"""Who the request acts for, set by the auth middleware on everything under ``/api/``."""
SENTRY_SOURCE: Final = web.RequestKey("sentry_source", SentryKey)
"""The tenant and service a Sentry ingestion request reports for, set by the auth middleware."""
PODS: Final[web.AppKey[PodManager]] = web.AppKey("pods")
"""Every debug pod of this server and the clients listening to them."""
WORKSPACE: Final = web.AppKey("workspace", Path)
"""Where relative programs and factory modules are found: the server's working directory."""
ROOTS: Final = web.AppKey("roots", WorkspaceRoots)
"""The folders programs may come from (``workspace_roots``), less the server's own files."""
