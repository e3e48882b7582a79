"""Flow traces as replies: ``flow.recent`` on every actor, and the bounds of any answer.

Traces become messages only here, when somebody asks. Every answer keeps the
order it was given (failed, running, done: what matters most first) and stops
at ``limit`` traces or at ``REPLY_BUDGET`` bytes of packed traces, whichever
comes first, so a reply always fits the 1 MiB frame with room to spare
(an oversized frame would make the receiver drop the connection). Reasons are
clipped to ``MAX_REASON`` characters.
"""

from __future__ import annotations

from collections.abc import Sequence

from cinderblock.actors.flow.history import FlowHistory, RunTrace
from cinderblock.protocol.messages.flows import MAX_FLOWS, FlowRecent, FlowTrace, FlowTraceList
from cinderblock.protocol.wire.codec import MAX_FRAME, pack
from cinderblock.protocol.wire.errors import InvalidInput
from cinderblock.protocol.wire.schema import dump

REPLY_BUDGET = MAX_FRAME * 3 // 4
MAX_REASON = 500
_NONE: tuple[tuple[()], ...] = ((), (), (), ())


def check_ask(limit: int, done_within_s: float | None) -> None:
    if not 1 <= limit <= MAX_FLOWS:
        raise InvalidInput(f"limit must be 1-{MAX_FLOWS}, got {limit}", {"field": "limit"})
    if done_within_s is not None and done_within_s < 0:
        raise InvalidInput("done_within_s must not be negative", {"field": "done_within_s"})


def recent_reply(history: FlowHistory, actor: str, ask: FlowRecent, now: float
                 ) -> FlowTraceList:
    """An actor's answer to ``flow.recent``."""
    check_ask(ask.limit, ask.done_within_s)
    traces = history.recent(now, ask.done_within_s)
    return fit([trace_message(t, actor, now) for t in traces[:ask.limit + 1]], ask.limit)


def trace_message(trace: RunTrace, actor: str, now: float) -> FlowTrace:
    tasks, states, times, reasons = zip(*trace.steps, strict=True) if trace.steps else _NONE
    return FlowTrace(trace.flow_id, trace.flow, trace.volume_id, actor, tuple(trace.tasks),
                     tasks, states, times, tuple(map(_clip, reasons)), trace.project_id,
                     round(max(0.0, now - trace.last_ts), 3), trace.error_code)


def fit(traces: Sequence[FlowTrace], limit: int, missing: Sequence[str] = (),
        budget: int = REPLY_BUDGET) -> FlowTraceList:
    """The first traces that fit ``limit`` and ``budget``; ``truncated`` if any did not."""
    kept: list[FlowTrace] = []
    used = 0
    for trace in traces[:limit]:
        used += len(pack(dump(trace)))
        if used > budget:
            break
        kept.append(trace)
    return FlowTraceList(tuple(kept), tuple(missing), len(kept) < len(traces))


def _clip(reason: str | None) -> str | None:
    if reason is None or len(reason) <= MAX_REASON:
        return reason
    return reason[:MAX_REASON - 1] + "…"
