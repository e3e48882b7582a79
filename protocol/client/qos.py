"""The client library's calls for QoS specs (an admin's), mixed into ``Client`` and
``SyncClient``:

    gold = await admin.create_qos("gold", consumer="front-end",
                                  specs={"total_iops_sec": "500"})
    await admin.associate_qos(gold.id, "fast")      # volumes of type "fast" get it
    await admin.update_qos(gold.id, specs={"total_bytes_sec": "104857600"})
    await admin.delete_qos(gold.id, force=True)     # and disassociate it from its types

A volume has the QoS of its type; front-end specs reach the attaching host in each
attachment's ``connection_info["data"]["qos_specs"]``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from cinderblock.protocol.client.pages import read_pages
from cinderblock.protocol.messages.qos import (
    QosAssociation,
    QosAssociations,
    QosCreate,
    QosDelete,
    QosList,
    QosListRequest,
    QosRef,
    QosSpecs,
    QosUpdate,
)
from cinderblock.protocol.messages.volumes import VolumeType
from cinderblock.protocol.wire.schema import parse

T = TypeVar("T")


class QosMethods:
    async def call(
        self, op: str, body: Any, request_id: str | None = None, timeout: float | None = None
    ) -> Any:
        raise NotImplementedError

    async def create_qos(self, name: str, consumer: str | None = None,
                         specs: dict[str, str] | None = None) -> QosSpecs:
        """Admin: new QoS specs (``consumer``: front-end, back-end (the default) or both)."""
        raw = await self.call("qos.create", QosCreate(name, consumer, specs or {}))
        return parse(QosSpecs, raw, strict=False)

    async def list_qos(self, limit: int | None = None,
                       marker: str | None = None) -> list[QosSpecs]:
        """Admin: every QoS spec, newest first, page by page (or the first ``limit``
        after ``marker``, an id of an earlier listing)."""
        async def fetch(left: int | None, after: str | None
                        ) -> tuple[tuple[QosSpecs, ...], str | None]:
            raw = await self.call("qos.list", QosListRequest(left, after))
            reply = parse(QosList, raw, strict=False)
            return reply.specs, reply.next_marker

        return await read_pages(fetch, limit, marker)

    async def show_qos(self, name_or_id: str) -> QosSpecs:
        return parse(QosSpecs, await self.call("qos.show", QosRef(name_or_id)), strict=False)

    async def update_qos(self, name_or_id: str, *, consumer: str | None = None,
                         specs: dict[str, str] | None = None,
                         delete_keys: Iterable[str] = ()) -> QosSpecs:
        """Admin: merge ``specs`` in, drop ``delete_keys`` (each must be there), change
        the consumer if given."""
        body = QosUpdate(name_or_id, consumer, specs or {}, tuple(delete_keys))
        return parse(QosSpecs, await self.call("qos.update", body), strict=False)

    async def delete_qos(self, name_or_id: str, force: bool = False) -> None:
        """Admin: delete QoS specs no type has (``force``: and take them from those that do)."""
        await self.call("qos.delete", QosDelete(name_or_id, force))

    async def qos_associations(self, name_or_id: str) -> list[VolumeType]:
        """Admin: the volume types that have these QoS specs."""
        raw = await self.call("qos.associations", QosRef(name_or_id))
        return list(parse(QosAssociations, raw, strict=False).types)

    async def associate_qos(self, name_or_id: str, volume_type: str) -> None:
        """Admin: give the type these QoS specs (a type has at most one)."""
        await self.call("qos.associate", QosAssociation(name_or_id, volume_type))

    async def disassociate_qos(self, name_or_id: str, volume_type: str | None = None) -> None:
        """Admin: take these QoS specs from the type (None: from every type)."""
        if volume_type is None:
            await self.call("qos.disassociate_all", QosRef(name_or_id))
        else:
            await self.call("qos.disassociate", QosAssociation(name_or_id, volume_type))


class SyncQosMethods:
    def _run(self, make: Callable[[QosMethods], Awaitable[T]]) -> T:
        raise NotImplementedError

    def create_qos(self, name: str, **kwargs: Any) -> QosSpecs:
        return self._run(lambda c: c.create_qos(name, **kwargs))

    def list_qos(self, limit: int | None = None, marker: str | None = None) -> list[QosSpecs]:
        return self._run(lambda c: c.list_qos(limit, marker))

    def show_qos(self, name_or_id: str) -> QosSpecs:
        return self._run(lambda c: c.show_qos(name_or_id))

    def update_qos(self, name_or_id: str, **kwargs: Any) -> QosSpecs:
        return self._run(lambda c: c.update_qos(name_or_id, **kwargs))

    def delete_qos(self, name_or_id: str, force: bool = False) -> None:
        self._run(lambda c: c.delete_qos(name_or_id, force))

    def qos_associations(self, name_or_id: str) -> list[VolumeType]:
        return self._run(lambda c: c.qos_associations(name_or_id))

    def associate_qos(self, name_or_id: str, volume_type: str) -> None:
        self._run(lambda c: c.associate_qos(name_or_id, volume_type))

    def disassociate_qos(self, name_or_id: str, volume_type: str | None = None) -> None:
        self._run(lambda c: c.disassociate_qos(name_or_id, volume_type))
