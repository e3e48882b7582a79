"""The kill suite's plan and its judge: plain code, no processes (``bench.chaos`` runs it).

Theory
------
A seed fixes everything the suite chooses: the order of the 1,000 creates and
200 deletes and when each is sent, the order in which one actor of each kind is
killed, which node is killed, and when. The load runs for ``window_s``; the window
is cut into one slot per kill and each kill falls at a seeded moment in the first
two thirds of its slot, so the one before it has had time to be started again
(``up``'s backoff and the actor's start) and the kills come "in turn", never two
at once. Asked to, an actor of some kinds is also frozen (SIGSTOP) for some seconds,
each in a slot of its own, and thawed (SIGCONT): silent with its connections open, as
behind a cut link, where a kill closes them.

Half of the requests are sent at a steady pace over the window; the other
half in one burst per kill, sent at once a seeded 0 to 0.3 s before it, so that
every kill falls while many requests are in flight in every actor (a steady pace
alone leaves the cluster idle most of the time, and a kill would seldom catch a
create half done).

Every request a client sends is written in a ``Ledger``: its request id, each
answer (the volume the gateway acknowledged), a refusal (an error that is not
about transport), or that it never got an answer. A client retries what failed
with a transport error or a timeout, with the SAME request id, as a real client
does, so the gateway sees each operation possibly several times.

``judge`` compares the ledger with what the gateway lists once the cluster has
settled and names every broken promise, by check:

* ``lost_ack``: an acknowledged create whose volume is gone or not in a final
  state (``available``, or ``error`` with a reason); an acknowledged delete whose
  volume still exists; a delete reported as failed whose volume is gone (issue 9:
  a delete reported as failed did not happen); a refused create whose volume
  exists; a request never answered.
* ``duplicate``: one request id answered with two volumes, or two volumes made
  for it (each create names its volume after its request id).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.states import VolumeStatus

KINDS = ("gateway", "quota", "scheduler", "node")
FREEZE = "freeze:"  # a kind's actor SIGSTOPped (frozen, its connections open): "freeze:quota"
KILL_AT = (0.1, 0.65)  # where in its slot a kill falls (fractions of the slot)
BURST_LEAD_S = (0.0, 0.3)  # how long before its kill a burst is sent


@dataclass(frozen=True, slots=True)
class PlannedKill:
    actor: str  # the actor's name under `up`: gateway, quota, scheduler, node-N
    at_s: float  # seconds after the load started
    freeze_s: float = 0.0  # not a kill: SIGSTOP, then SIGCONT this long after


@dataclass(frozen=True, slots=True)
class Plan:
    seed: int
    ops: tuple[Literal["create", "delete"], ...]  # in the order they are sent
    send_at_s: tuple[float, ...]  # when each is sent, after the load started (ascending)
    kills: tuple[PlannedKill, ...]


def make_plan(seed: int, creates: int, deletes: int, window_s: float,
              nodes: tuple[str, ...], freeze: tuple[str, ...] = (), freeze_s: float = 0.0
              ) -> Plan:
    """The seed's load order and kills (see the module text); an actor of each kind in
    ``freeze`` (of ``KINDS``) frozen ``freeze_s`` besides, each in a slot of its own."""
    rng = random.Random(seed)
    create: list[Literal["create", "delete"]] = ["create"]
    delete: list[Literal["create", "delete"]] = ["delete"]
    ops = create * creates + delete * deletes
    rng.shuffle(ops)
    kinds = [*KINDS, *(FREEZE + kind for kind in freeze)]
    rng.shuffle(kinds)
    slot = window_s / len(kinds)
    kills = tuple(
        PlannedKill(rng.choice(nodes) if kind.removeprefix(FREEZE) == "node"
                    else kind.removeprefix(FREEZE),
                    round(slot * (i + rng.uniform(*KILL_AT)), 3),
                    freeze_s if kind.startswith(FREEZE) else 0.0)
        for i, kind in enumerate(kinds))
    return Plan(seed, tuple(ops), _send_times(rng, len(ops), window_s, kills), kills)


def _send_times(rng: random.Random, count: int, window_s: float,
                kills: tuple[PlannedKill, ...]) -> tuple[float, ...]:
    """Half at a steady pace over the window, half in a burst just before each kill."""
    steady = count - count // 2
    times = [window_s * i / steady for i in range(steady)]
    bursts = [count // 2 // len(kills) + (i < count // 2 % len(kills))
              for i in range(len(kills))]
    for kill, size in zip(kills, bursts, strict=True):
        times += [max(0.0, round(kill.at_s - rng.uniform(*BURST_LEAD_S), 3))] * size
    return tuple(sorted(times))


@dataclass
class Request:
    """One operation as its client saw it, over all its attempts."""

    # the last four: in no ledger
    kind: Literal["create", "delete", "migrate", "backup", "group_snapshot", "extend",
                  "restore", "backup_delete"]
    request_id: str
    volume_id: str = ""  # a delete's target
    attempts: int = 0
    answers: list[str] = field(default_factory=list)  # volume ids acknowledged, per answer
    refused: str = ""  # "code: message" of an error that is not transport's
    unanswered: bool = False  # gave up retrying at its deadline

    @property
    def acknowledged(self) -> bool:
        return bool(self.answers)


@dataclass
class Ledger:
    requests: list[Request] = field(default_factory=list)

    def add(self, request: Request) -> Request:
        self.requests.append(request)
        return request

    def of(self, kind: str) -> list[Request]:
        return [r for r in self.requests if r.kind == kind]

    @property
    def retries(self) -> int:
        return sum(max(0, r.attempts - 1) for r in self.requests)


Check = Literal["lost_ack", "duplicate"]
FINAL = frozenset({VolumeStatus.AVAILABLE, VolumeStatus.ERROR})


def judge(ledger: Ledger, volumes: list[Volume]) -> list[tuple[Check, str]]:
    """Every broken promise of the ledger against the settled volume list."""
    by_id = {v.id: v for v in volumes}
    named = Counter(v.name for v in volumes)
    found: list[tuple[Check, str]] = []
    for r in ledger.of("create"):
        found += [("duplicate", text) for text in _create_duplicates(r, named)]
        found += [("lost_ack", text) for text in _create_outcome(r, by_id, named)]
    for r in ledger.of("delete"):
        found += [("lost_ack", text) for text in _delete_outcome(r, by_id)]
    return found


def _create_duplicates(r: Request, named: Counter[str | None]) -> list[str]:
    out = []
    if len(set(r.answers)) > 1:
        out.append(f"create {r.request_id} was answered with {len(set(r.answers))} "
                   f"different volumes: {sorted(set(r.answers))}")
    if named[r.request_id] > 1:
        out.append(f"create {r.request_id} made {named[r.request_id]} volumes")
    return out


def _create_outcome(r: Request, by_id: dict[str, Volume], named: Counter[str | None]
                    ) -> list[str]:
    if r.unanswered:
        return [f"create {r.request_id} never answered after {r.attempts} attempts"]
    if not r.acknowledged:
        return ([f"create {r.request_id} was refused ({r.refused}) but made a volume"]
                if named[r.request_id] else [])
    volume = by_id.get(r.answers[0])
    if volume is None:
        return [f"acknowledged create {r.request_id}: volume {r.answers[0]} is gone"]
    if volume.status not in FINAL:
        return [f"acknowledged create {r.request_id}: volume {volume.id} is "
                f"{volume.status}, not final"]
    if volume.status is VolumeStatus.ERROR and not volume.reason:
        return [f"acknowledged create {r.request_id}: volume {volume.id} in error "
                "without a reason"]
    return []


def _delete_outcome(r: Request, by_id: dict[str, Volume]) -> list[str]:
    volume = by_id.get(r.volume_id)
    if r.unanswered:
        return [f"delete {r.request_id} of {r.volume_id} never answered after "
                f"{r.attempts} attempts"]
    if r.acknowledged and volume is not None:
        return [f"acknowledged delete {r.request_id}: volume {r.volume_id} still "
                f"exists ({volume.status})"]
    if not r.acknowledged and volume is None:
        return [f"delete {r.request_id} of {r.volume_id} was reported failed "
                f"({r.refused}) but the volume is gone"]
    return []
