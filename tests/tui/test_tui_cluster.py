"""The dashboard against a real cluster of actor processes, driven with Pilot.

One cluster for the module (each test works in a project of its own), a
second, private one for the test that takes the gateway down and up again.
Both are always stopped, whatever happens in the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Select

from cinderblock.actors.runtime.cluster import Cluster
from cinderblock.actors.runtime.config import ClusterConfig
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.wire.errors import OverQuota
from cinderblock.tui.app import DashboardApp
from cinderblock.tui.demo import API_TASKS
from cinderblock.tui.model.model import FlowRecord, Model
from cinderblock.tui.widgets.backend_card import BackendCard
from cinderblock.tui.widgets.confirm_delete import ConfirmDelete
from cinderblock.tui.widgets.create_form import CreateForm
from cinderblock.tui.widgets.flow_screen import FlowScreen
from cinderblock.tui.widgets.flows_pane import FlowsPane
from cinderblock.tui.widgets.status_bar import StatusBar
from cinderblock.tui.widgets.volumes_pane import VolumesPane
from tests.conftest import E2ECluster, make_config, running_cluster, user_key
from tests.tui.waiting import repainted, until

SIZE = (140, 40)  # every pane on screen at once


def admin_key(cfg: ClusterConfig) -> Path:
    key = user_key(cfg, "admin", admin=True)
    assert key is not None
    return key


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterConfig]:
    config = make_config(tmp_path_factory.mktemp("tui"), capacity_gb=20)
    with running_cluster(config) as cluster:
        yield cluster.cfg


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(make_config(tmp_path, nodes=1, capacity_gb=20)) as cluster:
        yield cluster.cluster


async def connected(app: DashboardApp, pilot: Pilot[None], events: bool = True) -> None:
    """``events=False``: a member's dashboard, which hears only of its project's
    changes (no heartbeats), so nothing arrives until something happens there."""
    def ready() -> bool:
        """the gateway to answer and the first events to arrive"""
        return app.model.link.up is True and (app.model.events_total > 0 or not events)

    await until(pilot, ready)


def flows_of(app: DashboardApp, volume_id: str) -> dict[str, FlowRecord]:
    return {f.flow: f for f in app.model.flows.flows.values() if f.volume_id == volume_id}


def shown_flow_rows(app: DashboardApp) -> dict[str, tuple[str, ...]]:
    table = app.query_one(FlowsPane).table
    return {key: table.row_text(key) for key in table.keys}


async def test_a_create_shows_its_flows_stepping_through_their_tasks_to_success(
    cfg: ClusterConfig,
) -> None:
    app = DashboardApp(cfg.gateway, cfg.events, project="t-create",
                       key=user_key(cfg, "t-create", admin=True))
    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)
        async with Client(cfg.gateway, project="t-create", key=user_key(cfg, "t-create")) as client:
            volume = await client.create_volume(1, name="one", wait=True)

        def all_done() -> dict[str, FlowRecord] | None:
            """the three create flows to succeed"""
            flows = flows_of(app, volume.id)
            return flows if len(flows) == 3 and all(
                f.state == "SUCCESS" for f in flows.values()) else None

        flows = await until(pilot, all_done)
        api = flows["volume_create_api"]
        assert list(api.tasks) == list(API_TASKS)
        for task in api.tasks.values():
            assert [c.state for c in task.changes] == ["RUNNING", "SUCCESS"]
        starts = [t.changes[0].ts for t in api.tasks.values()]
        assert starts == sorted(starts)  # one after the other
        def painted() -> dict[str, tuple[str, ...]] | None:
            """every flow's row to say SUCCESS"""
            rows = shown_flow_rows(app)
            return rows if all(f.flow_id in rows and rows[f.flow_id][4] == "SUCCESS"
                               for f in flows.values()) else None

        rows = await until(pilot, painted)
        for flow in flows.values():
            assert rows[flow.flow_id][1] == volume.id[:8]
            assert rows[flow.flow_id][4] == "SUCCESS"


