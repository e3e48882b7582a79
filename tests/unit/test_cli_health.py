"""``cinderblock health``'s judgement of one actor's answer, without a cluster."""

from __future__ import annotations

from typing import Any

import pytest

from cinderblock.actors.cli.health import ActorHealth, _judge, integrity_word
from cinderblock.protocol.messages.health import ActorStats


@pytest.mark.parametrize(("integrity", "word"), [
    ("whole (checked before the start)", "whole"),
    ("whole (checked again in 2.4 s, at 2026-12-03T02:40:00Z)", "whole"),
    ("being checked (after the start)", "being checked"),
    ("not checked", "not checked"),
    ("not checked (again): unable to open database file", "not checked"),
    ("damaged (PRAGMA quick_check: Page 11: btreeInitPage() returns error code 11, found "
     "by the check again)", "damaged"),
    (None, None),
])
def test_the_table_shows_what_the_last_check_found_without_when(
    integrity: str | None, word: str | None,
) -> None:
    assert integrity_word(integrity) == word


def _answered(database: dict[str, Any]) -> ActorHealth:
    entry = ActorHealth("quota", via_gateway="up",
                        stats=ActorStats("quota", 1, 0.0, 1.0, database=database))
    _judge(entry)
    return entry


def test_an_actor_whose_file_was_found_damaged_is_unhealthy_saying_what_was_found() -> None:
    damaged = "damaged (PRAGMA quick_check: Main freelist: size is 1 but should be 0)"
    entry = _answered({"state": "ok", "integrity": damaged})
    assert not entry.healthy
    assert entry.problems == [f"database {damaged}"]


def test_a_file_not_checked_yet_or_being_checked_is_healthy() -> None:
    for integrity in ("not checked", "being checked (after the start)", "whole (checked "
                      "before the start)"):
        assert _answered({"state": "ok", "integrity": integrity}).healthy
