"""Typed message bodies: one decorator turns a frozen dataclass into a wire schema.

``@message`` reads the dataclass's annotations once, at import, and builds a
list of field checkers. ``parse(cls, raw)`` turns an untrusted msgpack map into
an instance or raises ``SchemaError`` naming the field and what was wrong;
``dump(obj)`` turns an instance back into plain maps and lists for msgpack.

Supported field types: ``int`` (never a bool), ``float`` (an int is accepted),
``str``, ``bool``, a ``StrEnum`` (a string, one of its values: states stay
enums from one end to the other), ``X | None``, ``list[X]``, ``dict[str, X]``,
``Any`` (an opaque msgpack value) and another ``@message`` class. Requests are parsed
strictly (an unknown field is an error); replies leniently (an unknown field is
ignored), so a newer peer may add fields at the end with defaults.
"""

from __future__ import annotations

import dataclasses
import enum
import operator
import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")
Checker = Callable[[str, Any], Any]
_MISSING = dataclasses.MISSING


class SchemaError(ValueError):
    """A body did not match its message type; ``field`` names where."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field = field
        self.problem = problem


class _Every:
    """Every type: what an ``Any`` field lets through unchecked."""

    def __contains__(self, kind: object) -> bool:
        return True


_EVERY = _Every()
Passes = frozenset[type] | _Every  # the types of the values a checker returns unchanged


@dataclasses.dataclass(frozen=True, slots=True)
class _Field:
    name: str
    check: Checker
    required: bool
    default: Any
    nested: bool  # holds @message values that dump() must convert
    passes: Passes  # a value of one of these types is taken as it is, without a call


_SCHEMAS: dict[type, tuple[_Field, ...]] = {}
_DUMPERS: dict[type, Callable[[Any], dict[str, Any]]] = {}


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}"


INT_MIN, INT_MAX = -(1 << 63), (1 << 63) - 1  # what SQLite's INTEGER holds


def _check_int(name: str, value: Any) -> Any:
    if type(value) is not int:
        raise SchemaError(name, f"must be an integer, got {_describe(value)}")
    if not INT_MIN <= value <= INT_MAX:
        raise SchemaError(name, f"must be an integer from {INT_MIN} to {INT_MAX}, got {value}")
    return value


def _check_float(name: str, value: Any) -> Any:
    if type(value) is int:
        return float(value)
    if type(value) is not float:
        raise SchemaError(name, f"must be a number, got {_describe(value)}")
    return value


def _check_str(name: str, value: Any) -> Any:
    if type(value) is not str:
        raise SchemaError(name, f"must be a string, got {_describe(value)}")
    return value


def _check_bool(name: str, value: Any) -> Any:
    if type(value) is not bool:
        raise SchemaError(name, f"must be a boolean, got {_describe(value)}")
    return value


def _check_any(name: str, value: Any) -> Any:
    return value


# Each primitive's checker, and the types it returns unchanged (an int must be in range,
# so none of its values is taken unchecked).
_PRIMITIVES: dict[Any, tuple[Checker, Passes]] = {
    int: (_check_int, frozenset()),
    float: (_check_float, frozenset({float})),
    str: (_check_str, frozenset({str})),
    bool: (_check_bool, frozenset({bool})),
    Any: (_check_any, _EVERY),
}
_NOTHING: Passes = frozenset()


def _optional(inner: Checker) -> Checker:
    def check(name: str, value: Any) -> Any:
        return None if value is None else inner(name, value)

    return check


def _list_of(inner: Checker) -> Checker:
    def check(name: str, value: Any) -> Any:
        if type(value) is not list:
            raise SchemaError(name, f"must be a list, got {_describe(value)}")
        return tuple(inner(f"{name}[{i}]", item) for i, item in enumerate(value))

    return check


def _map_of(inner: Checker) -> Checker:
    def check(name: str, value: Any) -> Any:
        if type(value) is not dict:
            raise SchemaError(name, f"must be a map, got {_describe(value)}")
        out: dict[str, Any] = {}
        for key, item in value.items():
            if type(key) is not str:
                raise SchemaError(name, f"keys must be strings, got {_describe(key)}")
            out[key] = inner(f"{name}.{key}", item)
        return out

    return check


def _nested(cls: type) -> Checker:
    def check(name: str, value: Any) -> Any:
        try:
            return parse(cls, value, strict=False)
        except SchemaError as exc:
            raise SchemaError(f"{name}.{exc.field}" if exc.field else name, exc.problem) from None

    return check


def _one_of(kind: type[enum.StrEnum]) -> Checker:
    by_value = {member.value: member for member in kind}

    def check(name: str, value: Any) -> Any:
        found = by_value.get(value) if type(value) is str else None
        if found is None:
            raise SchemaError(name, f"must be one of {sorted(by_value)}, got {_describe(value)}")
        return found

    return check


def _checker_for(hint: Any) -> tuple[Checker, bool, Passes]:
    """Return (checker, holds_messages, passes) for one annotation."""
    if hint in _PRIMITIVES:
        check, passes = _PRIMITIVES[hint]
        return check, False, passes
    if isinstance(hint, type) and issubclass(hint, enum.StrEnum):
        return _one_of(hint), False, _NOTHING
    if isinstance(hint, type) and hint in _SCHEMAS:
        return _nested(hint), True, _NOTHING
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType) and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        check, nested, passes = _checker_for(inner)
        if isinstance(passes, frozenset):
            passes = passes | {type(None)}
        return _optional(check), nested, passes
    if origin in (tuple, list) and args:
        check, nested, _ = _checker_for(args[0])
        return _list_of(check), nested, _NOTHING
    if origin is dict and args and args[0] is str:
        check, nested, _ = _checker_for(args[1])
        return _map_of(check), nested, _NOTHING
    raise TypeError(f"unsupported field type in a message: {hint!r}")


def message(cls: type[T]) -> type[T]:
    """Register a frozen slotted dataclass as a wire message type."""
    hints = get_type_hints(cls)
    fields: list[_Field] = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if not f.init or f.kw_only:  # parse passes every field, by position
            raise TypeError(f"{cls.__name__}.{f.name}: a message's fields are all "
                            "positional __init__ arguments")
        check, nested, passes = _checker_for(hints[f.name])
        if f.default is not _MISSING:
            default: Any = f.default
        elif f.default_factory is not _MISSING:
            default = f.default_factory()
        else:
            default = _MISSING
        fields.append(_Field(f.name, check, default is _MISSING, default, nested, passes))
    _SCHEMAS[cls] = tuple(fields)
    _DUMPERS[cls] = _make_dumper(tuple(fields))
    return cls


def _make_dumper(fields: tuple[_Field, ...]) -> Callable[[Any], dict[str, Any]]:
    """A per-type dump: flat types are one attrgetter and a zip (msgpack packs
    tuples as arrays, so nothing needs converting)."""
    names = tuple(f.name for f in fields)
    if any(f.nested for f in fields):
        nested = {f.name for f in fields if f.nested}

        def dump_nested(obj: Any) -> dict[str, Any]:
            return {
                n: _dump_value(getattr(obj, n)) if n in nested else getattr(obj, n)
                for n in names
            }

        return dump_nested
    if not names:
        return lambda obj: {}
    if len(names) == 1:
        (only,) = names
        return lambda obj: {only: getattr(obj, only)}
    getter = operator.attrgetter(*names)
    return lambda obj: dict(zip(names, getter(obj), strict=True))


def parse(cls: type[T], raw: Any, strict: bool = True) -> T:
    """Validate an untrusted map into ``cls``; raise SchemaError saying what is wrong."""
    schema = _SCHEMAS[cls]
    if raw is None:
        raw = {}
    if type(raw) is not dict:
        raise SchemaError("", f"body must be a map, got {_describe(raw)}")
    values: list[Any] = []  # in the order of the fields
    seen = 0
    for f in schema:
        value = raw.get(f.name, _MISSING)
        if value is _MISSING:
            if f.required:
                raise SchemaError(f.name, "is required")
            values.append(f.default)
        else:
            seen += 1
            values.append(value if type(value) in f.passes else f.check(f.name, value))
    if strict and seen < len(raw):
        _reject_unknown(schema, raw)
    return cls(*values)


def _reject_unknown(schema: tuple[_Field, ...], raw: dict[Any, Any]) -> None:
    known = {f.name for f in schema}
    unknown = sorted(str(k) for k in raw if k not in known)
    if unknown:
        raise SchemaError(unknown[0], "is not a known field")


def dump(obj: Any) -> Any:
    """Turn a message (or a list/map of them) into plain msgpack-ready values."""
    dumper = _DUMPERS.get(type(obj))
    if dumper is not None:
        return dumper(obj)
    if isinstance(obj, tuple | list):
        return [dump(v) for v in obj]
    return obj


def dump_sparse(obj: Any) -> Any:
    """``dump``, leaving out the top-level fields at their defaults (``parse`` puts them
    back): what a client sends, so that a gateway from before a field was added still
    takes a request that does not use it (it refuses a field it does not know)."""
    out = dump(obj)
    schema = _SCHEMAS.get(type(obj))
    if schema is None:
        return out
    for f in schema:
        if not f.required and _is_default(out[f.name], f.default):
            del out[f.name]
    return out


def _is_default(value: Any, default: Any) -> bool:
    """Equal and of one type (``False == 0``, and a tuple default is not a list)."""
    return value is default or (type(value) is type(default) and value == default)


def _dump_value(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [dump(v) for v in value]
    if isinstance(value, dict):
        return {k: dump(v) for k, v in value.items()}
    return dump(value)


def is_message(cls: type) -> bool:
    return cls in _SCHEMAS


__all__ = ["SchemaError", "dump", "dump_sparse", "is_message", "message", "parse"]
_ = typing  # keep typing imported for get_type_hints on string annotations
