"""Flows and their tasks, folded from ``flow`` and ``task`` events.

Every flow run is keyed by its ``flow_id``. A flow is *running* until it
reaches a final state; then it is *done* (SUCCESS) or *failed* (it passed
through FAILURE, so it ends REVERTED or REVERT_FAILURE). Retention:

- done flows fade: they are kept ``fade_s`` seconds after they end, and at
  most ``keep_done`` of them (the newest), so a benchmark cannot flood the view;
- failed flows stay until dismissed (at most ``keep_failed``, the newest);
- refused flows (failed with an error that says the request was wrong: bad input,
  over quota, not found, a state that does not allow it, forbidden) are shown apart
  from failures of the system and fade like done flows: they never pin;
- running flows that stop hearing events for ``lost_after_s`` (their events
  were dropped, or their actor died) are forgotten and counted as lost.

Two clocks: ``ts`` in an event is the publishing actor's clock, ``now`` is
the dashboard's. Durations between events of one flow use ``ts`` only (one
actor, one clock); ages and fading use ``now`` only, so clock skew between
hosts never shows as a negative or growing elapsed time.

Catching up (``load``): the actors remember their recent flows
(``flow.history``), each as the very changes its events carried, so a
dashboard that was not there folds them with the same code. A change is
known by (flow or task, state): each happens at most once in a run, so a
trace and the live stream never count one twice, and a change the stream
brought after the trace was taken is kept. The trace's ``age_s`` (its
actor's clock) places its end on the dashboard's clock. A catch-up never
brings back what the book let go of (faded, trimmed, dismissed), nor a
success older than ``fade_s`` or a run silent for longer than ``lost_after_s``.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from cinderblock.protocol.messages.flows import FlowTrace

FINAL = frozenset({"SUCCESS", "REVERTED", "REVERT_FAILURE"})
FAILED = frozenset({"FAILURE", "REVERTING", "REVERTED", "REVERT_FAILURE"})
# error codes that refuse a request for what it asked (the caller's doing, not the system's)
REFUSALS = frozenset({"invalid_input", "not_found", "over_quota", "invalid_state", "forbidden"})
FORGET_MAX = 10_000  # flow ids let go of, never brought back by a catch-up
Event = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Change:
    """One state change of a flow or a task, at the actor's clock."""

    state: str
    ts: float
    reason: str | None = None


@dataclass(slots=True)
class TaskRecord:
    name: str
    changes: list[Change] = field(default_factory=list)

    @property
    def state(self) -> str:
        return self.changes[-1].state if self.changes else "PENDING"

    def span(self, *states: str) -> tuple[float, float] | None:
        """From the first change into ``states[0]`` to the next change after it."""
        for i, change in enumerate(self.changes):
            if change.state == states[0]:
                end = self.changes[i + 1].ts if i + 1 < len(self.changes) else None
                return (change.ts, end if end is not None else change.ts)
        return None


@dataclass(slots=True)
class FlowRecord:
    flow_id: str
    flow: str
    volume_id: str
    actor: str
    started: float  # actor clock of the first event seen
    last_ts: float  # actor clock of the latest event
    last_seen: float  # dashboard clock of the latest event
    state: str = "PENDING"
    reason: str | None = None
    ended_seen: float | None = None  # dashboard clock when it reached a final state
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    current: str | None = None  # the task that moved last
    failed_task: str | None = None
    revert_order: list[str] = field(default_factory=list)
    saw_start: bool = False  # False when the dashboard joined after PENDING
    error_code: str = ""  # the code of the error a failed flow failed with

    @property
    def final(self) -> bool:
        return self.state in FINAL

    @property
    def failed(self) -> bool:
        return self.state in FAILED

    @property
    def refused(self) -> bool:
        """Failed because the request was wrong (bad input, over quota ...), not the system."""
        return self.failed and self.error_code in REFUSALS

    def elapsed(self, now: float) -> float:
        """Seconds since the flow started; frozen once it is final."""
        spent = self.last_ts - self.started
        if self.final:
            return spent
        return spent + max(0.0, now - self.last_seen)

    def task(self, name: str) -> TaskRecord:
        record = self.tasks.get(name)
        if record is None:
            record = self.tasks[name] = TaskRecord(name)
        return record


