"""Cluster configuration: where every actor listens and what every node holds.

A cluster is described by one file (TOML written by hand, or the JSON that
``cinderblock up`` writes), read by every actor process. The embedded default
puts every actor on 127.0.0.1 with free ports and two storage nodes with
``file`` backends under the data directory. docs/operations.md is the
reference of the file.

Validation. The file is checked against the dataclasses below, field by field
from their type annotations (so a field added to a dataclass is checked with no
other change): an unknown key, a missing one or a value of the wrong type is
ONE ``ConfigError`` naming the file and the key's path
(``cluster.toml: nodes[1].capactiy_gb: unknown key``); then the values that
have rules of their own (endpoints, public keys, ports, host names) are checked
the same way. Nothing is half-loaded: a file is taken whole or refused.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import re
import socket
import tomllib
import types
import typing
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import zmq.utils.z85

DEFAULT_ZONE = "nova"
DEFAULT_TYPE = "__DEFAULT__"


class ConfigError(ValueError):
    """The cluster file is wrong; the text says where."""


@dataclass(frozen=True)
class NodeConfig:
    host: str
    backend: str = "file"
    availability_zone: str = DEFAULT_ZONE
    capacity_gb: float | None = None
    directory: str | None = None
    faults: tuple[str, ...] = ()
    reserved_percentage: float = 0.0
    max_over_subscription_ratio: float = 20.0
    nbd_address: str = "127.0.0.1"
    nbd_port: int = 0  # 0: any free port (kept across restarts when it can be)
    data_dir: str | None = None  # the node's own state on its own host (default: the cluster's)
    # the backup repository the node writes backups into and restores from (default:
    # DATA_DIR/backups of its data_dir): the same storage for every node that is to
    # restore another's backups (a shared mount; cinderblock up's nodes share one)
    backup_path: str | None = None
    public_key: str | None = None  # the node's CURVE public key (Z85), for the trust layer
    # Cinder's volume_backend_name: what a volume type's ``volume_backend_name`` extra spec
    # matches (default: the backend's kind, ``file`` or ``null``)
    volume_backend_name: str | None = None

    @property
    def backend_id(self) -> str:
        """Cinder's host@backend name of this node's one backend."""
        return f"{self.host}@{self.backend}"


def host_of(backend_id: str) -> str:
    """The node's host name in a backend id ("node-1@file" → "node-1"): the
    identity its DEALER has at the gateway."""
    return backend_id.partition("@")[0]


SERVICE_ACTORS = ("gateway", "quota", "scheduler")


@dataclass(frozen=True)
class ActorConfig:
    """What the cluster file says about one of the service actors besides its endpoints."""

    public_key: str | None = None  # its CURVE public key (Z85), for the trust layer


@dataclass(frozen=True)
class ClusterConfig:
    data_dir: str
    gateway: str
    events_in: str
    events: str
    quota: str
    scheduler: str
    stats: str
    nodes: tuple[NodeConfig, ...] = ()
    heartbeat_s: float = 0.5  # nodes' stats, every actor's heartbeat, the gateway's pings
    stale_after_s: float = 2.5  # silent this long: down (docs/operations.md, "When an actor stops")
    reconcile_after_s: float = 120.0  # a transitional status this old is looked into
    reconcile_every_s: float = 30.0  # how often the gateway looks (0: never)
    # a quota op's id, once the gateway has had its answer, is remembered this long more
    # (for a copy delayed on the wire; actors/quota/book.py), not the week of the window
    quota_keep_answered_s: float = 3600.0
    synchronous: str = "NORMAL"
    # a database file (with its WAL) up to this size is checked before its actor answers;
    # a larger one right after, while it answers (actors/runtime/database.py)
    check_before_start_mb: float = 256.0
    check_every_hours: float = 24.0  # and again while its actor runs (0: never)
    security: bool = True  # CURVE on every socket, identities from keys (off: bench only)
    volume_types: dict[str, dict[str, str]] = field(default_factory=dict)
    quota_defaults: dict[str, int] = field(default_factory=dict)
    actors: dict[str, ActorConfig] = field(default_factory=dict)  # keyed by SERVICE_ACTORS
    rest: tuple[str, ...] = ()  # HOST:PORT of each REST front (Cinder's API v3)
    # TLS for the REST fronts (Cinder's [ssl] cert_file and key_file, PEM): required beyond
    # loopback, where callers send their tokens, unless rest_plain_http says that TLS
    # ends in front of the fronts (a proxy on their own host)
    rest_certfile: str = ""
    rest_keyfile: str = ""
    rest_plain_http: bool = False
    # the metrics exporter's HTTP address, "host:port" ("": no exporter). Beyond loopback
    # it serves only over TLS to clients with a certificate the CA file accepts.
    metrics: str = ""
    metrics_certfile: str = ""
    metrics_keyfile: str = ""
    metrics_client_cafile: str = ""
    # how often the exporter asks the gateway for the counts by status (each reads every
    # volume's index entry: ~0.1 s at a million, aside from the gateway's loop)
    metrics_counts_every_s: float = 15.0

    @property
    def zones(self) -> tuple[str, ...]:
        return tuple(sorted({DEFAULT_ZONE, *(n.availability_zone for n in self.nodes)}))

    def node(self, host: str) -> NodeConfig:
        for node in self.nodes:
            if node.host == host:
                return node
        raise ConfigError(f"no storage node {host!r} in the cluster file")

    def path(self, *parts: str) -> Path:
        return Path(self.data_dir).joinpath(*parts)

    def backup_root(self, node: NodeConfig) -> Path:
        """The backup repository ``node`` writes into and restores from."""
        return Path(node.backup_path) if node.backup_path else self.path("backups")

    @property
    def check_before_start_bytes(self) -> int:
        return int(self.check_before_start_mb * 2**20)

    @property
    def check_every_s(self) -> float:
        return self.check_every_hours * 3600.0

    def for_node(self, host: str) -> ClusterConfig:
        """The config as the node ``host`` runs it: its own data directory, if the
        file gives it one, stands for the cluster's (its keys, exports, volumes)."""
        node = self.node(host)
        return self if node.data_dir is None else replace(self, data_dir=node.data_dir)

    def public_keys(self) -> dict[str, str]:
        """Every public key the file gives, by actor name (a node's name is its host)."""
        keys = {name: a.public_key for name, a in self.actors.items() if a.public_key}
        keys.update({n.host: n.public_key for n in self.nodes if n.public_key})
        return keys

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.to_json())
        tmp.replace(path)


