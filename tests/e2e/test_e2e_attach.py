"""Attachments end to end, as Cinder's v3 attachments, over a real NBD export.

Real actor processes on 127.0.0.1 (file backends); the volumes are read and
written by real NBD clients from Debian's packages (qemu-io, qemu-img,
nbdinfo, nbdcopy) at the ``connection_info`` the gateway hands out, with the
TLS credentials it carries (written by the client library's ``write_credentials``).
Exports do not enumerate, so what a node exports is read from its export table.
One two-node cluster serves the module; tests that stop actors or need one node
start a cluster of their own. Each test works in a project of its own.
"""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cinderblock.protocol.client.attachments import nbd_uri, qemu_args, write_credentials
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.attachments import Attachment
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState
from tests.conftest import (
    E2ECluster,
    EventTap,
    eventually,
    flow_events,
    run_cli,
    task_states,
)
from tests.conftest import (
    run_tool as run,
)
from tests.lifecycle_helpers import file_of
from tests.nbd_tls import NBD_TOOLS, qemu_tls, requires

pytestmark = requires(*NBD_TOOLS)
MIB = 1 << 20
# qos_specs: the front-end QoS of the volume's type, None without (as Cinder's); access_mode
# the attachment's, and encrypted (false), as Cinder's
CONNECTION_DATA = {"host", "port", "export_name", "tls", "ca_cert", "client_cert", "client_key",
                   "qos_specs", "access_mode", "encrypted"}
CONNECTOR = {"host": "compute-1", "ip": "127.0.0.1", "platform": "x86_64",
             "os_type": "linux", "multipath": False, "initiator": "iqn.2004-10.org:compute-1"}


async def run_ok(*argv: str) -> str:
    code, out = await run(*argv)
    assert code == 0, f"{argv} failed: {out}"
    return out


async def attach(c: Client, vol: Volume, mode: str | None = None) -> Attachment:
    """create → update (the export) → complete, as Nova does."""
    att = await c.create_attachment(vol.id, instance_id=f"vm-{uuid.uuid4().hex[:6]}", mode=mode)
    att = await c.update_attachment(att.id, CONNECTOR)
    return await c.complete_attachment(att.id)


class Keys:
    """Each attachment's credentials, written once into a directory of their own."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def dir(self, att: Attachment) -> Path:
        return write_credentials(att, self.root / att.id)

    def uri(self, att: Attachment) -> str:
        """For nbdinfo and nbdcopy."""
        return nbd_uri(att, self.dir(att))

    def qemu(self, att: Attachment) -> list[str]:
        """For qemu-io and qemu-img, before their commands."""
        return qemu_args(att, self.dir(att))


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(tmp_path / "keys")


def exported(cluster: E2ECluster) -> set[str]:
    """Every export of every node, from the nodes' export tables (nothing lists them)."""
    names: set[str] = set()
    for node in cluster.cfg.nodes:
        table = cluster.cfg.path("nodes", f"{node.host}.exports.json")
        if table.exists():
            names |= json.loads(table.read_text())["exports"].keys()
    return names


async def multiattach_type(admin: Client) -> str:
    name = f"multi-{uuid.uuid4().hex[:8]}"
    await admin.create_type(name, extra_specs={"multiattach": "<is> True"})
    return name


# ---- the round trip ------------------------------------------------------------------
async def test_a_pattern_written_over_nbd_is_read_back_after_detaching_and_attaching_again(
    client: Client, keys: Keys,
) -> None:
    vol = await client.create_volume(1, wait=True)
    att = await attach(client, vol)
    assert att.connection_info["driver_volume_type"] == "nbd"
    assert set(att.connection_info["data"]) == CONNECTION_DATA
    assert (await client.show_volume(vol.id)).status == "in-use"
    first = keys.uri(att)
    await run_ok("qemu-io", *keys.qemu(att), "-c", "write -P 0xab 0 1M")

    assert (await client.delete_attachment(att.id)).status == "detached"
    assert (await client.show_volume(vol.id)).status == "available"
    code, out = await run("nbdinfo", first)
    assert code != 0 and "nbdinfo" in out, "a detached volume must not be exported"

    again = await attach(client, vol, mode="ro")
    assert again.connection_info["data"]["access_mode"] == "ro"  # the guest's disk, to Nova
    second = keys.uri(again)
    assert second != first
    out = await run_ok("qemu-io", "-r", *keys.qemu(again), "-c", "read -P 0xab 0 1M",
                       "-c", "read -P 0 1M 1M")
    assert "read 1048576/1048576 bytes at offset 1048576" in out
    info = json.loads(await run_ok("qemu-img", "info", "--output=json", *keys.qemu(again)))
    assert info["virtual-size"] == 1 << 30
    await client.delete_attachment(again.id)


