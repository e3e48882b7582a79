"""bench.wakeups: a short run measures every pause and leaves no process behind."""

from __future__ import annotations

import json
import multiprocessing

import pytest

from cinderblock.bench import wakeups


def test_a_short_run_measures_streamed_sends_and_each_pause_and_stops_its_echo() -> None:
    result = wakeups.run(50, pauses_ms=(0.0, 1.0))
    assert result["messages"] == 50
    assert result["streamed"]["send_us"] > 0
    assert [row["pause_ms"] for row in result["pauses"]] == [0.0, 1.0]
    for row in result["pauses"]:
        assert 0 < row["send_us"] < row["round_trip_us"]
        assert row["send_cpu_us"] >= 0 and row["python_us"] > 0
    assert multiprocessing.active_children() == []


def test_the_command_prints_json(capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    real_run = wakeups.run
    monkeypatch.setattr(wakeups, "run", lambda n: real_run(n, pauses_ms=(0.0,)))
    assert wakeups.main(["--messages", "20", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["messages"] == 20 and len(printed["pauses"]) == 1


def test_a_count_below_one_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        wakeups.main(["--messages", "0"])
    assert "--messages must be at least 1" in capsys.readouterr().err