async def test_a_create_over_quota_stays_on_screen_reverted_with_its_reason(
    cfg: ClusterConfig,
) -> None:
    async with Client(cfg.gateway, admin=True, key=user_key(cfg, "admin", admin=True)) as admin:
        await admin.set_quota("t-tiny", gigabytes=1)
    app = DashboardApp(cfg.gateway, cfg.events, project="t-tiny",
                       key=user_key(cfg, "t-tiny", admin=True))
    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)
        async with Client(cfg.gateway, project="t-tiny", key=user_key(cfg, "t-tiny")) as client:
            with pytest.raises(OverQuota):
                await client.create_volume(5, name="too-big")

        def reverted() -> FlowRecord | None:
            """a reverted volume_create_api flow"""
            return next((f for f in app.model.flows.flows.values()
                         if f.flow == "volume_create_api" and f.state == "REVERTED"), None)

        flow = await until(pilot, reverted)
        assert flow.reason is not None and "Quota exceeded" in flow.reason
        await until(pilot, lambda: flow.flow_id in shown_flow_rows(app))
        assert shown_flow_rows(app)[flow.flow_id][4] == "REVERTED"
        pane = app.query_one(FlowsPane)
        assert pane.table.keys[0] == flow.flow_id  # nothing failed or running: a refusal next
        assert flow.refused and "1 refused" in str(pane.border_subtitle)
        await pilot.press("1", "enter")
        screen = await until(pilot, lambda: isinstance(app.screen, FlowScreen) and app.screen)
        assert isinstance(screen, FlowScreen)
        text = screen.timeline_text()
        assert "REVERTED" in text and "Quota exceeded" in text
        assert "1. QuotaReserveTask" in text and "2. ExtractVolumeRequestTask" in text
        await pilot.press("x")  # dismissed: it leaves the screen and the list
        await until(pilot, lambda: not isinstance(app.screen, FlowScreen))
        assert flow.flow_id not in app.model.flows.flows


async def test_a_backends_capacity_bar_grows_after_creates(cfg: ClusterConfig) -> None:
    app = DashboardApp(cfg.gateway, cfg.events, project="t-bars",
                       key=user_key(cfg, "t-bars", admin=True))
    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)

        def both_cards() -> list[BackendCard] | None:
            """a card for each backend"""
            cards = list(app.query(BackendCard))
            return cards if len(cards) == 2 else None

        cards = await until(pilot, both_cards)
        before = {card.record.backend: card.bar_text() for card in cards}
        async with Client(cfg.gateway, project="t-bars", key=user_key(cfg, "t-bars")) as client:
            for _ in range(4):
                await client.create_volume(3, wait=True)

        def changed() -> list[str]:
            """a capacity bar to change"""
            return [c.record.backend for c in app.query(BackendCard)
                    if c.bar_text() != before[c.record.backend]]

        assert await until(pilot, changed)


async def test_the_create_form_makes_a_volume(cfg: ClusterConfig) -> None:
    app = DashboardApp(cfg.gateway, cfg.events, project="t-form",
                       key=user_key(cfg, "t-form", admin=True))
    async with app.run_test(size=SIZE) as pilot:
        await connected(app, pilot)
        await pilot.press("c")
        form = await until(pilot, lambda: isinstance(app.screen, CreateForm) and app.screen)
        assert isinstance(form, CreateForm)
        form.query_one("#size", Input).value = "2"
        form.query_one("#name", Input).value = "from-the-form"
        form.query_one("#type", Select).value = "FCVolumeType"
        await pilot.click("#create")

        def made() -> str | None:
            """the form's volume to be available"""
            return next((v.id for v in app.model.volumes.volumes.values()
                         if v.name == "from-the-form" and v.status == "available"), None)

        volume_id = await until(pilot, made)
        record = app.model.volumes.volumes[volume_id]
        assert (record.size, record.volume_type, record.project_id) == (2, "FCVolumeType",
                                                                         "t-form")
        await until(pilot, lambda: volume_id in app.query_one(VolumesPane).table.keys)


async def test_delete_from_the_dashboard_asks_first_then_removes_the_row(
    cfg: ClusterConfig,
) -> None:
    async with Client(cfg.gateway, project="t-delete", key=user_key(cfg, "t-delete")) as client:
        volume = await client.create_volume(1, name="doomed", wait=True)
    app = DashboardApp(cfg.gateway, cfg.events, project="t-delete", admin=False,
                       key=user_key(cfg, "t-delete"))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await connected(app, pilot, events=False)
        await until(pilot, lambda: app.query_one(VolumesPane).table.keys)
        await pilot.press("2", "d")
        asked = await until(pilot, lambda: isinstance(app.screen, ConfirmDelete) and app.screen)
        assert isinstance(asked, ConfirmDelete) and "'doomed'" in asked.what
        await pilot.press("n")  # kept
        await until(pilot, lambda: not isinstance(app.screen, ConfirmDelete))
        await pilot.pause(0.5)
        async with Client(cfg.gateway, project="t-delete", key=user_key(cfg, "t-delete")) as client:
            assert (await client.show_volume(volume.id)).status == "available"
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDelete))
        await pilot.press("y")
        table = app.query_one(VolumesPane).table
        await until(pilot, lambda: volume.id not in app.model.volumes.volumes
                    and volume.id not in table.keys)
        await repainted(app, pilot)  # after the row went: nothing asks for the gone record


