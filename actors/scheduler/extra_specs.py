"""Matching volume-type extra specs against backend capabilities.

The semantics are Cinder's (``cinder/scheduler/filters/extra_specs_ops.py``
and ``CapabilitiesFilter``), written afresh:

A requirement is a string. If its first word is an operator, the rest are its
operands; otherwise the whole string must equal the capability.

    ``<is> True``           boolean (``1 t true on y yes``, any case, are true)
    ``<in> abc``            substring of the capability (member, for a list)
    ``<all-in> a b``        every operand is in the capability
    ``<or> a <or> b``       the capability equals one of the operands
    ``= 10``                numeric, *at least* 10 (Cinder's legacy meaning)
    ``== != >= <= > <``     numeric comparisons
    ``s== s!= s< s<= s> s>=`` string comparisons

An operand that does not parse as a number fails the match; it never raises.
Capability values are compared as strings (``str(value)``), so a boolean
capability ``True`` equals the plain requirement ``"True"``.

Keys: ``capabilities:x`` (and ``capabilities:x:y`` for nested capabilities)
and unscoped keys such as ``volume_backend_name`` or ``multiattach`` are
matched; any other scope (``qos:``, ``provisioning:``, ``RESKEY:`` ...) is
for someone else and is skipped. A capability the backend lacks fails.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence

__all__ = ["as_bool", "match", "satisfies"]

_TRUE_WORDS = frozenset({"1", "t", "true", "on", "y", "yes"})
_CONTAINERS = (list, tuple, set, frozenset)


def as_bool(value: object) -> bool:
    """oslo's ``bool_from_string`` (not strict): unknown words are false."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in _TRUE_WORDS


def _numeric(compare: Callable[[float, float], bool]) -> Callable[[object, str], bool]:
    def check(value: object, operand: str) -> bool:
        return compare(float(str(value)), float(operand))

    return check


def _textual(compare: Callable[[str, str], bool]) -> Callable[[object, str], bool]:
    def check(value: object, operand: str) -> bool:
        return compare(str(value), operand)

    return check


def _contains(value: object, operand: str) -> bool:
    if isinstance(value, _CONTAINERS):
        return operand in value
    return operand in str(value)


def _is(value: object, operand: str) -> bool:
    return as_bool(value) is as_bool(operand)


_BINARY: dict[str, Callable[[object, str], bool]] = {
    "=": _numeric(operator.ge),
    "==": _numeric(operator.eq),
    "!=": _numeric(operator.ne),
    ">=": _numeric(operator.ge),
    "<=": _numeric(operator.le),
    ">": _numeric(operator.gt),
    "<": _numeric(operator.lt),
    "s==": _textual(operator.eq),
    "s!=": _textual(operator.ne),
    "s<": _textual(operator.lt),
    "s<=": _textual(operator.le),
    "s>": _textual(operator.gt),
    "s>=": _textual(operator.ge),
    "<in>": _contains,
    "<is>": _is,
}


def _one_of(value: object, operands: Sequence[str]) -> bool:
    """``<or> a <or> b``: the values sit at every other word."""
    return str(value) in operands[0::2]


def _all_in(value: object, operands: Sequence[str]) -> bool:
    return bool(operands) and all(_contains(value, operand) for operand in operands)


def match(capability_value: object, requirement: str) -> bool:
    """Whether one capability value satisfies one extra-spec requirement."""
    words = requirement.split()
    op = words[0] if words else ""
    if op == "<or>":
        return capability_value is not None and _one_of(capability_value, words[1:])
    if op == "<all-in>":
        return capability_value is not None and _all_in(capability_value, words[1:])
    check = _BINARY.get(op)
    if check is None:
        return str(capability_value) == requirement
    if capability_value is None or len(words) < 2:
        return False
    try:
        return check(capability_value, words[1])
    except (TypeError, ValueError):
        return False


def _capability_path(key: str) -> list[str] | None:
    """The capability a key names, or None when the key is for another scope."""
    scope = key.split(":")
    if len(scope) == 1:
        return scope
    if scope[0] != "capabilities":
        return None
    return scope[1:]


def _lookup(capabilities: Mapping[str, object], path: list[str]) -> object:
    found: object = capabilities
    for name in path:
        if not isinstance(found, Mapping):
            return None
        found = found.get(name)
    return found


def satisfies(capabilities: Mapping[str, object], extra_specs: Mapping[str, str]) -> bool:
    """Whether a backend with these capabilities may host a volume of this type."""
    for key, requirement in extra_specs.items():
        path = _capability_path(key)
        if path is None:
            continue
        value = _lookup(capabilities, path)
        if value is None or not match(value, requirement):
            return False
    return True
