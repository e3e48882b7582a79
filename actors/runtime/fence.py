"""``node.fence_creates`` on one node, in probes' sizes: what the gateway asks when its
scheduler (or its own previous process) may have taken creates with it
(``actors/gateway/lost_casts.py``), and the scheduler when a node dialled its
connection again (``Scheduler._fence_held``)."""

from __future__ import annotations

from collections.abc import Sequence

from cinderblock.actors.runtime.actor import Link
from cinderblock.protocol.messages.reconcile import (
    PROBE_MAX_IDS,
    NodeFenceCreates,
    NodeFenceReply,
)
from cinderblock.protocol.wire.schema import parse


async def fence_creates(router: Link, host: str, fence: str, volume_ids: Sequence[str],
                        snapshot_ids: Sequence[str] = (), *, timeout: float
                        ) -> NodeFenceReply:
    """The node named ``host`` (its host name) fences the creates it neither works on
    nor holds; its replies, one call per ``PROBE_MAX_IDS`` ids, merged. Raises what a
    call raises (the node did not answer)."""
    bodies = [NodeFenceCreates(tuple(volume_ids[at:at + PROBE_MAX_IDS]), fence)
              for at in range(0, len(volume_ids), PROBE_MAX_IDS)]
    bodies += [NodeFenceCreates(fence=fence, snapshot_ids=tuple(
        snapshot_ids[at:at + PROBE_MAX_IDS])) for at in range(0, len(snapshot_ids),
                                                              PROBE_MAX_IDS)]
    replies = [parse(NodeFenceReply, await router.call("node.fence_creates", body,
                                                       to=host.encode(), timeout=timeout),
                     strict=False) for body in bodies]
    return NodeFenceReply(tuple(i for r in replies for i in r.busy),
                          tuple(i for r in replies for i in r.volumes),
                          tuple(i for r in replies for i in r.fenced),
                          tuple(i for r in replies for i in r.snapshots))
