"""VolumesPane: the project's volumes (every project's, for an admin), filterable;
``k`` turns it to their snapshots, backups, groups or group snapshots, and back."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, NamedTuple

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Static

from cinderblock.protocol.states import VolumeStatus
from cinderblock.tui.model.cells import (
    VOLUME_COLUMNS,
    item_columns,
    item_row_or_gone,
    volume_row_or_gone,
)
from cinderblock.tui.model.model import Model
from cinderblock.tui.widgets.confirm_delete import ConfirmDelete
from cinderblock.tui.widgets.row_table import RowTable

STATUSES = (VolumeStatus.CREATING.value, VolumeStatus.AVAILABLE.value, VolumeStatus.ERROR.value)
KINDS = ("volumes", "snapshots", "backups", "groups", "group snapshots")


class PaneItem(NamedTuple):
    """What a row of the pane is: its kind ("volume", "snapshot", ...), id and name."""

    kind: str
    id: str
    name: str | None


class VolumesPane(Vertical):
    DEFAULT_CSS = """
    VolumesPane > Horizontal { height: 1; }
    VolumesPane > Horizontal > Input { width: 1fr; height: 1; border: none; padding: 0 1; }
    VolumesPane > Horizontal > Input:focus { border: none; background: $boost; }
    VolumesPane #status-filter, VolumesPane #kind { width: auto; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("k", "cycle_kind", "Kind"),
        Binding("s", "cycle_status", "Status"),
        Binding("d", "delete", "Delete"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    class DeleteAsked(Message):
        """The user asked to delete a volume (a snapshot, a backup, a group), and
        confirmed it."""

        def __init__(self, kind: str, item_id: str) -> None:
            super().__init__()
            self.kind = kind  # "volume", "snapshot", "backup", "group", "group_snapshot"
            self.item_id = item_id

    def __init__(self, model: Model, clock: Callable[[], float], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.model = model
        self.clock = clock
        self.kind = KINDS[0]
        self.status: str | None = None
        self.text = ""
        self.border_title = "Volumes"

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Input(placeholder="/ filter: id, name, host, type…", id="volume-filter")
            yield Static(f"kind: {self.kind}", id="kind")
            yield Static("status: all", id="status-filter")
        yield RowTable(VOLUME_COLUMNS, id="volume-table")

    @property
    def table(self) -> RowTable:
        return self.query_one(RowTable)

    def show(self, now: float) -> None:
        compact = self.size.width < 120
        if self.kind == "volumes":
            volumes = self.model.volumes
            keys = volumes.select(self.status, self.text)
            records = volumes.volumes
            self.table.show(keys, lambda key: volume_row_or_gone(records, key, now, compact))
            total, counts, truncated = len(records), volumes.counts(), volumes.catch_up_truncated
        else:
            book = self.model.books()[self.kind]
            keys = book.select(self.status, self.text)
            items, kind = book.items, book.kind
            self.table.show(keys, lambda key: item_row_or_gone(kind, items, key, now, compact))
            total, counts, truncated = len(items), book.counts(), book.catch_up_truncated
        summary = " · ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        more = " · newest 1000 caught up" if truncated else ""
        self.border_subtitle = f"{len(keys)} of {total} shown · {summary}{more}"

    def selected(self) -> PaneItem | None:
        """The row under the cursor."""
        key = self.table.cursor_key
        if key is None:
            return None
        if self.kind == "volumes":
            volume = self.model.volumes.volumes.get(key)
            return PaneItem("volume", key, volume.name) if volume else None
        book = self.model.books()[self.kind]
        item = book.items.get(key)
        return PaneItem(book.kind.name, key, item.name) if item else None

    def focus_filter(self) -> None:
        self.query_one(Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.text = event.value
        self.show(self.clock())

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.table.focus()

    def action_clear_filter(self) -> None:
        """Escape: the filter is emptied and the table has the keys again."""
        self.query_one(Input).value = ""
        self.text = ""
        self.table.focus()
        self.show(self.clock())

    def action_cycle_kind(self) -> None:
        """Volumes, then snapshots, backups, groups, group snapshots: each with its own
        columns and statuses (the status filter starts again at all; the text filter
        stays)."""
        self.kind = KINDS[(KINDS.index(self.kind) + 1) % len(KINDS)]
        self.status = None
        columns = VOLUME_COLUMNS if self.kind == "volumes" \
            else item_columns(self.model.books()[self.kind].kind)
        self.table.use_columns(columns)
        self.border_title = self.kind.capitalize()
        self.query_one("#kind", Static).update(f"kind: {self.kind}")
        self.query_one("#status-filter", Static).update("status: all")
        self.show(self.clock())

    def action_cycle_status(self) -> None:
        if self.kind == "volumes":
            first: tuple[str, ...] = STATUSES
            counts = self.model.volumes.counts()
        else:
            book = self.model.books()[self.kind]
            first, counts = book.kind.statuses, book.counts()
        seen = sorted(set(counts) - set(first))
        choices: list[str | None] = [None, *first, *seen]
        self.status = choices[(choices.index(self.status) + 1) % len(choices)]
        self.query_one("#status-filter", Static).update(f"status: {self.status or 'all'}")
        self.show(self.clock())

    def action_delete(self) -> None:
        selected = self.selected()
        if selected is None:
            self.notify(f"no {self.kind.removesuffix('s')} selected", severity="warning")
            return
        kind, item_id, name = selected
        what = f"{kind} {name!r} ({item_id})" if name else f"{kind} {item_id}"

        def answered(delete: bool | None) -> None:
            if delete:
                self.post_message(self.DeleteAsked(kind, item_id))

        self.app.push_screen(ConfirmDelete(what), answered)