class FlowBook:
    """Every flow the dashboard knows, bucketed as running, done and failed."""

    def __init__(self, fade_s: float = 10.0, keep_done: int = 200, keep_failed: int = 500,
                 lost_after_s: float = 120.0) -> None:
        self.fade_s = fade_s
        self.keep_done = keep_done
        self.keep_failed = keep_failed
        self.lost_after_s = lost_after_s
        self.flows: dict[str, FlowRecord] = {}
        self._done: OrderedDict[str, float] = OrderedDict()  # flow_id -> ended_seen
        self._failed: OrderedDict[str, None] = OrderedDict()
        self.finished: Counter[str] = Counter()  # "volume_create_api SUCCESS" -> count
        self._forgotten: OrderedDict[str, None] = OrderedDict()
        self.lost = 0
        self.dismissed = 0
        self.dismissed_ids: OrderedDict[str, None] = OrderedDict()  # to keep across sessions
        self.version = 0

    # ---- folding ---------------------------------------------------------
    def on_flow(self, e: Mapping[str, Any], now: float) -> None:
        flow = self._flow(e, now)
        fold_flow(flow, e)
        self._touch(flow, float(e["ts"]), now)
        if flow.state in FAILED and not flow.refused:
            self._failed[flow.flow_id] = None
            self._trim(self._failed, self.keep_failed)
        if flow.state in FINAL:
            self._end(flow, now)

    def on_task(self, e: Mapping[str, Any], now: float) -> None:
        flow = self._flow(e, now)
        fold_task(flow, e)
        self._touch(flow, float(e["ts"]), now)

    def _flow(self, e: Mapping[str, Any], now: float) -> FlowRecord:
        flow = self.flows.get(str(e["flow_id"]))
        if flow is None:
            flow = self.flows[str(e["flow_id"])] = new_record(e, now)
        return flow

    def _touch(self, flow: FlowRecord, ts: float, now: float) -> None:
        flow.last_ts = max(flow.last_ts, ts)
        flow.last_seen = now
        self.version += 1

    def _end(self, flow: FlowRecord, now: float) -> None:
        flow.ended_seen = now
        self.finished[f"{flow.flow} {flow.state}"] += 1
        if flow.state == "SUCCESS" or flow.refused:  # both fade
            self._done[flow.flow_id] = now
            self._trim(self._done, self.keep_done)

    def _trim(self, bucket: OrderedDict[str, Any], keep: int) -> None:
        while len(bucket) > keep:
            flow_id, _ = bucket.popitem(last=False)
            self.flows.pop(flow_id, None)
            self._forget(flow_id)

    def _forget(self, flow_id: str) -> None:
        self._forgotten[flow_id] = None
        if len(self._forgotten) > FORGET_MAX:
            self._forgotten.popitem(last=False)

    # ---- catching up -------------------------------------------------------
    def load(self, traces: Iterable[FlowTrace], asked_at: float) -> None:
        """Merge the flows the actors remember, asked for at ``asked_at`` (dashboard clock)."""
        changed = False
        for trace in sorted(traces, key=_oldest_first):
            if trace.step_states and trace.flow_id not in self._forgotten:
                changed |= self._load(trace, trace_events(trace), asked_at - trace.age_s)
        if changed:
            self._done = OrderedDict(sorted(self._done.items(), key=_second))
            self.version += 1

    def _load(self, trace: FlowTrace, events: list[Event], last_seen: float) -> bool:
        """Fold one trace; ``last_seen`` is when its last change was, on our clock."""
        old = self.flows.get(trace.flow_id)
        if old is None:
            if self._stale(events, trace.age_s):
                return False
            flow = self.flows[trace.flow_id] = rebuild(events, last_seen)
            self._settle(flow, False, last_seen)
            return True
        merged = merge_events(events, record_events(old))
        if merged is None:
            return False
        was_final, ended_seen = old.final, old.ended_seen
        adopt(old, rebuild(merged, max(old.last_seen, last_seen)), ended_seen)
        self._settle(old, was_final, last_seen)
        return True

    def _stale(self, events: list[Event], age_s: float) -> bool:
        states = [e["state"] for e in events if e["kind"] == "flow"]
        state = states[-1] if states else "PENDING"
        refused = any(e.get("code") in REFUSALS for e in events if e["kind"] == "flow")
        if state == "SUCCESS" or (refused and state in FINAL):  # these fade
            return age_s >= self.fade_s
        return state not in FINAL and age_s > self.lost_after_s

    def _settle(self, flow: FlowRecord, was_final: bool, ended_seen: float) -> None:
        """Bucket a flow a catch-up brought or changed, as live events would have."""
        if flow.failed and not flow.refused:
            self._failed[flow.flow_id] = None
            self._trim(self._failed, self.keep_failed)
        if flow.final and not was_final:
            self._end(flow, ended_seen)

    # ---- time and the user -------------------------------------------------
    def tick(self, now: float) -> None:
        """Forget done flows that have faded and running flows gone silent."""
        while self._done:
            flow_id, ended = next(iter(self._done.items()))
            if now - ended < self.fade_s:
                break
            del self._done[flow_id]
            self.flows.pop(flow_id, None)
            self._forget(flow_id)
            self.version += 1
        silent = [f.flow_id for f in self.flows.values()
                  if not f.final and f.flow_id not in self._failed
                  and now - f.last_seen > self.lost_after_s]
        for flow_id in silent:
            del self.flows[flow_id]
            self.lost += 1
            self.version += 1

    def dismiss(self, flow_id: str) -> bool:
        """Forget one failed flow (running and done flows cannot be dismissed)."""
        flow = self.flows.get(flow_id)
        if flow is None or not flow.failed or not flow.final:
            return False
        del self.flows[flow_id]
        self._failed.pop(flow_id, None)
        self._done.pop(flow_id, None)  # a refused flow fades with the done ones
        self._forget(flow_id)
        self.dismissed_ids[flow_id] = None
        if len(self.dismissed_ids) > FORGET_MAX:
            self.dismissed_ids.popitem(last=False)
        self.dismissed += 1
        self.version += 1
        return True

    def forget(self, flow_ids: Iterable[str]) -> None:
        """Flows dismissed before (an earlier session): never shown, never caught up."""
        for flow_id in flow_ids:
            self.dismissed_ids[flow_id] = None
            self._forget(flow_id)
            if self.flows.pop(flow_id, None) is not None:
                self._failed.pop(flow_id, None)
                self._done.pop(flow_id, None)
                self.version += 1

    def dismiss_failed(self) -> int:
        return sum(self.dismiss(flow_id) for flow_id in list(self._failed))

    # ---- views -------------------------------------------------------------
    def fade(self, flow: FlowRecord, now: float) -> float:
        """0 for a flow that just ended, rising to 1 when it is about to go."""
        if not (flow.state == "SUCCESS" or flow.refused) or flow.ended_seen is None \
                or self.fade_s <= 0:
            return 0.0
        return min(1.0, max(0.0, (now - flow.ended_seen) / self.fade_s))

    def ordered(self, limit: int = 500) -> list[FlowRecord]:
        """Failed flows first, then running, then refused, then done; newest first in each."""
        failed: list[FlowRecord] = []
        running: list[FlowRecord] = []
        refused: list[FlowRecord] = []
        done: list[FlowRecord] = []
        for flow in self.flows.values():
            bucket = (refused if flow.refused else failed if flow.failed else
                      done if flow.final else running)
            bucket.append(flow)
        out: list[FlowRecord] = []
        for bucket in (failed, running, refused, done):
            bucket.sort(key=_started, reverse=True)
            out.extend(bucket)
        return out[:limit]

    def counts(self) -> Counter[str]:
        return Counter("refused" if f.refused else "failed" if f.failed else
                       "done" if f.final else "running" for f in self.flows.values())


