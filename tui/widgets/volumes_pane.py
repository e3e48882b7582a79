"""VolumesPane: the project's volumes (every project's, for an admin), filterable."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Static

from cinderblock.protocol.states import VolumeStatus
from cinderblock.tui.model.cells import VOLUME_COLUMNS, volume_row_or_gone
from cinderblock.tui.model.model import Model, VolumeRecord
from cinderblock.tui.widgets.confirm_delete import ConfirmDelete
from cinderblock.tui.widgets.row_table import RowTable

STATUSES = (VolumeStatus.CREATING.value, VolumeStatus.AVAILABLE.value, VolumeStatus.ERROR.value)


class VolumesPane(Vertical):
    DEFAULT_CSS = """
    VolumesPane > Horizontal { height: 1; }
    VolumesPane > Horizontal > Input { width: 1fr; height: 1; border: none; padding: 0 1; }
    VolumesPane > Horizontal > Input:focus { border: none; background: $boost; }
    VolumesPane #status-filter { width: auto; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "cycle_status", "Status"),
        Binding("d", "delete", "Delete"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    class DeleteAsked(Message):
        """The user asked to delete a volume, and confirmed it."""

        def __init__(self, volume: VolumeRecord) -> None:
            super().__init__()
            self.volume = volume

    def __init__(self, model: Model, clock: Callable[[], float], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.model = model
        self.clock = clock
        self.status: str | None = None
        self.text = ""
        self.border_title = "Volumes"

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Input(placeholder="/ filter: id, name, host, type…", id="volume-filter")
            yield Static("status: all", id="status-filter")
        yield RowTable(VOLUME_COLUMNS, id="volume-table")

    @property
    def table(self) -> RowTable:
        return self.query_one(RowTable)

    def show(self, now: float) -> None:
        book = self.model.volumes
        keys = book.select(self.status, self.text)
        volumes = book.volumes
        compact = self.size.width < 120
        self.table.show(keys, lambda key: volume_row_or_gone(volumes, key, now, compact))
        counts = book.counts()
        summary = " · ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        more = " · newest 1000 caught up" if book.catch_up_truncated else ""
        self.border_subtitle = f"{len(keys)} of {len(volumes)} shown · {summary}{more}"

    def selected(self) -> VolumeRecord | None:
        key = self.table.cursor_key
        return self.model.volumes.volumes.get(key) if key else None

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

    def action_cycle_status(self) -> None:
        seen = sorted(set(self.model.volumes.counts()) - set(STATUSES))
        choices: list[str | None] = [None, *STATUSES, *seen]
        self.status = choices[(choices.index(self.status) + 1) % len(choices)]
        self.query_one("#status-filter", Static).update(f"status: {self.status or 'all'}")
        self.show(self.clock())

    def action_delete(self) -> None:
        volume = self.selected()
        if volume is None:
            self.notify("no volume selected", severity="warning")
            return
        name = f"volume {volume.name!r} ({volume.id})" if volume.name else f"volume {volume.id}"

        def answered(delete: bool | None) -> None:
            if delete:
                self.post_message(self.DeleteAsked(volume))

        self.app.push_screen(ConfirmDelete(name), answered)
