"""The dashboard's flow catch-up (``FlowBook.load``), driven with real flow runs: the
same run gives the live events a dashboard would have folded and the trace its actor
keeps, so the two can be compared, mixed, and raced. No Textual, no sockets."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, cast

import pytest

from cinderblock.actors.flow.engine import LinearFlow
from cinderblock.actors.flow.history import FlowHistory, RunTrace
from cinderblock.actors.flow.reply import trace_message
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.flows import FlowTrace, FlowTraceList
from cinderblock.protocol.wire.errors import InvalidInput
from cinderblock.tui.link import GatewayLink
from cinderblock.tui.model.model import FlowBook, FlowRecord, Model
from tests.conftest import EventRecorder, eventually
from tests.flow_steps import Step

T0 = 1_700_000_000.0  # the dashboard's clock in these tests


FIRE = "CreateVolumeFromSpecTask: the disk is on fire"


class Run:
    """One flow run on 'node-1', its events and its trace."""

    def __init__(self, *steps: Step, volume_id: str = "vol-1") -> None:
        self.flow = LinearFlow("volume_create_manager", steps)
        self.volume_id = volume_id
        self.publisher = EventRecorder("node-1")
        self.history = FlowHistory()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> Run:
        self.task = asyncio.create_task(self._go())
        await eventually(lambda: self.publisher.events)  # the run has begun
        return self

    async def finish(self) -> Run:
        if self.task is None:
            await self.start()
        assert self.task is not None
        await self.task
        return self

    async def _go(self) -> None:
        with contextlib.suppress(RuntimeError):  # a failing run: its events and trace matter
            await self.flow.run(None, self.publisher, self.volume_id, history=self.history)

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.publisher.events

    @property
    def trace(self) -> RunTrace:
        return [*self.history.failed, *self.history.done, *self.history.running][0]

    def message(self, age_s: float = 1.0) -> FlowTrace:
        """The trace as the gateway would answer it, ``age_s`` after its last change."""
        return trace_message(self.trace, "node-1", self.trace.last_ts + age_s)


def ok(volume_id: str = "vol-1") -> Run:
    return Run(Step("ExtractVolumeRefTask"), Step("CreateVolumeFromSpecTask"),
               volume_id=volume_id)


def failing(volume_id: str = "vol-bad") -> Run:
    return Run(Step("ExtractVolumeRefTask"), Step("CreateVolumeFromSpecTask", fail=FIRE),
               volume_id=volume_id)


def live(events: list[dict[str, Any]], book: FlowBook | None = None) -> FlowBook:
    book = book or FlowBook(fade_s=10.0)
    for e in events:
        (book.on_flow if e["kind"] == "flow" else book.on_task)(e, T0)
    return book


def shape(flow: FlowRecord) -> tuple[Any, ...]:
    """Everything a row and a timeline show, but the dashboard-clock fields."""
    return (flow.flow_id, flow.flow, flow.volume_id, flow.actor, flow.state, flow.reason,
            flow.started, flow.last_ts, flow.changes, flow.current, flow.failed_task,
            flow.revert_order, flow.saw_start,
            {name: task.changes for name, task in flow.tasks.items()})


async def test_a_trace_folds_into_the_same_flow_as_its_live_events() -> None:
    run = await failing().finish()
    seen_live = live(run.events)
    loaded = FlowBook(fade_s=10.0)
    loaded.load([run.message()], T0)
    assert list(loaded.flows) == list(seen_live.flows)
    (flow_id,) = loaded.flows
    assert shape(loaded.flows[flow_id]) == shape(seen_live.flows[flow_id])


async def test_a_failed_flow_from_the_history_is_pinned_on_top_with_reason_and_reverts(
) -> None:
    bad, good = await failing().finish(), await ok().finish()
    model = Model(fade_s=10.0)
    model.load_flows([good.message(), bad.message()], T0)
    top = model.flows.ordered()[0]
    assert top.flow_id == bad.trace.flow_id and top.failed and top.state == "REVERTED"
    assert top.reason == "CreateVolumeFromSpecTask: the disk is on fire"
    assert top.failed_task == "CreateVolumeFromSpecTask"
    assert top.revert_order == ["CreateVolumeFromSpecTask", "ExtractVolumeRefTask"]
    assert model.flows.counts() == {"failed": 1, "done": 1}
    model.tick(T0 + 3600)  # failed flows stay until dismissed
    assert [f.flow_id for f in model.flows.ordered()] == [bad.trace.flow_id]


async def test_a_catch_up_of_flows_already_seen_live_changes_nothing() -> None:
    run = await failing().finish()
    book = live(run.events)
    before, version = shape(book.flows[run.trace.flow_id]), book.version
    book.load([run.message()], T0 + 1)
    book.load([run.message()], T0 + 2)
    assert book.version == version
    assert shape(book.flows[run.trace.flow_id]) == before
    assert book.finished == {"volume_create_manager REVERTED": 1}


async def test_a_trace_taken_before_newer_live_events_does_not_undo_them() -> None:
    gate = asyncio.Event()
    run = await Run(Step("ExtractVolumeRefTask"), Step("CreateVolumeFromSpecTask", gate=gate)
                    ).start()
    early = run.message(age_s=0.0)  # taken while CreateVolumeFromSpecTask runs
    gate.set()
    await run.finish()
    book = live(run.events)
    book.load([early], T0 + 1)
    flow = book.flows[run.trace.flow_id]
    assert flow.state == "SUCCESS" and flow.final
    assert shape(flow) == shape(live(run.events).flows[run.trace.flow_id])


async def test_a_trace_fills_in_what_the_stream_dropped_and_keeps_what_came_after_it(
) -> None:
    gate = asyncio.Event()
    run = await Run(Step("ExtractVolumeRefTask"), Step("CreateVolumeFromSpecTask", gate=gate),
                    Step("CreateVolumeOnFinishTask")).start()
    snapshot = run.message(age_s=0.0)  # up to CreateVolumeFromSpecTask RUNNING
    gate.set()
    await run.finish()
    dropped = [e for e in run.events if e.get("task") != "ExtractVolumeRefTask"]
    book = live(dropped)
    held = book.flows[run.trace.flow_id]  # a timeline on screen holds this record
    book.load([snapshot], T0 + 1)
    assert book.flows[run.trace.flow_id] is held
    assert shape(held) == shape(live(run.events).flows[run.trace.flow_id])
    assert [c.state for c in held.tasks["ExtractVolumeRefTask"].changes] == [
        "RUNNING", "SUCCESS"]


async def test_a_running_flow_the_stream_lost_is_finished_by_a_later_trace() -> None:
    run = await failing().finish()
    book = live(run.events[:4])  # the stream stopped after the first task began
    assert not book.flows[run.trace.flow_id].final
    book.load([run.message(age_s=2.0)], T0 + 5)
    flow = book.flows[run.trace.flow_id]
    assert flow.state == "REVERTED" and flow.ended_seen == T0 + 3
    assert book.ordered()[0] is flow
    assert book.finished == {"volume_create_manager REVERTED": 1}


async def test_what_the_book_let_go_of_never_comes_back() -> None:
    bad, good = await failing().finish(), await ok().finish()
    book = FlowBook(fade_s=10.0)
    book.load([bad.message(), good.message(age_s=1.0)], T0)
    assert book.dismiss(bad.trace.flow_id)
    book.tick(T0 + 9.5)  # the success ended 1 s before it was asked for: gone now
    assert not book.flows
    book.load([bad.message(), good.message(age_s=1.0)], T0 + 10)  # stale copies
    assert not book.flows


async def test_old_successes_and_long_silent_runs_are_not_brought_back_but_failures_are(
) -> None:
    gate = asyncio.Event()
    bad, good = await failing().finish(), await ok().finish()
    stuck = await Run(Step("CreateVolumeFromSpecTask", gate=gate), volume_id="v-stuck").start()
    book = FlowBook(fade_s=10.0, lost_after_s=120.0)
    book.load([good.message(age_s=11.0), stuck.message(age_s=121.0),
               bad.message(age_s=86_400.0)], T0)
    assert list(book.flows) == [bad.trace.flow_id]
    book.load([stuck.message(age_s=5.0)], T0)
    assert stuck.trace.flow_id in book.flows
    gate.set()
    await stuck.finish()


async def test_a_loaded_success_fades_by_the_age_its_actor_gave() -> None:
    run = await ok().finish()
    book = FlowBook(fade_s=10.0)
    book.load([run.message(age_s=4.0)], T0)
    book.tick(T0 + 5.9)
    assert run.trace.flow_id in book.flows
    book.tick(T0 + 6.1)
    assert run.trace.flow_id not in book.flows


async def test_loaded_successes_fade_in_the_order_they_ended() -> None:
    older, newer = await ok("vol-a").finish(), await ok("vol-b").finish()
    book = live(newer.events, FlowBook(fade_s=10.0))  # ended at T0, seen live
    book.load([older.message(age_s=5.0)], T0)  # ended at T0 - 5
    book.tick(T0 + 5.5)
    assert list(book.flows) == [newer.trace.flow_id]


# ---- the link asks the gateway ---------------------------------------------------------
class FakeGateway:
    """``Client.flow_history`` of a gateway that answers ``flows`` or refuses the op."""

    def __init__(self, flows: tuple[FlowTrace, ...] = (), refuse: str | None = None) -> None:
        self.flows, self.refuse = flows, refuse
        self.asked: list[dict[str, Any]] = []

    async def flow_history(self, **kwargs: Any) -> FlowTraceList:
        self.asked.append(kwargs)
        if self.refuse is not None:
            raise InvalidInput(f"unknown op {self.refuse!r} for the gateway", {"op": self.refuse})
        return FlowTraceList(self.flows)


async def test_the_link_asks_for_the_flows_still_on_screen_and_loads_them() -> None:
    run = await failing().finish()
    model = Model("p1", admin=False, fade_s=7.0)
    gateway = FakeGateway((run.message(),))
    await GatewayLink(model, "tcp://127.0.0.1:1", "p1", admin=False, clock=lambda: T0
                      ).catch_up_flows(cast(Client, gateway))
    assert gateway.asked == [{"all_projects": False, "done_within_s": 7.0}]
    assert list(model.flows.flows) == [run.trace.flow_id]


async def test_a_gateway_without_flow_history_leaves_flows_to_the_live_stream() -> None:
    model = Model()
    link = GatewayLink(model, "tcp://127.0.0.1:1")
    await link.catch_up_flows(cast(Client, FakeGateway(refuse="flow.history")))
    assert not model.flows.flows
    with pytest.raises(InvalidInput):  # any other refusal is still an error
        await link.catch_up_flows(cast(Client, FakeGateway(refuse="volume.list")))
