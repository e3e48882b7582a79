"""What an actor remembers of its flows: the running ones and the last ones that ended.

The flow engine (``actors/flow.py``) records every state change of a run as a
plain tuple ``(task, state, ts, reason)`` (``task`` is None for the flow's own
changes) on a ``RunTrace``, whether or not anybody subscribes to events: a
tuple append per change is the whole cost on the hot path. Nothing is turned
into a message until somebody asks (``flow.recent``, ``actors/flow_reply.py``).

Memory is bounded by construction: running traces leave ``running`` when
their run ends (also when it is cancelled), and the ended ones go to one of
two rings: ``done`` (the last ``keep_done`` that succeeded) and ``failed``
(the last ``keep_failed`` that failed and reverted, kept apart so that a
burst of successes never pushes a failure out).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

Step = tuple[str | None, str, float, str | None]  # (task or None for the flow, state, ts, reason)
FINAL = frozenset({"SUCCESS", "REVERTED", "REVERT_FAILURE"})
KEEP_DONE = 200
KEEP_FAILED = 100


class RunTrace:
    """One run of a flow, as its actor saw it."""

    __slots__ = ("error_code", "failed", "flow", "flow_id", "project_id", "state", "steps",
                 "tasks", "volume_id")

    def __init__(self, flow_id: str, flow: str, volume_id: str, project_id: str,
                 tasks: Sequence[str]) -> None:
        self.flow_id = flow_id
        self.flow = flow
        self.volume_id = volume_id
        self.project_id = project_id
        self.tasks = tasks
        self.steps: list[Step] = []
        self.state = "PENDING"
        self.failed = False
        self.error_code = ""  # the wire code of the error it failed with (invalid_input ...)

    @property
    def final(self) -> bool:
        return self.state in FINAL

    @property
    def started(self) -> float:
        return self.steps[0][2] if self.steps else 0.0

    @property
    def last_ts(self) -> float:
        return self.steps[-1][2] if self.steps else 0.0


class FlowHistory:
    """The flows of one actor process: running now, and the last ones that ended."""

    def __init__(self, keep_done: int = KEEP_DONE, keep_failed: int = KEEP_FAILED) -> None:
        self.running: dict[RunTrace, None] = {}  # insertion order = start order
        self.done: deque[RunTrace] = deque(maxlen=keep_done)
        self.failed: deque[RunTrace] = deque(maxlen=keep_failed)

    def started(self, trace: RunTrace) -> None:
        self.running[trace] = None

    def ended(self, trace: RunTrace) -> None:
        """The run is over: keep it if it reached a final state (a cancelled one is dropped)."""
        self.running.pop(trace, None)
        if trace.failed and trace.final:
            self.failed.append(trace)
        elif trace.final:
            self.done.append(trace)

    def recent(self, now: float, done_within_s: float | None = None) -> list[RunTrace]:
        """Failed, then running, then done runs, newest first in each; done runs that
        ended more than ``done_within_s`` ago are left out."""
        out = list(reversed(self.failed))
        out.extend(reversed(self.running))
        for trace in reversed(self.done):
            if done_within_s is not None and now - trace.last_ts > done_within_s:
                break
            out.append(trace)
        return out

    def statistics(self) -> dict[str, int]:
        return {"running": len(self.running), "done": len(self.done),
                "failed": len(self.failed)}
