"""The exporter's metrics folded from events alone (no sockets): outcomes, latency,
backends, heartbeats, quotas, counts by status."""

from __future__ import annotations

from typing import Any

from cinderblock.actors.exporter.metrics import ClusterMetrics
from cinderblock.protocol.messages.health import StatusCounts

T0 = 1_800_000_000.0


def flow(volume: str, name: str, state: str, ts: float, **more: Any) -> dict[str, Any]:
    return {"kind": "flow", "flow": name, "state": state, "volume_id": volume, "ts": ts,
            "flow_id": f"{name}-{volume}", "project_id": "p1", **more}


def status(volume: str, value: str, ts: float) -> dict[str, Any]:
    return {"kind": "volume", "volume_id": volume, "status": value, "project_id": "p1",
            "ts": ts}


def sample(m: ClusterMetrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def test_creates_are_counted_by_outcome_and_timed_from_request_to_available() -> None:
    m = ClusterMetrics()
    for e in (flow("a", "volume_create_api", "PENDING", T0), status("a", "creating", T0 + 0.1),
              status("a", "available", T0 + 0.5),
              flow("b", "volume_create_api", "PENDING", T0), status("b", "error", T0 + 1),
              flow("c", "volume_create_api", "PENDING", T0),
              flow("c", "volume_create_api", "FAILURE", T0, code="over_quota"),
              status("a", "available", T0 + 9)):  # an extend's available is no create
        m.observe(e)
    assert sample(m, "cinderblock_volume_creates_total", outcome="available") == 1
    assert sample(m, "cinderblock_volume_creates_total", outcome="error") == 1
    assert sample(m, "cinderblock_volume_creates_total", outcome="refused") == 1
    assert sample(m, "cinderblock_volume_create_seconds_count") == 1
    assert sample(m, "cinderblock_volume_create_seconds_sum") == 0.5
    assert sample(m, "cinderblock_volume_create_seconds_bucket", le="0.5") == 1
    assert sample(m, "cinderblock_volume_create_seconds_bucket", le="0.25") == 0
    assert m.projects == {"p1"}


def test_deletes_backends_heartbeats_and_quotas() -> None:
    m = ClusterMetrics()
    m.observe(flow("a", "volume_delete_api", "PENDING", T0))
    m.observe(status("a", "deleted", T0 + 1))
    m.observe(status("b", "error_deleting", T0 + 1))
    m.observe({"kind": "backend", "backend": "n1@file", "total_capacity_gb": 100.0,
               "free_capacity_gb": 60.0, "allocated_capacity_gb": 40,
               "provisioned_capacity_gb": 40.0, "volumes": 3, "ts": T0})
    m.observe({"kind": "heartbeat", "actor": "gateway", "ts": T0,
               "statistics": {"uptime_s": 12.5, "restarts": 1, "handled": 7,
                              "flows": {"running": 2, "done": 5, "failed": 0},
                              "collector": {"pause_s": 0.25, "collected": 3},
                              "quota_calls_resent": 4, "quota_calls_given_up": 0,
                              "node_calls_given_up": 2, "lost_creates_sent_again": 9}})
    m.observe({"kind": "heartbeat", "actor": "node-1", "ts": T0,
               "statistics": {"exports": 2, "nbd_connections": 1, "nbd_bytes_read": 4096,
                              "nbd_bytes_written": 512, "nbd_throttled": 7,
                              "nbd_throttled_s": 1.5}})
    m.set_quota("p1", {"volumes": 10}, {"volumes": 4}, {"volumes": 1})
    assert sample(m, "cinderblock_volume_deletes_total", outcome="deleted") == 1
    assert sample(m, "cinderblock_volume_deletes_total", outcome="error") == 1
    assert sample(m, "cinderblock_backend_capacity_gb", backend="n1@file", kind="free") == 60
    assert sample(m, "cinderblock_backend_volumes", backend="n1@file") == 3
    assert sample(m, "cinderblock_actor_uptime_seconds", actor="gateway") == 12.5
    assert sample(m, "cinderblock_actor_restarts", actor="gateway") == 1
    assert sample(m, "cinderblock_actor_gc_pause_seconds", actor="gateway") == 0.25
    assert sample(m, "cinderblock_actor_gc_collected", actor="gateway") == 3
    assert sample(m, "cinderblock_actor_flows", actor="gateway", state="running") == 2
    assert sample(m, "cinderblock_quota_in_use", project="p1", resource="volumes") == 4
    assert sample(m, "cinderblock_nbd_exports", actor="node-1") == 2
    assert sample(m, "cinderblock_nbd_bytes_read", actor="node-1") == 4096
    assert sample(m, "cinderblock_nbd_throttled_requests", actor="node-1") == 7
    assert sample(m, "cinderblock_nbd_throttled_seconds", actor="node-1") == 1.5
    assert sample(m, "cinderblock_gateway_peer_calls", what="quota_resent") == 4
    assert sample(m, "cinderblock_gateway_peer_calls", what="quota_given_up") == 0
    assert sample(m, "cinderblock_gateway_peer_calls", what="node_given_up") == 2
    assert sample(m, "cinderblock_gateway_peer_calls", what="creates_sent_again") == 9
    assert sample(m, "cinderblock_actor_up", actor="gateway") == 1
    m.mark_silent(T0 + 60, after_s=5)
    assert sample(m, "cinderblock_actor_up", actor="gateway") == 0


def test_counts_by_status_show_every_status_and_go_back_to_zero() -> None:
    m = ClusterMetrics()
    m.set_status_counts(StatusCounts({"available": 5, "error": 1}, {"creating": 2},
                                     {"attached": 1}, {"restoring": 1}, {"error": 2}))
    assert sample(m, "cinderblock_volumes", status="available") == 5
    assert sample(m, "cinderblock_volumes", status="error") == 1
    assert sample(m, "cinderblock_volumes", status="in-use") == 0  # known, none in it
    assert sample(m, "cinderblock_volumes", status="deleted") is None  # no row is
    assert sample(m, "cinderblock_snapshots", status="creating") == 2
    assert sample(m, "cinderblock_attachments", status="attached") == 1
    assert sample(m, "cinderblock_attachments", status="reserved") == 0
    assert sample(m, "cinderblock_backups", status="restoring") == 1
    assert sample(m, "cinderblock_backups", status="error") == 0
    assert sample(m, "cinderblock_groups", status="error") == 2
    assert sample(m, "cinderblock_groups", status="creating") == 0

    m.set_status_counts(StatusCounts({"available": 6, "a-newer-status": 1}))
    assert sample(m, "cinderblock_volumes", status="error") == 0  # mended since
    assert sample(m, "cinderblock_volumes", status="available") == 6
    assert sample(m, "cinderblock_volumes", status="a-newer-status") == 1
    assert sample(m, "cinderblock_snapshots", status="creating") == 0
    m.set_status_counts(StatusCounts())
    assert sample(m, "cinderblock_volumes", status="a-newer-status") == 0


def test_what_the_reconciler_moved_on_is_counted_by_kind_and_action() -> None:
    m = ClusterMetrics()
    m.observe({"kind": "reconcile", "stuck": ["v1", "v2", "s1"], "acted": ["v1", "s1"],
               "actions": [["volume", "available"], ["snapshot", "redo_delete"]]})
    m.observe({"kind": "reconcile", "stuck": ["v3"], "acted": ["v3"],
               "actions": [["volume", "available"]]})
    m.observe({"kind": "reconcile", "stuck": [], "acted": [], "exports_closed": ["a1", "a2"]})
    # what does not fit the shape is left out, and nothing else is counted
    m.observe({"kind": "reconcile", "actions": [["volume"], [1, 2], "volume:error",
                                                ["volume", "x" * 33]]})
    m.observe({"kind": "reconcile", "actions": "volume", "exports_closed": 3})
    assert sample(m, "cinderblock_reconciled_total", kind="volume", action="available") == 2
    assert sample(m, "cinderblock_reconciled_total", kind="snapshot", action="redo_delete") == 1
    assert sample(m, "cinderblock_reconciled_total", kind="export", action="close") == 2
    assert [s.labels for metric in m.registry.collect() if metric.name == "cinderblock_reconciled"
            for s in metric.samples if s.name.endswith("_total")] == [
        {"kind": "volume", "action": "available"}, {"kind": "snapshot", "action": "redo_delete"},
        {"kind": "export", "action": "close"}]
