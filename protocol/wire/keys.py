"""CURVE key pairs on disk, and the socket options that put them to use.

Every actor and every user has a key pair, kept as pyzmq ``zmq.auth``
certificate files in one directory (``<data-dir>/keys``):

- ``NAME.key``         the public certificate (0644): anyone may have it;
- ``NAME.key_secret``  the public and secret key (0600): only its owner.

A file is written whole or not at all (made in a private temporary directory,
then renamed into place), and an existing pair is never overwritten: a key is
an identity, and replacing it silently would lock its owner out.

The sockets: a *server* (every bound socket) holds its own secret key and
admits clients through the ZAP handler (``actors.runtime.trust``); a *client*
(every connecting socket) holds its own key pair and the server's public key,
so it talks only to the server it meant. Nothing here invents cryptography:
CURVE is libzmq's, the files are pyzmq's.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
import zmq.auth

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"
KEY_ENV = "CINDERBLOCK_KEY"


class KeyFileError(ValueError):
    """A key file is missing or unreadable; the text names the file."""


@dataclass(frozen=True, slots=True)
class KeyPair:
    """One owner's CURVE keys, z85-encoded as libzmq wants them."""

    name: str
    public: bytes
    secret: bytes


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise KeyFileError(f"key name {name!r} must be 1-64 letters, digits, '_', '.' or '-' "
                        "(starting with a letter or digit)")
    return name


def public_path(keys_dir: Path, name: str) -> Path:
    return keys_dir / f"{check_name(name)}{PUBLIC_SUFFIX}"


def secret_path(keys_dir: Path, name: str) -> Path:
    return keys_dir / f"{check_name(name)}{SECRET_SUFFIX}"


def ensure_keys(keys_dir: Path, names: list[str] | tuple[str, ...]) -> list[str]:
    """Make the key pairs of ``names`` that do not exist yet; return those made."""
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    made = []
    for name in names:
        if not secret_path(keys_dir, name).exists():
            make_key(keys_dir, name)
            made.append(name)
    return made


def make_key(keys_dir: Path, name: str) -> KeyPair:
    """A new key pair for ``name``; refuses to replace an existing one."""
    secret_file = secret_path(keys_dir, name)
    if secret_file.exists() or public_path(keys_dir, name).exists():
        raise KeyFileError(f"a key named {name!r} already exists in {keys_dir}")
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    staging = Path(tempfile.mkdtemp(prefix=".new-key-", dir=keys_dir))
    try:
        public_tmp, secret_tmp = zmq.auth.create_certificates(staging, name)
        os.chmod(secret_tmp, 0o600)
        os.chmod(public_tmp, 0o644)
        os.replace(secret_tmp, secret_file)  # the secret first: a pair is known by it
        os.replace(public_tmp, public_path(keys_dir, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return load_secret(secret_file)


def load_secret(path: Path) -> KeyPair:
    """A key pair from a ``.key_secret`` file."""
    public, secret = _read(path)
    if secret is None:
        raise KeyFileError(f"{path} holds no secret key (give the NAME.key_secret file)")
    return KeyPair(_name_of(path), public, secret)


def load_public(path: Path) -> bytes:
    return _read(path)[0]


def public_keys(keys_dir: Path) -> dict[str, bytes]:
    """Every public key in the directory, by name."""
    if not keys_dir.is_dir():
        return {}
    return {p.name.removesuffix(PUBLIC_SUFFIX): load_public(p)
            for p in sorted(keys_dir.glob(f"*{PUBLIC_SUFFIX}"))}


def _read(path: Path) -> tuple[bytes, bytes | None]:
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc}") from exc
    if len(public) != 40 or (secret is not None and len(secret) != 40):
        raise KeyFileError(f"{path} is not a CURVE certificate (keys must be 40 z85 characters)")
    return public, secret


def _name_of(path: Path) -> str:
    return path.name.removesuffix(SECRET_SUFFIX).removesuffix(PUBLIC_SUFFIX)


# ---- sockets -------------------------------------------------------------
def curve_server(sock: zmq.Socket[Any], own: KeyPair, domain: str) -> None:
    """Make a bound socket a CURVE server; ``domain`` tells the ZAP handler which
    keys this socket admits. Set before ``bind``."""
    sock.setsockopt(zmq.ZAP_DOMAIN, domain.encode())
    sock.setsockopt(zmq.CURVE_SECRETKEY, own.secret)
    sock.setsockopt(zmq.CURVE_SERVER, 1)


def curve_client(sock: zmq.Socket[Any], own: KeyPair, server_public: bytes) -> None:
    """Make a connecting socket a CURVE client of the server with that public key.
    Set before ``connect``."""
    sock.setsockopt(zmq.CURVE_SERVERKEY, server_public)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, own.public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, own.secret)


def client_keys(key: str | Path | None, server_key: str | bytes | None = None,
                server: str = "gateway") -> tuple[KeyPair, bytes] | None:
    """The keys a client dials with: its own pair from ``key`` (a ``.key_secret``
    file; else ``$CINDERBLOCK_KEY``; neither: None, a plaintext client) and the
    server's public key (``server_key``, else ``SERVER.key`` beside the key file)."""
    if key is None:
        key = os.environ.get(KEY_ENV) or None
    if key is None:
        return None
    own = load_secret(Path(key))
    if server_key is None:
        server_key = load_public(Path(key).parent / f"{server}{PUBLIC_SUFFIX}")
    public = server_key.encode() if isinstance(server_key, str) else server_key
    if len(public) != 40:
        raise KeyFileError(f"the {server}'s public key must be 40 z85 characters")
    return own, public
