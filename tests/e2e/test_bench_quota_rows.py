"""bench.quota_rows: the quota actor's own schema and statements, both id orders, nothing left."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cinderblock.bench import quota_rows


def test_a_short_run_writes_every_create_and_leaves_no_file(tmp_path: Path) -> None:
    us = quota_rows.cpu_per_create_us(str(tmp_path), "ordered", creates=55, prefill=20, batch=10)
    assert us > 0 and list(tmp_path.iterdir()) == []
    result = quota_rows.run(creates=100, prefill=100, batch=10, repeat=1, within=str(tmp_path))
    assert list(tmp_path.iterdir()) == []
    assert set(result["cpu_us_per_create"]) == {"ordered", "random"}
    assert all(us > 0 for us in result["cpu_us_per_create"].values())


def test_the_ordered_ids_are_the_gateways_and_the_random_ones_are_not_sorted() -> None:
    ordered = quota_rows.ordered_ids("0123456789abcdef")
    made = [ordered() for _ in range(200)]
    assert made == sorted(made)
    unordered = quota_rows.random_ids("0123456789abcdef")
    shuffled = [unordered() for _ in range(200)]
    assert shuffled != sorted(shuffled)


def test_the_command_prints_json_and_refuses_bad_counts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert quota_rows.main(["--creates", "20", "--prefill", "0", "--repeat", "1",
                            "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["creates"] == 20 and printed["prefill"] == 0
    with pytest.raises(SystemExit):
        quota_rows.main(["--batch", "0"])
    assert "--batch must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        quota_rows.main(["--prefill", "-1"])
    assert "--prefill must be 0 or more" in capsys.readouterr().err
