"""The Kubernetes pod provider, against a fake API server speaking the real wire protocol (and,
when ``KUBECONFIG`` is set, against that real cluster)."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kubernetes import client

from canopy.server.pods.kubernetes import KubernetesPodProvider, label_value, pod_name
from canopy.server.pods.provider import PodError, PodExit, PodLimits, PodSpec, worker_environment

from .fake_kube import FakeKubernetes

LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


def spec(pod_id: str = "p1", **overrides: object) -> PodSpec:
    fields: dict[str, object] = {
        "pod_id": pod_id,
        "tenant_id": "acme",
        "user_id": "alice",
        "server_url": "http://canopy.canopy.svc:7400",
        "token": "secret-token",
    }
    fields.update(overrides)
    return PodSpec(**fields)  # type: ignore[arg-type]


@pytest.fixture
async def kube() -> AsyncIterator[FakeKubernetes]:
    async with FakeKubernetes() as fake:
        yield fake


@pytest.fixture
async def provider(kube: FakeKubernetes) -> AsyncIterator[KubernetesPodProvider]:
    api = kube.api_client()
    pods = KubernetesPodProvider(api_client=api)
    yield pods
    await pods.close()
    api.close()


async def watching(kube: FakeKubernetes, pod_id: str, count: int = 1) -> None:
    """Until the provider's watch on ``pod_id`` is open, after ``count`` watch requests."""
    name = pod_name(pod_id)
    await kube.until(lambda: len(kube.watches(name)) == count and kube.open_watches(name) == 1)


