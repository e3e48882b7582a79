"""The cluster file is checked at load: each kind of mistake is one error naming its key."""

from __future__ import annotations

import contextlib
import copy
import json
import random
import re
import socket
from pathlib import Path
from typing import Any

import pytest
import zmq

from cinderblock.actors.runtime import config as config_module
from cinderblock.actors.runtime.config import (
    PORTS_ENV,
    ClusterConfig,
    ConfigError,
    embedded,
    free_port,
    from_dict,
    load,
    port_range,
)

ROOT = Path(__file__).resolve().parents[2]
KEY = zmq.curve_keypair()[0].decode()  # a real Z85 public key

CLUSTER_TOML = f"""
data_dir = "/var/lib/cinderblock"
gateway = "tcp://10.0.0.1:7000"
events_in = "tcp://10.0.0.1:7001"
events = "tcp://10.0.0.1:7002"
quota = "tcp://10.0.0.1:7003"
scheduler = "tcp://10.0.0.1:7004"
stats = "tcp://10.0.0.1:7005"
heartbeat_s = 0.5
stale_after_s = 2.5

[actors.gateway]
public_key = "{KEY}"

[volume_types.FCVolumeType]
volume_backend_name = "file"

[[nodes]]
host = "node-1"
data_dir = "/srv/cinderblock"
nbd_address = "10.0.0.11"
nbd_port = 10809
capacity_gb = 500
public_key = "{KEY}"

[[nodes]]
host = "node-2"
faults = ["stall:create_volume"]
"""


def base() -> dict[str, Any]:
    """A valid cluster file, parsed."""
    import tomllib

    return tomllib.loads(CLUSTER_TOML)


def changed(path: str, value: Any) -> dict[str, Any]:
    """The valid file with one key (``nodes.1.capacity_gb``) set, or deleted (``...``)."""
    raw = copy.deepcopy(base())
    *parents, last = path.split(".")
    target: Any = raw
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
    if value is ...:
        del target[last]
    else:
        target[int(last) if isinstance(target, list) else last] = value
    return raw


