"""Setting quota usage to what exists, as ``cinder-manage quota sync``.

    client  → gateway  quota.sync        QuotaSync → QuotaSyncResult (admin)
    gateway → quota    quota.sync_usage  QuotaSyncUsage → QuotaSyncResult

The gateway counts the project's volumes, snapshots and gigabytes from its
records; the quota actor sets ``in_use`` to that (reservations untouched) and
answers with the usage before and after. ``dry_run`` only compares.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cinderblock.protocol.wire.schema import message


@message
@dataclass(frozen=True, slots=True)
class QuotaSync:
    project: str
    dry_run: bool = False


@message
@dataclass(frozen=True, slots=True)
class QuotaSyncUsage:
    project: str
    in_use: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False


@message
@dataclass(frozen=True, slots=True)
class QuotaSyncResult:
    project: str
    before: dict[str, int] = field(default_factory=dict)  # in_use as the quota actor had it
    after: dict[str, int] = field(default_factory=dict)  # in_use counted from what exists
    applied: bool = False
