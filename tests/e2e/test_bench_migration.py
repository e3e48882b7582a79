"""bench.migration: a short run moves a volume there and back, checks its bytes after each
move, and reads over NBD only the data, not the holes."""

from __future__ import annotations

import json

import pytest

from cinderblock.bench import migration
from tests.nbd_tls import requires

pytestmark = requires("nbdcopy")


def test_a_short_run_moves_the_volume_there_and_back_reading_only_its_data(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert migration.main(["--size-gb", "2", "--data-mb", "16", "--rounds", "1",
                           "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["problems"] == []
    moves = report["moves"]
    assert [(m["source"], m["destination"]) for m in moves] in (
        [("node-1@file", "node-2@file"), ("node-2@file", "node-1@file")],
        [("node-2@file", "node-1@file"), ("node-1@file", "node-2@file")])
    for move in moves:
        assert move["seconds"] > 0
        assert 16 <= move["nbd_read_mib"] <= 17  # the 16 MiB of data; the holes unread


def test_data_beyond_the_volume_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        migration.main(["--size-gb", "1", "--data-mb", "2048"])
    assert "--data-mb within it" in capsys.readouterr().err
