"""The dashboard's model, rows and bars, driven directly: no Textual, no sockets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import pytest

from cinderblock.actors.gateway.create_flow import volume_create_api
from cinderblock.actors.scheduler.create_flow import volume_create_scheduler
from cinderblock.protocol.messages.groups import Group
from cinderblock.protocol.messages.lifecycle import Snapshot
from cinderblock.protocol.messages.scheduling import Backend
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.states import GroupStatus, SnapshotStatus, VolumeStatus
from cinderblock.storage_node.create_flow import volume_create_manager
from cinderblock.tui.demo import (
    API_TASKS,
    MANAGER_TASKS,
    SCHEDULER_TASKS,
    Create,
    backend_event,
    backup_event,
    create_events,
    group_event,
    snapshot_event,
    volume_id,
)
from cinderblock.tui.model.cells import (
    FLOW_COLUMNS,
    flow_row,
    fmt_duration,
    item_row_or_gone,
    volume_row_or_gone,
)
from cinderblock.tui.model.items import GROUPS, SNAPSHOTS, group_record, snapshot_record
from cinderblock.tui.model.model import Model, percentile
from cinderblock.tui.model.rows import Column, layout, line
from cinderblock.tui.stream import EventStream
from cinderblock.tui.widgets.capacity_bar import capacity_bar, segments_gb

T0 = 1_700_000_000.0


def fold(model: Model, events: Sequence[object], now: float = T0 + 1) -> Model:
    model.apply(events, now)
    return model


def test_a_create_folds_into_three_successful_flows_with_their_tasks_in_order() -> None:
    model = fold(Model(), create_events(Create(volume_id(1), T0)))
    flows = {f.flow: f for f in model.flows.flows.values()}
    assert set(flows) == {"volume_create_api", "volume_create_scheduler",
                          "volume_create_manager"}
    assert all(f.state == "SUCCESS" and f.saw_start for f in flows.values())
    manager = flows["volume_create_manager"]
    assert list(manager.tasks) == list(MANAGER_TASKS)
    assert all([c.state for c in t.changes] == ["RUNNING", "SUCCESS"]
               for t in manager.tasks.values())
    assert manager.actor == "node-1"
    assert model.volumes.volumes[volume_id(1)].status == "available"


def test_a_failed_create_is_reverted_newest_first_and_keeps_its_reason() -> None:
    c = Create(volume_id(2), T0, fail_at="QuotaReserveTask")
    (flow,) = fold(Model(), create_events(c)).flows.flows.values()
    assert flow.state == "REVERTED" and flow.failed and flow.final
    assert flow.reason is not None and flow.reason.startswith("Quota exceeded")
    assert flow.failed_task == "QuotaReserveTask"
    assert flow.revert_order == ["QuotaReserveTask", "ExtractVolumeRequestTask"]
    assert flow.tasks["EntryCreateTask"].state == "PENDING"  # planned, never ran
    assert [c.state for c in flow.tasks["QuotaReserveTask"].changes] == [
        "RUNNING", "FAILURE", "REVERTING", "REVERTED"]


def test_done_flows_fade_out_but_failed_ones_stay_until_dismissed() -> None:
    model = Model(fade_s=10.0)
    fold(model, create_events(Create(volume_id(1), T0)), now=T0)
    fold(model, create_events(Create(volume_id(2), T0, fail_at="QuotaReserveTask")), now=T0)
    model.tick(T0 + 5)
    assert len(model.flows.flows) == 4
    model.tick(T0 + 11)
    (failed,) = model.flows.flows.values()
    assert failed.state == "REVERTED"
    model.tick(T0 + 3600)
    assert model.flows.dismiss(failed.flow_id)
    assert not model.flows.flows


def test_done_flows_are_capped_so_a_benchmark_cannot_flood_the_view() -> None:
    model = Model()
    model.flows.keep_done = 30
    for i in range(50):
        fold(model, create_events(Create(volume_id(i), T0 + i)), now=T0 + i)
    assert len(model.flows.flows) == 30
    assert model.flows.finished["volume_create_api SUCCESS"] == 50


def test_failed_flows_come_first_then_running_then_done_newest_first() -> None:
    model = Model()
    fold(model, create_events(Create(volume_id(1), T0)))
    fold(model, create_events(Create(volume_id(2), T0 + 1, fail_at="QuotaReserveTask")))
    fold(model, create_events(Create(volume_id(3), T0 + 2, stop_after=5)))
    states = [f.state for f in model.flows.ordered()]
    assert states[0] == "REVERTED" and states[1] == "RUNNING"
    assert set(states[2:]) == {"SUCCESS"}


def test_a_running_flow_ages_on_the_dashboard_clock_and_freezes_when_done() -> None:
    model = Model()
    events = create_events(Create(volume_id(1), T0, stop_after=5, step=0.01))
    fold(model, events, now=5000.0)  # the dashboard's clock disagrees with the actor's
    (flow,) = model.flows.flows.values()
    assert flow.elapsed(5000.0) == pytest.approx(0.04)
    assert flow.elapsed(5002.0) == pytest.approx(2.04)
    row = flow_row(model.flows, flow, 5002.0, compact=True)
    assert row.cells[:6] == ("create_api", volume_id(1)[:8], "gateway", "QuotaReserve",
                             "RUNNING", "2.04s")


def test_joining_a_flow_midway_still_tracks_it() -> None:
    events = create_events(Create(volume_id(1), T0))
    model = fold(Model(), events[5:])
    api = next(f for f in model.flows.flows.values() if f.flow == "volume_create_api")
    assert api.state == "SUCCESS" and not api.saw_start


def test_malformed_events_are_counted_and_skipped() -> None:
    model = fold(Model(), [{"kind": "flow", "actor": "x"}, "nonsense",
                           {"kind": "backend", "actor": "s", "backend": "b", "ts": 1.0}])
    assert model.malformed == 3
    assert not model.flows.flows and not model.backends.backends


def volume(vid: str, status: str, updated: float, project: str = "demo") -> Volume:
    return Volume(vid, project, 1, VolumeStatus(status), name=vid[:4], created_at=updated,
                  updated_at=updated)


def test_a_catch_up_never_undoes_a_newer_event_and_drops_volumes_that_are_gone() -> None:
    model = fold(Model(), create_events(Create(volume_id(1), T0)), now=T0 + 1)
    stale = [volume(volume_id(1), "creating", T0 - 5), volume(volume_id(2), "available", T0)]
    model.load_volumes(stale, asked_at=T0 + 2, complete=True)
    assert model.volumes.volumes[volume_id(1)].status == "available"
    model.load_volumes([volume(volume_id(1), "available", T0 + 3)], T0 + 4, complete=True)
    assert set(model.volumes.volumes) == {volume_id(1)}


def test_volumes_filter_by_status_and_text_newest_first_and_respect_the_project() -> None:
    model = Model(project="demo", admin=False)
    for i in range(1, 4):
        fold(model, create_events(Create(volume_id(i), T0 + i, name=f"db-{i}")))
    fold(model, create_events(Create(volume_id(9), T0 + 9, name="other", project="elsewhere")))
    fold(model, create_events(Create(volume_id(4), T0 + 10, stop_after=20)))
    assert model.volumes.select() == [volume_id(i) for i in (4, 3, 2, 1)]
    assert model.volumes.select("creating") == [volume_id(4)]
    assert model.volumes.select(None, "DB-2") == [volume_id(2)]


def test_a_migration_under_way_shows_beside_the_status_and_is_found_by_the_filter() -> None:
    model = fold(Model(), create_events(Create(volume_id(1), T0)))

    def moved(migration: str | None, ts: float) -> None:
        fold(model, [{"kind": "volume", "actor": "gateway", "volume_id": volume_id(1),
                      "project_id": "demo", "status": "available", "size": 1,
                      "host": "node-1@file", "migration_status": migration, "ts": ts}], ts)

    def row() -> tuple[str, str]:
        r = volume_row_or_gone(model.volumes.volumes, volume_id(1), T0 + 9, compact=False)
        return r.cells[2], r.tag

    assert row() == ("available", "")
    moved("migrating", T0 + 5)
    assert row() == ("available, migrating", "running")
    assert model.volumes.select(None, "migrating") == [volume_id(1)]
    moved("completing", T0 + 6)
    assert row() == ("available, completing", "running")
    moved("success", T0 + 7)  # over: the word stays the volume's, not shown
    assert row() == ("available", "")
    assert model.volumes.select(None, "migrating") == []
    # a catch-up carries it too
    listed = Volume(volume_id(1), "demo", 1, VolumeStatus.AVAILABLE, created_at=T0,
                    updated_at=T0 + 8, migration_status="migrating")
    model.load_volumes([listed], asked_at=T0 + 8, complete=True)
    assert row() == ("available, migrating", "running")


def test_a_deleted_volume_leaves_the_book_and_its_stale_row_paints_as_gone() -> None:
    model = fold(Model(), create_events(Create(volume_id(1), T0)))
    keys = model.volumes.select()  # what the table holds until its next show
    volumes = model.volumes.volumes
    fold(model, [{"kind": "volume", "actor": "gateway", "volume_id": volume_id(1),
                  "project_id": "demo", "status": "deleted", "ts": T0 + 5}], T0 + 5)
    assert model.volumes.select() == []
    row = volume_row_or_gone(volumes, keys[0], T0 + 5, compact=False)
    assert row.cells[:3] == (volume_id(1), "", "deleted")


def test_snapshots_backups_and_groups_fold_from_their_events_in_their_own_books() -> None:
    v1, v2 = volume_id(1), volume_id(2)
    model = fold(Model(project="demo", admin=False), [
        snapshot_event("s1", v1, "creating", T0, 2, "before"),
        snapshot_event("s2", v2, "creating", T0 + 1),
        snapshot_event("s1", v1, "available", T0 + 2, 2, "before"),
        snapshot_event("s1", v1, "creating", T0 + 1.5, 2, "before"),  # late: older than held
        snapshot_event("s9", v1, "available", T0 + 2, project="elsewhere"),
        backup_event("b1", v1, "creating", T0 + 3, 2, "weekly"),
        backup_event("b1", v1, "deleted", T0 + 4, 2, "weekly"),
        group_event("g1", "available", T0 + 5, 0, "db"),
        group_event("g1", "available", T0 + 6, 2, "db"),
    ], now=T0 + 10)
    assert model.snapshots.select() == ["s2", "s1"]  # newest first, in creation order
    assert model.snapshots.select("available") == ["s1"]
    assert model.snapshots.select(None, "BEFORE") == ["s1"]
    assert model.snapshots.counts() == {"available": 1, "creating": 1}
    assert model.backups.items == {}  # made and deleted
    s1 = model.snapshots.items["s1"]
    assert (s1.status, s1.size, s1.volume_id, s1.created, s1.updated) == (
        "available", 2, v1, T0, T0 + 2)
    row = item_row_or_gone(SNAPSHOTS, model.snapshots.items, "s2", T0 + 10, compact=False)
    assert (row.cells, row.tag) == (("s2", "", "creating", "1G", v2, "demo", "9s"), "running")
    group = item_row_or_gone(GROUPS, model.groups.items, "g1", T0 + 10, compact=True)
    assert group.cells == ("g1", "db", "available", "2", "node-1@file", "demo", "4s")
    gone = item_row_or_gone(GROUPS, model.groups.items, "g0", T0 + 10, compact=True)
    assert gone.cells[2] == "deleted"


def test_a_catch_up_of_snapshots_and_groups_keeps_what_is_newer_and_drops_what_is_gone() -> None:
    v1 = volume_id(1)
    model = fold(Model(), [snapshot_event("s1", v1, "available", T0 + 5),
                           snapshot_event("s2", v1, "available", T0 + 1)], now=T0 + 6)
    listed = [Snapshot("s1", "demo", v1, 1, SnapshotStatus.CREATING, created_at=T0,
                       updated_at=T0 + 4),  # asked before its last event: the event stays
              Snapshot("s3", "demo", v1, 1, SnapshotStatus.ERROR, created_at=T0 + 2,
                       updated_at=T0 + 3, reason="node away")]
    model.snapshots.load((snapshot_record(s, T0 + 6) for s in listed), T0 + 6, complete=True)
    assert model.snapshots.select() == ["s3", "s1"]  # s2 was not listed: gone
    assert model.snapshots.items["s1"].status == "available"
    assert model.snapshots.items["s3"].reason == "node away"
    row = item_row_or_gone(SNAPSHOTS, model.snapshots.items, "s3", T0 + 6, compact=False)
    assert row.tag == "error"
    groups = [Group("g1", "demo", GroupStatus.CREATING, "gt", volumes=("a", "b"),
                    created_at=T0, updated_at=T0 + 1)]
    model.groups.load((group_record(g, T0 + 6) for g in groups), T0 + 6, complete=True)
    assert (model.groups.items["g1"].volumes, model.groups.items["g1"].status) == (2, "creating")


def test_a_project_dashboard_shows_only_its_projects_flows_and_an_admins_shows_all() -> None:
    events = (create_events(Create(volume_id(1), T0, project="demo"))
              + create_events(Create(volume_id(2), T0, project="elsewhere")))
    mine = fold(Model(project="demo", admin=False), events)
    assert {f.volume_id for f in mine.flows.flows.values()} == {volume_id(1)}
    everyone = fold(Model(project="demo", admin=True), events)
    assert {f.volume_id for f in everyone.flows.flows.values()} == {volume_id(1), volume_id(2)}


def test_a_backend_is_down_once_its_stats_are_older_than_the_stale_limit() -> None:
    model = fold(Model(stale_after_s=10.0), [backend_event("node-1", T0)], now=T0)
    (b,) = model.backends.ordered()
    assert model.backends.up(b, T0 + 9) and not model.backends.up(b, T0 + 11)
    snap = Backend("node-1@file", "node-1", "nova", 100, 90, 10, 10, age_s=2.0)
    model.load_backends([snap], T0 + 20)
    (b,) = model.backends.ordered()
    assert b.age(T0 + 20) == pytest.approx(2.0) and b.free_gb == 90


def test_create_latency_runs_from_the_api_flow_to_available_and_ages_out() -> None:
    model = Model()
    for i in range(10):
        c = Create(volume_id(i), T0 + i, step=0.001 * (i + 1))
        fold(model, create_events(c), now=T0 + 100 + i)
    view = model.rates.series(T0 + 110)
    assert view.minute_creates == 10
    assert sum(view.creates) == 10
    assert view.minute_p50 is not None and view.minute_p99 is not None
    assert view.minute_p50 < view.minute_p99
    flow_events = len(create_events(Create(volume_id(9), 0))) - 3  # less the volume, stats
    assert view.minute_p99 == pytest.approx((flow_events + 1) * 0.010)  # events 10 ms apart
    model.tick(T0 + 200)
    assert model.rates.series(T0 + 200).minute_creates == 0


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99
    assert percentile([], 50) is None


def test_columns_drop_extras_before_shrinking_the_rest() -> None:
    cols = (Column("a", 10), Column("b", 10, min_width=4), Column("extra", 30, drop=1, flex=True))
    assert layout(cols, 60) == [(0, 10), (1, 10), (2, 38)]
    assert layout(cols, 21) == [(0, 10), (1, 10)]
    assert layout(cols, 16) == [(0, 10), (1, 5)]
    text = line(cols, layout(cols, 16), ("0123456789ABC", "xyzxyzxyz"), 16)
    assert text == "012345678… xyzx…"


def test_the_flows_table_fits_an_80_column_terminal() -> None:
    natural = [16, 8, 9, 20, 8, 7, 60]
    plan = layout(FLOW_COLUMNS, 78, natural)
    assert sum(w for _, w in plan) + len(plan) - 1 <= 78
    assert [FLOW_COLUMNS[i].label for i, _ in plan][:6] == [
        "Flow", "Volume", "Actor", "Task", "State", "Elapsed"]


def test_the_capacity_bar_is_to_scale_and_grows_with_what_is_provisioned() -> None:
    model = fold(Model(), [backend_event("node-1", T0, total=20, provisioned=0,
                                         reserved_percentage=10)])
    (b,) = model.backends.ordered()
    before = capacity_bar(b, 40).plain
    assert len(before) == 40 and before.endswith("▒" * 4)  # 2 GiB reserved of 20
    fold(model, [backend_event("node-1", T0 + 1, total=20, free=20, provisioned=6,
                               reserved_percentage=10)])
    (b,) = model.backends.ordered()
    assert segments_gb(b) == {"used": 0.0, "provisioned": 6.0, "free": 12.0, "reserved": 2.0}
    assert capacity_bar(b, 40).plain != before
    assert capacity_bar(b, 40).plain.count("█") == 12


def test_durations_read_naturally() -> None:
    assert [fmt_duration(s) for s in (0.0000123, 0.0123, 1.5, 125)] == [
        "12µs", "12.3ms", "1.50s", "2m05s"]


def test_the_stream_refuses_frames_that_are_not_event_batches() -> None:
    stream = EventStream("tcp://127.0.0.1:1")
    try:
        assert stream._decode([b"demo/", b"\x93\x01\x02\x03"]) == [1, 2, 3]
        assert stream._decode([b"/", b"\x90"]) == [], "cluster-wide events: topic '/'"
        assert stream._decode([b"demo/", b"\x01"]) is None
        assert stream._decode([b"evt", b"\x90"]) is None
        assert stream._decode([b"demo/"]) is None
        assert stream.malformed == 3
    finally:
        stream.close()


def test_the_scripted_events_name_the_tasks_the_real_flows_run() -> None:
    no_services = cast(Any, None)
    assert volume_create_api(no_services).task_names == list(API_TASKS)
    assert volume_create_scheduler(no_services).task_names == list(SCHEDULER_TASKS)
    assert volume_create_manager(no_services).task_names == list(MANAGER_TASKS)
