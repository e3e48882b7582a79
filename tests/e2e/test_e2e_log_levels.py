"""Log levels changed while the cluster runs (Cinder's os-services get-log and set-log,
an admin's): a node's loggers set to DEBUG log at DEBUG from then on, in that node only;
every service answers for its loggers; what is not a level, a binary or an admin's is
refused and nothing changes."""

from __future__ import annotations

import pytest

from cinderblock.protocol.client.client import Client
from cinderblock.protocol.wire.errors import Forbidden, InvalidInput
from tests.conftest import E2ECluster, eventually

PREFIX = "cinderblock.storage_node"


async def test_a_node_set_to_debug_logs_at_debug_and_no_other_service_changes(
    cluster: E2ECluster, admin: Client,
) -> None:
    every = await admin.log_levels(prefix="cinderblock")
    assert not every.missing
    assert {(s.binary, s.host) for s in every.services} == {
        ("cinderblock-gateway", "gateway"), ("cinderblock-quota", "quota"),
        ("cinder-scheduler", "scheduler"), ("cinder-volume", "node-1@file"),
        ("cinder-volume", "node-2@file")}
    before = {s.host: s.levels for s in every.services}
    assert set(before["node-1@file"].values()) == {"INFO"}

    changed = await admin.set_log_levels("debug", binary="cinder-volume",
                                         server="node-1@file", prefix=PREFIX)
    (node1,) = changed.services
    assert node1.host == "node-1@file" and node1.levels
    assert set(node1.levels.values()) == {"DEBUG"}
    assert all(name.startswith(PREFIX) for name in node1.levels)
    after = {s.host: s.levels for s in (await admin.log_levels(prefix=PREFIX)).services}
    assert set(after["node-2@file"].values()) == {"INFO"}  # only node-1 changed
    assert after["gateway"] == {}  # the gateway has no storage node loggers

    # Every cinderblock logger of node-1 at DEBUG: it logs each request it handles
    # (node-2, left at INFO, does not).
    await admin.set_log_levels("DEBUG", server="node-1", prefix="cinderblock")
    logs = {host: cluster.cfg.path("logs", f"{host}.log") for host in ("node-1", "node-2")}
    sizes = {host: path.stat().st_size for host, path in logs.items()}
    for _ in range(4):  # the scheduler spreads creates over both nodes
        await admin.create_volume(1, wait=True)

    def debug_lines(host: str) -> list[str]:
        with open(logs[host], encoding="utf-8", errors="replace") as f:
            f.seek(sizes[host])
            return [line for line in f if " DEBUG " in line]

    await eventually(lambda: any("node-1: cast node.create_volume from scheduler" in line
                                 for line in debug_lines("node-1")))
    assert debug_lines("node-2") == []
    await admin.set_log_levels("INFO", server="node-1", prefix="cinderblock")
    again = {s.host: s.levels for s in (await admin.log_levels(prefix=PREFIX)).services}
    assert set(again["node-1@file"].values()) == {"INFO"}


async def test_what_is_not_a_level_a_binary_or_an_admin_s_is_refused(
    admin: Client, client: Client,
) -> None:
    with pytest.raises(Forbidden, match=r"only an admin may send service\.set_log_levels"):
        await client.set_log_levels("DEBUG")
    with pytest.raises(Forbidden, match=r"only an admin may send service\.log_levels"):
        await client.log_levels()
    with pytest.raises(InvalidInput, match="'LOUD' is not a valid log level"):
        await admin.set_log_levels("LOUD")
    with pytest.raises(InvalidInput, match="binary 'cinder-nothing' is none of"):
        await admin.log_levels(binary="cinder-nothing")
    with pytest.raises(InvalidInput, match="a log prefix is a logger name's start"):
        await admin.log_levels(prefix="x" * 300)
    assert (await admin.log_levels(binary="cinder-backup")).services == ()  # none here
    levels = await admin.log_levels(binary="cinder-scheduler", prefix="cinderblock")
    assert set(levels.services[0].levels.values()) == {"INFO"}  # nothing was changed
