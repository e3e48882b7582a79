"""The flow engine (actors/flow.py), driven directly with in-memory tasks."""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass, field

import pytest

from cinderblock.actors.flow.engine import FlowWiringError, LinearFlow, Task
from cinderblock.protocol.states import TASK_MOVES, TaskState, check_task_move
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState
from tests.conftest import EventRecorder


@dataclass
class Ctx:
    journal: list[str] = field(default_factory=list)
    a: int | None = None
    b: int | None = None
    failures: list[BaseException] = field(default_factory=list)


class Step(Task[Ctx]):
    """Journals execute and revert; raises from either when told to."""

    def __init__(self, label: str, fail: Exception | None = None,
                 fail_revert: Exception | None = None) -> None:
        self.label = label
        self.fail = fail
        self.fail_revert = fail_revert

    @property
    def name(self) -> str:
        return self.label

    async def execute(self, ctx: Ctx) -> None:
        ctx.journal.append(f"execute {self.label}")
        if self.fail is not None:
            raise self.fail

    async def revert(self, ctx: Ctx, failure: BaseException) -> None:
        ctx.journal.append(f"revert {self.label}")
        ctx.failures.append(failure)
        if self.fail_revert is not None:
            raise self.fail_revert


class MakeA(Task[Ctx]):
    provides = ("a",)

    async def execute(self, ctx: Ctx) -> None:
        ctx.a = 1


class NeedsA(Task[Ctx]):
    requires = ("a",)
    provides = ("b",)

    async def execute(self, ctx: Ctx) -> None:
        assert ctx.a is not None
        ctx.b = ctx.a + 1


def steps(*labels: str) -> list[Step]:
    return [Step(label) for label in labels]


def successful(tasks: list[str]) -> list[tuple[str, str, str]]:
    return [("flow", "", "PENDING"), ("flow", "", "RUNNING"),
            *[("task", t, s) for t in tasks for s in ("RUNNING", "SUCCESS")],
            ("flow", "", "SUCCESS")]


# ---- wiring -------------------------------------------------------------------------------
def test_a_task_requiring_what_no_earlier_task_provides_is_a_wiring_error_at_build() -> None:
    with pytest.raises(FlowWiringError) as err:
        LinearFlow("broken", [NeedsA(), MakeA()])

    assert "broken" in str(err.value)
    assert "NeedsA" in str(err.value) and "'a'" in str(err.value)


def test_inputs_given_at_the_start_or_provided_earlier_satisfy_the_wiring() -> None:
    LinearFlow("given", [NeedsA()], given=("a",))
    flow = LinearFlow("chained", [MakeA(), NeedsA()])
    assert flow.task_names == ["MakeA", "NeedsA"]


def test_a_wiring_error_is_a_type_error() -> None:
    assert issubclass(FlowWiringError, TypeError)


async def test_provided_values_reach_later_tasks_through_the_context() -> None:
    ctx = Ctx()
    await LinearFlow("chained", [MakeA(), NeedsA()]).run(ctx, EventRecorder())
    assert (ctx.a, ctx.b) == (1, 2)


def test_a_task_is_named_after_its_class() -> None:
    assert MakeA().name == "MakeA"


# ---- running -----------------------------------------------------------------------------
async def test_tasks_run_in_order_and_every_state_change_is_an_event() -> None:
    ctx, emit = Ctx(), EventRecorder()

    await LinearFlow("demo", steps("one", "two", "three")).run(ctx, emit, "vol-1", "flow-1")

    assert ctx.journal == ["execute one", "execute two", "execute three"]
    assert emit.sequence() == successful(["one", "two", "three"])
    assert all(e["flow_id"] == "flow-1" and e["flow"] == "demo" and e["volume_id"] == "vol-1"
               for e in emit.events)
    assert emit.events[0]["tasks"] == ["one", "two", "three"]
    assert all("reason" not in e for e in emit.events)