class TestPodSpec:
    async def test_labels_and_annotations_identify_the_pod(
        self, kube: FakeKubernetes, provider: KubernetesPodProvider
    ) -> None:
        await provider.start(spec("p1", user_id="alice@example.com"))

        [created] = kube.created
        metadata = created["metadata"]
        assert metadata["name"] == "canopy-pod-p1"
        assert metadata["namespace"] == "canopy"
        user_label = metadata["labels"]["canopy.dev/user"]
        assert metadata["labels"] == {
            "app.kubernetes.io/name": "canopy-debug-pod",
            "app.kubernetes.io/managed-by": "canopy",
            "canopy.dev/pod-id": "p1",
            "canopy.dev/user": user_label,
            "canopy.dev/tenant": "acme",
        }
        assert user_label.startswith("alice_example.com-")
        assert LABEL_VALUE.fullmatch(user_label)
        assert metadata["annotations"]["canopy.dev/user"] == "alice@example.com"
        assert kube.pod("canopy-pod-p1")["status"]["phase"] in ("Pending", "Running")

    async def test_worker_environment_and_command(
        self, kube: FakeKubernetes, provider: KubernetesPodProvider
    ) -> None:
        pod = spec("p1", env={"CANOPY_LOG_LEVEL": "debug"})
        await provider.start(pod)

        [container] = kube.created[0]["spec"]["containers"]
        env = {item["name"]: item["value"] for item in container["env"]}
        assert env == {"HOME": "/work", **worker_environment(pod)}
        assert env["CANOPY_POD_TOKEN"] == "secret-token"
        assert env["CANOPY_LOG_LEVEL"] == "debug"
        assert container["image"] == "canopy-debug:latest"
        assert container["command"] == ["python", "-m", "canopy.server.pods.worker"]

    async def test_default_limits_are_2gi_and_2_cpus_requested_and_limited(
        self, kube: FakeKubernetes, provider: KubernetesPodProvider
    ) -> None:
        await provider.start(spec())

        [container] = kube.created[0]["spec"]["containers"]
        expected = {"memory": "2Gi", "cpu": "2"}
        assert container["resources"] == {"requests": expected, "limits": expected}

    @pytest.mark.parametrize(
        ("limits", "memory", "cpu"),
        [
            (PodLimits(memory_bytes=512 * 1024**2, cpus=0.5), "512Mi", "500m"),
            (PodLimits(memory_bytes=1_000_000_001, cpus=1.25), "1000000001", "1250m"),
            (PodLimits(memory_bytes=3 * 1024**3, cpus=4), "3Gi", "4"),
        ],
    )
    async def test_custom_limits_become_exact_quantities(
        self,
        kube: FakeKubernetes,
        provider: KubernetesPodProvider,
        limits: PodLimits,
        memory: str,
        cpu: str,
    ) -> None:
        await provider.start(spec(limits=limits))

        resources = kube.created[0]["spec"]["containers"][0]["resources"]
        assert resources["limits"] == resources["requests"] == {"memory": memory, "cpu": cpu}

    async def test_pod_is_locked_down(
        self, kube: FakeKubernetes, provider: KubernetesPodProvider
    ) -> None:
        await provider.start(spec())

        pod_spec = kube.created[0]["spec"]
        assert pod_spec["restartPolicy"] == "Never"
        assert pod_spec["automountServiceAccountToken"] is False
        assert pod_spec["securityContext"]["runAsNonRoot"] is True
        assert pod_spec["securityContext"]["runAsUser"] == 1000
        assert pod_spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        [container] = pod_spec["containers"]
        assert container["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "runAsGroup": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
        # the root file system is read-only: the working directory is an empty, writable volume
        assert container["workingDir"] == "/work"
        mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
        volumes = {volume["name"]: volume for volume in pod_spec["volumes"]}
        assert volumes[mounts["/work"]] == {"name": mounts["/work"], "emptyDir": {}}

    async def test_configured_namespace_image_and_command(self, kube: FakeKubernetes) -> None:
        api = kube.api_client()
        pods = KubernetesPodProvider(
            namespace="debug",
            image="registry.example/canopy:1.2",
            command=["canopy-worker"],
            api_client=api,
        )
        try:
            await pods.start(spec())
        finally:
            await pods.close()
            api.close()

        [created] = kube.created
        assert created["metadata"]["namespace"] == "debug"
        assert created["spec"]["containers"][0]["image"] == "registry.example/canopy:1.2"
        assert created["spec"]["containers"][0]["command"] == ["canopy-worker"]
        assert kube.requests[0].path == "/api/v1/namespaces/debug/pods"


class TestLabelValue:
    @pytest.mark.parametrize(
        "text", ["alice", "a@b.c", "-leading", "trailing.", "ü-nicode", "x" * 100, "@@@", ""]
    )
    def test_is_always_a_valid_label_value(self, text: str) -> None:
        value = label_value(text)
        assert len(value) <= 63
        assert LABEL_VALUE.fullmatch(value)

    def test_valid_values_are_kept_and_sanitised_ones_stay_distinct(self) -> None:
        assert label_value("alice") == "alice"
        assert label_value("a@b.c") != label_value("a_b.c")


class TestStartErrors:
    async def test_an_existing_pod_is_a_conflict(
        self, kube: FakeKubernetes, provider: KubernetesPodProvider
    ) -> None:
        await provider.start(spec("p1"))

        with pytest.raises(PodError) as raised:
            await provider.start(spec("p1"))

        assert str(raised.value) == (
            "pod 'p1' already exists (Kubernetes pod 'canopy-pod-p1' in namespace 'canopy': "
            'pods "canopy-pod-p1" already exists)'
        )
        assert len(kube.created) == 1

    async def test_forbidden_says_so_with_the_servers_message(
        self, kube: FakeKubernetes, provider: KubernetesPodProvider
    ) -> None:
        kube.forbid('pods "canopy-pod-p1" is forbidden: exceeded quota: debug-pods, used: pods=10')

        with pytest.raises(PodError) as raised:
            await provider.start(spec("p1"))

        assert str(raised.value) == (
            "forbidden to create pod 'canopy-pod-p1' in namespace 'canopy' (HTTP 403): "
            'pods "canopy-pod-p1" is forbidden: exceeded quota: debug-pods, used: pods=10'
        )
        assert kube.pods == {}

    async def test_forbidden_by_rbac(
        self, kube: FakeKubernetes, provider: KubernetesPodProvider
    ) -> None:
        kube.forbid()

        with pytest.raises(PodError, match=r"^forbidden to create .*HTTP 403.*cannot create"):
            await provider.start(spec("p1"))

    async def test_a_pod_id_kubernetes_cannot_name_is_refused_before_asking(
        self, kube: FakeKubernetes, provider: KubernetesPodProvider
    ) -> None:
        for bad in ("Upper", "under_score", "-dash", "x" * 64):
            with pytest.raises(PodError, match="cannot name a Kubernetes pod"):
                await provider.start(spec(bad))
        assert kube.requests == []

    async def test_an_unreachable_api_server(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        configuration = client.Configuration(host=f"http://127.0.0.1:{port}")
        configuration.retries = 0
        api = client.ApiClient(configuration)
        pods = KubernetesPodProvider(api_client=api)
        try:
            with pytest.raises(PodError, match=rf"cannot reach the Kubernetes API at .*:{port}"):
                await pods.start(spec())
        finally:
            await pods.close()
            api.close()


class TestConfiguration:
    def test_no_cluster_and_no_kubeconfig_is_a_clear_error(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))

        with pytest.raises(PodError, match=r"no Kubernetes configuration.*set KUBECONFIG"):
            KubernetesPodProvider()

    async def test_kubeconfig_is_loaded_when_no_client_is_given(
        self, kube: FakeKubernetes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        kubeconfig = tmp_path / "config"
        kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
            f"clusters:\n- name: fake\n  cluster:\n    server: {kube.url}\n"
            "users:\n- name: tester\n  user:\n    token: t0ken\n"
            "contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: tester\n"
        )
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))

        pods = KubernetesPodProvider()
        try:
            await pods.start(spec())
        finally:
            await pods.close()

        assert pods.api_client.configuration.host == kube.url
        assert kube.created[0]["metadata"]["name"] == "canopy-pod-p1"
        # the global client default was left alone
        assert client.Configuration.get_default_copy().host != kube.url