async def test_nbdcopy_copies_a_whole_volume_out_and_back_in(
    client: Client, keys: Keys, tmp_path: Any,
) -> None:
    vol = await client.create_volume(1, wait=True)
    att = await attach(client, vol)
    image = tmp_path / "image.raw"
    with image.open("wb") as f:
        f.truncate(1 << 30)
        f.seek(5 * MIB)
        f.write(b"\x5a" * MIB)
    await run_ok("nbdcopy", str(image), keys.uri(att))
    await run_ok("nbdcopy", keys.uri(att), str(tmp_path / "back.raw"))
    with (tmp_path / "back.raw").open("rb") as f:
        f.seek(5 * MIB)
        assert f.read(MIB + 1) == b"\x5a" * MIB + b"\0"
    await client.delete_attachment(att.id)


async def test_every_step_is_a_flow_whose_tasks_and_volume_statuses_are_published(
    cluster: E2ECluster, client: Client,
) -> None:
    vol = await client.create_volume(1, wait=True)
    async with EventTap(cluster) as tap:
        att = await attach(client, vol)
        await client.delete_attachment(att.id)
        # the gateway's events and the node's come by two publishers: wait for both
        await tap.wait_until(lambda evs: {("volume", "available"), ("notify", "volume.unexport")}
                             <= {(e["kind"], e.get("status", e.get("event")))
                                 for e in evs if e.get("volume_id") == vol.id})
    mine = tap.of_volume(vol.id)
    for flow, tasks in {
        "attachment_create_api": ["ExtractAttachmentRequestTask", "ReserveVolumeTask",
                                  "AttachmentEntryCreateTask"],
        "attachment_update_api": ["ExtractAttachmentTask", "ExtractConnectorTask",
                                  "AttachmentAttachingTask", "InitializeConnectionTask",
                                  "AttachmentConnectionSaveTask"],
        "attachment_complete_api": ["ExtractAttachmentTask", "AttachmentCompleteTask"],
        "attachment_delete_api": ["ExtractAttachmentTask", "AttachmentDetachingTask",
                                  "TerminateConnectionTask", "AttachmentEntryDestroyTask"],
    }.items():
        states = task_states(flow_events(mine, flow))
        assert states == [(t, s) for t in tasks for s in ("RUNNING", "SUCCESS")], flow
    statuses = [e["status"] for e in mine if e["kind"] == "volume"]
    assert statuses == ["reserved", "attaching", "in-use", "detaching", "available"]
    notes = [e["event"] for e in mine if e["kind"] == "notify"]
    assert notes == ["volume.export", "volume.unexport"]


async def test_a_snapshot_and_a_clone_of_a_written_volume_read_back_the_same_pattern(
    client: Client, keys: Keys,
) -> None:
    """The issue's scenario: write over NBD, detach, snapshot, create from the snapshot,
    attach, read back; and the same for a clone of the volume."""
    vol = await client.create_volume(1, wait=True)
    att = await attach(client, vol)
    await run_ok("qemu-io", *keys.qemu(att), "-c", "write -P 0xab 0 1M")
    await client.delete_attachment(att.id)

    snap = await client.create_snapshot(vol.id, wait=True)
    from_snap = await client.create_volume(1, snapshot_id=snap.id, wait=True)
    clone = await client.create_volume(1, source_volid=vol.id, wait=True)
    await run_ok("qemu-io", *keys.qemu(again := await attach(client, vol)),
                 "-c", "write -P 0xcd 0 1M")  # the source moves on
    await client.delete_attachment(again.id)

    for copy in (from_snap, clone):
        copy_att = await attach(client, copy, mode="ro")
        await run_ok("qemu-io", "-r", *keys.qemu(copy_att), "-c", "read -P 0xab 0 1M",
                     "-c", "read -P 0 1M 1M")
        await client.delete_attachment(copy_att.id)
        assert (await client.show_volume(copy.id)).status == "available"


# ---- refusals change nothing --------------------------------------------------------
async def test_a_second_attachment_of_a_volume_without_multiattach_is_refused(
    cluster: E2ECluster, client: Client,
) -> None:
    vol = await client.create_volume(1, wait=True)
    att = await attach(client, vol)
    before = (await client.list_attachments(vol.id), exported(cluster))

    with pytest.raises(InvalidState, match="does not allow multiattach"):
        await client.create_attachment(vol.id, instance_id="vm-2")

    assert (await client.list_attachments(vol.id), exported(cluster)) == before
    assert (await client.show_volume(vol.id)).status == "in-use"
    await client.delete_attachment(att.id)


