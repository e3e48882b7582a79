"""Private NBD exports, attacked as the issue did, against real clusters and real clients.

Each attachment's export opens only over TLS and only to the client certificate issued
for that attachment, which reaches its owner in ``connection_info`` (as Cinder hands out
an iSCSI target's CHAP secret). Real clients (qemu-io, qemu-img, nbdinfo, nbdcopy from
Debian's qemu-utils and libnbd-bin) read and write with the credentials, and get nothing
in plaintext, without a certificate, with another tenant's, or after the detach; the
tests then check the volume's file on the node is unchanged.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import stat
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cinderblock.protocol.client.attachments import nbd_uri, qemu_args, write_credentials
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.attachments import Attachment
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.wire.errors import NotFound
from tests.conftest import E2ECluster, EventTap, run_cli
from tests.conftest import run_tool as run
from tests.nbd_tls import NBD_TOOLS, nbds_uri, plain_uri, qemu_tls, requires
from tests.nbd_tls import write_credentials as write_ca_only

pytestmark = requires(*NBD_TOOLS)
MIB = 1 << 20
CONNECTOR = {"host": "compute-1", "ip": "127.0.0.1"}


async def attach(c: Client, vol: Volume, mode: str | None = None) -> Attachment:
    att = await c.create_attachment(vol.id, instance_id=f"vm-{uuid.uuid4().hex[:6]}", mode=mode)
    att = await c.update_attachment(att.id, CONNECTOR)
    return await c.complete_attachment(att.id)


async def run_ok(*argv: str) -> str:
    code, out = await run(*argv)
    assert code == 0, f"{argv} failed: {out}"
    return out


def _node_stat(events: list[dict[str, Any]], backend: str | None, key: str) -> int:
    """The value of `key` the node of `backend` last reported in a heartbeat."""
    host = (backend or "").partition("@")[0]
    beats = [e["statistics"][key] for e in events
             if e["kind"] == "heartbeat" and e.get("actor") == host
             and key in e.get("statistics", {})]
    assert beats, f"no heartbeat from {host} yet"
    return int(beats[-1])


def where(att: Attachment) -> tuple[str, int, str]:
    data = att.connection_info["data"]
    return data["host"], data["port"], data["export_name"]


def volume_bytes(cluster: E2ECluster, att: Attachment, length: int = 2 * MIB) -> bytes:
    """The first bytes of the attached volume's file, read on the node's disk."""
    assert att.host is not None
    with cluster.volume_file(att.host, att.volume_id).open("rb") as f:
        return f.read(length)


@pytest.fixture
def other_project() -> str:
    return f"project-{uuid.uuid4().hex[:12]}"


async def test_an_attached_volume_is_read_and_written_with_its_credentials_by_real_clients(
    cluster: E2ECluster, client: Client, tmp_path: Path,
) -> None:
    vol = await client.create_volume(1, wait=True)
    att = await attach(client, vol)
    keys = write_credentials(att, tmp_path / "keys")
    await run_ok("qemu-io", *qemu_args(att, keys), "-c", "write -P 0xab 0 1M")
    await run_ok("qemu-io", "-r", *qemu_args(att, keys), "-c", "read -P 0xab 0 1M")
    info = json.loads(await run_ok("nbdinfo", "--json", nbd_uri(att, keys)))
    assert info["TLS"] is True and info["exports"][0]["export-size"] == 1 << 30
    image = tmp_path / "image.raw"
    await run_ok("nbdcopy", nbd_uri(att, keys), str(image))
    with image.open("rb") as f:
        assert f.read(MIB + 1) == b"\xab" * MIB + b"\0"
    with image.open("r+b") as f:
        f.seek(MIB)
        f.write(b"\xcd" * MIB)
    await run_ok("nbdcopy", str(image), nbd_uri(att, keys))
    assert volume_bytes(cluster, att) == b"\xab" * MIB + b"\xcd" * MIB
    await client.delete_attachment(att.id)


@pytest.fixture
def solo(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    """One node: both tenants' certificates come from the same CA, the one the server
    trusts (a certificate from another node's CA fails the handshake anyway)."""
    return cluster_factory(nodes=1)


async def test_without_credentials_in_plaintext_or_with_another_tenants_nothing_is_read_or_written(
    solo: E2ECluster, project: str, other_project: str, tmp_path: Path,
) -> None:
    cluster = solo
    async with cluster.client(project) as client:
        mine = await attach(client, await client.create_volume(1, wait=True))
    my_keys = write_credentials(mine, tmp_path / "mine")
    await run_ok("qemu-io", *qemu_args(mine, my_keys), "-c", "write -P 0x5a 0 2M")
    async with cluster.client(other_project) as thief:
        theirs = await attach(thief, await thief.create_volume(1, wait=True))
        with pytest.raises(NotFound):
            await thief.show_attachment(mine.id)  # credentials reach their owner only
    assert theirs.host == mine.host
    assert theirs.connection_info["data"]["ca_cert"] == mine.connection_info["data"]["ca_cert"]
    their_keys = write_credentials(theirs, tmp_path / "theirs")
    ca_only = write_ca_only(tmp_path / "ca-only", mine.connection_info["data"]["ca_cert"], None)
    host, port, export = where(mine)
    zeros = tmp_path / "zeros.raw"
    zeros.write_bytes(bytes(2 * MIB))
    attempts = {
        "qemu-io in plaintext": ["qemu-io", "-f", "raw", "-c", "write -P 1 0 1M",
                                 plain_uri(host, port, export)],
        "nbdcopy in plaintext": ["nbdcopy", str(zeros), plain_uri(host, port, export)],
        "nbdinfo in plaintext": ["nbdinfo", plain_uri(host, port, export)],
        "qemu-io with no certificate": ["qemu-io", *qemu_tls(host, port, export, ca_only),
                                        "-c", "write -P 1 0 1M"],
        "nbdinfo with no certificate": ["nbdinfo", nbds_uri(host, port, export, ca_only)],
        "qemu-io with another tenant's": ["qemu-io", *qemu_tls(host, port, export, their_keys),
                                          "-c", "write -P 1 0 1M"],
        "qemu-img with another tenant's": ["qemu-img", "info",
                                           *qemu_tls(host, port, export, their_keys)],
        "nbdcopy with another tenant's": ["nbdcopy", str(zeros),
                                          nbds_uri(host, port, export, their_keys)],
        "nbdinfo with another tenant's": ["nbdinfo", nbds_uri(host, port, export, their_keys)],
    }
    for what, argv in attempts.items():
        code, out = await run(*argv)
        assert code != 0, f"{what} succeeded: {out}"
    assert volume_bytes(cluster, mine) == b"\x5a" * 2 * MIB
    await run_ok("qemu-io", "-r", *qemu_args(mine, my_keys), "-c", "read -P 0x5a 0 2M")


async def test_nbdinfo_list_shows_no_export_with_or_without_credentials(
    client: Client, tmp_path: Path,
) -> None:
    atts = [await attach(client, await client.create_volume(1, wait=True)) for _ in range(2)]
    host, port, _ = where(atts[0])
    code, out = await run("nbdinfo", "--list", "--json", f"nbd://{host}:{port}")
    assert code != 0 and "volume-" not in out
    keys = write_credentials(atts[0], tmp_path / "keys")
    out = await run_ok("nbdinfo", "--list", "--json", nbd_uri(atts[0], keys))
    assert json.loads(out)["exports"] == []
    for att in atts:
        await client.delete_attachment(att.id)


async def test_detaching_closes_live_connections_and_revokes_the_credentials(
    cluster: E2ECluster, client: Client, tmp_path: Path,
) -> None:
    vol = await client.create_volume(1, wait=True)
    old = await attach(client, vol)
    old_keys = write_credentials(old, tmp_path / "old")
    async with EventTap(cluster) as tap:
        served = _node_stat(tap.events, old.host, "nbd_bytes_read")
        reading = asyncio.create_task(run(
            "qemu-io", "-r", *qemu_args(old, old_keys), "-c", "read 0 4k", "-c", "sleep 5000",
            "-c", "read 0 4k"))
        await tap.wait_until(  # qemu-io has read its first 4k and sleeps, connected
            lambda evs: _node_stat(evs, old.host, "nbd_bytes_read") >= served + 4096)
        await client.delete_attachment(old.id)
    code, out = await reading
    assert code != 0 and "read failed" in out, out

    again = await attach(client, vol)  # the same volume, a new attachment, new credentials
    host, port, export = where(again)
    for argv in (["nbdinfo", nbd_uri(old, old_keys)],
                 ["nbdinfo", nbds_uri(host, port, export, old_keys)],
                 ["qemu-io", *qemu_tls(host, port, export, old_keys), "-c", "write -P 1 0 4k"]):
        code, out = await run(*argv)
        assert code != 0, f"{argv} succeeded with revoked credentials: {out}"
    assert volume_bytes(cluster, again, 4096) == bytes(4096)
    await run_ok("nbdinfo", nbd_uri(again, write_credentials(again, tmp_path / "new")))
    await client.delete_attachment(again.id)


async def test_the_node_keeps_its_ca_key_and_export_table_private(
    cluster: E2ECluster, client: Client,
) -> None:
    att = await attach(client, await client.create_volume(1, wait=True))
    host = (att.host or "").partition("@")[0]
    tls = cluster.cfg.path("nodes", f"{host}.tls")
    assert stat.S_IMODE(tls.stat().st_mode) == 0o700
    for private in (tls / "ca-key.pem", tls / "server-key.pem",
                    cluster.cfg.path("nodes", f"{host}.exports.json")):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
    assert (tls / "ca-cert.pem").read_text() == att.connection_info["data"]["ca_cert"]
    await client.delete_attachment(att.id)


# ---- the node's storage address --------------------------------------------------------
@pytest.fixture
def on_second_loopback(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    """A one-node cluster whose node serves NBD on 127.0.0.2 only."""
    return cluster_factory(nodes=1, node_overrides={"node-1": {"nbd_address": "127.0.0.2"}})


async def test_exports_are_served_only_on_the_nodes_configured_storage_address(
    on_second_loopback: E2ECluster, project: str, tmp_path: Path,
) -> None:
    async with on_second_loopback.client(project) as c:
        att = await attach(c, await c.create_volume(1, wait=True))
        host, port, _ = where(att)
        assert host == "127.0.0.2"
        keys = write_credentials(att, tmp_path / "keys")
        await run_ok("qemu-io", *qemu_args(att, keys), "-c", "write -P 0x11 0 64k")
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)
        await c.delete_attachment(att.id)


# ---- the CLI -----------------------------------------------------------------------------
def test_the_cli_writes_credentials_that_the_printed_qemu_io_and_nbdinfo_lines_use(
    cluster: E2ECluster, project: str, tmp_path: Path,
) -> None:
    key = {"CINDERBLOCK_KEY": str(cluster.user_key(project))}

    def cli(*args: str) -> Any:
        done = run_cli(*args, "--gateway", cluster.gateway, "--project", project, env=key)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if "--json" in args else done.stdout

    vol = cli("volume", "create", "1", "--wait", "--json")
    att = cli("attachment", "create", vol["id"], "--instance", "vm-1", "--json")
    early = run_cli("attachment", "credentials", att["id"], "--dir", str(tmp_path / "early"),
                    "--gateway", cluster.gateway, "--project", project, env=key)
    assert early.returncode == 1 and "has no connection_info yet" in early.stderr
    assert not (tmp_path / "early").exists()

    cli("attachment", "update", att["id"], "--connector", json.dumps(CONNECTOR))
    keys = tmp_path / "keys"
    printed = cli("attachment", "credentials", att["id"], "--dir", str(keys))
    files = sorted(p.name for p in keys.iterdir())
    assert files == ["ca-cert.pem", "client-cert.pem", "client-key.pem"]
    assert all(stat.S_IMODE((keys / f).stat().st_mode) == 0o600 for f in files)
    nbdinfo_line, qemu_line = (line.strip() for line in printed.splitlines()[1:3])
    assert nbdinfo_line.startswith("nbdinfo 'nbds://") and qemu_line.startswith("qemu-io ")
    for line in (nbdinfo_line, qemu_line):
        done = run_cli_tool(shlex.split(line))
        assert done[0] == 0, done
    shown = cli("attachment", "credentials", att["id"], "--dir", str(keys), "--json")
    assert shown["directory"] == str(keys) and shown["uri"] in nbdinfo_line
    table = cli("attachment", "show", att["id"])  # keys are named in tables, not printed
    assert "PRIVATE KEY" not in table and "BEGIN CERTIFICATE" not in table
    assert f"cinderblock attachment credentials {att['id']}" in table
    cli("attachment", "delete", att["id"])


def run_cli_tool(argv: list[str]) -> tuple[int, str]:
    """Run a printed command line as a user would (blocking: no server in this loop)."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    return done.returncode, done.stdout + done.stderr