class TestWait:
    async def test_a_pod_killed_for_memory_reports_oomkilled(
        self, kube: FakeKubernetes, provider: KubernetesPodProvider
    ) -> None:
        await provider.start(spec("p1"))
        waiting = asyncio.create_task(provider.wait("p1"))
        await watching(kube, "p1")

        kube.fail("canopy-pod-p1", reason="OOMKilled", exit_code=137)

        assert await waiting == PodExit("p1", "OOMKilled", 137)

    async def test_a_pod_that_succeeded(
        self, kube: FakeKubernetes, provider: KubernetesPodProvider
    ) -> None:
        await provider.start(spec("p1"))
        waiting = asyncio.create_task(provider.wait("p1"))
        await watching(kube, "p1")

        kube.succeed("canopy-pod-p1")

        assert await waiting == PodExit("p1", "Completed", 0)

    async def test_a_pod_that_ended_before_waiting(
        self, kube: FakeKubernetes, provider: KubernetesPodProvider
    ) -> None:
        await provider.start(spec("p1"))
        kube.fail("canopy-pod-p1", reason="Error", exit_code=3)

        assert await provider.wait("p1") == PodExit("p1", "Error", 3)
        assert kube.watches() == []  # the list answered; no watch was needed

    async def test_an_evicted_pod_reports_the_eviction(
        self, kube: FakeKubernetes, provider: KubernetesPodProvider
    ) -> None:
        await provider.start(spec("p1"))
        waiting = asyncio.create_task(provider.wait("p1"))
        await watching(kube, "p1")

        kube.evict("canopy-pod-p1")

        assert await waiting == PodExit("p1", "Evicted", 137)

    async def test_a_pod_deleted_by_someone_else(
        self, kube: FakeKubernetes, provider: KubernetesPodProvider
    ) -> None:
        await provider.start(spec("p1"))
        waiting = asyncio.create_task(provider.wait("p1"))
        await watching(kube, "p1")

        kube.remove("canopy-pod-p1")

        assert await waiting == PodExit("p1", "deleted")

    async def test_every_waiter_hears_the_same_exit(
        self, kube: FakeKubernetes, provider: KubernetesPodProvider
    ) -> None:
        await provider.start(spec("p1"))
        kube.fail("canopy-pod-p1")
        first = await provider.wait("p1")
        kube.remove("canopy-pod-p1")

        assert await provider.wait("p1") == first == PodExit("p1", "OOMKilled", 137)

    async def test_an_unknown_pod_is_an_error(self, provider: KubernetesPodProvider) -> None:
        with pytest.raises(PodError, match="no pod 'ghost' in namespace 'canopy'"):
            await provider.wait("ghost")

    async def test_a_pod_started_elsewhere_can_be_waited_for(
        self, kube: FakeKubernetes, provider: KubernetesPodProvider
    ) -> None:
        """After a server restart, a new provider still follows pods the old one started."""
        api = kube.api_client()
        other = KubernetesPodProvider(api_client=api)
        await other.start(spec("p1"))
        kube.succeed("canopy-pod-p1")

        assert await provider.wait("p1") == PodExit("p1", "Completed", 0)
        await other.close()
        api.close()

    async def test_a_watch_that_times_out_resumes_from_the_last_version(
        self, kube: FakeKubernetes, provider: KubernetesPodProvider
    ) -> None:
        await provider.start(spec("p1"))
        waiting = asyncio.create_task(provider.wait("p1"))
        await watching(kube, "p1")
        first = kube.watches("canopy-pod-p1")[0]
        assert first.query["timeoutSeconds"] == str(provider.watch_timeout)

        kube.end_watches()
        await watching(kube, "p1", count=2)
        kube.fail("canopy-pod-p1")

        assert await waiting == PodExit("p1", "OOMKilled", 137)
        resumed = kube.watches("canopy-pod-p1")[1]
        assert int(resumed.query["resourceVersion"]) >= int(first.query["resourceVersion"])

    async def test_an_expired_watch_lists_again(
        self, kube: FakeKubernetes, provider: KubernetesPodProvider
    ) -> None:
        await provider.start(spec("p1"))
        waiting = asyncio.create_task(provider.wait("p1"))
        await watching(kube, "p1")

        kube.expire_watches()  # 410 Gone: the version the watch was at is no longer served
        await watching(kube, "p1", count=2)
        kube.fail("canopy-pod-p1")

        assert await waiting == PodExit("p1", "OOMKilled", 137)
        lists = [
            r
            for r in kube.requests
            if r.method == "GET" and not r.watch and r.path.endswith("/pods")
        ]
        assert len(lists) == 2

    async def test_cancelling_a_wait_closes_its_watch(
        self, kube: FakeKubernetes, provider: KubernetesPodProvider
    ) -> None:
        await provider.start(spec("p1"))
        waiting = asyncio.create_task(provider.wait("p1"))
        await watching(kube, "p1")

        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

        await kube.until(lambda: kube.open_watches() == 0)


