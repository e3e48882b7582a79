"""How the CLI prints things, as python-openstackclient (cliff) does.

Every command hands over either one record (``show``: field → value) or a listing
(``listing``: column headers and rows), and the output options decide the shape:

    -f table   a boxed table (the default); a record is a Field | Value table
    -f json    a record is an object keyed by field; a listing is a list of objects
               keyed by each column's field name (``[{"id": ..., "name": ...}]``: the
               names ``show`` uses, and what scripts written before ``-f`` read)
    -f yaml    the same data as YAML
    -f value   no headers: one value per line (a record), space-separated rows (a listing)
    -f csv     a header line, then quoted rows (a record: its fields as the columns)
    -c COLUMN  repeatable: only these fields or columns, in the order given
    --json     the same as ``-f json`` (kept for scripts written before ``-f``)

Times are ISO 8601 in UTC everywhere (``2026-12-01T13:19:54.123456+00:00``), never epoch
floats; a time of 0 (never set) prints as nothing. Errors under ``-f json`` are a JSON
object on stderr (``error_text``).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from cinderblock.protocol.wire.schema import dump

FORMATS = ("table", "json", "yaml", "value", "csv")
TIME_NAMES = frozenset({"timestamp", "ts"})  # and every field named ``*_at``: epoch seconds


class ColumnError(ValueError):
    """``-c`` named a column the output does not have."""


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a listing: its field name (json, yaml) and its header (table, csv)."""

    key: str
    header: str


@dataclass(frozen=True, slots=True)
class Listing:
    """Rows under columns, as a list command prints them."""

    columns: tuple[Column, ...]
    rows: Sequence[Sequence[Any]]


def columns_named(*headers: str) -> tuple[Column, ...]:
    """Columns from their headers; the field name is the header in snake_case."""
    return tuple(Column(_key(h), h) for h in headers)


def add_output(p: argparse.ArgumentParser, default: Any = None) -> None:
    """``-f``, ``-c`` and ``--json`` (``default``: argparse.SUPPRESS on a subcommand, so a
    value given before the subcommand is not reset by the subcommand's default)."""
    group = p.add_argument_group("output formatters")
    group.add_argument("-f", "--format", dest="format", choices=FORMATS,
                       default=default if default is not None else "table",
                       help="output format (default: table)")
    group.add_argument("-c", "--column", dest="columns", action="append",
                       default=default if default is not None else [], metavar="COLUMN",
                       help="only this column or field; repeat for more")
    group.add_argument("--json", action="store_true",
                       default=default if default is not None else False,
                       help="the same as -f json")


def add_paging(p: argparse.ArgumentParser) -> None:
    """``--limit`` and ``--marker``, as Cinder's list commands (newest first)."""
    p.add_argument("--limit", type=int, help="at most this many (default: all)")
    p.add_argument("--marker", help="start after this id (the last of an earlier listing)")


def add_order(p: argparse.ArgumentParser) -> None:
    """``--oldest-first``: a listing by creation the other way (Cinder's
    ``--sort created_at:asc``)."""
    p.add_argument("--oldest-first", action="store_true",
                   help="oldest first (the default: newest first)")


def sort_dir(args: argparse.Namespace) -> str | None:
    """The listing's ``sort_dir`` for ``--oldest-first`` (None: the listing's own)."""
    return "asc" if args.oldest_first else None


def output_format(args: argparse.Namespace) -> str:
    return "json" if getattr(args, "json", False) else getattr(args, "format", "table")


# ---- printing -------------------------------------------------------------------------
def show(args: argparse.Namespace, obj: Any) -> int:
    """Print one record (a message object or a mapping) in the chosen format."""
    print(render_record(record(obj), output_format(args), getattr(args, "columns", [])))
    return 0


def listing(args: argparse.Namespace, cols: Sequence[Column], rows: Sequence[Sequence[Any]],
            ) -> int:
    """Print rows under ``cols`` in the chosen format."""
    found = Listing(tuple(cols), [tuple(_plain(v) for v in r) for r in rows])
    text = render_listing(found, output_format(args), getattr(args, "columns", []))
    if text:
        print(text)
    return 0


def record(obj: Any) -> dict[str, Any]:
    """A message object or mapping as printable fields: times as ISO 8601."""
    data = dict(obj) if isinstance(obj, Mapping) else dump(obj)
    return {k: iso_time(v) if is_time_field(k) else _plain(v) for k, v in data.items()}


