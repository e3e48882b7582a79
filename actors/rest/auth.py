"""Who is calling: Cinder's noauth tokens on loopback, configured tokens elsewhere.

* noauth (Cinder's ``auth_strategy = noauth``; what the noauth plugins of cinderclient
  and openstacksdk send): ``X-Auth-Token: user:project``. Only when the front listens
  on a loopback address: anyone who can reach it may claim any project.
* tokens (``<data-dir>/rest-tokens``, one ``<token> <user>`` a line): the token names a
  user of the users file (``<key> <user> <project> <roles>``), which gives the project
  and roles. A front on any other address refuses to start without this file.

A user is an admin when it is called ``admin`` or the users file gives it the
``admin`` role. Pure code: the aiohttp middleware only calls ``Authenticator.identify``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cinderblock.actors.rest.errors import HttpFault

TOKENS_FILE = "rest-tokens"
USERS_FILE = "users"


@dataclass(frozen=True, slots=True)
class Caller:
    user: str
    project: str
    admin: bool


@dataclass(frozen=True, slots=True)
class UserEntry:
    project: str
    roles: tuple[str, ...]


class AuthConfigError(RuntimeError):
    """The front may not start as configured; the text says why."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_users(path: Path) -> dict[str, UserEntry]:
    """The trust task's users file: ``<z85-public-key> <user> <project> <roles,...>``."""
    users: dict[str, UserEntry] = {}
    if not path.exists():
        return users
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and not parts[0].startswith("#"):
            roles = tuple(parts[3].split(",")) if len(parts) > 3 else ()
            users[parts[1]] = UserEntry(parts[2], roles)
    return users


def read_tokens(path: Path) -> dict[str, str]:
    tokens: dict[str, str] = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and not parts[0].startswith("#"):
            tokens[parts[0]] = parts[1]
    return tokens


class Authenticator:
    def __init__(self, data_dir: Path, listen_host: str) -> None:
        tokens_path = data_dir / TOKENS_FILE
        self.users = read_users(data_dir / USERS_FILE)
        self.tokens = read_tokens(tokens_path) if tokens_path.exists() else None
        if self.tokens is None and not is_loopback(listen_host):
            raise AuthConfigError(
                f"refusing to serve the API on {listen_host} without tokens: noauth "
                f"(X-Auth-Token user:project) is for loopback only; write {tokens_path} "
                "(one '<token> <user>' a line) or listen on 127.0.0.1")

    @property
    def noauth(self) -> bool:
        return self.tokens is None

    def identify(self, token: str | None) -> Caller:
        if not token:
            raise HttpFault(401, "Authentication required: send X-Auth-Token "
                            + ("user:project" if self.noauth else "with a configured token"))
        if self.tokens is None:
            user, sep, project = token.partition(":")
            if not sep or not user or not project:
                raise HttpFault(401, "noauth tokens are 'user:project', "
                                f"got {token[:80]!r}")
            return Caller(user, project, self._is_admin(user))
        user_name = self.tokens.get(token)
        entry = self.users.get(user_name or "")
        if user_name is None or entry is None:
            raise HttpFault(401, "The request you have made requires authentication.")
        return Caller(user_name, entry.project, self._is_admin(user_name))

    def _is_admin(self, user: str) -> bool:
        entry = self.users.get(user)
        return user == "admin" or (entry is not None and "admin" in entry.roles)
