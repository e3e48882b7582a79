"""A small TaskFlow-shaped engine: linear flows of revertible tasks.

A ``Task`` has ``execute(ctx)`` and ``revert(ctx, failure)``; it names the
context attributes it ``requires`` and ``provides`` so that a flow can check,
when it is built, that every input is made by an earlier task or given at the
start (the wiring error shows up at import, not on the first request). The
context is a typed object (a dataclass per flow), never a string-keyed store.

``LinearFlow.run`` executes the tasks in order. When one raises, the flow
reverts every task that ran, newest first, the failed one included (as
TaskFlow does: its revert undoes whatever part of it happened), then re-raises
the original exception. Every state change is recorded on the run's trace as
a tuple (kept by the actor's ``FlowHistory`` when the run is given one, so it
can tell whoever asks later what its flows did: ``actors/flow_history.py``)
and, while somebody listens, published as an event through ``events``:

    flow PENDING → RUNNING → SUCCESS
                       └──→ FAILURE → REVERTING → REVERTED | REVERT_FAILURE
    task PENDING → RUNNING → SUCCESS | FAILURE, then REVERTING → REVERTED | REVERT_FAILURE

Every move, the flow's and each task's, is judged by the one transition table
(``protocol.states.check_task_move``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from time import time
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from cinderblock.actors.flow.history import FlowHistory, RunTrace
from cinderblock.protocol.states import TaskState, check_task_move
from cinderblock.protocol.wire.throttled_log import ThrottledLog

log = logging.getLogger(__name__)
# Failures a peer brings about at will (bad input, over quota, a wrong state): each
# kind is logged a few times a minute at most, so bad input cannot grow the log.
refused = ThrottledLog(log)
PEER_FAULTS = frozenset({"invalid_input", "not_found", "over_quota", "invalid_state",
                         "forbidden"})
C = TypeVar("C")
_PENDING = TaskState.PENDING.value
S = TaskState


class Events(Protocol):
    """Where a flow publishes (``actors.events.EventPublisher``): ``emit`` and ``add``
    are called only while ``listening``, so nobody pays for events nobody reads."""

    listening: bool
    actor: str

    def emit(self, kind: str, **fields: Any) -> None: ...

    def add(self, event: dict[str, Any]) -> None:
        """Publish an event already whole (``kind``, ``actor``, ``ts`` and its fields)."""


class Task(Generic[C]):
    requires: ClassVar[tuple[str, ...]] = ()
    provides: ClassVar[tuple[str, ...]] = ()

    @property
    def name(self) -> str:
        return type(self).__name__

    async def execute(self, ctx: C) -> None:
        raise NotImplementedError

    async def revert(self, ctx: C, failure: BaseException) -> None:
        """Undo what execute did; the default has nothing to undo."""


class FlowWiringError(TypeError):
    """A task requires something no earlier task provides."""


def failure_text(exc: BaseException) -> str:
    """What a failure says, never empty: a cinderblock error's message, else its text,
    else its type's name."""
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(text)


class LinearFlow(Generic[C]):
    def __init__(self, name: str, tasks: Sequence[Task[C]], given: Iterable[str] = ()) -> None:
        self.name = name
        self.tasks = tuple(tasks)
        self.task_names = [t.name for t in self.tasks]
        self._check_wiring(set(given))

    def _check_wiring(self, available: set[str]) -> None:
        for task in self.tasks:
            missing = [r for r in task.requires if r not in available]
            if missing:
                raise FlowWiringError(f"{self.name}: {task.name} requires {missing}, not provided")
            available.update(task.provides)

    async def run(self, ctx: C, events: Events, volume_id: str = "", flow_id: str = "",
                  history: FlowHistory | None = None, project_id: str = "") -> None:
        """Run the tasks; ``history`` keeps the run's trace, ``project_id`` says whose it is."""
        trace = RunTrace(flow_id or uuid.uuid4().hex, self.name, volume_id, project_id,
                         self.task_names)
        flow = _FlowRun(self, events, trace)
        if history is None:
            await flow.run(ctx)
            return
        history.started(trace)
        try:
            await flow.run(ctx)
        finally:
            history.ended(trace)


