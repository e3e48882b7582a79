"""The dashboard's keys, on the scripted scene with no cluster behind it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

from textual.widgets import Input

from cinderblock.tui.app import DashboardApp
from cinderblock.tui.demo import Create, create_events, scene, volume_id
from cinderblock.tui.link import GatewayLink
from cinderblock.tui.model.model import Model
from cinderblock.tui.widgets.confirm_delete import ConfirmDelete
from cinderblock.tui.widgets.create_form import CreateRequest, parse_form
from cinderblock.tui.widgets.flows_pane import FlowsPane
from cinderblock.tui.widgets.volumes_pane import VolumesPane
from tests.tui.waiting import repainted, until

T0 = 1_700_000_000.0
NOW = T0 + 60.0


def scene_app() -> DashboardApp:
    model = Model()
    for now, events in scene(T0):
        model.apply(events, now)
    return DashboardApp(None, None, model=model, clock=lambda: NOW)


async def test_pause_freezes_the_panes_while_the_model_keeps_folding() -> None:
    app = scene_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2", "p")
        table = app.query_one(VolumesPane).table
        before = list(table.keys)
        app.model.apply(create_events(Create(volume_id(999), NOW, name="late")), NOW)
        await repainted(app, pilot)
        assert list(table.keys) == before and volume_id(999) in app.model.volumes.volumes
        await pilot.press("p")
        await until(pilot, lambda: table.keys and table.keys[0] == volume_id(999))


async def test_the_volume_filters_narrow_the_table() -> None:
    app = scene_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"vol-1", "enter")
        pane = app.query_one(VolumesPane)
        assert [pane.table.row_text(k)[1] for k in pane.table.keys] == [
            f"vol-1{i}" for i in range(9, -1, -1)]  # newest first
        assert app.focused is not None and app.focused.id == "volume-table"
        await pilot.press("s")  # status: creating
        await pilot.pause()
        assert pane.status == "creating" and list(pane.table.keys) == []
        pane.query_one(Input).value = ""
        await pilot.pause()
        assert [pane.table.row_text(k)[1] for k in pane.table.keys] == ["new-1"]


async def test_moving_to_a_flow_and_dismissing_it() -> None:
    app = scene_app()
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(FlowsPane)
        failed = pane.table.keys[0]
        await pilot.press("down", "x")  # a running flow: it stays
        assert len(pane.table.keys) == len(app.model.flows.flows)
        await pilot.press("up", "x")
        await pilot.pause()
        assert failed not in app.model.flows.flows and failed not in pane.table.keys


class OldClusterLink(GatewayLink):
    """A link whose session holds a client from before delete existed, and never ends.

    (A real link to a port nobody answers would end its session when its ping times
    out, 1.5 s in, and the dashboard would rightly say the cluster is down instead.)
    """

    async def run(self) -> None:
        self.client = cast(Any, SimpleNamespace())
        await asyncio.Event().wait()


async def test_delete_says_when_the_cluster_cannot_delete_yet() -> None:
    app = scene_app()
    app.link = OldClusterLink(app.model, "tcp://127.0.0.1:1")
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await pilot.press("2", "d")
        await pilot.pause()
        await pilot.press("y")  # the answer goes through the modal's callback, then a message
        assert await until(pilot, lambda: any("not supported by this cluster yet"
                                              in str(n.message) for n in app._notifications))


async def test_the_filter_shows_what_is_typed_and_escape_clears_it() -> None:
    app = scene_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("slash", *"vol-1")
        await pilot.pause()
        pane = app.query_one(VolumesPane)
        field = pane.query_one(Input)
        assert app.focused is field and field.size.height == 1
        assert field.render_line(0).text.strip().startswith("vol-1")  # seen while typing
        assert len(pane.table.keys) == 10
        await pilot.press("escape")
        await pilot.pause()
        assert field.value == "" and field.render_line(0).text.strip().startswith("/ filter")
        assert app.focused is not None and app.focused.id == "volume-table"
        assert len(pane.table.keys) > 10


class DeleteRecorder(DashboardApp):
    """The scene's dashboard, recording the deletes it is asked for instead of sending them."""

    asked: list[str]

    def on_volumes_pane_delete_asked(self, event: VolumesPane.DeleteAsked) -> None:
        self.asked.append(event.item_id)


async def test_delete_asks_first_and_no_keeps_the_volume() -> None:
    model = scene_app().model
    app = DeleteRecorder(None, None, model=model, clock=lambda: NOW)
    asked = app.asked = []
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2", "d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDelete)
        selected = app.query_one(VolumesPane).selected()
        assert selected is not None and selected.id in app.screen.what
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmDelete) and asked == []
        for answer in ("escape", "y"):
            await pilot.press("d")
            await pilot.pause()
            await pilot.press(answer)
            await pilot.pause()
            assert asked == ([] if answer == "escape" else [selected.id])


def test_the_create_form_checks_its_fields() -> None:
    assert parse_form("3", " db ", "FCVolumeType") == CreateRequest(3, "db", "FCVolumeType")
    assert parse_form("1", "", object()) == CreateRequest(1, None, None)
    for size in ("0", "x", ""):
        try:
            parse_form(size, "", None)
        except ValueError as exc:
            assert "size" in str(exc)
        else:
            raise AssertionError(f"size {size!r} was accepted")


def shown(pane: VolumesPane) -> tuple[str, str | None, int]:
    """The pane's kind, status filter and how many rows it shows."""
    return pane.kind, pane.status, len(pane.table.keys)


async def test_k_turns_the_pane_and_s_cycles_that_kind_s_statuses() -> None:
    app = scene_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2", "s")
        pane = app.query_one(VolumesPane)
        assert shown(pane) == ("volumes", "creating", 1)
        await pilot.press("k")  # snapshots: the status filter starts again at all
        await pilot.pause()
        assert shown(pane) == ("snapshots", None, 3)
        await pilot.press("s", "s")
        await pilot.pause()
        assert shown(pane) == ("snapshots", "available", 2)
        await pilot.press("k", "s")  # backups: one made, one being made
        await pilot.pause()
        assert (pane.kind, pane.status, list(pane.table.keys)) == (
            "backups", "creating", [volume_id(502)])
        selected = pane.selected()
        assert selected is not None and selected.kind == "backup"
        await pilot.press("k", "k")  # groups, then group snapshots: the group's one
        await pilot.pause()
        assert (pane.kind, pane.border_title, list(pane.table.keys)) == (
            "group snapshots", "Group snapshots", [volume_id(350)])
        assert pane.table.row_text(volume_id(350))[1:5] == (
            "db-daily", "available", "3", volume_id(300)[:8])
        selected = pane.selected()
        assert selected is not None and selected.kind == "group_snapshot"
        await pilot.press("k")  # volumes again
        await pilot.pause()
        assert (pane.kind, pane.border_title, len(pane.table.keys)) == ("volumes", "Volumes", 21)
