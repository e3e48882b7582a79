"""Cluster configuration: where every actor listens and what every node holds.

A cluster is described by one file (TOML written by hand, or the JSON that
``cinderblock up`` writes), read by every actor process. The embedded default
puts every actor on 127.0.0.1 with free ports and two storage nodes with
``file`` backends under the data directory.
"""

from __future__ import annotations

import json
import socket
import tomllib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

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

    @property
    def backend_id(self) -> str:
        """Cinder's host@backend name of this node's one backend."""
        return f"{self.host}@{self.backend}"


def host_of(backend_id: str) -> str:
    """The node's host name in a backend id ("node-1@file" → "node-1"): the
    identity its DEALER has at the gateway."""
    return backend_id.partition("@")[0]


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
    heartbeat_s: float = 1.0
    stale_after_s: float = 10.0
    reconcile_after_s: float = 120.0  # a transitional status this old is looked into
    reconcile_every_s: float = 30.0  # how often the gateway looks (0: never)
    synchronous: str = "NORMAL"
    volume_types: dict[str, dict[str, str]] = field(default_factory=dict)
    quota_defaults: dict[str, int] = field(default_factory=dict)

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
    return from_dict(raw)


def from_dict(raw: dict[str, Any]) -> ClusterConfig:
    try:
        nodes = tuple(
            NodeConfig(**{**n, "faults": tuple(n.get("faults", ()))}) for n in raw.pop("nodes", [])
        )
        return ClusterConfig(**raw, nodes=nodes)
    except TypeError as exc:
        raise ConfigError(f"bad cluster file: {exc}") from exc


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def embedded(
    data_dir: Path,
    backend: str = "file",
    nodes: int = 2,
    capacity_gb: float | None = None,
    host: str = "127.0.0.1",
) -> ClusterConfig:
    """The default cluster: every actor on loopback, ``nodes`` storage nodes."""

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
    )


def with_nodes(cfg: ClusterConfig, nodes: tuple[NodeConfig, ...]) -> ClusterConfig:
    return replace(cfg, nodes=nodes)
