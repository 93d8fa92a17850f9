"""One suite, run against every ``PodProvider``: local processes, and Kubernetes pods through
a fake API server that speaks the real wire protocol. What a provider promises (start, wait,
stop, close, and the errors) must hold the same whichever one the server was configured with.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from canopy.server.pods.kubernetes import KubernetesPodProvider, pod_name
from canopy.server.pods.local import LocalPodProvider
from canopy.server.pods.provider import PodError, PodExit, PodProvider, PodSpec

from .fake_kube import FakeKubernetes

SLEEPER = """\
import signal, sys
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    signal.pause()
"""
"""A stand-in worker: sleeps until asked to end, and then ends cleanly."""


@dataclass(frozen=True, slots=True)
class Harness:
    """A provider, and the means to make one of its pods die as if its worker crashed."""

    provider: PodProvider
    kill: Callable[[str], None]
    killed_reason: str
    """The ``PodExit.reason`` a pod ended by ``kill`` reports."""


def spec(pod_id: str) -> PodSpec:
    return PodSpec(
        pod_id=pod_id,
        tenant_id="acme",
        user_id="alice",
        server_url="http://127.0.0.1:7400",
        token=f"token-{pod_id}",
    )


@pytest.fixture(params=["local", "kubernetes"])
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    if request.param == "local":
        local = LocalPodProvider(tmp_path / "pods", command=[sys.executable, "-c", SLEEPER])

        def kill_process(pod_id: str) -> None:
            os.kill(local.pid(pod_id), signal.SIGKILL)

        yield Harness(local, kill_process, "killed by signal 9 (SIGKILL)")
        await local.close()
    else:
        async with FakeKubernetes() as kube:
            api = kube.api_client()
            kubernetes = KubernetesPodProvider(api_client=api)

            def fail_pod(pod_id: str) -> None:
                kube.fail(pod_name(pod_id), reason="OOMKilled", exit_code=137)

            yield Harness(kubernetes, fail_pod, "OOMKilled")
            await kubernetes.close()
            api.close()


async def test_a_stopped_pod_reports_an_exit(harness: Harness) -> None:
    pods = harness.provider
    await pods.start(spec("pod-1"))

    await pods.stop("pod-1")
    ended = await pods.wait("pod-1")

    assert isinstance(ended, PodExit)
    assert ended.pod_id == "pod-1"
    assert ended.reason


async def test_a_pod_that_dies_says_why(harness: Harness) -> None:
    pods = harness.provider
    await pods.start(spec("pod-1"))
    waiting = asyncio.create_task(pods.wait("pod-1"))

    harness.kill("pod-1")
    ended = await waiting

    assert ended.pod_id == "pod-1"
    assert ended.reason == harness.killed_reason
    assert ended.exit_code is not None


async def test_waiting_again_gives_the_same_answer(harness: Harness) -> None:
    pods = harness.provider
    await pods.start(spec("pod-1"))
    harness.kill("pod-1")

    first = await pods.wait("pod-1")

    assert await pods.wait("pod-1") == first


async def test_starting_the_same_pod_twice_is_refused(harness: Harness) -> None:
    pods = harness.provider
    await pods.start(spec("pod-1"))

    with pytest.raises(PodError, match="'pod-1' already exists"):
        await pods.start(spec("pod-1"))

    await pods.stop("pod-1")
    assert (await pods.wait("pod-1")).pod_id == "pod-1"


async def test_stopping_an_unknown_pod_is_not_an_error(harness: Harness) -> None:
    await harness.provider.stop("never-started")


async def test_stopping_twice_is_not_an_error(harness: Harness) -> None:
    pods = harness.provider
    await pods.start(spec("pod-1"))

    await pods.stop("pod-1")
    await pods.stop("pod-1")

    assert (await pods.wait("pod-1")).pod_id == "pod-1"


async def test_waiting_for_an_unknown_pod_is_an_error(harness: Harness) -> None:
    with pytest.raises(PodError, match="no pod 'never-started'"):
        await harness.provider.wait("never-started")


async def test_close_ends_every_pod(harness: Harness) -> None:
    pods = harness.provider
    pod_ids = ["pod-1", "pod-2", "pod-3"]
    for pod_id in pod_ids:
        await pods.start(spec(pod_id))
    harness.kill("pod-2")
    # one pod has already died (and been seen to) when the provider closes
    died = await pods.wait("pod-2")
    waiting = [asyncio.create_task(pods.wait(pod_id)) for pod_id in pod_ids]

    await pods.close()

    ended = await asyncio.gather(*waiting)
    assert [exit.pod_id for exit in ended] == pod_ids
    assert ended[1] == died
    assert died.reason == harness.killed_reason
