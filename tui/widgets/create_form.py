"""CreateForm: a small modal asking for a new volume's size, name and type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select


@dataclass(frozen=True, slots=True)
class CreateRequest:
    size: int
    name: str | None = None
    volume_type: str | None = None  # None: the cluster's default type


def parse_form(size: str, name: str, volume_type: object) -> CreateRequest:
    """The form's fields as a request; ValueError says which field is wrong."""
    try:
        gigabytes = int(size.strip())
    except ValueError:
        raise ValueError("size must be a whole number of GiB") from None
    if gigabytes < 1:
        raise ValueError("size must be at least 1 GiB")
    return CreateRequest(gigabytes, name.strip() or None,
                         volume_type if isinstance(volume_type, str) else None)


class CreateForm(ModalScreen[CreateRequest | None]):
    DEFAULT_CSS = """
    CreateForm { align: center middle; }
    CreateForm > Vertical { width: 56; height: auto; border: thick $primary; padding: 1 2;
                            background: $surface; }
    CreateForm Input, CreateForm Select { margin-bottom: 1; }
    CreateForm #form-error { color: $error; height: auto; }
    CreateForm Horizontal { height: auto; align-horizontal: right; }
    CreateForm Button { margin-left: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, types: list[str]) -> None:
        super().__init__()
        self.types = types

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("[b]Create a volume[/b]")
            yield Input("1", placeholder="size in GiB", type="integer", id="size")
            yield Input(placeholder="name (optional)", id="name")
            yield Select([(t, t) for t in self.types], prompt="type (cluster default)",
                         id="type")
            yield Label("", id="form-error")
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button("Create", variant="primary", id="create")

    def on_mount(self) -> None:
        self.query_one("#size", Input).focus()

    def submit(self) -> None:
        try:
            request = parse_form(self.query_one("#size", Input).value,
                                 self.query_one("#name", Input).value,
                                 self.query_one("#type", Select).value)
        except ValueError as exc:
            self.query_one("#form-error", Label).update(str(exc))
            return
        self.dismiss(request)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "create":
            self.submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