def is_time_field(name: str) -> bool:
    """Whether a field holds an epoch time: ``attached_at``, ``expires_at``, ``ts`` ..."""
    return name.endswith("_at") or name in TIME_NAMES


def iso_time(value: Any) -> Any:
    """An epoch time as ISO 8601 in UTC; 0 or None (never set) as None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if not value:
        return None
    return datetime.fromtimestamp(value, UTC).isoformat(timespec="microseconds")


def render_record(data: Mapping[str, Any], fmt: str, columns: Sequence[str] = ()) -> str:
    fields = _select(list(data), columns)
    picked = {f: data[f] for f in fields}
    if fmt == "json":
        return json.dumps(picked, indent=2, sort_keys=not columns, default=str)
    if fmt == "yaml":
        return _yaml(picked)
    if fmt == "value":
        return "\n".join(_cell(v, "") for v in picked.values())
    if fmt == "csv":
        return _csv(tuple(fields), [tuple(picked.values())])
    return table(["Field", "Value"], [(k, v) for k, v in picked.items()])


def render_listing(found: Listing, fmt: str, columns: Sequence[str] = ()) -> str:
    headers = [c.header for c in found.columns]
    names = _select(headers, columns, [c.key for c in found.columns])
    index = [headers.index(n) for n in names]
    keys = [found.columns[i].key for i in index]
    rows = [tuple(row[i] for i in index) for row in found.rows]
    if fmt == "json":
        return json.dumps([dict(zip(keys, r, strict=True)) for r in rows], indent=2,
                          default=str)
    if fmt == "yaml":
        return _yaml([dict(zip(keys, r, strict=True)) for r in rows])
    if fmt == "value":
        return "\n".join(" ".join(_cell(v, "") for v in r) for r in rows)
    if fmt == "csv":
        return _csv(tuple(names), rows)
    return table(names, rows)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, *(len(line) for line in c.split("\n"))) for w, c in
                  zip(widths, row, strict=True)]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def fmt(values: Sequence[str]) -> list[str]:
        split = [v.split("\n") for v in values]
        height = max((len(s) for s in split), default=1)
        return ["| " + " | ".join((s[i] if i < len(s) else "").ljust(w)
                                  for s, w in zip(split, widths, strict=True)) + " |"
                for i in range(height)]

    body = [text for r in cells for text in fmt(r)]
    return "\n".join([line, *fmt(list(headers)), line, *body, line])


def error_text(code: str, message: str, details: Mapping[str, Any] | None, fmt: str) -> str:
    """One error as the chosen format prints it on stderr."""
    if fmt == "json":
        return json.dumps({"error": {"code": code, "message": message,
                                     "details": dict(details or {})}}, default=str)
    return f"ERROR ({code}): {message}"


# ---- cells ----------------------------------------------------------------------------
def _select(available: list[str], wanted: Sequence[str], keys: Sequence[str] = (),
            ) -> list[str]:
    """The columns ``-c`` asked for, by header or field name (case and spaces do not
    matter), in the order asked; all of them if none was asked for."""
    if not wanted:
        return available
    by_key = {_key(name): name for name in available}
    by_key.update({_key(k): name for k, name in zip(keys, available, strict=False)})
    picked = []
    for name in wanted:
        found = name if name in available else by_key.get(_key(name))
        if found is None:
            raise ColumnError(f"no column {name!r}; the columns are: {', '.join(available)}")
        picked.append(found)
    return picked


def _key(name: str) -> str:
    return name.lower().replace(" ", "_").replace("-", "_")


def _plain(value: Any) -> Any:
    """Tuples as lists and enums as their values, so every format prints them alike."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _cell(value: Any, none: str = "-") -> str:
    if value is None:
        return none
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_cell(v, "") for v in value)
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _csv(names: tuple[str, ...], rows: Sequence[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow([v if isinstance(v, int | float) and not isinstance(v, bool)
                         else _cell(v, "") for v in row])
    return out.getvalue().rstrip("\n")


def _yaml(data: Any) -> str:
    import yaml  # only when asked for: it is not needed by any other format

    text: str = yaml.safe_dump(data, default_flow_style=False, sort_keys=False)
    return text.rstrip("\n")
