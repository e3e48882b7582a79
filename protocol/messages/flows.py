"""Message bodies for flow history: what the actors remember of their recent flows.

Who sends what (every op is listed in ``protocol.messages.ops``)::

    client  → gateway           flow.history  (FlowHistoryRequest → FlowTraceList)
    gateway → every actor       flow.recent   (FlowRecent → FlowTraceList)

A ``FlowTrace`` is one run of a flow: the same state changes its ``flow`` and
``task`` events carried, in order (a step without ``task`` is the flow's own),
so a dashboard folds it with the code that folds live events. The steps travel
as four parallel lists, one entry per change (a third smaller than a map per
step and several times cheaper to check and to build); ``steps`` pairs them
up. ``age_s`` is the
time since the run's last step on its actor's clock when it answered, so the
reader needs no clock of its own to agree with the actor's. A reply never
exceeds ``limit`` traces and stays well under the frame limit; ``truncated``
says something was left out, ``missing`` names the actors that did not answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from cinderblock.protocol.wire.schema import message

MAX_FLOWS = 1000


@dataclass(frozen=True, slots=True)
class FlowStep:
    """One state change of a traced run (a view: it travels in ``FlowTrace``'s lists)."""

    state: str
    ts: float  # the actor's clock
    task: str | None = None  # None: a change of the flow itself
    reason: str | None = None


@message
@dataclass(frozen=True, slots=True)
class FlowTrace:
    flow_id: str
    flow: str
    volume_id: str
    actor: str
    tasks: tuple[str, ...] = ()
    step_tasks: tuple[str | None, ...] = ()  # None: a change of the flow itself
    step_states: tuple[str, ...] = ()
    step_times: tuple[float, ...] = ()  # the actor's clock
    step_reasons: tuple[str | None, ...] = ()
    project_id: str = ""  # of the request that ran it
    age_s: float = 0.0  # since its last step, when its actor answered
    error_code: str = ""  # a failed run's error code: invalid_input, over_quota, internal ...

    @property
    def steps(self) -> tuple[FlowStep, ...]:
        """The changes, oldest first (lists of unequal length stop at the shortest)."""
        return tuple(map(FlowStep, self.step_states, self.step_times, self.step_tasks,
                         self.step_reasons))


@message
@dataclass(frozen=True, slots=True)
class FlowRecent:
    """The gateway asks one actor for its flows."""

    limit: int = 500
    done_within_s: float | None = None  # leave out successes that ended longer ago


@message
@dataclass(frozen=True, slots=True)
class FlowHistoryRequest:
    """A client asks the gateway for the flows of every actor it can reach."""

    all_projects: bool = False  # admins only: every project's flows
    limit: int = 500
    done_within_s: float | None = None


@message
@dataclass(frozen=True, slots=True)
class FlowTraceList:
    flows: tuple[FlowTrace, ...] = ()  # failed first, then running, then done
    missing: tuple[str, ...] = ()  # actors that did not answer in time
    truncated: bool = False