async def test_attachments_are_listed_by_instance_and_by_status(client: Client) -> None:
    """Nova asks for an instance's attachments (``instance_id``); an operator for those in
    one status: each answers with those only (the REST front had passed them over)."""
    tag = uuid.uuid4().hex[:8]
    one = await client.create_volume(1, wait=True)
    two = await client.create_volume(1, wait=True)
    attached = await client.create_attachment(one.id, instance_id=f"vm-a-{tag}")
    await client.update_attachment(attached.id, CONNECTOR)
    await client.complete_attachment(attached.id)
    reserved = await client.create_attachment(two.id, instance_id=f"vm-b-{tag}")

    by_instance = await client.list_attachments(instance_id=f"vm-a-{tag}")
    assert [a.id for a in by_instance] == [attached.id]
    in_volume = await client.list_attachments(two.id, instance_id=f"vm-b-{tag}")
    assert [a.id for a in in_volume] == [reserved.id]
    assert await client.list_attachments(two.id, instance_id=f"vm-a-{tag}") == []
    ours = {attached.id, reserved.id}
    assert {a.id for a in await client.list_attachments(status="reserved")} & ours == {
        reserved.id}
    assert {a.id for a in await client.list_attachments(status="attached")} & ours == {
        attached.id}
    with pytest.raises(InvalidInput, match="unknown AttachmentStatus 'glued'"):
        await client.list_attachments(status="glued")
    for att in (attached, reserved):
        await client.delete_attachment(att.id)


async def test_completing_an_attachment_before_updating_it_is_refused(client: Client) -> None:
    vol = await client.create_volume(1, wait=True)
    att = await client.create_attachment(vol.id, instance_id="vm-1")

    with pytest.raises(InvalidState, match="update it with a connector before completing"):
        await client.complete_attachment(att.id)

    assert (await client.show_attachment(att.id)).status == "reserved"
    assert (await client.show_volume(vol.id)).status == "reserved"
    await client.delete_attachment(att.id)
    assert (await client.show_volume(vol.id)).status == "available"


async def test_an_attached_or_reserved_volume_cannot_be_deleted(
    client: Client, keys: Keys,
) -> None:
    vol = await client.create_volume(1, wait=True)
    reserved = await client.create_attachment(vol.id, instance_id="vm-1")
    with pytest.raises(InvalidState):
        await client.delete_volume(vol.id)

    att = await client.complete_attachment(
        (await client.update_attachment(reserved.id, CONNECTOR)).id)
    with pytest.raises(InvalidState):
        await client.delete_volume(vol.id)
    await run_ok("nbdinfo", keys.uri(att))

    await client.delete_attachment(att.id)
    assert (await client.delete_volume(vol.id, wait=True)).status == "deleted"


@pytest.mark.parametrize(
    ("connector", "says"),
    [
        (["host", "compute-1"], "connector must be a map"),
        ("compute-1", "connector must be a map"),
        ({"host": "compute-1", "mode": "rwx"}, "'mode' must be one of rw, ro"),
        ({"host": "c" * 256}, "'host' must be 1-255 characters"),
        ({"host": "compute-1", "initiator": "i" * 10_000}, "'initiator' must be 1-255"),
        ({"host": "compute-1", "multipath": "yes"}, "'multipath' must be true or false"),
        ({"host": "compute-1", "exploit": 1}, "'exploit' is not a connector key"),
        ({}, "'host' is required"),
    ],
)
async def test_a_bad_connector_is_refused_clearly_and_changes_nothing(
    client: Client, connector: Any, says: str,
) -> None:
    vol = await client.create_volume(1, wait=True)
    att = await client.create_attachment(vol.id, instance_id="vm-1")

    with pytest.raises(InvalidInput, match=says):
        await client.update_attachment(att.id, connector)

    shown = await client.show_attachment(att.id)
    assert (shown.status, shown.connection_info, shown.connector) == ("reserved", {}, {})
    assert (await client.show_volume(vol.id)).status == "reserved"
    good = await client.update_attachment(att.id, CONNECTOR)  # the attachment still works
    assert good.status == "attaching"
    await client.delete_attachment(att.id)


