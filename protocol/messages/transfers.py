"""Volume transfers on the wire (Cinder's ``volume-transfers``, and ``os-volume-transfer``
before 3.55): a project offers one of its volumes, and whoever holds the transfer's id
and its auth key accepts it into their own project.

Client → gateway: ``transfer.create`` (``TransferCreate``), ``transfer.list``
(``TransferListRequest``), ``transfer.show`` and ``transfer.delete`` (``TransferRef``),
``transfer.accept`` (``TransferAccept``).
"""

from __future__ import annotations

from dataclasses import dataclass

from cinderblock.protocol.wire.schema import message


@message
@dataclass(frozen=True, slots=True)
class Transfer:
    id: str
    volume_id: str
    source_project_id: str
    name: str | None = None
    created_at: float = 0.0
    no_snapshots: bool = False  # the volume's snapshots stay with its first project
    # Once accepted (the answer to ``transfer.accept``): where the volume went.
    destination_project_id: str | None = None
    accepted: bool = False
    auth_key: str | None = None  # in the answer to ``transfer.create`` only: never kept


@message
@dataclass(frozen=True, slots=True)
class TransferCreate:
    volume_id: str
    name: str | None = None
    no_snapshots: bool = False


@message
@dataclass(frozen=True, slots=True)
class TransferListRequest:
    all_projects: bool = False  # an admin's: every project's transfers
    volume_id: str | None = None
    name: str | None = None  # only transfers of this name
    limit: int | None = None  # a page, newest first, as volumes' (at most 1000)
    marker: str | None = None  # the last transfer id of the previous page
    sort_dir: str | None = None  # "asc": oldest first instead (by creation, ties by id)


@message
@dataclass(frozen=True, slots=True)
class TransferList:
    transfers: tuple[Transfer, ...] = ()
    next_marker: str | None = None  # set when another page follows


@message
@dataclass(frozen=True, slots=True)
class TransferRef:
    transfer_id: str


@message
@dataclass(frozen=True, slots=True)
class TransferAccept:
    transfer_id: str
    auth_key: str