MISTAKES = [
    # unknown keys, at every level
    ("nodes.1.capactiy_gb", 10, "nodes[1].capactiy_gb: unknown key"),
    ("heartbeat", 1.0, "heartbeat: unknown key"),
    ("actors.gateway.pubkey", KEY, "actors.gateway.pubkey: unknown key"),
    ("actors.gatway", {"public_key": KEY}, "actors.gatway: unknown actor"),
    # wrong types
    ("nodes.0.nbd_port", "x", 'nodes[0].nbd_port: expected an integer, got "x"'),
    ("nodes.0.nbd_port", 10809.5, "nodes[0].nbd_port: expected an integer, got 10809.5"),
    ("nodes.0.nbd_port", True, "nodes[0].nbd_port: expected an integer, got true"),
    ("nodes.0.capacity_gb", "big", 'nodes[0].capacity_gb: expected a number, got "big"'),
    ("heartbeat_s", [1], "heartbeat_s: expected a number, got a list"),
    ("gateway", 7000, "gateway: expected a string, got 7000"),
    ("nodes.1.faults", "stall:create_volume",
     'nodes[1].faults: expected a list, got "stall:create_volume"'),
    ("nodes.1.faults", ["ok", 3], "nodes[1].faults[1]: expected a string, got 3"),
    ("nodes", {"host": "node-1"}, "nodes: expected a list, got a table"),
    ("nodes.0", "node-1", 'nodes[0]: expected a table, got "node-1"'),
    ("volume_types.FCVolumeType", "file",
     'volume_types.FCVolumeType: expected a table, got "file"'),
    ("volume_types.FCVolumeType.volume_backend_name", 1,
     "volume_types.FCVolumeType.volume_backend_name: expected a string, got 1"),
    ("quota_defaults", {"volumes": "ten"}, 'quota_defaults.volumes: expected an integer'),
    ("actors.gateway", KEY, "actors.gateway: expected a table"),
    # missing required keys
    ("data_dir", ..., "data_dir: missing (required)"),
    ("nodes.1.host", ..., "nodes[1].host: missing (required)"),
    # values with rules of their own
    ("quota", "10.0.0.1:7003", 'quota: expected an endpoint tcp://HOST:PORT, got "10.0.0.1:7003"'),
    ("scheduler", "tcp://10.0.0.1:99999", "scheduler: port 99999 is out of range"),
    ("stats", "ipc:///tmp/stats", "stats: expected an endpoint tcp://HOST:PORT"),
    ("actors.gateway.public_key", "not-a-key", "actors.gateway.public_key: expected a CURVE"),
    ("nodes.0.public_key", KEY[:-1] + "~", "nodes[0].public_key: expected a CURVE"),
    ("nodes.0.public_key", KEY[:39], "nodes[0].public_key: expected a CURVE"),
    ("nodes.1.host", "node-1", "nodes[1].host: 'node-1' is already the host of another node"),
    ("nodes.1.host", "node 2", 'nodes[1].host: expected a host name'),
    ("nodes.1.host", "gateway", "nodes[1].host: 'gateway' is a service actor's name"),
    ("nodes.0.nbd_port", 70000, "nodes[0].nbd_port: must be a port"),
    ("nodes.0.capacity_gb", 0, "nodes[0].capacity_gb: must be greater than 0"),
    ("nodes.0.reserved_percentage", 150, "nodes[0].reserved_percentage: must be 0 to 100"),
    ("heartbeat_s", 0, "heartbeat_s: must be greater than 0"),
    ("heartbeat_s", float("inf"), "heartbeat_s: must be greater than 0, got inf"),
    ("stale_after_s", 0.5, "stale_after_s: must be greater than heartbeat_s (0.5)"),
    ("synchronous", "SOMETIMES", 'synchronous: expected one of OFF, NORMAL, FULL, EXTRA'),
    ("check_before_start_mb", -1, "check_before_start_mb: must be 0 or more (megabytes), got -1"),
    ("check_before_start_mb", "all", "check_before_start_mb: expected a number"),
    ("quota_keep_answered_s", -1, "quota_keep_answered_s: must be 0 or more (seconds), got -1"),
    ("rest", ["127.0.0.1"], "rest[0]: expected HOST:PORT (a REST front's address)"),
    ("rest", ["127.0.0.1:99999"], "rest[0]: expected HOST:PORT"),
    ("rest", "127.0.0.1:8776", "rest: expected a list"),
    ("rest_certfile", "/etc/cinderblock/api.pem", "rest_keyfile: rest_certfile and "
     "rest_keyfile go together"),
    ("rest_keyfile", "/etc/cinderblock/api.key", "rest_certfile: rest_certfile and "
     "rest_keyfile go together"),
    ("nodes.0.volume_backend_name", "", "nodes[0].volume_backend_name: expected a name of "
     "1 to 255 printable characters"),
    ("nodes.0.volume_backend_name", " fast", "nodes[0].volume_backend_name: expected a name"),
]


def _named(test_id: str) -> str:
    """The random key named in a test's id, so every process collects the same ids."""
    return test_id.replace(KEY, "KEY").replace(KEY[:39], "KEY[:39]")


@pytest.mark.parametrize(("path", "value", "expected"), MISTAKES,
                         ids=[_named(f"{m[0]}={m[1]!r}")[:60] for m in MISTAKES])