async def test_the_dashboard_says_when_the_cluster_is_down_and_reconnects(
    own_cluster: Cluster,
) -> None:
    cfg = own_cluster.cfg
    async with Client(cfg.gateway, key=user_key(cfg)) as client:
        early = await client.create_volume(1, name="before-the-dashboard", wait=True)
    app = DashboardApp(cfg.gateway, cfg.events, key=admin_key(cfg))
    assert app.link is not None
    app.link.ping_s = app.link.retry_s = 0.2
    async with app.run_test(size=(80, 24)) as pilot:
        await connected(app, pilot)
        assert app.model.volumes.volumes[early.id].status == "available"  # caught up
        own_cluster.stop_actor("gateway")
        await until(pilot, lambda: "CLUSTER DOWN" in str(app.query_one(StatusBar).content))
        assert app.model.link.up is False
        own_cluster.spawn("gateway")
        await until(pilot, lambda: app.model.link.up is True, timeout=20)
        async with Client(cfg.gateway, key=user_key(cfg)) as client:
            late = await client.create_volume(1, name="after", wait=True)
        await until(pilot, lambda: late.id in app.model.volumes.volumes)


async def test_k_shows_snapshots_backups_groups_and_group_snapshots_live_and_d_deletes(
    cfg: ClusterConfig,
) -> None:
    """One of each caught up (made before the dashboard), one of each seen live."""
    project, key = "t-kinds", user_key(cfg, "t-kinds")
    async with Client(cfg.gateway, admin=True, key=admin_key(cfg)) as admin:
        await admin.create_group_type("t-kinds-cg")
    async with Client(cfg.gateway, project=project, key=key) as client:
        volume = await client.create_volume(1, name="base", wait=True)
        early_snap = await client.create_snapshot(volume.id, name="early", wait=True)
        early_group = await client.create_group("t-kinds-cg", ["__DEFAULT__"], name="early-g")
        app = DashboardApp(cfg.gateway, cfg.events, project, admin=False, key=key)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await connected(app, pilot, events=False)
            pane = app.query_one(VolumesPane)
            await pilot.press("2", "k")
            assert pane.kind == "snapshots" and pane.border_title == "Snapshots"
            await until(pilot, lambda: early_snap.id in pane.table.keys)
            snap = await client.create_snapshot(volume.id, name="live", wait=True)
            backup = await client.create_backup(volume.id, name="live-b", wait=True)
            group = await client.create_group("t-kinds-cg", ["__DEFAULT__"], name="live-g")
            in_group = await client.create_volume(1, group_id=group.id, wait=True)

            await until(pilot, lambda: snap.id in pane.table.keys)  # live
            short = volume.id[:8]  # the pane is narrower than 120 columns: ids are cut
            assert pane.table.row_text(snap.id)[1:5] == ("live", "available", "1G", short)
            await pilot.press("k")  # backups
            await until(pilot, lambda: pane.table.keys and pane.table.row_text(backup.id)[2]
                        == "available")
            assert pane.table.row_text(backup.id)[4] == short
            await pilot.press("k")  # groups: one caught up, one live with its volume
            await until(pilot, lambda: set(pane.table.keys) == {group.id, early_group.id}
                        and pane.table.row_text(group.id)[3] == "1")
            assert app.model.groups.items[early_group.id].name == "early-g"
            assert in_group.id in app.model.volumes.volumes
            await pilot.press("k")  # group snapshots: one live, of the empty group, deleted
            taken = await client.create_group_snapshot(early_group.id, name="g-snap",
                                                       wait=True)
            await until(pilot, lambda: list(pane.table.keys) == [taken.id]
                        and pane.table.row_text(taken.id)[2:4] == ("available", "0"))
            await pilot.press("d")
            asked = await until(pilot, lambda: isinstance(app.screen, ConfirmDelete)
                                and app.screen)
            assert isinstance(asked, ConfirmDelete) and taken.id in asked.what
            await pilot.press("y")
            await until(pilot, lambda: taken.id not in app.model.group_snapshots.items)
            assert await client.list_group_snapshots() == []

            await pilot.press("k", "k")  # volumes, then snapshots again
            assert pane.kind == "snapshots"
            await until(pilot, lambda: list(pane.table.keys) == [snap.id, early_snap.id])
            await pilot.press("d")
            asked = await until(pilot, lambda: isinstance(app.screen, ConfirmDelete)
                                and app.screen)
            assert isinstance(asked, ConfirmDelete) and f"snapshot 'live' ({snap.id})" in asked.what
            await pilot.press("y")
            await until(pilot, lambda: snap.id not in app.model.snapshots.items
                        and snap.id not in pane.table.keys)
            await repainted(app, pilot)
            assert [s.id for s in await client.list_snapshots()] == [early_snap.id]


