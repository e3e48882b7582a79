"""bench.backups: a short run times each step, checks the restored bytes, and stops its
cluster."""

from __future__ import annotations

import json

import pytest

from cinderblock.bench import backups


def test_a_short_run_times_each_step_and_its_restores_hold_the_right_bytes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert backups.main(["--size-gb", "1", "--fill", "0.1", "--change", "0.25",
                         "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["problems"] == []
    steps = {s["name"]: s for s in report["steps"]}
    assert list(steps) == ["backup", "incremental", "restore", "restore_new"]
    assert all(s["seconds"] > 0 and s["mib_per_s"] > 0 for s in steps.values())
    whole, delta = (steps[n]["repository_added_mib"] for n in ("backup", "incremental"))
    assert whole >= 100  # 102.4 MiB of random data, stored as it is
    assert 0 < delta <= 0.3 * whole  # 3 of the 12 chunks new; the rest links
    assert report["repository_mib"] == pytest.approx(whole + delta, abs=1.0)


def test_a_fill_out_of_range_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        backups.main(["--fill", "1.5"])
    assert "--fill and --change in (0, 1]" in capsys.readouterr().err
