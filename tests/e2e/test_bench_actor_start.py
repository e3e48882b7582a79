"""bench.actor_start: a short run of both ways starts, measures and stops real clusters,
each actor started through the way it names."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from cinderblock.bench import actor_start


def test_a_short_comparison_reports_both_ways_and_starts_each_as_it_says(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    commands: list[list[str]] = []
    real = subprocess.Popen

    def recording(cmd: list[str], *args: Any, **kwargs: Any) -> Any:
        commands.append(list(cmd))
        return real(cmd, *args, **kwargs)

    monkeypatch.setattr(actor_start, "_REAL_POPEN", recording)
    assert actor_start.main(["--compare", "--runs", "1", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert set(found) == {"entry", "whole-cli"}
    for figures in found.values():
        assert figures["runs"] == 1
        assert 0 < figures["ready_s_median"] < 60
        assert 0 < figures["actors_cpu_s_median"] < 120
    entry = [c for c in commands if c[1:3] == ["-m", "cinderblock"]]
    whole = [c for c in commands if c[1] == "-c" and "actors.cli.main" in c[2]]
    assert len(entry) == len(whole) == 6  # quota, scheduler, gateway, 2 nodes, a front
    assert all(c[3] == "actor" for c in entry) and all(c[3] == "actor" for c in whole)


def test_runs_below_one_are_refused() -> None:
    with pytest.raises(SystemExit):
        actor_start.main(["--runs", "0"])