class TestStopAndClose:
    async def test_stop_deletes_with_a_grace_period(
        self, kube: FakeKubernetes, provider: KubernetesPodProvider
    ) -> None:
        await provider.start(spec("p1"))

        await provider.stop("p1")

        assert kube.deletions == [("canopy", "canopy-pod-p1", 5)]
        assert kube.pods == {}
        assert await provider.wait("p1") == PodExit("p1", "deleted")

    async def test_stop_ends_a_pending_wait(
        self, kube: FakeKubernetes, provider: KubernetesPodProvider
    ) -> None:
        await provider.start(spec("p1"))
        waiting = asyncio.create_task(provider.wait("p1"))
        await watching(kube, "p1")

        await provider.stop("p1")

        assert await waiting == PodExit("p1", "deleted")

    async def test_stopping_a_missing_pod_is_fine(
        self, kube: FakeKubernetes, provider: KubernetesPodProvider
    ) -> None:
        await provider.stop("ghost")
        await provider.start(spec("p1"))
        await provider.stop("p1")
        await provider.stop("p1")

        assert [name for _, name, _ in kube.deletions] == [
            "canopy-pod-ghost",
            "canopy-pod-p1",
            "canopy-pod-p1",
        ]

    async def test_stop_reports_other_api_errors(
        self, kube: FakeKubernetes, provider: KubernetesPodProvider
    ) -> None:
        await provider.start(spec("p1"))
        kube.forbid(verbs=("delete",))

        with pytest.raises(
            PodError,
            match=r"^forbidden to delete pod 'canopy-pod-p1' in namespace 'canopy' \(HTTP 403\): "
            r'pods is forbidden: .* cannot delete resource "pods"',
        ):
            await provider.stop("p1")
        assert list(kube.pods) == [("canopy", "canopy-pod-p1")]
        kube.forbidden = None

    async def test_close_removes_every_pod_it_started(self, kube: FakeKubernetes) -> None:
        api = kube.api_client()
        pods = KubernetesPodProvider(api_client=api)
        for pod_id in ("p1", "p2", "p3"):
            await pods.start(spec(pod_id))
        kube.fail("canopy-pod-p2")  # ended, but still there until removed
        waiting = asyncio.create_task(pods.wait("p1"))
        await watching(kube, "p1")

        await pods.close()
        api.close()

        assert kube.pods == {}
        assert sorted(name for _, name, _ in kube.deletions) == [
            "canopy-pod-p1",
            "canopy-pod-p2",
            "canopy-pod-p3",
        ]
        assert await waiting == PodExit("p1", "deleted")
        assert await pods.wait("p2") == PodExit("p2", "OOMKilled", 137)
        with pytest.raises(PodError, match="closed"):
            await pods.start(spec("p4"))

    async def test_close_leaves_pods_it_did_not_start(
        self, kube: FakeKubernetes, provider: KubernetesPodProvider
    ) -> None:
        api = kube.api_client()
        other = KubernetesPodProvider(api_client=api)
        await other.start(spec("theirs"))
        await provider.start(spec("mine"))

        await provider.close()

        assert list(kube.pods) == [("canopy", "canopy-pod-theirs")]
        await other.close()
        api.close()


