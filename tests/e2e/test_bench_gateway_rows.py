"""bench.gateway_rows: the gateway's own schema, every index measured, nothing left."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cinderblock.actors.gateway.volume_store import SCHEMA
from cinderblock.bench import gateway_rows


def test_every_index_of_the_volumes_table_is_measured_from_the_gateways_schema() -> None:
    table, indexes = gateway_rows.volume_ddl()
    assert table.startswith("CREATE TABLE IF NOT EXISTS volumes (")
    names = [name for name, _ in indexes]
    assert names and len(names) == SCHEMA.count(" ON volumes")
    assert "volumes_project_listing" in names and "volumes_unsettled" in names


def test_a_short_run_reports_every_layout_and_leaves_no_file(tmp_path: Path) -> None:
    result = gateway_rows.run(creates=300, prefill=300, batch=10, repeat=1,
                              within=str(tmp_path))
    assert list(tmp_path.iterdir()) == []
    assert result["cpu_us_per_create"] > result["table_only_us"] > 0  # eight indexes or none
    assert set(result["index_us"]) == {name for name, _ in gateway_rows.volume_ddl()[1]}


def test_the_command_prints_json_and_refuses_bad_counts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert gateway_rows.main(["--creates", "50", "--prefill", "0", "--repeat", "1",
                              "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["creates"] == 50 and printed["prefill"] == 0
    with pytest.raises(SystemExit):
        gateway_rows.main(["--batch", "0"])
    assert "--batch must be at least 1" in capsys.readouterr().err