def test_each_mistake_is_one_error_naming_the_file_and_the_key(
    path: str, value: Any, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        from_dict(changed(path, value), source="cluster.toml")
    message = str(caught.value)
    assert message.startswith(f"cluster.toml: {expected}"), message
    assert "\n" not in message


def test_the_valid_file_loads_whole_with_its_keys_and_node_data_dir(tmp_path: Path) -> None:
    path = tmp_path / "cluster.toml"
    path.write_text(CLUSTER_TOML)
    cfg = load(path)
    assert cfg.heartbeat_s == 0.5 and cfg.nodes[0].capacity_gb == 500.0
    assert isinstance(cfg.nodes[0].capacity_gb, float)
    assert cfg.nodes[1].faults == ("stall:create_volume",)
    assert cfg.public_keys() == {"gateway": KEY, "node-1": KEY}
    assert cfg.for_node("node-1").path("keys") == Path("/srv/cinderblock/keys")
    assert cfg.for_node("node-2").data_dir == "/var/lib/cinderblock"


def test_the_json_that_up_writes_reads_back_equal(tmp_path: Path) -> None:
    cfg = from_dict(base())
    path = tmp_path / "cluster.json"
    cfg.save(path)
    assert load(path) == cfg


def test_a_file_that_is_not_toml_says_so_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "cluster.toml"
    path.write_text('gateway = "tcp://10.0.0.1:7000\n')
    with pytest.raises(ConfigError, match=f"cannot read cluster file {re.escape(str(path))}"):
        load(path)


def test_a_file_that_is_not_a_table_is_refused() -> None:
    with pytest.raises(ConfigError, match="cluster file: expected a table, got a list"):
        from_dict(json.loads("[1, 2]"))


def test_the_example_in_the_operations_guide_loads(tmp_path: Path) -> None:
    guide = (ROOT / "docs" / "operations.md").read_text()
    examples = re.findall(r"```toml\n(.*?)```", guide, flags=re.S)
    assert examples, "docs/operations.md shows no ```toml example"
    for i, example in enumerate(examples):
        path = tmp_path / f"example-{i}.toml"
        path.write_text(example)
        assert isinstance(load(path), ClusterConfig)


def test_the_ports_of_one_cluster_are_picked_distinct_even_when_chance_repeats_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    """Each endpoint is picked free, then bound by its actor later: a pick that came
    up twice before either was bound gave two actors one port (CI: "Address already
    in use" for quota and events)."""
    free = _free_ports(6)
    a, b, c, d, e, f = free
    picks = iter([a, a, b, a, c, d, b, e, f])
    monkeypatch.setattr(random, "randrange", lambda *_: next(picks))
    monkeypatch.setattr(config_module, "_handed_out", {})
    cfg = embedded(tmp_path)
    ports = [int(ep.rsplit(":", 1)[1]) for ep in (cfg.gateway, cfg.events_in, cfg.events,
                                                   cfg.quota, cfg.scheduler, cfg.stats)]
    assert ports == free


def _free_ports(count: int) -> list[int]:
    """``count`` ports in free_port's range that can be bound now."""
    found: list[int] = []
    for port in range(20_000, 30_000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        found.append(port)
        if len(found) == count:
            return found
    raise AssertionError("no free ports between 20000 and 30000")


def test_free_ports_are_picked_from_the_range_cinderblock_ports_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    low = _ten_free_ports_below_the_usual_range()  # where no test's cluster picks
    monkeypatch.setenv(PORTS_ENV, f"{low}-{low + 9}")
    assert port_range() == (low, low + 10)
    monkeypatch.setattr(config_module, "_handed_out", {})
    picked = {free_port() for _ in range(5)}
    assert len(picked) == 5 and all(low <= port <= low + 9 for port in picked)
    monkeypatch.delenv(PORTS_ENV)
    assert port_range()[0] == 10_000


def _ten_free_ports_below_the_usual_range() -> int:
    for low in range(9000, 10_000, 10):
        with contextlib.ExitStack() as held:
            try:
                for port in range(low, low + 10):
                    held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                                       ).bind(("127.0.0.1", port))
            except OSError:
                continue
        return low
    raise AssertionError("no ten free ports in a row between 9000 and 9999")


def test_a_cinderblock_ports_range_with_no_free_port_left_is_refused_not_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        monkeypatch.setenv(PORTS_ENV, f"{port}-{port}")
        with pytest.raises(ConfigError, match=f"CINDERBLOCK_PORTS: no port from {port} to "
                                              f"{port} is free on 127.0.0.1"):
            free_port()


@pytest.mark.parametrize("given", ["", "20000", "20000-", "x-y", "20010-20000", "80-90",
                                   "20000-70000"])
def test_a_cinderblock_ports_that_is_not_a_range_is_refused_saying_so(
    monkeypatch: pytest.MonkeyPatch, given: str,
) -> None:
    monkeypatch.setenv(PORTS_ENV, given)
    with pytest.raises(ConfigError, match=f"CINDERBLOCK_PORTS: expected LOW-HIGH.*{given!r}"):
        free_port()
