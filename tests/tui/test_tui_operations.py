"""The dashboard for operators: refusals apart from failures, dismissals that last,
the actor health line, and a cluster restarted on new ports under an open dashboard."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from cinderblock.actors.runtime.cluster import Cluster
from cinderblock.actors.runtime.config import embedded
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.flows import FlowTrace
from cinderblock.protocol.wire.errors import OverQuota
from cinderblock.tui.app import DashboardApp
from cinderblock.tui.model import dismissals
from cinderblock.tui.model.flows import FlowBook
from cinderblock.tui.widgets.status_bar import StatusBar
from tests.conftest import _DATA_DIRS, user_key
from tests.tui.waiting import until

T0 = 1_700_000_000.0


def flow_events(flow_id: str, code: str | None, t: float) -> list[dict[str, Any]]:
    """A gateway flow that failed with ``code`` (None: it succeeded)."""
    base = {"kind": "flow", "flow_id": flow_id, "flow": "volume_create_api",
            "volume_id": "", "actor": "gateway"}
    if code is None:
        states = ["PENDING", "RUNNING", "SUCCESS"]
    else:
        states = ["PENDING", "RUNNING", "FAILURE", "REVERTING", "REVERTED"]
    out = [{**base, "state": s, "ts": t + i * 0.001} for i, s in enumerate(states)]
    for e in out:
        if e["state"] == "FAILURE":
            e.update(reason="it went wrong", code=code)
    return out


def fold(book: FlowBook, events: list[dict[str, Any]], now: float) -> None:
    for e in events:
        book.on_flow(e, now)


# ---- refusals -------------------------------------------------------------------------
def test_a_refused_request_is_counted_apart_and_fades_while_a_failure_stays_pinned() -> None:
    book = FlowBook(fade_s=10.0)
    fold(book, flow_events("refused", "over_quota", T0), T0)
    fold(book, flow_events("broken", "unavailable", T0 + 1), T0 + 1)
    fold(book, flow_events("fine", None, T0 + 2), T0 + 2)

    assert book.counts() == {"refused": 1, "failed": 1, "done": 1}
    assert [f.flow_id for f in book.ordered()] == ["broken", "refused", "fine"]
    book.tick(T0 + 30)
    assert list(book.flows) == ["broken"], "refused and done fade; the failure is pinned"


def test_a_caught_up_refusal_older_than_the_fade_is_not_brought_back() -> None:
    def trace(flow_id: str, code: str) -> FlowTrace:
        events = flow_events(flow_id, code, T0)
        return FlowTrace(flow_id, "volume_create_api", "", "gateway", (),
                         tuple(None for _ in events), tuple(e["state"] for e in events),
                         tuple(e["ts"] for e in events),
                         tuple(e.get("reason") for e in events), "demo", 60.0, code)

    book = FlowBook(fade_s=10.0)
    book.load([trace("old-refusal", "invalid_input"), trace("old-failure", "internal")],
              T0 + 60)
    assert list(book.flows) == ["old-failure"]


# ---- dismissals -------------------------------------------------------------------------
async def test_a_dismissal_is_kept_in_the_data_directory_for_the_next_session(
    tmp_path: Path,
) -> None:
    app = DashboardApp(None, None, clock=lambda: T0 + 5, data_dir=tmp_path)
    fold(app.model.flows, flow_events("broken", "internal", T0), T0)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("1", "x")  # dismiss the selected (pinned) failed flow
        await pilot.pause(0.5)
        assert "broken" not in app.model.flows.flows
    assert dismissals.load(tmp_path) == ["broken"]

    again = DashboardApp(None, None, clock=lambda: T0 + 6, data_dir=tmp_path)
    async with again.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        trace_back = FlowTrace("broken", "volume_create_api", "", "gateway", (), (None,),
                               ("REVERTED",), (T0,), (None,), "demo", 1.0, "internal")
        again.model.flows.load([trace_back], T0 + 6)  # the gateway's history still has it
        assert "broken" not in again.model.flows.flows


def test_an_unreadable_dismissals_file_is_treated_as_empty(tmp_path: Path) -> None:
    (tmp_path / dismissals.FILE).write_text("{not json")
    assert dismissals.load(tmp_path) == []
    dismissals.save(tmp_path, ["a", "b"])
    assert dismissals.load(tmp_path) == ["a", "b"]


# ---- a real cluster: the health line, and a restart on new ports --------------------------


def start(data_dir: Path) -> Cluster:
    """A cluster in ``data_dir`` on fresh ports (as a new ``cinderblock up`` would pick)."""
    _DATA_DIRS.append(data_dir.resolve())
    cluster = Cluster(embedded(data_dir, nodes=1, capacity_gb=20))
    cluster.start()
    return cluster


async def test_the_dashboard_follows_a_cluster_restarted_on_new_ports(tmp_path: Path) -> None:
    first = await asyncio.to_thread(start, tmp_path)
    second: Cluster | None = None
    try:
        app = DashboardApp(first.cfg.gateway, first.cfg.events, admin=True, data_dir=tmp_path,
                           follow=True, key=user_key(first.cfg, "admin", admin=True))
        assert app.link is not None
        app.link.ping_s = app.link.retry_s = 0.2
        app.link.health_s = 0.5
        async with app.run_test(size=(100, 30)) as pilot:
            bar = app.query_one(StatusBar)

            def healthy() -> bool:
                """the health line: every actor answers"""
                return "actors 4/4" in str(bar.content)

            await until(pilot, timeout=15.0, probe=healthy)
            await asyncio.to_thread(first.stop)
            await until(pilot, lambda: "CLUSTER DOWN" in str(bar.content), timeout=15.0)
            second = await asyncio.to_thread(start, tmp_path)
            assert second.cfg.gateway != first.cfg.gateway
            await until(pilot, lambda: app.model.link.up is True
                        and app.link is not None and app.link.endpoint == second.cfg.gateway,
                        timeout=20)
            assert app.events_endpoint == second.cfg.events
            await until(pilot, timeout=15.0, probe=healthy)
            async with Client(second.cfg.gateway, key=user_key(second.cfg)) as client:
                late = await client.create_volume(1, name="after-the-restart", wait=True)
                with pytest.raises(OverQuota):
                    await client.create_volume(10_000)

            def seen() -> bool:
                """the new cluster's volume and its events on the dashboard"""
                vol = app.model.volumes.volumes.get(late.id)
                return vol is not None and vol.status == "available" \
                    and app.model.flows.counts()["refused"] == 1

            await until(pilot, timeout=15.0, probe=seen)
            assert str(app.model.link.gateway) == second.cfg.gateway
    finally:
        first.stop()
        if second is not None:
            second.stop()


async def test_a_member_sees_that_actor_health_is_for_admins(tmp_path: Path) -> None:
    cluster = await asyncio.to_thread(start, tmp_path)
    try:
        app = DashboardApp(cluster.cfg.gateway, cluster.cfg.events, admin=False,
                           key=user_key(cluster.cfg))
        async with app.run_test(size=(100, 30)) as pilot:
            bar = app.query_one(StatusBar)
            await until(pilot, lambda: "actor health for admins" in str(bar.content),
                        timeout=15.0)
    finally:
        cluster.stop()
