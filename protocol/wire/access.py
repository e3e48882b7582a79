"""Who may do what: principals, the users file, and the pure access rules.

A *principal* is whoever holds a key: an actor (its name is its key's name:
``gateway``, ``quota``, ``scheduler``, a node's host) or a user listed in the
users file (``<data-dir>/users``, one line per user, like ``authorized_keys``)::

    <z85-public-key> <user> <project> <role>[,<role>...]

Roles: ``member`` and ``admin`` for people; ``front`` (a REST front that acts
for the users it authenticated itself: the only principal whose envelope
context is believed) and ``monitor`` (read-only ops and every event) for
services. Actors have their kind as their one role.

Everything here is plain code with no sockets: which roles a bound socket
admits (``admits``), which events a principal may subscribe to
(``may_subscribe``), and the users file's syntax. The op table says which roles
may send each op (``protocol.messages.ops.SENDERS``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

USER_ROLES = frozenset({"member", "admin", "front", "monitor"})
ACTOR_ROLES = frozenset({"gateway", "quota", "scheduler", "node"})
ROLES = USER_ROLES | ACTOR_ROLES
WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
Z85_KEY = re.compile(r"[0-9A-Za-z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}")

# The bound sockets ("domains"), and the roles each admits.
DOMAINS: dict[str, frozenset[str]] = {
    "gateway": USER_ROLES | {"node"},  # the API ROUTER: users and nodes
    "events": USER_ROLES,  # the event hub's subscriber side (what each sees: may_subscribe)
    "events_in": ACTOR_ROLES,  # the event hub's publisher side: only actors publish
    "quota": frozenset({"gateway"}),
    "scheduler": frozenset({"gateway", "node"}),
    "stats": frozenset({"node"}),  # the scheduler's SUB for node capacity reports
}
EVERYTHING = frozenset({"admin", "monitor"})  # roles that see every project's events


class UsersFileError(ValueError):
    """A users file line that is wrong; the text names the file, line and field."""


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    project: str
    roles: frozenset[str]

    @property
    def is_actor(self) -> bool:
        return bool(self.roles & ACTOR_ROLES)


@dataclass(frozen=True, slots=True)
class User:
    public_key: str
    name: str
    project: str
    roles: tuple[str, ...]

    def line(self) -> str:
        return f"{self.public_key} {self.name} {self.project} {','.join(self.roles)}"

    def principal(self) -> Principal:
        return Principal(self.name, self.project, frozenset(self.roles))


def admits(domain: str, principal: Principal) -> bool:
    """Whether the bound socket ``domain`` lets this principal connect."""
    return bool(DOMAINS.get(domain, frozenset()) & principal.roles)


def may_send(senders: frozenset[str], principal: Principal) -> bool:
    return bool(senders & principal.roles)


def event_topic(project: str) -> bytes:
    """The topic of a project's events; ``""`` (cluster events: heartbeats,
    backend stats) gives ``b"/"``, which no project's prefix matches."""
    return f"{project}/".encode()


def may_subscribe(principal: Principal, topic: bytes) -> bool:
    """Admins and monitors may subscribe to anything; anyone else only to topics
    inside their own project (a prefix of nothing shorter than ``project/``)."""
    if principal.roles & EVERYTHING:
        return True
    if "member" not in principal.roles:
        return False
    return topic.startswith(event_topic(principal.project))


# ---- the users file ---------------------------------------------------------
def parse_users(text: str, source: str = "users") -> dict[str, User]:
    """Users by public key; raises UsersFileError naming the first bad line."""
    users: dict[str, User] = {}
    names: set[str] = set()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user = parse_user(line, f"{source} line {number}")
        if user.public_key in users or user.name in names:
            raise UsersFileError(f"{source} line {number}: user {user.name!r} or its key "
                                 "is listed twice")
        users[user.public_key] = user
        names.add(user.name)
    return users


def parse_user(line: str, where: str) -> User:
    fields = line.split()
    if len(fields) != 4:
        raise UsersFileError(f"{where}: expected '<public-key> <user> <project> <roles>', "
                             f"got {len(fields)} fields")
    key, name, project, roles_text = fields
    if not Z85_KEY.fullmatch(key):
        raise UsersFileError(f"{where}: the public key must be 40 z85 characters")
    for what, value in (("user", name), ("project", project)):
        if not WORD.fullmatch(value):
            raise UsersFileError(f"{where}: {what} {value!r} must be 1-64 letters, digits, "
                                 "'_', '.' or '-'")
    roles = tuple(r for r in roles_text.split(",") if r)
    bad = [r for r in roles if r not in USER_ROLES]
    if not roles or bad:
        raise UsersFileError(f"{where}: roles must be some of {sorted(USER_ROLES)}, "
                             f"got {roles_text!r}")
    return User(key, name, project, roles)


def read_users(path: Path) -> dict[str, User]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise UsersFileError(f"cannot read {path}: {exc}") from exc
    return parse_users(text, str(path))


def write_users(path: Path, users: dict[str, User]) -> None:
    """Replace the file whole (a reader sees the old or the new one, never half)."""
    header = "# <z85-public-key> <user> <project> <roles>  (cinderblock user add/remove)\n"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(header + "".join(u.line() + "\n" for u in users.values()))
    tmp.chmod(0o644)
    tmp.replace(path)