# ---- catching up flows that ran before the dashboard started ------------------------
@pytest.fixture(scope="module")
def first_node_faulty(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    """node-1 fails every create and is tried first: each create leaves a reverted flow."""
    return cluster_factory(node_overrides={
        "node-1": {"faults": ("create_volume",), "capacity_gb": 1000.0},
        "node-2": {"capacity_gb": 100.0},
    })


async def test_a_dashboard_started_later_shows_the_flows_that_ran_failures_pinned_refusals_apart(
    first_node_faulty: E2ECluster,
) -> None:
    cfg = first_node_faulty.cfg
    async with Client(cfg.gateway, admin=True, key=user_key(cfg, "admin", admin=True)) as admin:
        await admin.set_quota("t-late", gigabytes=2)
    async with Client(cfg.gateway, project="t-late", key=user_key(cfg, "t-late")) as client:
        volume = await client.create_volume(1, wait=True)  # node-1 fails, node-2 makes it
        with pytest.raises(OverQuota):
            await client.create_volume(5)
    elsewhere_key = user_key(cfg, "t-elsewhere")
    async with Client(cfg.gateway, project="t-elsewhere", key=elsewhere_key) as client:
        elsewhere = await client.create_volume(1, wait=True)
    model = Model("t-late", False, cfg.gateway, cfg.events, fade_s=600)
    app = DashboardApp(cfg.gateway, cfg.events, "t-late", admin=False, model=model,
                       key=user_key(cfg, "t-late"))
    async with app.run_test(size=SIZE) as pilot:

        def caught_up() -> list[FlowRecord] | None:
            """the five flows of the create and the refused one"""
            flows = app.model.flows.ordered()
            return flows if len(flows) == 6 and app.query_one(FlowsPane).table.keys else None

        flows = await until(pilot, caught_up)
        rescheduled, refused = flows[0], flows[1]  # the system's failure pinned, then refusals
        assert (refused.flow, refused.actor, refused.state) == (
            "volume_create_api", "gateway", "REVERTED")
        assert refused.reason is not None and "Quota exceeded" in refused.reason
        assert refused.refused and refused.error_code == "over_quota"
        assert not rescheduled.refused and rescheduled.failed
        assert (rescheduled.flow, rescheduled.actor, rescheduled.volume_id, rescheduled.state
                ) == ("volume_create_manager", "node-1", volume.id, "REVERTED")
        assert {f.volume_id for f in flows if f is not refused} == {volume.id} != {elsewhere.id}
        assert all(f.state == "SUCCESS" for f in flows[2:])
        await repainted(app, pilot)
        table = app.query_one(FlowsPane).table
        assert list(table.keys[:2]) == [rescheduled.flow_id, refused.flow_id]
        assert shown_flow_rows(app)[rescheduled.flow_id][4] == "REVERTED"
        assert "1 refused" in str(app.query_one(FlowsPane).border_subtitle)
        await pilot.press("1", "enter")
        screen = await until(pilot, lambda: isinstance(app.screen, FlowScreen) and app.screen)
        assert isinstance(screen, FlowScreen) and screen.flow is rescheduled
        text = screen.timeline_text()
        assert "reason: injected fault: create_volume" in text
        assert "1. CreateVolumeFromSpecTask" in text and "5. ExtractVolumeRefTask" in text
        assert "joined after it started" not in text
