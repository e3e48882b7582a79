"""How the CLI prints things: a readable table, or JSON with --json."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from cinderblock.protocol.wire.schema import dump


def add_paging(p: argparse.ArgumentParser) -> None:
    """``--limit`` and ``--marker``, as Cinder's list commands (newest first)."""
    p.add_argument("--limit", type=int, help="at most this many (default: all)")
    p.add_argument("--marker", help="start after this id (the last of an earlier listing)")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def fmt(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    return "\n".join([line, fmt(headers), line, *(fmt(r) for r in cells), line])


def properties(obj: Any) -> str:
    data = dump(obj)
    return table(["Property", "Value"], [(k, v) for k, v in data.items()])


def as_json(obj: Any) -> str:
    return json.dumps(dump(obj), indent=2, sort_keys=True)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)
