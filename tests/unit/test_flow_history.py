"""What an actor remembers of its flows (actors/flow_history.py, actors/flow_reply.py),
driven with in-memory flows: bounds, order, and the replies built from it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, cast

import pytest

from cinderblock.actors.flow.engine import LinearFlow
from cinderblock.actors.flow.history import FlowHistory
from cinderblock.actors.flow.reply import MAX_REASON, fit, recent_reply, trace_message
from cinderblock.actors.gateway.flow_history import ask_by, merged
from cinderblock.actors.runtime.actor import Link
from cinderblock.protocol.messages.flows import FlowRecent
from cinderblock.protocol.wire.codec import MAX_FRAME, pack
from cinderblock.protocol.wire.errors import InvalidInput, PeerGone, Unavailable
from cinderblock.protocol.wire.schema import dump
from tests.conftest import EventRecorder, eventually
from tests.flow_steps import Step

OK = LinearFlow("demo", [Step("one"), Step("two")])
BAD = LinearFlow("demo", [Step("one"), Step("two", fail="the disk is on fire")])


async def run(flow: LinearFlow[None], history: FlowHistory, volume_id: str = "v",
              events: EventRecorder | None = None) -> None:
    with contextlib.suppress(RuntimeError):  # the failing flows: the history is what matters
        await flow.run(None, events or EventRecorder(listening=False), volume_id, history=history,
                       project_id="p1")


async def test_a_finished_run_is_kept_with_every_state_change_in_order() -> None:
    history = FlowHistory()
    await run(OK, history, "vol-1")
    (trace,) = history.done
    assert (trace.flow, trace.volume_id, trace.project_id) == ("demo", "vol-1", "p1")
    assert list(trace.tasks) == ["one", "two"]
    assert [(task, state) for task, state, _, _ in trace.steps] == [
        (None, "PENDING"), (None, "RUNNING"), ("one", "RUNNING"), ("one", "SUCCESS"),
        ("two", "RUNNING"), ("two", "SUCCESS"), (None, "SUCCESS")]
    times = [ts for _, _, ts, _ in trace.steps]
    assert times == sorted(times)
    assert not history.running and not history.failed


async def test_the_trace_is_kept_even_when_nobody_listens_and_no_event_is_built() -> None:
    history, quiet = FlowHistory(), EventRecorder(listening=False)
    await run(OK, history, events=quiet)
    assert quiet.events == []
    assert len(history.done[0].steps) == 7


async def test_a_listeners_events_carry_the_very_changes_the_trace_holds() -> None:
    history, loud = FlowHistory(), EventRecorder()
    await run(BAD, history, events=loud)
    (trace,) = history.failed
    assert [(e.get("task"), e["state"], e["ts"], e.get("reason")) for e in loud.events] \
        == trace.steps


async def test_a_running_flow_is_in_running_until_it_ends() -> None:
    history, gate = FlowHistory(), asyncio.Event()
    flow = LinearFlow("slow", [Step("wait", gate=gate)])
    task = asyncio.create_task(run(flow, history))
    await eventually(lambda: history.running)  # the run has begun
    (trace,) = history.running
    assert trace.state == "RUNNING" and trace.steps[-1][:2] == ("wait", "RUNNING")
    gate.set()
    await task
    assert not history.running and list(history.done) == [trace]


async def test_a_cancelled_run_is_forgotten_not_kept_as_finished() -> None:
    history = FlowHistory()
    task = asyncio.create_task(run(LinearFlow("slow", [Step("w", gate=asyncio.Event())]),
                                   history))
    await eventually(lambda: history.running)  # the run has begun
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not history.running and not history.done and not history.failed


async def test_a_failed_run_keeps_its_reason_and_its_revert_order() -> None:
    history = FlowHistory()
    await run(BAD, history)
    (trace,) = history.failed
    assert trace.state == "REVERTED" and trace.failed
    reasons = {(task, state): reason for task, state, _, reason in trace.steps if reason}
    assert reasons == {("two", "FAILURE"): "the disk is on fire",
                       (None, "FAILURE"): "the disk is on fire"}
    reverts = [task for task, state, _, _ in trace.steps if state == "REVERTING" and task]
    assert reverts == ["two", "one"]


async def test_the_rings_keep_only_the_newest_and_successes_never_push_out_failures() -> None:
    history = FlowHistory(keep_done=3, keep_failed=2)
    for i in range(3):
        await run(BAD, history, f"bad-{i}")
    for i in range(10):
        await run(OK, history, f"ok-{i}")
    assert [t.volume_id for t in history.done] == ["ok-7", "ok-8", "ok-9"]
    assert [t.volume_id for t in history.failed] == ["bad-1", "bad-2"]


async def test_recent_lists_failed_then_running_then_done_newest_first() -> None:
    history, gate = FlowHistory(), asyncio.Event()
    await run(OK, history, "ok-old")
    await run(BAD, history, "bad")
    await run(OK, history, "ok-new")
    slow = asyncio.create_task(run(LinearFlow("slow", [Step("w", gate=gate)]), history, "run"))
    await eventually(lambda: history.running)  # the run has begun
    now = history.done[-1].last_ts
    assert [t.volume_id for t in history.recent(now)] == ["bad", "run", "ok-new", "ok-old"]
    later = now + 60
    assert [t.volume_id for t in history.recent(later, done_within_s=30)] == ["bad", "run"]
    gate.set()
    await slow


# ---- replies -------------------------------------------------------------------------
async def test_a_reply_stops_at_its_limit_and_says_it_was_cut() -> None:
    history = FlowHistory()
    for i in range(5):
        await run(OK, history, f"v{i}")
    reply = recent_reply(history, "node-1", FlowRecent(limit=3), history.done[-1].last_ts)
    assert [t.volume_id for t in reply.flows] == ["v4", "v3", "v2"]
    assert reply.truncated and all(t.actor == "node-1" for t in reply.flows)
    whole = recent_reply(history, "node-1", FlowRecent(limit=5), history.done[-1].last_ts)
    assert len(whole.flows) == 5 and not whole.truncated


async def test_a_trace_message_says_how_long_ago_its_last_change_was() -> None:
    history = FlowHistory()
    await run(BAD, history)
    trace = history.failed[0]
    message = trace_message(trace, "gateway", trace.last_ts + 2.5)
    assert message.age_s == 2.5
    assert [(s.task, s.state, s.ts, s.reason) for s in message.steps] == trace.steps


def test_asking_for_no_flows_or_a_negative_window_is_refused() -> None:
    with pytest.raises(InvalidInput):
        recent_reply(FlowHistory(), "gateway", FlowRecent(limit=0), 0.0)
    with pytest.raises(InvalidInput):
        recent_reply(FlowHistory(), "gateway", FlowRecent(done_within_s=-1.0), 0.0)


async def test_the_largest_history_still_fits_one_frame_with_reasons_clipped() -> None:
    history = FlowHistory()
    huge = "x" * 100_000
    many = LinearFlow("wide", [Step(f"task-{i:02d}-" + "n" * 40) for i in range(11)]
                      + [Step("last", fail=huge)])
    for i in range(history.failed.maxlen or 0):
        await run(many, history, f"{i:036d}")
    for i in range(history.done.maxlen or 0):
        await run(LinearFlow("wide", many.tasks[:11]), history, f"{i:036d}")
    reply = recent_reply(history, "node-1", FlowRecent(limit=1000), history.done[-1].last_ts)
    assert len(pack(dump(reply))) < MAX_FRAME - 4096
    assert reply.truncated and 0 < len(reply.flows) < 300
    reasons = [s.reason for t in reply.flows for s in t.steps if s.reason]
    assert reasons and all(len(r) == MAX_REASON for r in reasons)


async def test_fitting_keeps_the_order_it_was_given_and_stops_at_the_budget() -> None:
    history = FlowHistory()
    for i in range(10):
        await run(OK, history, f"v{i}")
    messages = [trace_message(t, "gateway", 0.0) for t in history.done]
    one = len(pack(dump(messages[0])))
    reply = fit(messages, limit=10, budget=one * 3 + 1)
    assert [t.volume_id for t in reply.flows] == ["v0", "v1", "v2"] and reply.truncated


async def test_the_gateway_merges_answers_failed_then_running_then_done() -> None:
    history, gate = FlowHistory(), asyncio.Event()
    await run(OK, history, "done")
    await run(BAD, history, "failed")
    slow = asyncio.create_task(run(LinearFlow("slow", [Step("w", gate=gate)]), history, "run"))
    await eventually(lambda: history.running)  # the run has begun
    now = history.failed[-1].last_ts
    node = [trace_message(t, "node-1", now) for t in [*history.done, *history.running]]
    gateway = [trace_message(t, "gateway", now) for t in history.failed]
    assert [t.volume_id for t in merged([*node, *gateway])] == ["failed", "run", "done"]
    gate.set()
    await slow


class ConnectingNode:
    """A node's side of the gateway's ROUTER: not connected for the first ``absent`` asks."""

    def __init__(self, absent: int) -> None:
        self.absent = absent
        self.asked = 0

    async def call(self, op: str, body: Any, ctx: Any = None, to: bytes = b"",
                   timeout: float = 0.0) -> Any:
        self.asked += 1
        if self.asked <= self.absent:
            raise PeerGone(f"peer {to!r} is not connected", {"peer": to.decode()})
        return {"flows": []}


async def test_a_node_not_connected_yet_is_asked_again_until_its_deadline() -> None:
    node = ConnectingNode(absent=2)
    deadline = time.monotonic() + 1.0
    assert await ask_by(deadline, cast(Link, node), FlowRecent(), b"node-1") == {"flows": []}
    assert node.asked == 3
    gone = ConnectingNode(absent=1000)
    started = time.monotonic()
    with pytest.raises(Unavailable):
        await ask_by(started + 0.35, cast(Link, gone), FlowRecent(), b"node-2")
    assert 0.2 < time.monotonic() - started < 1.0 and 2 <= gone.asked <= 4
