"""``canopy serve`` over TLS with a certificate of a test CA made here: clients over https and
wss trusting it by a CA file, the server's own certificate or ``SSL_CERT_FILE``; a debug pod
linked over wss running a tree to its end; the discovery file leading a local client to it;
and the refusals: a plain-http client, a client that does not trust the CA, and certificates
and keys that cannot be used."""

from __future__ import annotations

import dataclasses
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from yarl import URL

from canopy.bridge import EventStore
from canopy.bridge.client import (
    CanopyClient,
    Discovery,
    ServerUnreachable,
    UntrustedServer,
    read_discovery,
)
from canopy.server.config import Settings, SettingsError, load_settings
from canopy.server.discovery import write_discovery
from canopy.server.pods.protocol import SERVER_CERT_VARIABLE
from canopy.server.pods.worker import WorkerSettings
from canopy.server.remote.client import HttpExecutionControl
from canopy.server.remote.servers import Servers
from canopy.server.runtime.control import LaunchSpec
from canopy.server.runtime.engine import Mode, RunState
from canopy.server.tls import server_context

from .conftest import serving, tick
from .pods.remote import pod_server
from .test_cli import canopy, environment, read_line, spawn, stop
from .test_connections import HEALTH, SHORT, closed, raw

PATROL = "tests.server.runtime.factories:patrol"


@dataclass(frozen=True)
class Pem:
    """A server certificate (with its chain) and key issued by a test CA, and that CA."""

    cert: Path
    key: Path
    ca: Path


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


def issue(authority: trustme.CA, folder: Path) -> Pem:
    issued = authority.issue_cert("127.0.0.1", "localhost")
    folder.mkdir(parents=True, exist_ok=True)
    pem = Pem(folder / "server.pem", folder / "server.key", folder / "ca.pem")
    pem.cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    issued.private_key_pem.write_to_path(str(pem.key))
    authority.cert_pem.write_to_path(str(pem.ca))
    return pem


@pytest.fixture
def pem(authority: trustme.CA, tmp_path: Path) -> Pem:
    return issue(authority, tmp_path / "tls")


@pytest.fixture
def tls(settings: Settings, pem: Pem) -> Settings:
    return Settings(
        port=0,
        data_dir=settings.data_dir,
        database_url=settings.database_url,
        pod_spare=False,
        tls_cert=pem.cert,
        tls_key=pem.key,
    )


async def test_clients_over_https_and_wss_trust_the_ca_or_the_certificate_itself(
    tls: Settings, pem: Pem
) -> None:
    async with serving(tls) as running:
        assert running.url.startswith("https://127.0.0.1:")
        for trusted in (pem.ca, pem.cert):  # server.json names the certificate itself
            async with CanopyClient(running.url, running.local_token, ca_file=str(trusted)) as c:
                assert (await c.health())["status"] == "ok"
                [offset] = await c.append([tick("tls")])
                async with c.subscribe(after=offset - 1, streams=["execution/tls"]) as events:
                    assert (await anext(events)).offset == offset


async def test_ssl_cert_file_keeps_working(
    tls: Settings, pem: Pem, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(pem.ca))
    async with serving(tls) as running, CanopyClient(running.url, running.local_token) as client:
        assert (await client.health())["status"] == "ok"


async def test_a_client_that_does_not_trust_the_certificate_is_refused_clearly(
    tls: Settings, tmp_path: Path
) -> None:
    async with serving(tls) as running:
        async with CanopyClient(running.url, running.local_token) as client:
            with pytest.raises(UntrustedServer, match="does not trust") as refused:
                await client.health()
            assert "--ca-file or CANOPY_CA_FILE" in str(refused.value)
            with pytest.raises(UntrustedServer, match="does not trust"):
                await anext(client.subscribe())
        other = issue(trustme.CA(), tmp_path / "other")  # a CA, but not this server's
        async with CanopyClient(running.url, running.local_token, ca_file=str(other.ca)) as c:
            with pytest.raises(UntrustedServer, match="does not trust"):
                await c.health()
        missing = tmp_path / "nowhere.pem"
        with pytest.raises(UntrustedServer, match=f"CA file {missing}: cannot read it"):
            async with CanopyClient(running.url, running.local_token, ca_file=str(missing)):
                pass
        with pytest.raises(UntrustedServer, match="no PEM certificate in it"):
            async with CanopyClient(running.url, running.local_token, ca_file=str(tls.tls_key)):
                pass


