"""Actor logs under ``cinderblock up``-style clusters: a line for a failed flow names the
actor, the request id, the project and the volume; ``--log-format json`` writes one JSON
object a line; the files are rotating handlers' files under DATA_DIR/logs."""

from __future__ import annotations

import json
import logging
import logging.handlers
from pathlib import Path

import pytest

from cinderblock.actors.runtime import logs
from cinderblock.actors.runtime.cluster import Cluster
from cinderblock.protocol.client.client import SyncClient
from cinderblock.protocol.wire.errors import InvalidInput, OverQuota
from tests.conftest import _DATA_DIRS, make_config, user_key


def test_refused_requests_log_one_json_line_each_with_their_ids(tmp_path: Path) -> None:
    cfg = make_config(tmp_path / "c", nodes=1, quota={"gigabytes": 5})
    _DATA_DIRS.append(Path(cfg.data_dir))
    cluster = Cluster(cfg, log_format="json")
    cluster.start()
    try:
        with SyncClient(cfg.gateway, project="p-logs", key=user_key(cfg, "p-logs")) as c:
            with pytest.raises(OverQuota):
                c.create_volume(6, request_id="req-too-big")
            vol = c.create_volume(2, wait=True)
            with pytest.raises(InvalidInput):
                c.extend_volume(vol.id, 1, request_id="req-shrink")
    finally:
        cluster.stop()
    lines = [json.loads(line) for line in
             (Path(cfg.data_dir) / "logs" / "gateway.log").read_text().splitlines()]
    (too_big,) = [line for line in lines if line["request_id"] == "req-too-big"]
    assert (too_big["actor"], too_big["project"], too_big["level"]) == (
        "gateway", "p-logs", "WARNING")
    assert "volume_create_api failed" in too_big["message"]
    assert too_big["volume_id"] == "-"  # a refused create never got a volume
    assert too_big["ts"].endswith("+00:00")
    (shrink,) = [line for line in lines if line["request_id"] == "req-shrink"]
    assert (shrink["project"], shrink["volume_id"]) == ("p-logs", vol.id)
    assert "volume_extend_api failed" in shrink["message"]
    assert {line["actor"] for line in lines} == {"gateway"}
    assert not list((Path(cfg.data_dir) / "logs").glob("gateway.log.1")), "small: not rotated"


def test_a_log_file_rotates_at_its_size(tmp_path: Path) -> None:
    handler = logs.make_handler("tester", tmp_path / "t.log", "text", max_bytes=2000)
    log = logging.getLogger("cinderblock.test.rotation")
    log.propagate = False
    log.addHandler(handler)
    try:
        for i in range(100):
            log.warning("line %d of a log that must rotate", i)
    finally:
        log.removeHandler(handler)
        handler.close()
    assert isinstance(handler, logging.handlers.RotatingFileHandler)
    assert (tmp_path / "t.log.1").exists()
    for kept in tmp_path.glob("t.log*"):  # each ends at most one line past the size
        assert 2000 - 200 < kept.stat().st_size < 2000 + 200 or kept.name == "t.log", kept
    last = (tmp_path / "t.log").read_text().splitlines()[-1]
    assert " tester WARNING cinderblock.test.rotation [- project=- volume=-] line 99 " in last
