"""BackendsPane: a card per storage backend, added as backends appear."""

from __future__ import annotations

from textual.containers import VerticalScroll

from cinderblock.tui.model.model import Model
from cinderblock.tui.widgets.backend_card import BackendCard


def card_id(backend: str) -> str:
    return "backend-" + "".join(c if c.isalnum() else "-" for c in backend)


class BackendsPane(VerticalScroll):
    def __init__(self, model: Model, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.model = model
        self.cards: dict[str, BackendCard] = {}
        self.border_title = "Backends"

    def show(self, now: float) -> None:
        book = self.model.backends
        records = book.ordered()
        for record in records:
            card = self.cards.get(record.backend)
            if card is None:
                card = self.cards[record.backend] = BackendCard(record, id=card_id(record.backend))
                self.mount(card)
            card.show(record, now, book.up(record, now))
        up = sum(book.up(r, now) for r in records)
        self.border_subtitle = f"{up} of {len(records)} up"