@pytest.mark.skipif(not os.environ.get("KUBECONFIG"), reason="needs a cluster (set KUBECONFIG)")
class TestRealCluster:
    """The same provider against the cluster ``KUBECONFIG`` names. The namespace
    (``CANOPY_TEST_KUBE_NAMESPACE``, default ``default``) must admit pods under the
    ``restricted`` Pod Security Standard; the image (``CANOPY_TEST_KUBE_IMAGE``, default
    ``busybox:1.36``) must have ``sh``, ``tail`` and ``sleep``."""

    NAMESPACE = os.environ.get("CANOPY_TEST_KUBE_NAMESPACE", "default")
    IMAGE = os.environ.get("CANOPY_TEST_KUBE_IMAGE", "busybox:1.36")
    DEADLINE = 100.0  # an image pull included

    @staticmethod
    def pod_id() -> str:
        return f"test-{uuid.uuid4().hex[:12]}"

    async def run(self, script: str, limits: PodLimits | None = None) -> PodExit:
        pods = KubernetesPodProvider(
            namespace=self.NAMESPACE, image=self.IMAGE, command=["sh", "-c", script]
        )
        pod_id = self.pod_id()
        try:
            await pods.start(spec(pod_id, limits=limits or PodLimits(128 * 1024**2, 0.2)))
            async with asyncio.timeout(self.DEADLINE):
                return await pods.wait(pod_id)
        finally:
            await pods.close()

    async def test_a_worker_that_succeeds(self) -> None:
        ended = await self.run("touch /work/ok && exit 0")
        assert (ended.reason, ended.exit_code) == ("Completed", 0)

    async def test_a_worker_that_fails(self) -> None:
        ended = await self.run("exit 3")
        assert (ended.reason, ended.exit_code) == ("Error", 3)

    async def test_a_worker_over_its_memory_is_oomkilled(self) -> None:
        ended = await self.run("tail /dev/zero", PodLimits(memory_bytes=64 * 1024**2, cpus=0.5))
        assert (ended.reason, ended.exit_code) == ("OOMKilled", 137)

    async def test_stop_then_wait_and_a_conflict(self) -> None:
        pods = KubernetesPodProvider(
            namespace=self.NAMESPACE, image=self.IMAGE, command=["sleep", "3600"]
        )
        pod_id = self.pod_id()
        try:
            await pods.start(spec(pod_id, limits=PodLimits(64 * 1024**2, 0.1)))
            with pytest.raises(PodError, match="already exists"):
                await pods.start(spec(pod_id, limits=PodLimits(64 * 1024**2, 0.1)))
            await pods.stop(pod_id)
            async with asyncio.timeout(self.DEADLINE):
                ended = await pods.wait(pod_id)
            assert ended.pod_id == pod_id
            await pods.stop("test-missing-pod")
        finally:
            await pods.close()