async def test_each_run_gets_its_own_flow_id_when_none_is_given() -> None:
    flow, emit = LinearFlow("demo", steps("one")), EventRecorder()

    await flow.run(Ctx(), emit)
    await flow.run(Ctx(), emit)

    ids = [e["flow_id"] for e in emit.events if e["kind"] == "flow" and e["state"] == "PENDING"]
    assert len(set(ids)) == 2 and all(ids)


async def test_an_empty_flow_goes_straight_to_success() -> None:
    emit = EventRecorder()
    empty: list[Task[Ctx]] = []
    await LinearFlow("empty", empty).run(Ctx(), emit)
    assert emit.sequence() == successful([])


async def test_event_states_are_plain_strings_of_the_task_state_names() -> None:
    emit = EventRecorder()
    await LinearFlow("demo", steps("one")).run(Ctx(), emit)
    states = {e["state"] for e in emit.events}
    assert states <= {s.value for s in TaskState}
    assert all(type(s) is str for s in states), "events go to msgpack as plain strings"


# ---- failing and reverting -------------------------------------------------------------------
async def test_a_failure_reverts_every_task_that_ran_newest_first_and_re_raises() -> None:
    boom = InvalidInput("bad size")
    ctx, emit = Ctx(), EventRecorder()
    flow = LinearFlow("demo", [Step("one"), Step("two"), Step("three", fail=boom), Step("four")])

    with pytest.raises(InvalidInput) as err:
        await flow.run(ctx, emit)

    assert err.value is boom
    assert ctx.journal == ["execute one", "execute two", "execute three",
                           "revert three", "revert two", "revert one"]
    assert ctx.failures == [boom, boom, boom]


async def test_a_failed_flow_emits_failure_reverting_and_reverted_newest_first() -> None:
    emit = EventRecorder()
    flow = LinearFlow("demo", [Step("one"), Step("two", fail=RuntimeError("disk on fire"))])

    with pytest.raises(RuntimeError):
        await flow.run(Ctx(), emit)

    assert emit.sequence() == [
        ("flow", "", "PENDING"), ("flow", "", "RUNNING"),
        ("task", "one", "RUNNING"), ("task", "one", "SUCCESS"),
        ("task", "two", "RUNNING"), ("task", "two", "FAILURE"),
        ("flow", "", "FAILURE"), ("flow", "", "REVERTING"),
        ("task", "two", "REVERTING"), ("task", "two", "REVERTED"),
        ("task", "one", "REVERTING"), ("task", "one", "REVERTED"),
        ("flow", "", "REVERTED"),
    ]
    reasons = {(e["kind"], e["state"]): e.get("reason") for e in emit.events}
    assert reasons[("task", "FAILURE")] == "disk on fire"
    assert reasons[("flow", "FAILURE")] == "disk on fire"


async def test_the_reason_of_a_cinderblock_error_is_its_message() -> None:
    emit = EventRecorder()
    with pytest.raises(InvalidInput):
        await LinearFlow("demo", [Step("one", fail=InvalidInput("size must be positive",
                                                                {"field": "size"}))]
                         ).run(Ctx(), emit)
    failure = next(e for e in emit.events if e["kind"] == "flow" and e["state"] == "FAILURE")
    assert failure["reason"] == "size must be positive"


async def test_an_exception_without_text_is_reported_by_its_type_name() -> None:
    emit = EventRecorder()
    with pytest.raises(KeyError):
        await LinearFlow("demo", [Step("one", fail=KeyError())]).run(Ctx(), emit)
    failure = next(e for e in emit.events if e["kind"] == "flow" and e["state"] == "FAILURE")
    assert failure["reason"] == "KeyError"


