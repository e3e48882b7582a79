"""A data directory's keys and users: what ``cinderblock up``, ``keys`` and ``user`` change.

``<data-dir>/keys`` holds a key pair per actor and per user (``protocol.wire.keys``);
``<data-dir>/users`` lists the users (``protocol.wire.access``). ``up`` makes
whatever is missing on its first start: the actors' keys and three users,
``admin`` (project ``admin``, role ``admin``), ``demo`` (project ``demo``,
role ``member``), ``rest`` (role ``front``: the key the REST fronts speak
to the gateway with, passing on the users they authenticated) and ``exporter`` (role
``monitor``: the metrics exporter's, read-only ops and every event). Keys are never
replaced: a second ``up`` finds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cinderblock.actors.runtime.config import SERVICE_ACTORS, ClusterConfig
from cinderblock.actors.runtime.trust import actor_names
from cinderblock.protocol.wire.access import User, UsersFileError, read_users, write_users
from cinderblock.protocol.wire.keys import (
    KeyFileError,
    check_name,
    ensure_keys,
    load_public,
    make_key,
    public_keys,
    public_path,
    secret_path,
)

DEFAULT_USERS = (("admin", "admin", ("admin",)), ("demo", "demo", ("member",)),
                 ("rest", "services", ("front",)),  # the REST fronts' key (FRONT_USER)
                 ("exporter", "services", ("monitor",)))  # the metrics exporter's (MONITOR_USER)
FRONT_USER = "rest"
MONITOR_USER = "exporter"


@dataclass(frozen=True, slots=True)
class KeyInfo:
    name: str
    public_key: str
    kind: str  # "actor", "user", or "key" (a pair nobody is listed for)
    has_secret: bool


def keys_dir(data_dir: Path) -> Path:
    return data_dir / "keys"


def users_path(data_dir: Path) -> Path:
    return data_dir / "users"


def provision(cfg: ClusterConfig) -> list[str]:
    """Make the cluster's missing keys and default users; the names of the keys made."""
    data_dir = Path(cfg.data_dir)
    made = ensure_keys(keys_dir(data_dir), local_actors(cfg))
    users = read_users(users_path(data_dir))
    names = {u.name for u in users.values()}
    for name, project, roles in DEFAULT_USERS:
        if name not in names:
            add_user(data_dir, name, project, roles, reserved=actor_names(cfg))
            made.append(name)
    return made


def local_actors(cfg: ClusterConfig) -> tuple[str, ...]:
    """The actors whose keys live in this data directory: the service actors and the
    nodes without a data directory of their own (a node on its own host makes its
    key there, and the cluster file carries its public key)."""
    own = [n.host for n in cfg.nodes if n.data_dir in (None, cfg.data_dir)]
    return (*SERVICE_ACTORS, *own)


def add_user(data_dir: Path, name: str, project: str, roles: tuple[str, ...],
             reserved: dict[str, str] | None = None) -> User:
    """List a user (making its key pair if it has none yet)."""
    check_name(name)
    if reserved and name in reserved:
        raise UsersFileError(f"{name!r} is an actor's name; choose another user name")
    users = read_users(users_path(data_dir))
    if any(u.name == name for u in users.values()):
        raise UsersFileError(f"user {name!r} already exists")
    keys = keys_dir(data_dir)
    if secret_path(keys, name).exists() or public_path(keys, name).exists():
        public = load_public(public_path(keys, name))
    else:
        public = make_key(keys, name).public
    user = User(public.decode(), name, project, roles)
    users[user.public_key] = user
    write_users(users_path(data_dir), users)
    return user


def remove_user(data_dir: Path, name: str) -> User:
    """Unlist a user (its key files stay: ``--delete-key`` is the caller's to do)."""
    users = read_users(users_path(data_dir))
    found = [u for u in users.values() if u.name == name]
    if not found:
        raise UsersFileError(f"no user {name!r} in {users_path(data_dir)}")
    del users[found[0].public_key]
    write_users(users_path(data_dir), users)
    return found[0]


def list_users(data_dir: Path) -> list[User]:
    return sorted(read_users(users_path(data_dir)).values(), key=lambda u: u.name)


def list_keys(data_dir: Path, actors: tuple[str, ...] = ()) -> list[KeyInfo]:
    keys = keys_dir(data_dir)
    users = {u.name for u in read_users(users_path(data_dir)).values()}
    return [KeyInfo(name, public.decode(),
                    "actor" if name in actors else "user" if name in users else "key",
                    secret_path(keys, name).exists())
            for name, public in public_keys(keys).items()]


def secret_key_file(data_dir: Path, name: str) -> Path:
    path = secret_path(keys_dir(data_dir), name)
    if not path.exists():
        raise KeyFileError(f"no key for {name!r} in {keys_dir(data_dir)} "
                           "(`cinderblock user add` makes one)")
    return path
