"""Log levels as Cinder's set-log and get-log change and read them (plain code): the
loggers of a prefix, a level among four, and the services a binary and server name."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from cinderblock.actors.gateway.service_logs import services_named
from cinderblock.actors.runtime.config import NodeConfig
from cinderblock.actors.runtime.log_levels import check_level, levels, set_levels
from cinderblock.protocol.messages.log_levels import ServiceLogRequest
from cinderblock.protocol.wire.errors import InvalidInput


@pytest.fixture
def loggers() -> Iterator[list[logging.Logger]]:
    made = [logging.getLogger(name) for name in ("lvtest.a", "lvtest.a.b", "lvtest.c")]
    saved = [m.level for m in made]
    yield made
    for m, level in zip(made, saved, strict=True):
        m.setLevel(level)


def test_a_prefix_s_loggers_are_set_and_read_and_no_other(
    loggers: list[logging.Logger],
) -> None:
    assert set_levels("lvtest.a", "debug") == ["lvtest.a", "lvtest.a.b"]
    assert levels("lvtest.") == {"lvtest.a": "DEBUG", "lvtest.a.b": "DEBUG",
                                 "lvtest.c": logging.getLevelName(
                                     loggers[2].getEffectiveLevel())}
    set_levels("lvtest", "ERROR")
    assert set(levels("lvtest").values()) == {"ERROR"}
    assert levels("lvtest-none") == {}


@pytest.mark.parametrize("level", ["LOUD", "", None, 10, "CRITICAL", "NOTSET"])
def test_only_cinder_s_four_levels_are_levels(level: object) -> None:
    with pytest.raises(InvalidInput, match="is not a valid log level: one of INFO"):
        check_level(level)


def test_a_prefix_is_a_short_string() -> None:
    with pytest.raises(InvalidInput, match="a log prefix"):
        levels("x" * 256)


NODES = [NodeConfig("node-1", "file"), NodeConfig("node-2", "file")]


@pytest.mark.parametrize(("binary", "server", "named"), [
    (None, None, {"gateway", "quota", "scheduler", "node-1@file", "node-2@file"}),
    ("*", "", {"gateway", "quota", "scheduler", "node-1@file", "node-2@file"}),
    ("cinder-volume", None, {"node-1@file", "node-2@file"}),
    ("cinder-volume", "node-2", {"node-2@file"}),
    (None, "node-1@file", {"node-1@file"}),
    ("cinder-scheduler", "node-1", set()),
    ("cinder-api", None, set()),  # the REST front answers for itself
    ("cinder-backup", None, set()),  # none here
])
def test_a_binary_and_a_server_name_the_services(
    binary: str | None, server: str | None, named: set[str],
) -> None:
    found = services_named(ServiceLogRequest(binary, server), NODES)
    assert {s.host for s in found} == named


def test_a_binary_that_is_none_of_the_services_is_refused() -> None:
    with pytest.raises(InvalidInput, match="binary 'cinder-nothing' is none of"):
        services_named(ServiceLogRequest("cinder-nothing"), NODES)
