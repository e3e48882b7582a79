"""Quota arithmetic for the quota actor: limits, usages, reservations. No I/O.

Theory (Cinder's DbQuotaDriver, cinder/quota.py and db/sqlalchemy/api.py)
-------------------------------------------------------------------------
Per (project, resource) the book keeps a ``Usage(in_use, reserved)``; per
project, limit overrides on top of the book's defaults (-1 = unlimited). The defaults
are the configured ones, and over them what an admin set for Cinder's ``default``
quota class (``set_default_limits``: they hold for every project without its own
override; as Cinder's quota-class update, usage is not checked against them).

``reserve`` is all or nothing: every positive delta must satisfy
``in_use + reserved + delta <= limit``, and ``deltas["gigabytes"]`` (or
``volume_size``) must not exceed ``per_volume_gigabytes``. Positive deltas go
to ``reserved`` at once; negative deltas (a shrink) reserve nothing, as in
Cinder, so that a failed or reverted shrink can never leave a project over
quota. ``commit`` moves positive deltas from reserved to in_use and applies
negative ones to in_use; ``rollback`` and ``expire`` give positive deltas back.
in_use is never taken below 0.

Invariants (the property test checks them after every operation):
  * reserved[p][r] == sum of the positive deltas of p's pending reservations.
  * in_use + reserved <= limit wherever limit >= 0, unless ``sync`` has
    reported more real usage than the limit allows (reality wins).

Every mutating method returns a ``Change``: the resulting values of exactly
the rows it touched (not increments), so the store can upsert them and an
applied-twice Change is harmless. Reads never mutate. reserve and commit are
O(len(deltas)); expire is O(pending reservations).

Limits: as Cinder's quota-update API, a limit other than -1 may not be set
below in_use + reserved (per_volume_gigabytes is exempt), nor above 2^31 - 1;
QuotaError otherwise. Deltas and usages are at most ``MAX_AMOUNT`` either way, so
no sum the book makes leaves SQLite's integer range.

Idempotency, durable: a reserve retried with the same id and deltas returns the
pending reservation; a retried commit of a committed id, or rollback of a
rolled-back or expired id, is a no-op with an empty Change; a ``release`` with an
``op_id`` is applied once. Every finished reservation id and applied op id is a
``finished`` row of the Change that finished it, so the store keeps it in the same
transaction as the usage it changed: after a restart a replayed op is still known
as done. ``forget_finished`` drops them once no replay can bring their op again: the
gateway says, with a batch of its journal (``earlier_answered``), that it has had the
answer to every op it or an earlier incarnation sent before (their journal rows are
durably gone), so a row finished before that batch is kept only a little more (the
quota actor's ``quota_keep_answered_s``, an hour by default: for a copy delayed on the
wire, or a call retried). Only the newest incarnation whose batch has come is
believed (a dead one's, late behind its successor's replay, knows nothing of it). A
row no batch has said so of is kept for the replay window (``KEEP_FINISHED_S``, a
week), the swept incarnations' rows (below) always for the window.

``apply(ops)`` takes an ordered batch of ``JournalOp`` (the gateway's quota
journal, see ``actors/gateway/quota_journal.py``) and answers one outcome per op:
``done``, ``repeat`` (applied before: nothing changed), or ``refused: <why>``
(an op that can never apply, e.g. the commit of a reservation rolled back). The
rollback of a reservation never made (a reserve whose answer the gateway never got)
is ``done``: the id is remembered as rolled back, so the reserve is refused if it
arrives after all.

Abandoned reservations: a gateway makes reservation ids ``<incarnation>.<32 hex>``.
Once a restarted gateway has replayed its journal, ``rollback_abandoned`` rolls
back the pending reservations of its earlier incarnations that it no longer
references (no day-long wait for ``expire``). A reserve of an earlier incarnation
can still arrive after that sweep (it waited in the quota actor's line for its
dead sender, or a retransmission delayed it); nobody would commit or roll it back.
Incarnations begin with their start time (``messages.quota.incarnation_of``), so the sweep
remembers its incarnation (a ``finished`` row ``incarnation:<it>``, kept for the
replay window) and a later reserve of an older one is refused. Incarnations of the
old form (random) are not ordered: their late reserves still wait for ``expire``.

Volume types (Cinder's ``VolumeTypeResource``): besides the usages, a type's own
share of each is a resource of its own, ``volumes_<type id>``, ``gigabytes_<type id>``,
``snapshots_<type id>`` (``messages.quota.split_typed``), reserved, committed and
released with the general one (the gateway adds them: ``messages.quota.with_type``). Its
limit is -1 unless an admin set one, for a project or the default class; a
per-volume size is not checked against it (as Cinder). The book knows no type: any id
is taken, and the gateway, which keeps the types, names them.

Errors::

    QuotaError               bad input: unknown resource, bad limit or amount
     └── ReservationNotFound  unknown (or forgotten) reservation id
    OverQuota                a reservation would exceed a limit
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from cinderblock.protocol.messages.quota import ORDERED_INCARNATION, split_typed

# the resources with in_use and reserved (Cinder's; backups' are their own: a backup's
# GiB count against backup_gigabytes, not gigabytes)
USAGES = ("volumes", "gigabytes", "snapshots", "backups", "backup_gigabytes", "groups")
USAGE_RESOURCES = frozenset(USAGES)
PER_VOLUME = "per_volume_gigabytes"
DEFAULT_LIMITS: Mapping[str, int] = {
    "volumes": 10,
    "gigabytes": 1000,
    "snapshots": 10,
    "backups": 10,
    "backup_gigabytes": 1000,
    "groups": 10,
    "per_volume_gigabytes": -1,
}
UNLIMITED = -1
MAX_LIMIT = (1 << 31) - 1  # Cinder's cap on a quota limit
MAX_AMOUNT = (1 << 53) - 1  # one delta or usage: far past any limit, sums stay in SQLite's range

UsageRow = tuple[str, str, int, int]  # project, resource, in_use, reserved
LimitRow = tuple[str, str, int]  # project, resource, limit
DefaultRow = tuple[str, int]  # resource, limit: the default quota class's
FinishedRow = tuple[str, str, float]  # reservation or op id, outcome, when
KEEP_FINISHED_S = 7 * 86400.0  # how long a finished id is remembered (the replay window)
SWEPT = "incarnation:"  # a finished row naming a gateway incarnation that swept


class QuotaError(Exception):
    """Bad input: unknown resource, bad limit or amount, conflicting reservation."""


class ReservationNotFound(QuotaError):
    """The reservation id is not pending and not remembered as finished."""


@dataclass(frozen=True, slots=True)
class Over:
    """One resource that a reservation would take over its limit."""

    resource: str
    limit: int
    in_use: int
    reserved: int
    requested: int


class OverQuota(Exception):
    """A reservation was refused; nothing changed. Attributes name the first failure."""

    def __init__(self, overs: list[Over]) -> None:
        first = overs[0]
        self.overs = overs
        self.resource = first.resource
        self.limit = first.limit
        self.in_use = first.in_use
        self.reserved = first.reserved
        self.requested = first.requested
        super().__init__(_over_message(overs))

    def details(self) -> dict[str, Any]:
        """Plain data for an ``over_quota`` error reply."""
        return {**asdict(self.overs[0]), "overs": [asdict(o) for o in self.overs]}


def _over_message(overs: list[Over]) -> str:
    first = overs[0]
    names = ", ".join(o.resource for o in overs)
    if first.resource == PER_VOLUME:
        why = f"Requested volume size {first.requested}G is larger than maximum allowed limit "
        return f"Quota exceeded for resources: {names}. {why}{first.limit}G."
    why = (
        f"Requested {first.requested} {first.resource}, quota is {first.limit} and "
        f"{first.in_use + first.reserved} has been consumed "
        f"({first.in_use} in use, {first.reserved} reserved)."
    )
    return f"Quota exceeded for resources: {names}. {why}"


@dataclass(slots=True)
class Usage:
    in_use: int = 0
    reserved: int = 0


@dataclass(frozen=True, slots=True)
class Reservation:
    id: str
    project: str
    deltas: Mapping[str, int]
    expires_at: float


@dataclass(frozen=True, slots=True)
class Change:
    """What the store must persist after one operation (or a merged batch).

    Apply in this order: delete ``removed`` reservations, insert ``added``,
    upsert ``usages``, delete the limit rows of the ``cleared`` projects, upsert
    ``limits`` rows (usages and limits carry resulting values), upsert the default
    class's ``defaults`` rows, insert ``finished`` ids, delete ``forgotten`` ones. All
    in one transaction.
    """

    usages: tuple[UsageRow, ...] = ()
    added: tuple[Reservation, ...] = ()
    removed: tuple[str, ...] = ()
    limits: tuple[LimitRow, ...] = ()
    finished: tuple[FinishedRow, ...] = ()
    forgotten: tuple[str, ...] = ()
    cleared: tuple[str, ...] = ()  # projects back on the default limits
    defaults: tuple[DefaultRow, ...] = ()  # the default quota class's limits

    @property
    def empty(self) -> bool:
        return not (self.usages or self.added or self.removed or self.limits
                    or self.finished or self.forgotten or self.cleared or self.defaults)

    @classmethod
    def merge(cls, changes: Iterable[Change]) -> Change:
        """One Change equivalent to applying ``changes`` in order (for group commit)."""
        usages: dict[tuple[str, str], UsageRow] = {}
        limits: dict[tuple[str, str], LimitRow] = {}
        added: dict[str, Reservation] = {}
        removed: dict[str, None] = {}
        finished: dict[str, FinishedRow] = {}
        forgotten: dict[str, None] = {}
        cleared: dict[str, None] = {}
        defaults: dict[str, DefaultRow] = {}
        for change in changes:
            for rid in change.removed:
                if added.pop(rid, None) is None:
                    removed[rid] = None
            added.update((r.id, r) for r in change.added)
            usages.update(((row[0], row[1]), row) for row in change.usages)
            for project in change.cleared:  # its rows go, those set before with them
                limits = {key: row for key, row in limits.items() if key[0] != project}
                cleared[project] = None
            limits.update(((row[0], row[1]), row) for row in change.limits)
            defaults.update((row[0], row) for row in change.defaults)
            for frow in change.finished:
                finished[frow[0]] = frow
                forgotten.pop(frow[0], None)
            for fid in change.forgotten:
                finished.pop(fid, None)
                forgotten[fid] = None
        return cls(
            tuple(usages.values()), tuple(added.values()), tuple(removed), tuple(limits.values()),
            tuple(finished.values()), tuple(forgotten), tuple(cleared),
            tuple(defaults.values()),
        )


@dataclass(frozen=True, slots=True)
class JournalOp:
    """One quota change the gateway owes, as its journal holds it.

    ``commit`` / ``rollback`` name a reservation (its id is the op's id);
    ``release`` gives ``deltas`` of ``project`` back once per ``op_id``.
    """

    kind: str
    op_id: str
    reservation_id: str = ""
    project: str = ""
    deltas: Mapping[str, int] = field(default_factory=dict)


JOURNAL_KINDS = ("commit", "rollback", "release")
DONE, REPEAT = "done", "repeat"


NO_CHANGE = Change()
_COMMITTED, _ROLLED_BACK, _EXPIRED = "committed", "rolled back", "expired"
_NO_OVERRIDES: dict[str, int] = {}
_NO_USAGES: dict[str, Usage] = {}


_Rows = dict[tuple[str, str], UsageRow]  # the usage rows one operation touched, last wins


def _put(rows: _Rows, project: str, resource: str, usage: Usage) -> None:
    rows[project, resource] = (project, resource, usage.in_use, usage.reserved)


class QuotaBook:
    """Limits, usages and reservations of every project, kept in dicts."""

    def __init__(self, default_limits: Mapping[str, int] = DEFAULT_LIMITS) -> None:
        self._configured = {**DEFAULT_LIMITS, **_check_limits(default_limits)}
        self._class: dict[str, int] = {}  # the default quota class's rows (set by an admin)
        self._defaults = dict(self._configured)  # the configured, the class's over them
        self._limits: dict[str, dict[str, int]] = {}
        self._usages: dict[str, dict[str, Usage]] = {}
        self._pending: dict[str, Reservation] = {}
        self._finished: dict[str, tuple[str, float]] = {}  # id -> (outcome, when)
        self._swept = ""  # the newest ordered incarnation that swept (see the module text)
        # every id finished before this was finished by an op the gateway has had answered
        # (``apply``'s ``earlier_answered``); 0: not known (memory only: after a restart,
        # until the gateway's next batch says so again)
        self._answered_at = 0.0
        self._newest_sender = ""  # the newest ordered incarnation whose batch came

    # -- state in and out ----------------------------------------------------

    def load(
        self,
        limits: Iterable[tuple[str, str, int]],
        usages: Iterable[tuple[str, str, int, int]],
        reservations: Iterable[Reservation],
        finished: Iterable[FinishedRow] = (),
        defaults: Iterable[DefaultRow] = (),
    ) -> None:
        """Replace the whole state with rows from the store (as ``dump``,
        ``finished_rows`` and ``default_rows`` return)."""
        self._limits, self._usages, self._pending = {}, {}, {}
        self._class = dict(_check_limits(dict(defaults)))
        self._defaults = {**self._configured, **self._class}
        self._finished = {fid: (outcome, at) for fid, outcome, at in finished}
        self._swept = max((fid.removeprefix(SWEPT) for fid in self._finished
                           if fid.startswith(SWEPT) and _ordered(fid.removeprefix(SWEPT))),
                          default="")
        for project, resource, limit in limits:
            _check_limits({resource: limit})
            self._limits.setdefault(project, {})[resource] = limit
        for project, resource, in_use, reserved in usages:
            _check_amounts({resource: in_use}, "in_use")
            _check_amounts({resource: reserved}, "reserved")
            self._usages.setdefault(project, {})[resource] = Usage(in_use, reserved)
        for r in reservations:
            _check_deltas(r.deltas)
            self._pending[r.id] = r

    def dump(self) -> tuple[list[LimitRow], list[UsageRow], list[Reservation]]:
        """Every stored row, sorted: the inverse of ``load``."""
        limits = [(p, r, v) for p, rs in self._limits.items() for r, v in rs.items()]
        usages = [
            (p, r, u.in_use, u.reserved) for p, us in self._usages.items() for r, u in us.items()
        ]
        pending = sorted(self._pending.values(), key=lambda r: r.id)
        return sorted(limits), sorted(usages), pending

    def default_rows(self) -> list[DefaultRow]:
        """The default quota class's rows, sorted: the fifth argument of ``load``."""
        return sorted(self._class.items())

    def finished_rows(self) -> list[FinishedRow]:
        """Every remembered finished id, sorted: the fourth argument of ``load``."""
        return sorted((fid, outcome, at) for fid, (outcome, at) in self._finished.items())

    # -- reads ---------------------------------------------------------------

    def default_limits(self) -> dict[str, int]:
        return dict(self._defaults)

    def limits(self, project: str) -> dict[str, int]:
        return {**self._defaults, **self._limits.get(project, _NO_OVERRIDES)}

    def usage(self, project: str) -> dict[str, Usage]:
        """The three usages, and each volume type's the project has a row of."""
        usages = self._usages.get(project, _NO_USAGES)
        shown = {r: Usage(u.in_use, u.reserved) if (u := usages.get(r)) else Usage()
                 for r in USAGES}
        shown.update((r, Usage(u.in_use, u.reserved)) for r, u in usages.items()
                     if r not in USAGE_RESOURCES)
        return shown

    def reservation(self, reservation_id: str) -> Reservation:
        try:
            return self._pending[reservation_id]
        except KeyError:
            raise ReservationNotFound(f"no pending reservation {reservation_id}") from None

    # -- reserve / commit / rollback / expire --------------------------------

    def reserve(
        self,
        project: str,
        deltas: Mapping[str, int],
        now: float,
        expire_s: float = 86400.0,
        reservation_id: str | None = None,
        *,
        volume_size: int | None = None,
    ) -> tuple[Reservation, Change]:
        """Reserve all ``deltas`` or raise OverQuota/QuotaError and change nothing.

        ``volume_size`` is checked against per_volume_gigabytes; it defaults to
        ``deltas["gigabytes"]`` (a create). Pass the new size for an extend.
        """
        if reservation_id is not None and (same := self._retried(reservation_id, project, deltas)):
            return same, NO_CHANGE
        if reservation_id is not None and self._ended(reservation_id):
            raise QuotaError(
                f"reservation {reservation_id} is of a gateway incarnation that has ended "
                f"(incarnation {self._swept} swept its reservations)")
        if expire_s <= 0:
            raise QuotaError(f"expire_s must be positive, got {expire_s}")
        usages = self._usages.get(project, _NO_USAGES)
        size = deltas.get("gigabytes", 0) if volume_size is None else volume_size
        self._check_reserve(project, deltas, usages, size)
        if usages is _NO_USAGES:
            usages = self._usages[project] = {}
        rows: _Rows = {}
        for resource, delta in deltas.items():
            if delta > 0:
                usage = usages.get(resource) or usages.setdefault(resource, Usage())
                usage.reserved += delta
                _put(rows, project, resource, usage)
        res = Reservation(reservation_id or uuid.uuid4().hex, project, dict(deltas), now + expire_s)
        self._pending[res.id] = res
        return res, Change(usages=tuple(rows.values()), added=(res,))

    def commit(self, reservation_id: str, now: float | None = None) -> Change:
        """reserved -> in_use. A retried commit of a committed id is a no-op."""
        res = self._finish(reservation_id, _COMMITTED, (_COMMITTED,))
        if res is None:
            return NO_CHANGE
        usages = self._usages.setdefault(res.project, {})
        rows: _Rows = {}
        for resource, delta in res.deltas.items():
            usage = usages.get(resource)
            if delta > 0:
                usage = usage or usages.setdefault(resource, Usage())
                usage.reserved = max(0, usage.reserved - delta)
                usage.in_use += delta
            elif delta < 0 and usage is not None and usage.in_use > 0:
                usage.in_use = max(0, usage.in_use + delta)
            else:
                continue
            _put(rows, res.project, resource, usage)
        return Change(usages=tuple(rows.values()), removed=(res.id,),
                      finished=(self._remember(res.id, _COMMITTED, now),))

    def rollback(self, reservation_id: str, now: float | None = None) -> Change:
        """Release what was reserved. Rolling back a rolled-back or expired id is a no-op."""
        res = self._finish(reservation_id, _ROLLED_BACK, (_ROLLED_BACK, _EXPIRED))
        if res is None:
            return NO_CHANGE
        rows: _Rows = {}
        self._release_reserved(res, rows)
        return Change(usages=tuple(rows.values()), removed=(res.id,),
                      finished=(self._remember(res.id, _ROLLED_BACK, now),))

    def expire(self, now: float) -> tuple[list[str], Change]:
        """Roll back every pending reservation whose ``expires_at`` is before ``now``."""
        return self._roll_back_all(
            [rid for rid, r in self._pending.items() if r.expires_at < now], _EXPIRED, now)

    def rollback_abandoned(self, incarnation: str, referenced: Collection[str],
                           now: float | None = None) -> tuple[list[str], Change]:
        """Roll back the pending reservations of a gateway's earlier incarnations
        (ids ``<incarnation>.<32 hex>``) that are not in ``referenced``."""
        abandoned = [rid for rid in self._pending
                     if "." in rid and rid.partition(".")[0] != incarnation
                     and rid not in referenced]
        ids, change = self._roll_back_all(abandoned, _ROLLED_BACK, now)
        if _ordered(incarnation) and incarnation > self._swept:
            self._swept = incarnation
            change = replace(change, finished=(*change.finished,
                                               self._remember(SWEPT + incarnation, "swept", now)))
        return ids, change

    def _ended(self, reservation_id: str) -> bool:
        """Whether ``reservation_id`` names an incarnation older than one that swept."""
        incarnation = reservation_id.partition(".")[0]
        return bool(self._swept) and _ordered(incarnation) and incarnation < self._swept

    def _roll_back_all(self, ids: list[str], outcome: str, now: float | None
                       ) -> tuple[list[str], Change]:
        rows: _Rows = {}
        finished = []
        for rid in ids:
            res = self._finish(rid, outcome, ())
            assert res is not None
            self._release_reserved(res, rows)
            finished.append(self._remember(rid, outcome, now))
        return ids, Change(usages=tuple(rows.values()), removed=tuple(ids),
                           finished=tuple(finished))

    def finished_count(self) -> int:
        """How many finished ids are remembered."""
        return len(self._finished)

    def forget_finished(self, before: float, answered_before: float = 0.0) -> Change:
        """Forget the finished ids older than ``before`` (past the replay window), and
        those older than ``answered_before`` whose op the gateway has had answered (see
        the module text); a swept incarnation's row only past the window."""
        answered = min(answered_before, self._answered_at)
        old = tuple(fid for fid, (_, at) in self._finished.items()
                    if at < before or (at < answered and not fid.startswith(SWEPT)))
        for fid in old:
            del self._finished[fid]
        return Change(forgotten=old)

    # -- the gateway's journal -------------------------------------------------

    def apply(self, ops: Sequence[JournalOp], now: float | None = None, *,
              earlier_answered: bool = False, incarnation: str = ""
              ) -> tuple[list[str], Change]:
        """Apply ``ops`` in order, each at most once; one outcome per op (see the
        module text) and one Change for them all. ``earlier_answered``: the gateway
        (``incarnation``) has had the answer to every op sent before these
        (``forget_finished``)."""
        at = time.time() if now is None else now
        self._newest_sender = max(self._newest_sender, incarnation if _ordered(incarnation)
                                  else "")
        # Believed from the newest incarnation only: a dead one's batch, late on the wire
        # behind its successor's replay, knows nothing of what that replay applied. And
        # the clock never makes an op not answered yet look answered: a batch without the
        # word (or a clock set back) moves the line back to its own time at most.
        if earlier_answered and _ordered(incarnation) and incarnation == self._newest_sender:
            self._answered_at = at
        else:
            self._answered_at = min(self._answered_at, at)
        outcomes: list[str] = []
        changes: list[Change] = []
        for op in ops:
            try:
                change = self._apply_one(op, now)
            except QuotaError as exc:
                outcomes.append(f"refused: {exc}")
                continue
            outcomes.append(REPEAT if change is NO_CHANGE else DONE)
            changes.append(change)
        return outcomes, Change.merge(changes)

    def _apply_one(self, op: JournalOp, now: float | None) -> Change:
        if op.kind == "commit":
            return self.commit(op.reservation_id, now)
        if op.kind == "rollback":
            if op.reservation_id not in self._pending and op.reservation_id not in self._finished:
                # never made (a reserve the gateway gave up on): remembered as rolled
                # back, so that the reserve, should it still arrive, is refused
                return Change(finished=(self._remember(op.reservation_id, _ROLLED_BACK, now),))
            return self.rollback(op.reservation_id, now)
        if op.kind == "release":
            return self.release(op.project, op.deltas, op.op_id, now)
        raise QuotaError(f"unknown journal op kind {op.kind!r}; expected one of {JOURNAL_KINDS}")

    # -- administration and reconciliation -----------------------------------

    def set_limits(self, project: str, limits: Mapping[str, int]) -> Change:
        """Set limit overrides, all or nothing.

        As Cinder's quota-update API: a limit other than -1 must be at least
        in_use + reserved (per_volume_gigabytes is not checked against usage).
        """
        _check_limits(limits)
        usages = self._usages.get(project, _NO_USAGES)
        for resource, limit in limits.items():
            usage = usages.get(resource)
            if limit != UNLIMITED and usage is not None and limit < usage.in_use + usage.reserved:
                raise QuotaError(
                    f"Quota {resource} limit must be equal or greater than existing "
                    f"resources. Current usage is {usage.in_use + usage.reserved} and "
                    f"the requested limit is {limit}."
                )
        current = self._limits.setdefault(project, {})
        changed = [(project, r, v) for r, v in limits.items() if current.get(r) != v]
        current.update(limits)
        return Change(limits=tuple(changed))

    def set_default_limits(self, limits: Mapping[str, int]) -> Change:
        """Set limits of Cinder's ``default`` quota class: the limits of every project
        that has no override of its own. As Cinder's quota-class update, a project's
        usage is not checked against them (a project over a lowered default takes no more
        until it is under again)."""
        _check_limits(limits)
        changed = tuple((r, v) for r, v in limits.items() if self._class.get(r) != v)
        self._class.update(limits)
        self._defaults.update(limits)
        return Change(defaults=changed)

    def clear_limits(self, project: str) -> Change:
        """Drop the project's limit overrides: it is on the defaults again (Cinder's
        quota delete; as there, usage is not checked against them)."""
        if not self._limits.pop(project, None):
            return NO_CHANGE
        return Change(cleared=(project,))

    def release(self, project: str, deltas: Mapping[str, int], op_id: str = "",
                now: float | None = None) -> Change:
        """Give usage back (a deleted volume): in_use -= amount, never below 0.
        With an ``op_id``, at most once: a repeat is a no-op."""
        _check_amounts(deltas, "release amount")
        if op_id and op_id in self._finished:
            return NO_CHANGE
        rows: _Rows = {}
        usages = self._usages.get(project, _NO_USAGES)
        for resource, amount in deltas.items():
            usage = usages.get(resource)
            if usage is not None and amount > 0 and usage.in_use > 0:
                usage.in_use = max(0, usage.in_use - amount)
                _put(rows, project, resource, usage)
        finished = (self._remember(op_id, "released", now),) if op_id else ()
        return Change(usages=tuple(rows.values()), finished=finished)

    def synced(self, project: str, in_use: Mapping[str, int]) -> dict[str, int]:
        """What ``sync(project, in_use)`` would leave in use (a read): ``in_use`` over
        the project's usages, and none of a volume type it does not name."""
        _check_amounts(in_use, "in_use")
        before = {r: u.in_use for r, u in self.usage(project).items()}
        unnamed = {r: 0 for r in before if r not in USAGE_RESOURCES and r not in in_use}
        return {**before, **unnamed, **in_use}

    def sync(self, project: str, in_use: Mapping[str, int]) -> Change:
        """Reconcile: set in_use to what really exists; a volume type's usage ``in_use``
        does not name is none (the project has nothing of that type). Reserved is left
        alone."""
        rows: _Rows = {}
        usages = self._usages.setdefault(project, {})
        for resource, amount in self.synced(project, in_use).items():
            usage = usages.get(resource)
            if (usage.in_use if usage is not None else 0) == amount:
                continue
            usage = usage or usages.setdefault(resource, Usage())
            usage.in_use = amount
            _put(rows, project, resource, usage)
        return Change(usages=tuple(rows.values()))

    # -- internals -----------------------------------------------------------

    def _check_reserve(
        self, project: str, deltas: Mapping[str, int], usages: Mapping[str, Usage], size: int
    ) -> None:
        limits = self._limits.get(project, _NO_OVERRIDES)
        defaults = self._defaults
        overs: list[Over] = []
        for resource, delta in deltas.items():
            if ((resource not in USAGE_RESOURCES and split_typed(resource) is None)
                    or type(delta) is not int or not -MAX_AMOUNT <= delta <= MAX_AMOUNT):
                _check_deltas(deltas)  # raises with the reason
            limit = limits.get(resource, defaults.get(resource, UNLIMITED))
            if delta > 0 and limit != UNLIMITED:
                usage = usages.get(resource) or Usage()
                if usage.in_use + usage.reserved + delta > limit:
                    overs.append(Over(resource, limit, usage.in_use, usage.reserved, delta))
        per_volume = limits.get(PER_VOLUME, defaults[PER_VOLUME])
        if per_volume != UNLIMITED and size > per_volume:
            overs.insert(0, Over(PER_VOLUME, per_volume, 0, 0, size))
        if overs:
            raise OverQuota(overs)

    def _retried(self, rid: str, project: str, deltas: Mapping[str, int]) -> Reservation | None:
        if (finished := self._finished.get(rid)) is not None:
            raise QuotaError(f"reservation {rid} was already {finished[0]}")
        res = self._pending.get(rid)
        if res is not None and (res.project != project or res.deltas != dict(deltas)):
            raise QuotaError(f"reservation {rid} exists with other deltas or project")
        return res

    def _finish(self, rid: str, outcome: str, repeats: tuple[str, ...]) -> Reservation | None:
        """Take ``rid`` out of pending and remember ``outcome``; None for a repeat."""
        res = self._pending.pop(rid, None)
        if res is None:
            previous = self._finished.get(rid)
            if previous is None:
                raise ReservationNotFound(f"no pending reservation {rid}")
            if previous[0] in repeats:
                return None
            raise QuotaError(f"reservation {rid} was already {previous[0]}")
        return res

    def _remember(self, fid: str, outcome: str, now: float | None) -> FinishedRow:
        at = time.time() if now is None else now
        self._finished[fid] = (outcome, at)
        return fid, outcome, at

    def _release_reserved(self, res: Reservation, rows: _Rows) -> None:
        usages = self._usages.get(res.project, _NO_USAGES)
        for resource, delta in res.deltas.items():
            if delta > 0 and (usage := usages.get(resource)) is not None:
                usage.reserved = max(0, usage.reserved - delta)
                _put(rows, res.project, resource, usage)


def _ordered(incarnation: str) -> bool:
    return len(incarnation) == ORDERED_INCARNATION


def _check_limits(limits: Mapping[str, int]) -> Mapping[str, int]:
    for resource, limit in limits.items():
        if resource not in DEFAULT_LIMITS and split_typed(resource) is None:
            raise QuotaError(f"Bad key in quota set: {resource}")
        if type(limit) is not int or not UNLIMITED <= limit <= MAX_LIMIT:
            raise QuotaError(
                f"Quota limit for {resource} must be an integer from -1 to {MAX_LIMIT}, "
                f"got {limit!r}"
            )
    return limits


def _check_deltas(deltas: Mapping[str, int]) -> None:
    for resource, delta in deltas.items():
        if resource not in USAGE_RESOURCES and split_typed(resource) is None:
            raise QuotaError(f"Unknown quota resource {resource!r} (not a usage)")
        if type(delta) is not int or not -MAX_AMOUNT <= delta <= MAX_AMOUNT:
            raise QuotaError(
                f"Delta for {resource} must be an integer from {-MAX_AMOUNT} to {MAX_AMOUNT}, "
                f"got {delta!r}"
            )


def _check_amounts(amounts: Mapping[str, int], what: str) -> None:
    _check_deltas(amounts)
    for resource, amount in amounts.items():
        if amount < 0:
            raise QuotaError(f"{what} for {resource} must not be negative, got {amount}")
