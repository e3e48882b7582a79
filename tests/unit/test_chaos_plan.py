"""The kill suite's plan and judge (bench.chaos_plan), without processes."""

from __future__ import annotations

from cinderblock.bench.chaos import made_once, settled_check
from cinderblock.bench.chaos_plan import KINDS, Ledger, Request, judge, make_plan
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.states import VolumeStatus


def vol(volume_id: str, name: str, status: VolumeStatus = VolumeStatus.AVAILABLE,
        reason: str | None = None) -> Volume:
    return Volume(volume_id, "demo", 1, status, name=name, reason=reason)


def test_a_seed_fixes_the_order_of_the_load_and_kills_one_actor_of_each_kind_in_turn() -> None:
    plan = make_plan(7, creates=100, deletes=20, window_s=40.0, nodes=("node-1", "node-2"))
    assert plan == make_plan(7, 100, 20, 40.0, ("node-1", "node-2"))
    assert plan != make_plan(8, 100, 20, 40.0, ("node-1", "node-2"))
    assert sorted(plan.ops) == ["create"] * 100 + ["delete"] * 20
    kinds = ["node" if k.actor.startswith("node-") else k.actor for k in plan.kills]
    assert sorted(kinds) == sorted(KINDS)
    for i, kill in enumerate(plan.kills):  # each in its own slot of 10 s, early in it
        assert 10.0 * i + 1.0 <= kill.at_s <= 10.0 * i + 6.5


def test_a_freeze_asked_for_takes_a_slot_of_its_own_and_changes_nothing_else() -> None:
    nodes = ("node-1", "node-2")
    assert make_plan(7, 100, 20, 40.0, nodes, freeze=(), freeze_s=4.0) == \
        make_plan(7, 100, 20, 40.0, nodes)  # none asked for: the plan of before
    plan = make_plan(7, creates=100, deletes=20, window_s=40.0, nodes=nodes,
                     freeze=("quota",), freeze_s=4.0)
    (freeze,) = [k for k in plan.kills if k.freeze_s]
    assert (freeze.actor, freeze.freeze_s) == ("quota", 4.0)
    kills = [k for k in plan.kills if not k.freeze_s]
    assert sorted("node" if k.actor.startswith("node-") else k.actor for k in kills) == \
        sorted(KINDS)  # quota is killed too, in another slot
    for i, event in enumerate(plan.kills):  # five slots of 8 s
        assert 8.0 * i + 0.8 <= event.at_s <= 8.0 * i + 5.2
    burst = [t for t in plan.send_at_s if freeze.at_s - 0.3 <= t <= freeze.at_s]
    assert len(burst) >= 60 // 5  # requests in flight as it freezes
    every = make_plan(7, 100, 20, 40.0, nodes, freeze=KINDS, freeze_s=2.0)
    frozen = [k.actor for k in every.kills if k.freeze_s == 2.0]
    assert len(every.kills) == 8 and len(frozen) == 4
    assert sorted("node" if a.startswith("node-") else a for a in frozen) == sorted(KINDS)


def test_half_the_load_is_sent_steadily_and_half_in_a_burst_just_before_each_kill() -> None:
    plan = make_plan(3, creates=100, deletes=21, window_s=40.0, nodes=("node-1",))
    times = plan.send_at_s
    assert len(times) == 121 and list(times) == sorted(times) and times[0] == 0.0
    for kill in plan.kills:
        burst = [t for t in times if kill.at_s - 0.3 <= t <= kill.at_s]
        assert len(burst) >= 60 // 4
        assert len(set(burst)) <= 2  # one moment (a steady send may fall in it too)
    assert max(times) < 40.0


def test_a_settled_cluster_that_kept_every_promise_is_judged_clean() -> None:
    ledger = Ledger([Request("create", "r1", answers=["v1"], attempts=3),
                     Request("create", "r2", answers=["v2"]),
                     Request("delete", "r3", volume_id="v3", answers=["v3"]),
                     Request("delete", "r4", volume_id="v4", refused="invalid_state: busy")])
    volumes = [vol("v1", "r1"), vol("v2", "r2", VolumeStatus.ERROR, "no valid host"),
               vol("v4", "premade")]
    assert judge(ledger, volumes) == []
    assert ledger.retries == 2


def test_each_broken_promise_is_named() -> None:
    ledger = Ledger([
        Request("create", "gone", answers=["v1"]),
        Request("create", "twice", answers=["v2", "v3"]),
        Request("create", "stuck", answers=["v4"]),
        Request("create", "silent-error", answers=["v5"]),
        Request("create", "refused", refused="over_quota: no"),
        Request("create", "lost", unanswered=True, attempts=9),
        Request("delete", "kept", volume_id="v7", answers=["v7"]),
        Request("delete", "done-anyway", volume_id="v8", refused="unavailable: node"),
    ])
    volumes = [vol("v2", "twice"), vol("v3", "twice"),
               vol("v4", "stuck", VolumeStatus.CREATING),
               vol("v5", "silent-error", VolumeStatus.ERROR),
               vol("v6", "refused"), vol("v7", "premade")]
    assert judge(ledger, volumes) == [
        ("lost_ack", "acknowledged create gone: volume v1 is gone"),
        ("duplicate", "create twice was answered with 2 different volumes: ['v2', 'v3']"),
        ("duplicate", "create twice made 2 volumes"),
        ("lost_ack", "acknowledged create stuck: volume v4 is creating, not final"),
        ("lost_ack", "acknowledged create silent-error: volume v5 in error without a reason"),
        ("lost_ack", "create refused was refused (over_quota: no) but made a volume"),
        ("lost_ack", "create lost never answered after 9 attempts"),
        ("lost_ack", "acknowledged delete kept: volume v7 still exists (available)"),
        ("lost_ack", "delete done-anyway of v8 was reported failed (unavailable: node) "
                     "but the volume is gone"),
    ]


def test_each_line_of_the_settled_check_is_counted_under_its_check() -> None:
    assert [settled_check(line) for line in (
        "volume v1 stuck in creating",
        "demo: quota says 3 volumes in use, 2 exist",
        "demo: 1 gigabytes still reserved after every operation ended",
        "node-1: orphan file volume-v9 (no volume or snapshot there)",
        "node-2: file volume-v2 is missing",
    )] == ["stuck", "quota", "quota", "files", "files"]


def test_a_request_made_once_what_it_was_answered_with_or_is_found_wrong() -> None:
    answered = Request("backup", "r-1", answers=["b-1"])
    assert made_once(answered, "backup", ["b-1"]) == []
    assert made_once(Request("backup", "r-2"), "backup", []) == []  # refused: none made
    assert made_once(answered, "backup", ["b-1", "b-2"]) == [
        "backup request r-1 made 2: ['b-1', 'b-2']"]
    assert made_once(answered, "group snapshot", []) == [
        "group snapshot request r-1 was answered ['b-1'] and made none",
        "group snapshot request r-1 was answered ['b-1']; what it made is []"]
    assert made_once(answered, "backup", ["b-9"]) == [
        "backup request r-1 was answered ['b-1']; what it made is ['b-9']"]
