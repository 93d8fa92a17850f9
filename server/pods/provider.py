"""The ``PodProvider`` interface: where a debug pod's worker process runs.

A provider only creates, watches and removes pods. Readiness is not its business: a pod is
ready when its worker has connected back to the server and said hello, which is the same for
every provider. One shared test suite runs against each implementation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Final

from canopy.bridge import CanopyError

__all__ = [
    "DEFAULT_CPUS",
    "DEFAULT_MEMORY_BYTES",
    "PodError",
    "PodExit",
    "PodLimits",
    "PodProvider",
    "PodSpec",
    "worker_environment",
]

DEFAULT_MEMORY_BYTES: Final = 2 * 1024**3
DEFAULT_CPUS: Final = 2.0


class PodError(CanopyError):
    """A pod could not be created or removed; the message says what the platform answered."""


@dataclass(frozen=True, slots=True)
class PodLimits:
    """Resources one pod may use."""

    memory_bytes: int = DEFAULT_MEMORY_BYTES
    cpus: float = DEFAULT_CPUS


@dataclass(frozen=True, slots=True)
class PodSpec:
    """One pod to create: whose it is, how its worker reaches the server, and its limits.

    ``token`` is the pod's own secret: the server accepts the worker's connection only with it,
    so one user's pod can never speak for another's."""

    pod_id: str
    tenant_id: str
    user_id: str
    server_url: str
    token: str
    limits: PodLimits = field(default_factory=PodLimits)
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PodExit:
    """How a pod ended, worded for the user (``"killed by signal 9"``, ``"OOMKilled"``)."""

    pod_id: str
    reason: str
    exit_code: int | None = None


def worker_environment(spec: PodSpec) -> dict[str, str]:
    """The variables every pod worker reads at start-up, whatever runs it."""
    return {
        **spec.env,
        "CANOPY_POD_ID": spec.pod_id,
        "CANOPY_POD_TOKEN": spec.token,
        "CANOPY_POD_TENANT": spec.tenant_id,
        "CANOPY_POD_USER": spec.user_id,
        "CANOPY_SERVER_URL": spec.server_url,
    }


class PodProvider(ABC):
    """Creates, watches and removes debug pods of one kind."""

    name: ClassVar[str]
    """``local`` or ``kubernetes``, as recorded in ``PodRequested`` events."""

    @abstractmethod
    async def start(self, spec: PodSpec) -> None:
        """Create the pod and start its worker; returns once the platform accepted it (the
        worker connects later). ``PodError`` when it refuses (quota, permissions, conflict)."""

    @abstractmethod
    async def wait(self, pod_id: str) -> PodExit:
        """Return when the pod has ended, for whatever reason, and say why."""

    @abstractmethod
    async def stop(self, pod_id: str) -> None:
        """Remove the pod: ask its worker to end, then force it. Stopping a pod that is gone
        is not an error."""

    @abstractmethod
    async def close(self) -> None:
        """Stop every pod this provider started."""

    def prepare(self, limits: PodLimits) -> None:  # noqa: B027 - optional, nothing by default
        """Get ready to start pods with ``limits`` quickly (a provider may warm a spare)."""