def load(path: Path) -> ClusterConfig:
    try:
        text = path.read_text()
        raw = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read cluster file {path}: {exc}") from exc
    return from_dict(raw, source=path.name)


def from_dict(raw: object, source: str = "cluster file") -> ClusterConfig:
    """A checked ``ClusterConfig`` from a parsed file, or one ``ConfigError`` naming
    ``source`` and the key that is wrong."""
    try:
        cfg = _build(ClusterConfig, raw, "")
        assert isinstance(cfg, ClusterConfig)
        _check_values(cfg)
    except _Wrong as wrong:
        where = f"{wrong.path}: " if wrong.path else ""
        raise ConfigError(f"{source}: {where}{wrong.problem}") from None
    return cfg


# ---- validation: types, from the dataclasses' annotations -------------------
class _Wrong(Exception):
    """One mistake in the file: where (a key path) and what."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _build(cls: type, raw: object, path: str) -> object:
    """``cls`` (a dataclass) from a table, every field checked by its annotation."""
    if not isinstance(raw, dict):
        raise _Wrong(path, f"expected a table, got {_shown(raw)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in raw:
        if key not in fields:
            raise _Wrong(_join(path, str(key)), "unknown key")
    values: dict[str, object] = {}
    for name, f in fields.items():
        if name in raw:
            values[name] = _value(hints[name], raw[name], _join(path, name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise _Wrong(_join(path, name), "missing (required)")
    return cls(**values)


def _value(hint: Any, raw: object, path: str) -> object:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union) and type(None) in args:
        inner = next(a for a in args if a is not type(None))
        return None if raw is None else _value(inner, raw, path)
    if origin is tuple:
        if not isinstance(raw, list | tuple):
            raise _Wrong(path, f"expected a list, got {_shown(raw)}")
        return tuple(_value(args[0], item, f"{path}[{i}]") for i, item in enumerate(raw))
    if origin is dict:
        if not isinstance(raw, dict):
            raise _Wrong(path, f"expected a table, got {_shown(raw)}")
        return {str(k): _value(args[1], v, _join(path, str(k))) for k, v in raw.items()}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, raw, path)
    return _scalar(hint, raw, path)


_SCALARS: dict[type, str] = {bool: "true or false", int: "an integer", float: "a number",
                             str: "a string"}


def _scalar(hint: type, raw: object, path: str) -> object:
    """A bool is never an int here (TOML keeps them apart, JSON's true is not 1)."""
    if type(raw) is hint and hint in _SCALARS:
        return raw
    if hint is float and type(raw) is int:
        assert isinstance(raw, int)
        return float(raw)
    raise _Wrong(path, f"expected {_SCALARS.get(hint, hint.__name__)}, got {_shown(raw)}")


def _shown(raw: object) -> str:
    """A value as the error shows it: scalars as written, containers by kind."""
    if isinstance(raw, dict):
        return "a table"
    if isinstance(raw, list | tuple):
        return "a list"
    if raw is None:
        return "nothing (null)"
    try:
        return json.dumps(raw, allow_nan=False)
    except (TypeError, ValueError):
        return repr(raw)  # a TOML date or time, or nan/inf


# ---- validation: the values with rules of their own -------------------------
_ENDPOINT = re.compile(r"tcp://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.*-]+):(?P<port>[0-9]{1,5})")
_HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_BACKEND_NAME = re.compile(r"[!-~](?:[ -~]{0,253}[!-~])?")  # printable, not space-edged
ENDPOINT_FIELDS = ("gateway", "events_in", "events", "quota", "scheduler", "stats")
SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


def _require(ok: bool, path: str, problem: str) -> None:
    if not ok:
        raise _Wrong(path, problem)


def _check_endpoint(path: str, value: str) -> None:
    m = _ENDPOINT.fullmatch(value)
    _require(m is not None, path, f"expected an endpoint tcp://HOST:PORT, got {_shown(value)}")
    assert m is not None
    _require(1 <= int(m["port"]) <= 65535, path, f"port {m['port']} is out of range (1-65535)")


def _check_public_key(path: str, value: str | None) -> None:
    if value is None:
        return
    try:
        ok = len(value) == 40 and len(zmq.utils.z85.decode(value)) == 32
    except (ValueError, KeyError, IndexError):
        ok = False
    _require(ok, path, "expected a CURVE public key: 40 characters of Z85 "
                       f"(as in a keys/NAME.key file), got {_shown(value)}")


def _check_positive(path: str, value: float) -> None:
    _require(math.isfinite(value) and value > 0, path,
             f"must be greater than 0, got {_shown(value)}")


def _check_not_negative(path: str, value: float, allowed: str) -> None:
    _require(math.isfinite(value) and value >= 0, path,
             f"must be {allowed}, got {_shown(value)}")


def _check_values(cfg: ClusterConfig) -> None:
    for name in ENDPOINT_FIELDS:
        _check_endpoint(name, getattr(cfg, name))
    _check_positive("heartbeat_s", cfg.heartbeat_s)
    _check_positive("metrics_counts_every_s", cfg.metrics_counts_every_s)
    _check_not_negative("quota_keep_answered_s", cfg.quota_keep_answered_s,
                        "0 or more (seconds)")
    _require(cfg.stale_after_s > cfg.heartbeat_s, "stale_after_s",
             f"must be greater than heartbeat_s ({cfg.heartbeat_s:g}), got {cfg.stale_after_s:g}")
    _check_not_negative("check_before_start_mb", cfg.check_before_start_mb,
                        "0 or more (megabytes)")
    _check_not_negative("check_every_hours", cfg.check_every_hours, "0 (never) or more")
    _require(cfg.synchronous in SYNCHRONOUS, "synchronous",
             f"expected one of {', '.join(SYNCHRONOUS)}, got {_shown(cfg.synchronous)}")
    for name, actor in cfg.actors.items():
        _require(name in SERVICE_ACTORS, f"actors.{name}",
                 f"unknown actor (expected {', '.join(SERVICE_ACTORS)}; "
                 "storage nodes are listed under [[nodes]])")
        _check_public_key(f"actors.{name}.public_key", actor.public_key)
    seen: set[str] = set()
    for i, node in enumerate(cfg.nodes):
        _check_node(f"nodes[{i}]", node, seen)
    for i, listen in enumerate(cfg.rest):
        host, sep, port = listen.rpartition(":")
        _require(bool(sep and host) and port.isdigit() and 0 < int(port) <= 65535,
                 f"rest[{i}]", f"expected HOST:PORT (a REST front's address), got {listen!r}")
    _require(bool(cfg.rest_certfile) == bool(cfg.rest_keyfile),
             "rest_keyfile" if cfg.rest_certfile else "rest_certfile",
             "rest_certfile and rest_keyfile go together (the REST fronts' TLS certificate "
             "and its key)")


def _check_node(path: str, node: NodeConfig, seen: set[str]) -> None:
    _require(_HOST_NAME.fullmatch(node.host) is not None, f"{path}.host",
             "expected a host name: letters, digits, '.', '_', '-' (at most 63, "
             f"first a letter or digit), got {_shown(node.host)}")
    _require(node.host not in seen, f"{path}.host",
             f"{node.host!r} is already the host of another node")
    _require(node.host not in SERVICE_ACTORS, f"{path}.host",
             f"{node.host!r} is a service actor's name; choose another")
    seen.add(node.host)
    if node.capacity_gb is not None:
        _check_positive(f"{path}.capacity_gb", node.capacity_gb)
    _require(0 <= node.nbd_port <= 65535, f"{path}.nbd_port",
             f"must be a port, 0 to 65535 (0: any free port), got {node.nbd_port}")
    _require(0 <= node.reserved_percentage <= 100, f"{path}.reserved_percentage",
             f"must be 0 to 100, got {node.reserved_percentage:g}")
    _check_positive(f"{path}.max_over_subscription_ratio", node.max_over_subscription_ratio)
    if node.volume_backend_name is not None:
        _require(_BACKEND_NAME.fullmatch(node.volume_backend_name) is not None,
                 f"{path}.volume_backend_name",
                 "expected a name of 1 to 255 printable characters, got "
                 f"{_shown(node.volume_backend_name)}")
    _check_public_key(f"{path}.public_key", node.public_key)


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` now, for an actor to bind a moment later.

    Chosen below the kernel's ephemeral range, where no outgoing connection (ours
    or anyone's) is given a local port: a port picked there could be taken by a
    connect before the actor binds it ("Address already in use"). Nor is it one this
    process handed out lately: the endpoints of one cluster are picked one after
    another, none bound yet, and two of them must not share a port. Processes that
    start clusters side by side (a test run's workers) each pick from a range of
    their own (``CINDERBLOCK_PORTS``, ``port_range``), or one could be handed a port
    another's actor has not bound yet.
    """
    low, high = port_range()
    for _ in range(200):
        port = random.randrange(low, high)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        return _hand_out(port)
    if PORTS_ENV in os.environ:  # a range given is kept to, not left for the kernel's
        raise ConfigError(f"{PORTS_ENV}: no port from {low} to {high - 1} is free on {host} "
                          "(none of 200 tries was both free and not handed out lately by "
                          "this process); give a wider range")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        found: int = s.getsockname()[1]
    return _hand_out(found)


_handed_out: dict[int, None] = {}  # the ports free_port returned lately, oldest first
_HANDED_OUT_KEPT = 4096


def _hand_out(port: int) -> int:
    _handed_out[port] = None
    if len(_handed_out) > _HANDED_OUT_KEPT:
        del _handed_out[next(iter(_handed_out))]
    return port


PORTS_ENV = "CINDERBLOCK_PORTS"


def port_range() -> tuple[int, int]:
    """Where ``free_port`` picks from: ``CINDERBLOCK_PORTS`` (``LOW-HIGH``, both
    included) if set, else 10000 up to the kernel's ephemeral range."""
    given = os.environ.get(PORTS_ENV)
    if given is None:
        return 10_000, _ephemeral_low()
    low_text, _, high_text = given.partition("-")
    try:
        low, high = int(low_text), int(high_text)
    except ValueError:
        low = high = 0
    if not 1024 <= low <= high <= 65535:
        raise ConfigError(f"{PORTS_ENV}: expected LOW-HIGH, two ports from 1024 to 65535, "
                          f"the first not above the second, got {given!r}")
    return low, high + 1


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (32768 where unknown)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return max(low, 10_001)


def embedded(
    data_dir: Path,
    backend: str = "file",
    nodes: int = 2,
    capacity_gb: float | None = None,
    host: str = "127.0.0.1",
    metrics: bool = False,
) -> ClusterConfig:
    """The default cluster: every actor on loopback, ``nodes`` storage nodes (and a
    metrics exporter on a free loopback port with ``metrics``)."""

    def ep() -> str:
        return f"tcp://{host}:{free_port(host)}"

    node_cfgs = tuple(
        NodeConfig(host=f"node-{i}", backend=backend, capacity_gb=capacity_gb)
        for i in range(1, nodes + 1)
    )
    return ClusterConfig(
        data_dir=str(data_dir.resolve()),
        gateway=ep(), events_in=ep(), events=ep(),
        quota=ep(), scheduler=ep(), stats=ep(),
        nodes=node_cfgs,
        volume_types={DEFAULT_TYPE: {}, "FCVolumeType": {"volume_backend_name": backend}},
        metrics=f"{host}:{free_port(host)}" if metrics else "",
    )


def with_rest_fronts(cfg: ClusterConfig, count: int = 1, port: int | None = None,
                     host: str = "127.0.0.1") -> ClusterConfig:
    """``count`` REST fronts on ``host``: the first on ``port`` (else a free one)."""
    ports = [port or free_port(host), *(free_port(host) for _ in range(count - 1))]
    return replace(cfg, rest=tuple(f"{host}:{p}" for p in ports[:count]))


def rest_url(listen: str, tls: bool = False) -> str:
    """The API's base URL (Cinder's endpoint, ``.../v3``) of a front on ``listen``
    (``tls``: served over TLS, ``rest_certfile``)."""
    host, _, port = listen.rpartition(":")
    return f"{'https' if tls else 'http'}://{host if ':' not in host else f'[{host}]'}" \
        f":{port}/v3"


ENDPOINTS = ("gateway", "events_in", "events", "quota", "scheduler", "stats")


def with_endpoints_of(cfg: ClusterConfig, previous: Path, keep_rest: bool = True
                      ) -> ClusterConfig:
    """``cfg`` with the endpoints of the cluster file an earlier start left in the
    data directory, when it has one and each of those ports can be bound now: a
    cluster started again is found where it was. Otherwise ``cfg`` as it is."""
    try:
        old = load(previous)
    except ConfigError:
        return cfg
    endpoints = {name: getattr(old, name) for name in ENDPOINTS}
    if not all(_bindable(ep) for ep in endpoints.values()):
        return cfg
    kept = replace(cfg, **endpoints)
    same_fronts = keep_rest and len(old.rest) == len(cfg.rest)
    if same_fronts and all(_bindable(f"tcp://{a}") for a in old.rest):
        kept = replace(kept, rest=old.rest)  # the REST fronts too, when as many
    if cfg.metrics and old.metrics and _bindable(f"tcp://{old.metrics}"):
        kept = replace(kept, metrics=old.metrics)  # and the exporter, when it runs
    listens = [*endpoints.values(), *(f"tcp://{a}" for a in (*kept.rest, kept.metrics) if a)]
    if len(set(listens)) < len(listens):  # an old port among the new picks
        return cfg
    return kept


def _bindable(endpoint: str) -> bool:
    """Whether a ``tcp://HOST:PORT`` endpoint's port is free (other transports: yes)."""
    if not endpoint.startswith("tcp://"):
        return True
    host, _, port = endpoint[len("tcp://"):].rpartition(":")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, int(port)))
    except (OSError, ValueError):
        return False
    return True


def with_nodes(cfg: ClusterConfig, nodes: tuple[NodeConfig, ...]) -> ClusterConfig:
    return replace(cfg, nodes=nodes)
