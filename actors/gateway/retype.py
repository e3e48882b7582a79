"""Giving a volume another type, in place (Cinder's ``os-retype``).

    volume_retype_api   ExtractRetypeRequestTask → FindRetypeBackendTask → RetypeVolumeTask

The rules are Cinder's (``cinder/volume/api.py`` ``retype``, the scheduler's
``find_retype_backend`` and the volume manager's ``retype``), judged in plain code:

* ``check_retype_request``: the policy is ``never`` or ``on-demand``; the new type is
  one the caller may use (a private type of another project is not found); the volume's
  size is within the new type's size bounds; a change of multiattach only while the
  volume is ``available``; the volume ``available`` or ``in-use`` and of another type;
  an ``in-use`` volume keeps its front-end QoS (``qos_specs.qos_allows_retype``).
* ``check_retype_backend``: the volume's zone is among the new type's
  (``RESKEY:availability_zones``), and the backend that holds the volume is up, not
  disabled, and has the capabilities the new type's extra specs ask for (the
  scheduler's own ``satisfies``). Then the volume keeps its bytes and its backend and
  takes the new type, as Cinder's LVM driver does ("No action required").

A volume whose backend does not satisfy the new type would have to move to another
backend, which Cinder does under ``on-demand`` (a migration) and refuses under
``never``. No volume moves between backends here, so both are refused before anything
changes, with why: ``never`` in Cinder's words, ``on-demand`` saying that this cluster
does not migrate. Cinder answers 202 and fails in the scheduler; this answers the
failure at once and the volume never leaves its status.

The volume is claimed for the flow (``claim_volume``), and the request rules are
judged again after the backend lookup (the flow's one wait), just before the change.
The only write is the volume's type id (``save_volume_type``): a crash before it leaves
the old type, after it the new. A type deleted or changed during the lookup ends the
retype (try again); from the write on, the type counts as in use, so it cannot be
deleted, nor its extra specs changed, before the row is committed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from cinderblock.actors.flow.engine import LinearFlow, Task
from cinderblock.actors.gateway.lifecycle_checks import (
    claim_volume,
    release_claim,
    visible_volume,
)
from cinderblock.actors.gateway.qos_specs import qos_allows_retype
from cinderblock.actors.gateway.volume_request import TypeCatalog, check_type_size, type_zones
from cinderblock.actors.gateway.volume_store import GatewayStore, VolumeRecord, is_multiattach
from cinderblock.actors.runtime.actor import Handler, Request
from cinderblock.actors.scheduler.extra_specs import satisfies
from cinderblock.protocol.messages.lifecycle import VolumeRetype
from cinderblock.protocol.messages.qos import QosSpecs
from cinderblock.protocol.messages.scheduling import Backend
from cinderblock.protocol.messages.volumes import Volume, VolumeType
from cinderblock.protocol.states import VolumeStatus as V
from cinderblock.protocol.wire.codec import Context
from cinderblock.protocol.wire.errors import InvalidInput, InvalidState

POLICIES = ("never", "on-demand")
RETYPABLE = frozenset({V.AVAILABLE, V.IN_USE})


def check_retype_request(volume: VolumeRecord, new: VolumeType, policy: str,
                         qos: Mapping[str, QosSpecs] | None = None) -> None:
    """Whether ``volume`` may take type ``new`` under ``policy``, in Cinder's order and
    words: ``InvalidInput`` for a wrong request, ``InvalidState`` for a status (or a
    type, or a front-end QoS an in-use volume would lose) that forbids it now. ``qos``:
    the QoS specs by id."""
    known = qos or {}
    qos_kept = qos_allows_retype(volume.status, known.get(volume.volume_type.qos_specs_id or ""),
                                 known.get(new.qos_specs_id or ""))
    if policy not in POLICIES:
        raise InvalidInput(f"Invalid input for field/attribute migration_policy. Value: "
                           f"{policy}. {policy!r} is not one of {list(POLICIES)}",
                           {"field": "migration_policy"})
    check_type_size(volume.size, new)
    if is_multiattach(new) != volume.multiattach and volume.status is not V.AVAILABLE:
        raise InvalidInput("Invalid volume_type passed, retypes affecting multiattach are "
                           "only allowed on available volumes, the specified volume however "
                           f"currently has a status of: {volume.status.value}.",
                           {"status": volume.status.value})
    if volume.status not in RETYPABLE or volume.volume_type.id == new.id or not qos_kept:
        raise InvalidState("Retype needs volume to be in available or in-use state, not be "
                           "part of an active migration or a consistency group, requested "
                           "type has to be different that the one from the volume, and for "
                           "in-use volumes front-end qos specs cannot change.",
                           {"status": volume.status.value,
                            "volume_type": volume.volume_type.name})


def check_retype_backend(volume: VolumeRecord, new: VolumeType, policy: str,
                         backends: Sequence[Backend], zones: Collection[str]) -> None:
    """Whether the backend holding ``volume`` takes it as type ``new`` (``backends``:
    the scheduler's view); ``InvalidInput`` naming why not."""
    problem = _backend_problem(volume, new, backends, zones)
    if problem is None:
        return
    details = {"backend": volume.host, "volume_type": new.name, "why": problem}
    if policy == "never":
        raise InvalidInput(f"Current backend not valid for volume {volume.id} with type "
                           f"{new.name}, migration not allowed: {problem}.", details)
    raise InvalidInput(f"Retype of volume {volume.id} to type {new.name} needs a migration "
                       f"to another backend ({problem}), and this cluster does not migrate "
                       "volumes between backends; choose a type its backend satisfies.",
                       details)


def _backend_problem(volume: VolumeRecord, new: VolumeType, backends: Sequence[Backend],
                     zones: Collection[str]) -> str | None:
    try:
        allowed = type_zones(new, zones)
    except InvalidInput:
        allowed = set()
    if volume.availability_zone not in allowed:
        return (f"the volume's availability zone {volume.availability_zone} is not among "
                f"the type's ({', '.join(sorted(allowed)) or 'none known'})")
    backend = next((b for b in backends if b.backend == volume.host), None)
    if backend is None:
        return f"its backend {volume.host} has not reported to the scheduler"
    if not backend.up:
        return f"its backend {backend.backend} is down"
    if backend.disabled:
        return f"its backend {backend.backend} is disabled"
    capabilities = {"thin_provisioning_support": backend.thin_provisioning_support,
                    **backend.capabilities}  # as the scheduler's index groups them
    if not satisfies(capabilities, new.extra_specs):
        return (f"its backend {backend.backend} has no capabilities matching extra specs "
                f"{dict(new.extra_specs)}")
    return None


class RetypeServices(Protocol):
    store: GatewayStore
    types: TypeCatalog
    zones: Collection[str]

    async def backends_seen(self, ctx: Context) -> list[Backend]: ...
    def publish(self, rec: VolumeRecord, push: bool = True) -> None: ...
    async def run_flow(self, flow: LinearFlow[RetypeContext], c: RetypeContext,
                       volume_id: str, ctx: Context) -> None: ...


@dataclass(slots=True)
class RetypeContext:
    volume_id: str
    new_type: str
    policy: str
    ctx: Context
    volume: VolumeRecord | None = None
    vtype: VolumeType | None = None
    claimed: str | None = None  # the volume this flow claimed (released when it ends)


class _Task(Task[RetypeContext]):
    def __init__(self, services: RetypeServices) -> None:
        self.s = services


class ExtractRetypeRequestTask(_Task):
    requires = ("volume_id", "new_type", "policy")
    provides = ("volume", "vtype")

    async def execute(self, c: RetypeContext) -> None:
        volume = visible_volume(self.s.store, c.volume_id, c.ctx)
        vtype = self.s.types.find_for(c.new_type, c.ctx.project_id, c.ctx.is_admin)
        check_retype_request(volume, vtype, c.policy, self.s.store.qos.by_id)
        c.claimed = claim_volume(self.s.store, volume, "retyping")
        c.volume, c.vtype = volume, vtype


class FindRetypeBackendTask(_Task):
    requires = ("volume", "vtype")

    async def execute(self, c: RetypeContext) -> None:
        assert c.volume is not None and c.vtype is not None
        backends = await self.s.backends_seen(c.ctx)
        check_retype_backend(c.volume, c.vtype, c.policy, backends, self.s.zones)


class RetypeVolumeTask(_Task):
    requires = ("volume", "vtype")

    async def execute(self, c: RetypeContext) -> None:
        volume, vtype = c.volume, c.vtype
        assert volume is not None and vtype is not None
        if self.s.types.by_id.get(vtype.id) is not vtype:  # deleted or changed meanwhile
            raise InvalidState(f"volume type {vtype.name} was changed or deleted while the "
                               "retype looked at its backend; try again",
                               {"volume_type": vtype.name})
        check_retype_request(volume, vtype, c.policy, self.s.store.qos.by_id)  # again
        old = volume.volume_type
        volume.volume_type = vtype
        try:
            await self.s.store.save_volume_type(volume)
        except BaseException:
            volume.volume_type = old  # memory as the file: the write did not happen
            raise
        self.s.publish(volume, push=False)


def volume_retype_api(services: RetypeServices) -> LinearFlow[RetypeContext]:
    return LinearFlow(
        "volume_retype_api",
        [ExtractRetypeRequestTask(services), FindRetypeBackendTask(services),
         RetypeVolumeTask(services)],
        given=("volume_id", "new_type", "policy", "ctx"),
    )


class VolumeRetyper:
    """The ``volume.retype`` op: runs ``volume_retype_api`` and answers the volume as
    it is at the end (the change is made before the answer)."""

    def __init__(self, services: RetypeServices) -> None:
        self.s = services
        self.flow = volume_retype_api(services)

    def handlers(self) -> dict[str, Handler]:
        return {"volume.retype": self.on_retype}

    async def on_retype(self, req: Request) -> Volume:
        body: VolumeRetype = req.body
        c = RetypeContext(body.volume_id, body.new_type, body.migration_policy, req.ctx)
        try:
            await self.s.run_flow(self.flow, c, body.volume_id, req.ctx)
        finally:
            release_claim(self.s.store, c.claimed)
        assert c.volume is not None
        return c.volume.view()