def _started(flow: FlowRecord) -> float:
    return flow.started


def _oldest_first(trace: FlowTrace) -> float:
    return -trace.age_s


def _second(item: tuple[str, float]) -> float:
    return item[1]


# ---- folding a record --------------------------------------------------------
def new_record(e: Mapping[str, Any], now: float) -> FlowRecord:
    ts = float(e["ts"])
    return FlowRecord(str(e["flow_id"]), str(e["flow"]), str(e.get("volume_id") or ""),
                      str(e.get("actor", "?")), ts, ts, now)


def fold_flow(flow: FlowRecord, e: Mapping[str, Any]) -> None:
    state, ts = str(e["state"]), float(e["ts"])
    reason = _reason(e)
    flow.changes.append(Change(state, ts, reason))
    if state == "PENDING":
        flow.saw_start = True
        flow.started = min(flow.started, ts)
        for name in _names(e.get("tasks")):
            flow.task(name)
    flow.state = state
    if reason is not None:
        flow.reason = reason
    if e.get("code"):
        flow.error_code = str(e["code"])


def fold_task(flow: FlowRecord, e: Mapping[str, Any]) -> None:
    name, state, ts = str(e["task"]), str(e["state"]), float(e["ts"])
    flow.task(name).changes.append(Change(state, ts, _reason(e)))
    flow.current = name
    if state == "FAILURE":
        flow.failed_task = name
    elif state == "REVERTING":
        flow.revert_order.append(name)