async def test_a_back_end_qos_holds_the_export_to_its_bytes_a_second(
    client: Client, admin: Client, keys: Keys,
) -> None:
    """A type whose QoS is the back end's: the node's NBD server holds the volume's reads
    and writes to ``total_bytes_sec`` (here 2 MiB/s, per GB: 1 MiB/s a GB of 2 GB), with
    a second's burst; the attachment carries no front-end specs."""
    tag = uuid.uuid4().hex[:8]
    qos = await admin.create_qos(f"slow-{tag}", "back-end", {
        "total_bytes_sec_per_gb": str(MIB), "total_bytes_sec_max": str(8 * MIB)})
    vtype = await admin.create_type(f"slow-{tag}")
    await admin.associate_qos(qos.id, vtype.id)
    vol = await client.create_volume(2, volume_type=vtype.name, wait=True)
    att = await attach(client, vol)
    assert att.connection_info["data"]["qos_specs"] is None
    host = (vol.host or "").split("@")[0]  # node-1@file: the node's host name
    node = next(n for n in (await admin.cluster_stats()).actors if n.actor == host)
    before = node.details["nbd_throttled"]

    started = asyncio.get_running_loop().time()
    await run_ok("qemu-io", *keys.qemu(att), "-c", "write -P 0x7e 0 4M", "-c",
                 "read -P 0x7e 0 4M")
    took = asyncio.get_running_loop().time() - started
    # 8 MiB through a 2 MiB/s limit with 2 MiB of burst: 3 s at the least
    assert took >= 2.9, f"8 MiB took {took:.2f} s: the limit did not hold"
    node = next(n for n in (await admin.cluster_stats()).actors if n.actor == host)
    assert node.details["nbd_throttled"] > before
    await client.delete_attachment(att.id)
    await client.delete_volume(vol.id)
    await admin.delete_qos(qos.id, force=True)


async def test_a_multiattach_type_allows_two_attachments_that_see_the_same_bytes(
    client: Client, admin: Client, keys: Keys,
) -> None:
    vol = await client.create_volume(1, volume_type=await multiattach_type(admin), wait=True)
    writer = await attach(client, vol)
    reader = await attach(client, vol, mode="ro")
    assert nbd_uri(writer) != nbd_uri(reader)

    await run_ok("qemu-io", *keys.qemu(writer), "-c", "write -P 0x42 2M 512k")
    await run_ok("qemu-io", "-r", *keys.qemu(reader), "-c", "read -P 0x42 2M 512k")
    code, _ = await run("qemu-io", *keys.qemu(reader), "-c", "write -P 1 0 4k")
    assert code != 0, "the read-only attachment must refuse writes"
    host, port, export = (writer.connection_info["data"][k] for k in ("host", "port",
                                                                        "export_name"))
    code, _ = await run("qemu-io", *qemu_tls(host, port, export, keys.dir(reader)),
                        "-c", "write -P 1 0 4k")
    assert code != 0, "the read-only attachment's key must not open the writer's export"

    await client.delete_attachment(writer.id)
    assert (await client.show_volume(vol.id)).status == "in-use"
    await run_ok("qemu-io", "-r", *keys.qemu(reader), "-c", "read -P 0x42 2M 512k")
    await client.delete_attachment(reader.id)
    assert (await client.show_volume(vol.id)).status == "available"


async def test_only_attached_volumes_are_exported(
    cluster: E2ECluster, client: Client, keys: Keys,
) -> None:
    vol = await client.create_volume(1, wait=True)
    probe = await attach(client, vol)
    await client.delete_attachment(probe.id)
    assert probe.connection_info["data"]["export_name"] not in exported(cluster)

    reserved = await client.create_attachment(vol.id, instance_id="vm-1")
    names = exported(cluster)
    assert not any(vol.id in name for name in names), "a reserved volume is not exported yet"

    updated = await client.update_attachment(reserved.id, CONNECTOR)
    assert updated.connection_info["data"]["export_name"] in exported(cluster)
    await run_ok("nbdinfo", keys.uri(updated))
    await client.delete_attachment(updated.id)
    code, _ = await run("nbdinfo", keys.uri(updated))
    assert code != 0