async def test_plain_http_against_the_tls_port_is_refused_cleanly(tls: Settings, pem: Pem) -> None:
    async with serving(tls) as running:
        plain = str(URL(running.url).with_scheme("http"))
        async with CanopyClient(plain, running.local_token) as client:
            with pytest.raises(ServerUnreachable, match="use an https:// URL"):
                await client.health()
        async with raw(running) as (reader, writer):
            writer.write(HEALTH)
            assert b"HTTP/" not in await closed(reader)  # a TLS alert at most, then closed
        # ... and the server goes on serving TLS clients.
        async with CanopyClient(running.url, running.local_token, ca_file=str(pem.ca)) as c:
            assert (await c.health())["status"] == "ok"


async def test_a_tls_handshake_that_never_comes_is_cut_at_the_head_deadline(
    tls: Settings,
) -> None:
    quick = dataclasses.replace(tls, header_timeout=SHORT)
    async with serving(quick) as running, raw(running) as (reader, _):  # TCP, no ClientHello
        assert await closed(reader) == b""


async def test_a_pod_linked_over_wss_runs_a_tree_to_its_end(
    store: EventStore, tmp_path: Path, pem: Pem
) -> None:
    async with pod_server(
        store, tmp_path / ".canopy", tls_cert=pem.cert, tls_key=pem.key
    ) as running:
        assert running.url.startswith("https://")
        secret = await running.issue("ann", "acme")
        async with (
            CanopyClient(running.url, secret, ca_file=str(pem.ca)) as client,
            HttpExecutionControl(client) as control,
        ):
            info = await control.launch(
                LaunchSpec(PATROL, mode=Mode.AUTO, blackboard={"battery": 100})
            )
            ended = await control.wait_for_end(info.id)
        assert (ended.state, ended.tick) == (RunState.ENDED, 7)  # check_battery fails at 10


async def test_the_discovery_file_leads_a_local_client_to_a_tls_server(
    tls: Settings, tmp_path: Path
) -> None:
    async with serving(tls) as running:
        data_dir = tmp_path / "workspace" / ".canopy"
        advertised = Discovery(running.url, running.local_token, os.getpid(), "test")
        write_discovery(data_dir, advertised)  # without the certificate: not trusted
        with pytest.raises(UntrustedServer, match="does not trust"):
            await Servers(data_dir, environ={}).endpoint(start=False)
        ca_file = str(tls.tls_cert)
        write_discovery(data_dir, Discovery(running.url, running.local_token, 1, "t", ca_file))
        assert read_discovery(data_dir) == Discovery(
            running.url, running.local_token, 1, "t", ca_file
        )
        endpoint = await Servers(data_dir, environ={}).endpoint(start=False)
        assert endpoint is not None
        assert (endpoint.url, endpoint.ca_file) == (running.url, ca_file)
        async with CanopyClient.of(endpoint) as client:
            assert (await client.health())["status"] == "ok"