def rebuild(events: Sequence[Mapping[str, Any]], last_seen: float) -> FlowRecord:
    """A record folded from one run's events alone."""
    flow = new_record(events[0], last_seen)
    for e in events:
        (fold_flow if e["kind"] == "flow" else fold_task)(flow, e)
    flow.last_ts = max(float(e["ts"]) for e in events)
    return flow


def adopt(old: FlowRecord, new: FlowRecord, ended_seen: float | None) -> None:
    """Make ``old`` (which a timeline on screen may hold) show ``new``."""
    for f in fields(FlowRecord):
        setattr(old, f.name, getattr(new, f.name))
    old.ended_seen = ended_seen


# ---- catching up: traces and records as events -------------------------------
def trace_events(trace: FlowTrace) -> list[Event]:
    """The events a run published, rebuilt from its trace."""
    base = {"flow_id": trace.flow_id, "flow": trace.flow, "volume_id": trace.volume_id,
            "actor": trace.actor}
    out: list[Event] = []
    for task, state, ts, reason in zip(trace.step_tasks, trace.step_states, trace.step_times,
                                       trace.step_reasons, strict=False):
        e: Event = {**base, "state": state, "ts": ts}
        if task is None:
            e["kind"] = "flow"
            if state == "PENDING":
                e["tasks"] = list(trace.tasks)
        else:
            e["kind"], e["task"] = "task", task
        if reason is not None:
            e["reason"] = reason
        if task is None and state == "FAILURE" and trace.error_code:
            e["code"] = trace.error_code
        out.append(e)
    return out


def record_events(flow: FlowRecord) -> list[Event]:
    """The events a record was folded from, oldest first."""
    base = {"flow_id": flow.flow_id, "flow": flow.flow, "volume_id": flow.volume_id,
            "actor": flow.actor}
    out: list[Event] = [{**base, "kind": "flow", "state": c.state, "ts": c.ts,
                         "reason": c.reason, "tasks": list(flow.tasks),
                         **({"code": flow.error_code} if c.state == "FAILURE" else {})}
                        for c in flow.changes]
    for task in flow.tasks.values():
        out.extend({**base, "kind": "task", "task": task.name, "state": c.state, "ts": c.ts,
                    "reason": c.reason} for c in task.changes)
    out.sort(key=_ts)
    return out


def merge_events(history: list[Event], live: list[Event]) -> list[Event] | None:
    """The trace's events, then the live ones it lacks (they came after it was
    taken); None when the trace brings nothing the live record lacks."""
    keys = {_key(e) for e in history}
    if keys <= {_key(e) for e in live}:
        return None
    return history + [e for e in live if _key(e) not in keys]


def _key(e: Mapping[str, Any]) -> tuple[str, str | None, str]:
    return (str(e["kind"]), e.get("task"), str(e["state"]))


def _ts(e: Mapping[str, Any]) -> float:
    return float(e["ts"])


def _reason(e: Mapping[str, Any]) -> str | None:
    reason = e.get("reason")
    return None if reason is None else str(reason)


def _names(value: object) -> Sequence[str]:
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return ()
