"""The REST fuzz's own rules (bench.rest_fuzz): what it counts as a wrong reply, and
that its requests are a seed's and mutated as it says."""

from __future__ import annotations

import json
import random

from cinderblock.bench.rest_fuzz import SLOW_S, Known, Requests, judge


def fault(name: str, code: int, message: str = "why") -> bytes:
    return json.dumps({name: {"code": code, "message": message}}).encode()


def test_cinder_s_faults_and_successes_pass() -> None:
    assert judge(200, b'{"volume": {}}', 0.01) is None
    assert judge(202, b"", 0.01) is None
    assert judge(400, fault("badRequest", 400), 0.01) is None
    assert judge(404, fault("itemNotFound", 404), 0.01) is None
    assert judge(406, fault("computeFault", 406), 0.01) is None  # Cinder names no 406


def test_a_server_error_a_slow_answer_or_a_fault_not_cinder_s_is_a_problem() -> None:
    assert "answered 500" in (judge(500, fault("computeFault", 500), 0.01) or "")
    assert "after" in (judge(200, b"{}", SLOW_S + 1) or "")
    assert "not JSON" in (judge(400, b"<html>bad</html>", 0.01) or "")
    for wrong in (fault("itemNotFound", 400), fault("badRequest", 404),
                  fault("badRequest", 400, ""), b'{"badRequest": "no"}',
                  b'{"badRequest": {"code": 400, "message": "m"}, "extra": 1}'):
        assert "not Cinder's" in (judge(400, wrong, 0.01) or ""), wrong


def test_the_same_seed_sends_the_same_requests() -> None:
    def first(seed: int) -> list[str]:
        gen = Requests(random.Random(seed), Known())
        return [s.describe().split(" [")[0] for s in (gen.next() for _ in range(200))
                if "-" not in s.path]  # made-up uuids differ; the rest is the seed's

    assert first(5) == first(5)
    assert first(5) != first(6)


def test_requests_are_cinder_s_some_with_one_thing_wrong_and_some_shapeless() -> None:
    gen = Requests(random.Random(1), Known())
    sent = [gen.next() for _ in range(2000)]
    creates = [s.body for s in sent if (s.method, s.path) == ("POST", "/volumes")
               and s.version == "3.60"]
    whole = [b for b in creates if isinstance(b, dict) and isinstance(b.get("volume"), dict)
             and set(b["volume"]) in ({"size", "name"}, {"snapshot_id"}, {"source_volid"})]
    assert 0 < len(whole) < len(creates)  # most as Cinder's, some with one thing wrong
    assert {s.token for s in sent} == {"fuzz:fuzz", "fuzz-other:fuzz-other", "admin:admin"}
    assert any(s.method == "PATCH" or s.path.startswith("/fuzz/") for s in sent)


def test_what_a_reply_names_is_named_again() -> None:
    known = Known()
    known.learn({"volume": {"id": "v1"}})
    known.learn({"transfer": {"id": "t1", "auth_key": "k1"}})
    known.learn({"attachment": {"id": "a1"}, "other": {"id": "ignored"}})
    known.learn(["not", "a", "map"])
    assert (known.volume, known.transfer, known.attachment) == (["v1"], [("t1", "k1")], ["a1"])
    gen = Requests(random.Random(2), known)
    paths = {gen.next().path for _ in range(500)}
    assert any("v1" in p for p in paths) and any("a1" in p for p in paths)


def test_backups_made_are_named_again_and_every_backup_route_is_sent() -> None:
    """A backup's id (a create's summary) and a restore's new volume are learned; the
    run sends Cinder's backup requests at the backups it knows, and shapeless ones at
    every backup route (export and import among them)."""
    known = Known()
    known.learn({"backup": {"id": "b1", "name": "n", "links": []}})
    known.learn({"restore": {"backup_id": "b1", "volume_id": "v9", "volume_name": None}})
    assert (known.backup, known.volume) == (["b1"], ["v9"])
    gen = Requests(random.Random(3), known)
    sent = [gen.next() for _ in range(4000)]
    routes = {(s.method, s.path.split("?")[0].replace("b1", "{id}")) for s in sent}
    for route in (("POST", "/backups"), ("GET", "/backups/detail"), ("GET", "/backups/{id}"),
                  ("PUT", "/backups/{id}"), ("DELETE", "/backups/{id}"),
                  ("POST", "/backups/{id}/restore"), ("POST", "/backups/{id}/action"),
                  ("GET", "/backups/{id}/export_record"), ("POST", "/backups/import_record")):
        assert route in routes, route
    creates = [s.body for s in sent if (s.method, s.path) == ("POST", "/volumes")
               and isinstance(s.body, dict) and isinstance(s.body.get("volume"), dict)
               and s.body["volume"].get("backup_id") == "b1"]
    assert creates  # a volume created from a backup the run made (3.47)
    resets = [s for s in sent if s.path == "/backups/b1/action" and s.token == "admin:admin"]
    assert resets  # the admin's actions, at a backup the run made