async def test_a_failing_revert_is_reported_and_the_other_reverts_still_run() -> None:
    ctx, emit = Ctx(), EventRecorder()
    flow = LinearFlow("demo", [
        Step("one"),
        Step("two", fail_revert=OSError("cannot undo")),
        Step("three", fail=ValueError("broken")),
    ])

    with pytest.raises(ValueError, match="broken"):
        await flow.run(ctx, emit)

    assert ctx.journal[-3:] == ["revert three", "revert two", "revert one"]
    tail = emit.sequence()[-8:]
    assert tail == [
        ("flow", "", "REVERTING"),
        ("task", "three", "REVERTING"), ("task", "three", "REVERTED"),
        ("task", "two", "REVERTING"), ("task", "two", "REVERT_FAILURE"),
        ("task", "one", "REVERTING"), ("task", "one", "REVERTED"),
        ("flow", "", "REVERT_FAILURE"),
    ]
    bad = next(e for e in emit.events if e["state"] == "REVERT_FAILURE" and e["kind"] == "task")
    assert bad["reason"] == "cannot undo"


async def test_a_failure_in_the_first_task_reverts_only_that_task() -> None:
    ctx = Ctx()
    with pytest.raises(ValueError):
        await LinearFlow("demo", [Step("one", fail=ValueError("x")), Step("two")]).run(
            ctx, EventRecorder())
    assert ctx.journal == ["execute one", "revert one"]


async def test_the_default_revert_has_nothing_to_undo() -> None:
    ctx, emit = Ctx(), EventRecorder()
    flow = LinearFlow("demo", [MakeA(), Step("two", fail=ValueError("x"))])

    with pytest.raises(ValueError):
        await flow.run(ctx, emit)

    assert ("task", "MakeA", "REVERTED") in emit.sequence()


async def test_a_flow_can_run_again_after_a_failure() -> None:
    flaky = Step("one", fail=ValueError("x"))
    flow = LinearFlow("demo", [flaky])
    first, second = EventRecorder(), EventRecorder()
    with pytest.raises(ValueError):
        await flow.run(Ctx(), first)
    assert ("flow", "", "REVERTED") in first.sequence()
    flaky.fail = None  # the cause went away: the same flow runs again from the start
    ctx = Ctx()
    await flow.run(ctx, second)
    assert second.sequence() == successful(["one"])
    assert ctx.journal == ["execute one"]


# ---- the state table ----------------------------------------------------------------------
async def test_the_engine_makes_every_move_of_the_table_and_no_other() -> None:
    """Runs that succeed, fail, and fail to revert: each flow's and task's successive
    states are moves the table allows, and together they use every move it has."""
    made: set[tuple[TaskState, TaskState]] = set()
    for flow in (LinearFlow("ok", steps("one", "two")),
                 LinearFlow("fails", [Step("one"), Step("two", fail=ValueError("x"))]),
                 LinearFlow("stuck", [Step("one", fail_revert=OSError("no")),
                                      Step("two", fail=ValueError("x"))])):
        emit = EventRecorder()
        with contextlib.suppress(ValueError):
            await flow.run(Ctx(), emit)
        for who in {(kind, task) for kind, task, _ in emit.sequence()}:
            states = [TaskState(s) for k, t, s in emit.sequence() if (k, t) == who]
            if who[0] == "task":
                states.insert(0, TaskState.PENDING)
            for old, new in itertools.pairwise(states):
                check_task_move(old, new)
                made.add((old, new))
    assert made == {(old, new) for old, moves in TASK_MOVES.items() for new in moves}


@pytest.mark.parametrize(("old", "new"), [
    (TaskState.PENDING, TaskState.SUCCESS), (TaskState.SUCCESS, TaskState.RUNNING),
    (TaskState.REVERTED, TaskState.RUNNING), (TaskState.FAILURE, TaskState.SUCCESS),
])
def test_any_other_move_is_an_invalid_state(old: TaskState, new: TaskState) -> None:
    with pytest.raises(InvalidState) as err:
        check_task_move(old, new)
    assert str(old) in err.value.message and str(new) in err.value.message