class _FlowRun(Generic[C]):
    """One execution of a flow: its states, its trace, and the events they make."""

    def __init__(self, flow: LinearFlow[C], events: Events, trace: RunTrace) -> None:
        self.flow = flow
        self.events = events
        self.emit = events.emit
        self.trace = trace
        self.steps = trace.steps
        self.ids = {"flow_id": trace.flow_id, "flow": flow.name, "volume_id": trace.volume_id,
                    "project_id": trace.project_id}
        self._task_event: dict[str, Any] | None = None  # what each task event shares
        self.state = TaskState.PENDING
        self.task_states = [TaskState.PENDING] * len(flow.tasks)
        ts = time()
        self.steps.append((None, _PENDING, ts, None))
        if events.listening:
            events.emit("flow", state=_PENDING, tasks=flow.task_names, ts=ts, **self.ids)

    def _move(self, state: TaskState, reason: str | None = None) -> None:
        check_task_move(self.state, state)
        self.state = state
        value, ts = state.value, time()
        self.trace.state = value
        self.trace.failed = self.trace.failed or state is TaskState.FAILURE
        self.steps.append((None, value, ts, reason))
        if state is TaskState.FAILURE:  # one line per failed flow (the request's ids on it)
            if self.trace.error_code in PEER_FAULTS:  # what a peer sends: a few a minute
                refused.warning(f"{self.flow.name} {self.trace.error_code}", "%s failed: %s",
                                self.flow.name, reason)
            else:
                log.warning("%s failed: %s", self.flow.name, reason)
        elif state is TaskState.SUCCESS and log.isEnabledFor(logging.DEBUG):
            log.debug("%s succeeded", self.flow.name)
        if not self.events.listening:
            return
        if reason is None:
            self.emit("flow", state=value, ts=ts, **self.ids)
        elif state is TaskState.FAILURE:
            self.emit("flow", state=value, reason=reason, code=self.trace.error_code, ts=ts,
                      **self.ids)
        else:
            self.emit("flow", state=value, reason=reason, ts=ts, **self.ids)

    def _task(self, i: int, state: TaskState, reason: str | None = None) -> None:
        check_task_move(self.task_states[i], state)
        self.task_states[i] = state
        name, state_word, ts = self.flow.task_names[i], state.value, time()
        self.steps.append((name, state_word, ts, reason))
        if not self.events.listening:
            return
        # One dict literal from a shared base: a task event is most of a flow's
        # events, and building it through keyword arguments cost three times as much.
        base = self._task_event
        if base is None:
            base = self._task_event = {"kind": "task", "actor": self.events.actor, **self.ids}
        if reason is None:
            self.events.add({**base, "task": name, "state": state_word, "ts": ts})
        else:
            self.events.add({**base, "task": name, "state": state_word, "ts": ts,
                             "reason": reason})

    async def run(self, ctx: C) -> None:
        self._move(TaskState.RUNNING)
        for i, task in enumerate(self.flow.tasks):
            self._task(i, S.RUNNING)
            try:
                await task.execute(ctx)
            except Exception as exc:
                self._task(i, S.FAILURE, failure_text(exc))
                await self._revert(ctx, i + 1, exc)
                raise
            self._task(i, S.SUCCESS)
        self._move(TaskState.SUCCESS)

    async def _revert(self, ctx: C, ran: int, failure: Exception) -> None:
        self.trace.error_code = getattr(failure, "code", "internal")
        self._move(TaskState.FAILURE, failure_text(failure))
        self._move(TaskState.REVERTING)
        clean = True
        for i in reversed(range(ran)):
            task = self.flow.tasks[i]
            self._task(i, S.REVERTING)
            try:
                await task.revert(ctx, failure)
            except Exception as exc:
                clean = False
                log.exception("%s: revert of %s failed", self.flow.name, task.name)
                self._task(i, S.REVERT_FAILURE, failure_text(exc))
                continue
            self._task(i, S.REVERTED)
        self._move(TaskState.REVERTED if clean else TaskState.REVERT_FAILURE)