# ---- a client killed mid-transfer ---------------------------------------------------
@pytest.fixture
def solo(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    """A one-node cluster of this test's own (started outside the test's event loop)."""
    return cluster_factory(nodes=1)


async def test_killing_an_nbd_client_mid_transfer_leaves_the_node_serving_the_others(
    solo: E2ECluster, project: str, keys: Keys,
) -> None:
    async with solo.client(project) as c:
        big = await c.create_volume(50, wait=True)  # sparse: 50 GiB to read, nothing stored
        small = await c.create_volume(1, wait=True)
        big_att, small_att = await attach(c, big), await attach(c, small)
        await run_ok("qemu-io", *keys.qemu(small_att), "-c", "write -P 0x77 0 1M")
        async with EventTap(solo) as tap:
            copy = await asyncio.create_subprocess_exec(  # all of it: holes are not skipped
                "nbdcopy", "--no-extents", keys.uri(big_att), "null:",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            try:
                await tap.wait_until(lambda evs: _node_stat(evs, "nbd_bytes_read") > 0)
                assert copy.returncode is None, "the transfer ended before the kill"
                copy.send_signal(signal.SIGKILL)
                assert await copy.wait() == -signal.SIGKILL
            finally:
                if copy.returncode is None:
                    copy.kill()
                    await copy.wait()
            await run_ok("qemu-io", "-r", *keys.qemu(small_att), "-c", "read -P 0x77 0 1M")
            n = len(tap.events)
            await tap.wait_until(lambda evs: _node_stat(evs[n:], "nbd_connections") == 0)
        await run_ok("nbdinfo", keys.uri(big_att))  # the killed client's export still serves
        assert (await c.create_volume(1, wait=True)).status == "available"
        for att in (big_att, small_att):
            await c.delete_attachment(att.id)


def _node_stat(events: list[dict[str, Any]], key: str) -> int:
    """The latest value of ``key`` a node's heartbeat reported (-1 before any)."""
    beats = [e for e in events if e["kind"] == "heartbeat" and key in e.get("statistics", {})]
    return int(beats[-1]["statistics"][key]) if beats else -1


# ---- restarts ------------------------------------------------------------------------
async def test_attachments_and_exports_survive_restarts_of_the_node_and_the_gateway(
    solo: E2ECluster, project: str, keys: Keys,
) -> None:
    async with solo.client(project) as c:
        vol = await c.create_volume(1, wait=True)
        att = await attach(c, vol)
        await run_ok("qemu-io", *keys.qemu(att), "-c", "write -P 0x3c 0 64k")

    await asyncio.to_thread(_restart, solo, "node-1")
    await asyncio.to_thread(_restart, solo, "gateway")

    async with solo.client(project) as c:
        assert [a.id for a in await c.list_attachments(vol.id)] == [att.id]
        assert (await c.show_attachment(att.id)).connection_info == att.connection_info
        assert (await c.show_volume(vol.id)).status == "in-use"
        await eventually(lambda: _serves(keys.uri(att)), timeout=10)  # the same credentials
        await run_ok("qemu-io", "-r", *keys.qemu(att), "-c", "read -P 0x3c 0 64k")
        await c.delete_attachment(att.id)
        assert (await c.show_volume(vol.id)).status == "available"
    code, _ = await run("nbdinfo", keys.uri(att))
    assert code != 0


def _restart(cluster: E2ECluster, actor: str) -> None:
    cluster.cluster.stop_actor(actor)
    if actor.startswith("node-"):
        cluster.cluster.spawn("node", actor)
    else:
        cluster.cluster.spawn(actor)
    cluster.cluster.wait_ready(30.0)


async def _serves(uri: str) -> bool:
    code, _ = await run("nbdinfo", uri)
    return code == 0


# ---- the CLI -------------------------------------------------------------------------
def test_the_cli_attaches_prints_the_connection_info_lists_and_detaches(
    cluster: E2ECluster, project: str,
) -> None:
    def cli(*args: str) -> Any:
        done = run_cli(*args, "--gateway", cluster.gateway, "--project", project,
                       env={"CINDERBLOCK_KEY": str(cluster.user_key(project))})
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if "--json" in args else done.stdout

    vol = cli("volume", "create", "1", "--wait", "--json")
    att = cli("attachment", "create", vol["id"], "--instance", "vm-1", "--json")
    assert (att["status"], att["instance_id"]) == ("reserved", "vm-1")
    table = cli("attachment", "update", att["id"], "--connector", json.dumps(CONNECTOR))
    for word in ("driver_volume_type", "nbd", "host", "port", "export_name", "tls",
                 f"cinderblock attachment credentials {att['id']} --dir DIR"):
        assert word in table
    assert "PRIVATE KEY" not in table
    assert cli("attachment", "complete", att["id"], "--json")["status"] == "attached"
    listing = cli("attachment", "list")
    assert att["id"] in listing and "attached" in listing
    assert cli("volume", "show", vol["id"], "--json")["status"] == "in-use"
    assert cli("attachment", "delete", att["id"], "--json")["status"] == "detached"
    assert cli("attachment", "list", "--json") == []

    other = cli("attachment", "create", vol["id"], "--mode", "ro", "--json")
    info = cli("attachment", "update", other["id"], "--connector", '{"host": "h2"}', "--json")
    assert info["driver_volume_type"] == "nbd"
    assert set(info["data"]) == CONNECTION_DATA and info["data"]["tls"] is True
    assert cli("attachment", "show", other["id"], "--json")["attach_mode"] == "ro"
    refused = run_cli("attachment", "delete", other["id"], "--force", "--gateway",
                      cluster.gateway, "--project", project,
                      env={"CINDERBLOCK_KEY": str(cluster.user_key(project))})
    assert refused.returncode != 0 and "attachment.force_delete" in refused.stderr
    admin = run_cli("attachment", "delete", other["id"], "--force", "--json", "--gateway",
                    cluster.gateway, "--project", "admin",
                    env={"CINDERBLOCK_KEY": str(cluster.user_key("admin", admin=True))})
    assert json.loads(admin.stdout)["status"] == "detached", admin.stderr


def test_the_cli_refuses_a_connector_that_is_not_json_in_one_line(
    cluster: E2ECluster, project: str,
) -> None:
    done = run_cli("attachment", "update", "some-id", "--connector", "{host: h1",
                   "--gateway", cluster.gateway, "--project", project)
    assert done.returncode == 1
    assert done.stderr.startswith("ERROR (invalid_input): --connector is not JSON")
    assert len(done.stderr.strip().splitlines()) == 1


# ---- copies of a volume a guest writes: one instant ------------------------------------
@pytest.fixture(scope="module")
def slow_copies(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    """One node whose snapshots and clones take 2 s (``delay:``) before their copy."""
    return cluster_factory(nodes=1, node_overrides={"node-1": {
        "faults": ("delay:create_snapshot", "delay:create_cloned_volume")}})


async def test_a_write_sent_while_an_in_use_volume_is_snapshotted_or_cloned_waits_for_the_copy(
    slow_copies: E2ECluster, keys: Keys, project: str,
) -> None:
    """A snapshot (``--force``) and a clone of a volume a guest writes are of one instant:
    a write sent while the node copies waits unanswered until the copy is made, and then
    lands in the volume only; where it went straight through, a copy made without
    reflinks could hold some of a guest's writes and not others."""
    cluster = slow_copies
    async with cluster.client(project) as c, EventTap(cluster) as tap:
        vol = await c.create_volume(1, wait=True)
        att = await attach(c, vol)
        await run_ok("qemu-io", *keys.qemu(att), "-c", "write -P 0xab 0 1M")

        async def copied_while_writing(start: Callable[[], Any], task: str, n: int) -> str:
            """Start the copy; once its node runs ``task``, write 0xcd (pattern ``n``)."""
            made = await start()
            await tap.wait_until(lambda evs: any(
                e["kind"] == "task" and e.get("task") == task and e["state"] == "RUNNING"
                and e.get("actor") == "node-1" for e in evs[seen:]), timeout=20)
            began = asyncio.get_running_loop().time()
            await run_ok("qemu-io", *keys.qemu(att), "-c", f"write -P {n} 0 1M")
            assert asyncio.get_running_loop().time() - began > 0.5  # it waited for the copy
            return str(made.id)

        seen = len(tap.events)
        snap_id = await copied_while_writing(
            lambda: c.create_snapshot(vol.id, force=True), "CreateSnapshotTask", 0xcd)
        snap = await c.wait_for_snapshot_status(snap_id, "available", timeout=30)
        seen = len(tap.events)
        clone_id = await copied_while_writing(
            lambda: c.create_volume(1, source_volid=vol.id), "CreateVolumeFromSpecTask", 0xef)
        clone = await c.wait_for_status(clone_id, timeout=30)

    assert snap.status == "available" and clone.status == "available"
    node_dir = file_of(cluster, vol).parent
    with (node_dir / f"snapshot-{snap.id}").open("rb") as f:
        assert f.read(MIB) == b"\xab" * MIB  # before the write sent while it was taken
    with file_of(cluster, clone).open("rb") as f:
        assert f.read(MIB) == b"\xcd" * MIB  # after the first write, before the second
    with file_of(cluster, vol).open("rb") as f:
        assert f.read(MIB) == b"\xef" * MIB