async def test_canopy_serve_over_tls_and_the_cli_clients(
    store_url: str, tmp_path: Path, pem: Pem
) -> None:
    env = environment(CANOPY_DATABASE_URL=store_url)
    process = await spawn(
        "serve",
        "--port",
        "0",
        "--tls-cert",
        str(pem.cert),
        "--tls-key",
        str(pem.key),
        cwd=tmp_path,
        env=env,
    )
    try:
        banner = ""
        while "Press Ctrl-C" not in banner:
            banner += await read_line(process)
        found = read_discovery(tmp_path / ".canopy")
        assert found is not None
        assert found.url.startswith("https://127.0.0.1:")
        assert found.ca_file == str(pem.cert)
        assert f"clients trust: {pem.cert}" in banner
        appended = await canopy(
            "events", "append", "--type", "TickStarted", "--stream", "execution/cli",
            "--payload", '{"execution_id": "cli", "tick": 1}',
            cwd=tmp_path, env=env,
        )  # fmt: skip
        assert appended.returncode == 0, appended.stderr
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        by_url = {"CANOPY_URL": found.url, "CANOPY_TOKEN": found.token}
        untrusting = await canopy("events", "replay", cwd=elsewhere, env=env | by_url)
        assert untrusting.returncode == 1
        assert "does not trust" in untrusting.stderr
        trusting = await canopy(
            "events", "replay", "--ca-file", str(pem.ca), cwd=elsewhere, env=env | by_url
        )
        assert trusting.returncode == 0, trusting.stderr
        assert "execution/cli" in trusting.stdout
    finally:
        assert await stop(process) == 0


async def test_certificates_and_keys_that_cannot_be_used_stop_serve_with_a_reason(
    authority: trustme.CA, tmp_path: Path, pem: Pem
) -> None:
    other = issue(authority, tmp_path / "other")
    encrypted = tmp_path / "encrypted.key"
    key = serialization.load_pem_private_key(pem.key.read_bytes(), password=None)
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    missing = tmp_path / "missing.pem"
    for cert, key_file, complaint in [
        (missing, pem.key, f"tls_cert {missing}: cannot read it: No such file or directory"),
        (tmp_path, pem.key, f"tls_cert {tmp_path}: cannot read it: Is a directory"),
        (pem.key, pem.key, f"tls_cert {pem.key}: not a PEM certificate"),
        (pem.cert, pem.cert, f"tls_key {pem.cert}: not a PEM private key"),
        (pem.cert, other.key, f"tls_key {other.key} is not the private key of tls_cert"),
        (pem.cert, encrypted, "tls_key is encrypted"),
    ]:
        settings = Settings(tls_cert=cert, tls_key=key_file)
        with pytest.raises(SettingsError) as refused:
            server_context(settings)
        assert complaint in str(refused.value)
    with pytest.raises(SettingsError, match="tls_cert and tls_key go together"):
        load_settings(environ={"CANOPY_TLS_CERT": str(pem.cert)}, cwd=tmp_path)
    relative = load_settings(
        environ={"CANOPY_TLS_CERT": "tls/server.pem", "CANOPY_TLS_KEY": "tls/server.key"},
        cwd=tmp_path,
    )
    assert (relative.tls_cert, relative.tls_key) == (pem.cert, pem.key)
    refused = await canopy(
        "serve", "--port", "0", "--tls-cert", str(pem.cert), "--tls-key", str(other.key),
        cwd=tmp_path, env=environment(),
    )  # fmt: skip
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"Error: tls_key {other.key} is not the private key of tls_cert {pem.cert}"
    )


def test_a_worker_trusts_the_certificate_its_server_gives_it(pem: Pem, tmp_path: Path) -> None:
    assigned = {
        "CANOPY_POD_ID": "p1",
        "CANOPY_POD_TOKEN": "secret",
        "CANOPY_POD_TENANT": "acme",
        "CANOPY_POD_USER": "ann",
        "CANOPY_SERVER_URL": "https://127.0.0.1:8470",
    }
    given = WorkerSettings.from_environment(assigned | {SERVER_CERT_VARIABLE: pem.cert.read_text()})
    assert isinstance(given.tls, ssl.SSLContext)
    assert WorkerSettings.from_environment(assigned | {"CANOPY_SERVER_URL": "http://h"}).tls is True
    with pytest.raises(ValueError, match="the certificate to trust: no PEM certificate in it"):
        WorkerSettings.from_environment(assigned | {SERVER_CERT_VARIABLE: "not a certificate"})
    with pytest.raises(ValueError, match="cannot read it"):
        WorkerSettings.from_environment(assigned | {"CANOPY_CA_FILE": str(tmp_path / "none")})
