"""An actor's keys and its ZAP handler: who is on the other end of each socket.

Each actor process holds its own key pair and knows the public keys of the
cluster's actors (``<data-dir>/keys``); the gateway also reads the users file.
pyzmq's ZAP handler (``zmq.auth.thread.ThreadAuthenticator``) asks ``Trust``
about every CURVE handshake on every bound socket: the socket's ZAP domain
says which roles it admits (``access.DOMAINS``), and an admitted key's name
becomes the connection's ZAP User-Id, which libzmq attaches to every message
that comes over it. A refused handshake leaves no trace but a count, logged
at most once per ``REFUSAL_LOG_S``.

The users file is re-read when it changes (checked on each handshake and once a
second by the gateway), so ``cinderblock user add/remove`` needs no restart: a
removed user's open connections are refused from the next message on, since
the actor looks each message's User-Id up again.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import zmq
import zmq.auth.thread

from cinderblock.actors.runtime.config import ClusterConfig
from cinderblock.protocol.wire.access import (
    DOMAINS,
    Principal,
    User,
    UsersFileError,
    admits,
    read_users,
)
from cinderblock.protocol.wire.keys import (
    KeyPair,
    curve_client,
    curve_server,
    load_secret,
    secret_path,
)
from cinderblock.protocol.wire.keys import public_keys as read_public_keys

log = logging.getLogger(__name__)
REFUSAL_LOG_S = 10.0
HANDSHAKE_FAILURES = zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL


def actor_names(cfg: ClusterConfig) -> dict[str, str]:
    """Every actor of the cluster and its role: its key's name is its own name."""
    return {"gateway": "gateway", "quota": "quota", "scheduler": "scheduler",
            **{n.host: "node" for n in cfg.nodes}}


class Trust:
    """One actor's view: its own keys, the actors' public keys, the users (gateway)."""

    def __init__(self, cfg: ClusterConfig, own_name: str, with_users: bool) -> None:
        keys_dir = cfg.path("keys")
        self.own: KeyPair = load_secret(secret_path(keys_dir, own_name))
        # The keys directory's public keys, and over them the cluster file's (actors
        # on other hosts: their keys are nowhere else).
        self.publics = {**read_public_keys(keys_dir),
                        **{name: key.encode() for name, key in cfg.public_keys().items()}}
        self._actors: dict[bytes, Principal] = {}
        for name, role in actor_names(cfg).items():
            if name in self.publics:
                self._actors[self.publics[name]] = Principal(name, "", frozenset({role}))
        self._actors_by_name = {p.name: p for p in self._actors.values()}
        self._users_path: Path | None = cfg.path("users") if with_users else None
        self._users_stamp: tuple[int, int, int] | None = None
        self._users: dict[bytes, Principal] = {}
        self._users_by_name: dict[str, Principal] = {}
        self._lock = threading.Lock()
        self.refused = 0
        self._refused_logged = 0
        self._refusal_logged_at = 0.0
        self.reload_users()

    # ---- lookups ---------------------------------------------------------------
    def principal(self, name: str) -> Principal | None:
        """The principal a message's User-Id names (None: unknown, or no longer listed)."""
        return self._actors_by_name.get(name) or self._users_by_name.get(name)

    def by_key(self, z85_key: bytes) -> Principal | None:
        return self._actors.get(z85_key) or self._users.get(z85_key)

    def public_key(self, name: str) -> bytes:
        key = self.publics.get(name)
        if key is None:
            raise zmq.ZMQError(msg=f"no public key for {name!r} in the keys directory")
        return key

    # ---- the users file --------------------------------------------------------
    def reload_users(self) -> bool:
        """Re-read the users file if it changed; a bad file keeps the users we had."""
        if self._users_path is None:
            return False
        with self._lock:
            stamp = _stamp(self._users_path)
            if stamp == self._users_stamp:
                return False
            self._users_stamp = stamp
            try:
                users = read_users(self._users_path)
            except UsersFileError as exc:
                log.error("users file not applied, the previous users stay: %s", exc)
                return False
            self._apply(users)
        log.info("users file applied: %d users", len(self._users))
        return True

    def _apply(self, users: dict[str, User]) -> None:
        principals: dict[bytes, Principal] = {}
        for user in users.values():
            if user.name in self._actors_by_name:
                log.error("users file: user %r has an actor's name; ignored", user.name)
                continue
            principals[user.public_key.encode()] = user.principal()
        self._users = principals
        self._users_by_name = {p.name: p for p in principals.values()}

    # ---- ZAP -------------------------------------------------------------------
    def callback(self, domain: str, z85_key: bytes) -> bool:
        """pyzmq's credentials-provider hook: may this key connect to ``domain``?"""
        self.reload_users()
        principal = self.by_key(z85_key)
        if principal is not None and admits(domain, principal):
            return True
        self.count_refusal()
        return False

    def count_refusal(self) -> None:
        """One more connection refused (a key not admitted, or no CURVE at all); the
        log says how many, at most once per ``REFUSAL_LOG_S``."""
        with self._lock:
            self.refused += 1
            now = time.monotonic()
            if now - self._refusal_logged_at < REFUSAL_LOG_S:
                return
            fresh = self.refused - self._refused_logged
            self._refused_logged, self._refusal_logged_at = self.refused, now
        log.warning("refused %d connection attempts (unknown keys, keys not admitted "
                    "there, or no CURVE); %d in all", fresh, self.refused)

    def start(self, zctx: zmq.Context[zmq.Socket[bytes]]) -> Authenticator:
        auth = Authenticator(self, zctx)
        auth.start()
        for domain in DOMAINS:  # pyzmq looks providers up by exact domain ("*" is no wildcard)
            auth.configure_curve_callback(domain, credentials_provider=self)
        return auth

    # ---- sockets ---------------------------------------------------------------
    def serve(self, sock: zmq.Socket[bytes], domain: str) -> None:
        curve_server(sock, self.own, domain)

    def watch_handshakes(self, sock: zmq.Socket[bytes], also: int = 0) -> zmq.Socket[bytes]:
        """A monitor of the socket's failed handshakes that are not the ZAP handler's
        to see (plaintext or garbage against a CURVE server), and of the events
        ``also`` names; read it with ``on_monitor_event``. Made by the thread that
        owns ``sock``."""
        return sock.get_monitor_socket(HANDSHAKE_FAILURES | also)

    def on_monitor_event(self, frames: list[bytes]) -> None:
        self.count_refusal()

    def dial(self, sock: zmq.Socket[bytes], server: str) -> None:
        curve_client(sock, self.own, self.public_key(server))


class Authenticator(zmq.auth.thread.ThreadAuthenticator):
    """pyzmq's ZAP handler thread; the User-Id of an admitted key is its owner's name."""

    def __init__(self, trust: Trust, zctx: zmq.Context[zmq.Socket[bytes]]) -> None:
        super().__init__(zctx, log=logging.getLogger("cinderblock.zap"))
        self.trust = trust

    def curve_user_id(self, client_public_key: bytes) -> str:
        principal = self.trust.by_key(zmq.utils.z85.encode(client_public_key))
        return principal.name if principal is not None else ""


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)
