"""Rows and columns for ``RowTable``: plain data and plain arithmetic, no widgets.

A ``Row`` is what one line shows: its cells and a tag naming its look
("failed", "running", "done", "faded", "error", or "" for the default). Rows
are compared by value, which is how a table knows which lines changed.

``layout`` fits columns into a width the way a terminal user expects: every
column gets its natural width when there is room, the flexible column takes
what is left; when there is not, the least important columns (highest
``drop``) disappear, then the rest shrink towards their minimum widths.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size

GAP = 1  # spaces between columns


@dataclass(frozen=True, slots=True)
class Column:
    label: str
    width: int  # natural width
    min_width: int = 0  # 0: the column never shrinks
    drop: int = 0  # 0: never dropped; otherwise higher goes first
    flex: bool = False  # takes the space left over
    right: bool = False  # right-aligned (numbers)

    @property
    def floor(self) -> int:
        return self.min_width or self.width


@dataclass(frozen=True, slots=True)
class Row:
    key: str
    cells: tuple[str, ...]
    tag: str = ""


def layout(columns: tuple[Column, ...], width: int,
           natural: list[int] | None = None) -> list[tuple[int, int]]:
    """(column index, width) for every column shown in ``width`` cells.

    ``natural`` is each column's width as its content needs it (at most the
    column's own ``width``). Extras (``drop``) go, highest first, until the
    others fit; then the flexible column shrinks, then the widest others.
    """
    want = [min(c.width, n) for c, n in zip(columns, natural, strict=True)] if natural \
        else [c.width for c in columns]
    floor = [min(c.floor, w) for c, w in zip(columns, want, strict=True)]
    shown = list(range(len(columns)))
    while True:  # drop extras until the rest fit with only the flexible column shrunk
        need = sum(floor[i] if columns[i].flex else want[i] for i in shown) \
            + GAP * (len(shown) - 1)
        droppable = [i for i in shown if columns[i].drop]
        if need <= width or not droppable:
            break
        shown.remove(max(droppable, key=lambda i: columns[i].drop))
    widths = {i: want[i] for i in shown}
    excess = sum(widths.values()) + GAP * (len(shown) - 1) - width
    for group in ([i for i in shown if columns[i].flex], shown):  # the flexible one first
        while excess > 0:
            slack = {i: widths[i] - floor[i] for i in group if widths[i] > floor[i]}
            if not slack:
                break
            widest = max(slack, key=lambda i: slack[i])
            widths[widest] -= 1
            excess -= 1
    flex = [i for i in shown if columns[i].flex]
    if excess < 0 and flex:
        widths[flex[0]] += -excess
    return [(i, widths[i]) for i in shown]


def fit(text: str, width: int, right: bool = False) -> str:
    """``text`` padded or cut (with an ellipsis) to exactly ``width`` cells."""
    if width <= 0:
        return ""
    length = cell_len(text)
    if length > width:
        return set_cell_size(text, width - 1) + "…"
    pad = " " * (width - length)
    return pad + text if right else text + pad


def line(columns: tuple[Column, ...], plan: list[tuple[int, int]], cells: tuple[str, ...],
         width: int) -> str:
    """One table line of exactly ``width`` cells."""
    parts = [fit(cells[i] if i < len(cells) else "", w, columns[i].right) for i, w in plan]
    return fit((" " * GAP).join(parts), width)
