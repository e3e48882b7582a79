"""Scripted events shaped exactly like a cluster's, for tests and snapshots.

``create_events`` writes the events one volume create publishes (the three
create flows, their tasks, the volume's statuses, the node's stats as the
scheduler republishes them) on a given clock; ``scene`` strings a few of them
together, with a failure and flows still running, into batches the way a
dashboard receives them. Nothing here touches a socket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Event = dict[str, Any]

API_TASKS = ("ExtractVolumeRequestTask", "QuotaReserveTask", "EntryCreateTask",
             "VolumeCastTask")
SCHEDULER_TASKS = ("ExtractSchedulerSpecTask", "ScheduleCreateVolumeTask")
MANAGER_TASKS = ("ExtractVolumeRefTask", "OnFailureRescheduleTask", "ExtractVolumeSpecTask",
                 "NotifyVolumeActionTask", "CreateVolumeFromSpecTask", "CreateVolumeOnFinishTask")
OVER_QUOTA = ("Quota exceeded for resources: gigabytes. Requested 50G, quota is 100G and "
              "80G has been consumed (80G in use, 0G reserved).")


@dataclass(frozen=True, slots=True)
class Create:
    """One volume create to script."""

    volume_id: str
    t0: float
    node: str = "node-1"
    size: int = 1
    name: str | None = None
    project: str = "demo"
    volume_type: str = "__DEFAULT__"
    step: float = 0.002  # seconds between two events of one flow
    fail_at: str | None = None  # an API task name: the flow fails there (over quota)
    stop_after: int | None = None  # publish only this many events (a flow in progress)


def volume_id(i: int) -> str:
    return f"{i:08x}-0000-4000-8000-{i:012x}"


def flow_events(flow: str, flow_id: str, tasks: tuple[str, ...], actor: str, c: Create,
                t: float, fail_at: str | None = None) -> tuple[list[Event], float]:
    """The events of one linear flow run, as actors/flow.py emits them."""
    out: list[Event] = []

    def emit(kind: str, **fields: Any) -> None:
        nonlocal t
        out.append({**fields, "flow_id": flow_id, "flow": flow, "volume_id": c.volume_id,
                    "project_id": c.project, "kind": kind, "actor": actor, "ts": t})
        t += c.step

    emit("flow", state="PENDING", tasks=list(tasks))
    emit("flow", state="RUNNING")
    ran: list[str] = []
    for task in tasks:
        ran.append(task)
        emit("task", task=task, state="RUNNING")
        if task == fail_at:
            emit("task", task=task, state="FAILURE", reason=OVER_QUOTA)
            emit("flow", state="FAILURE", reason=OVER_QUOTA)
            emit("flow", state="REVERTING")
            for done in reversed(ran):
                emit("task", task=done, state="REVERTING")
                emit("task", task=done, state="REVERTED")
            emit("flow", state="REVERTED")
            return out, t
        emit("task", task=task, state="SUCCESS")
    emit("flow", state="SUCCESS")
    return out, t


def volume_event(c: Create, status: str, t: float, host: str | None = None) -> Event:
    return {"volume_id": c.volume_id, "project_id": c.project, "status": status, "size": c.size,
            "host": host, "name": c.name, "volume_type": c.volume_type, "reason": None,
            "kind": "volume", "actor": "gateway", "ts": t}


def backend_event(node: str, t: float, total: float = 100.0, free: float | None = None,
                  provisioned: float = 0.0, reserved_percentage: float = 0.0,
                  thin: bool = True, volumes: int = 0) -> Event:
    return {"backend": f"{node}@file", "host": node, "availability_zone": "nova",
            "total_capacity_gb": total,
            "free_capacity_gb": total - provisioned if free is None else free,
            "allocated_capacity_gb": provisioned, "provisioned_capacity_gb": provisioned,
            "reserved_percentage": reserved_percentage, "thin_provisioning_support": thin,
            "thick_provisioning_support": not thin, "max_over_subscription_ratio": 20.0,
            "capabilities": {}, "sched_epoch": "", "sched_seq": 0, "timestamp": t,
            "volumes": volumes, "kind": "backend", "actor": "scheduler", "ts": t}


def snapshot_event(snapshot_id: str, volume: str, status: str, t: float, size: int = 1,
                   name: str | None = None, project: str = "demo") -> Event:
    return {"snapshot_id": snapshot_id, "volume_id": volume, "project_id": project,
            "status": status, "size": size, "name": name, "reason": None,
            "kind": "snapshot", "actor": "gateway", "ts": t}


def backup_event(backup_id: str, volume: str, status: str, t: float, size: int = 1,
                 name: str | None = None, project: str = "demo") -> Event:
    return {"backup_id": backup_id, "volume_id": volume, "project_id": project,
            "status": status, "size": size, "name": name, "reason": None,
            "kind": "backup", "actor": "gateway", "ts": t}


def group_event(group_id: str, status: str, t: float, volumes: int, name: str | None = None,
                host: str = "node-1@file", project: str = "demo") -> Event:
    return {"group_id": group_id, "project_id": project, "status": status, "name": name,
            "host": host, "volumes": volumes, "reason": None,
            "kind": "group", "actor": "gateway", "ts": t}


def group_snapshot_event(group_snapshot_id: str, group_id: str, status: str, t: float,
                         snapshots: int, name: str | None = None, project: str = "demo"
                         ) -> Event:
    return {"group_snapshot_id": group_snapshot_id, "group_id": group_id,
            "project_id": project, "status": status, "name": name, "snapshots": snapshots,
            "kind": "group_snapshot", "actor": "gateway", "ts": t}


def create_events(c: Create, provisioned_after: float = 1.0) -> list[Event]:
    """Everything one create publishes, in the order a subscriber sees it."""
    ids = c.volume_id.replace("-", "")
    out, t = flow_events("volume_create_api", "a" + ids[1:], API_TASKS, "gateway", c,
                         c.t0, c.fail_at)
    if c.fail_at is None:
        out.append(volume_event(c, "creating", t))
        more, t = flow_events("volume_create_scheduler", "b" + ids[1:], SCHEDULER_TASKS,
                              "scheduler", c, t)
        out += more
        more, t = flow_events("volume_create_manager", "c" + ids[1:], MANAGER_TASKS,
                              c.node, c, t)
        out += more
        out.append(backend_event(c.node, t, provisioned=provisioned_after))
        out.append(volume_event(c, "available", t + c.step, f"{c.node}@file"))
    return out[: c.stop_after] if c.stop_after is not None else out


def scene(t0: float) -> list[tuple[float, list[Event]]]:
    """(dashboard clock, events) batches: a minute of creates ending at ``t0 + 60``.

    At the end: two backends (one with reserved space), twenty volumes, a
    failed create (over quota), two creates still running and a few done;
    three snapshots (one being taken), two backups (one being made, one of them
    deleted on the way), a group of three volumes and a snapshot of it.
    """
    batches: list[tuple[float, list[Event]]] = []
    provisioned = {"node-1": 0.0, "node-2": 0.0}
    for i in range(20):
        node = "node-1" if i % 3 else "node-2"
        size = 1 + (i * 7) % 5
        provisioned[node] += size
        start = t0 + 3 * i
        c = Create(volume_id(i + 1), start, node, size, f"vol-{i + 1:02d}",
                   step=0.001 + 0.0004 * (i % 4))
        events = create_events(c, provisioned[node])
        batches.append((start + 0.1, events))
    t = t0 + 45.0
    batches.append((t + 0.1, [
        group_event(volume_id(300), "available", t, 0, "db"),
        *(group_event(volume_id(300), "available", t + 0.01 * n, n, "db") for n in (1, 2, 3)),
        group_snapshot_event(volume_id(350), volume_id(300), "creating", t + 0.5, 3, "db-daily"),
        group_snapshot_event(volume_id(350), volume_id(300), "available", t + 0.7, 3,
                             "db-daily"),
        snapshot_event(volume_id(400), volume_id(3), "creating", t + 1, 4, "before-upgrade"),
        snapshot_event(volume_id(400), volume_id(3), "available", t + 1.2, 4, "before-upgrade"),
        snapshot_event(volume_id(401), volume_id(5), "creating", t + 2, 1, "nightly"),
        snapshot_event(volume_id(401), volume_id(5), "available", t + 2.1, 1, "nightly"),
        backup_event(volume_id(500), volume_id(2), "creating", t + 3, 3, "weekly"),
        backup_event(volume_id(500), volume_id(2), "available", t + 5, 3, "weekly"),
        backup_event(volume_id(501), volume_id(2), "creating", t + 6, 3),
        backup_event(volume_id(501), volume_id(2), "deleted", t + 7, 3),
        backup_event(volume_id(502), volume_id(7), "creating", t + 8, 2, "before-move"),
        snapshot_event(volume_id(402), volume_id(7), "creating", t + 12, 2),
    ]))
    failed = Create(volume_id(100), t0 + 58.0, size=50, name="big", fail_at="QuotaReserveTask")
    batches.append((t0 + 58.1, create_events(failed)))
    for j, upto in enumerate((9, 30)):
        c = Create(volume_id(200 + j), t0 + 59.0 + j * 0.2, "node-2", 2, f"new-{j}",
                   stop_after=upto, step=0.05)
        batches.append((t0 + 59.5, create_events(c)))
    batches.append((t0 + 59.8, [
        backend_event("node-1", t0 + 59.8, total=100.0, free=61.5,
                      provisioned=provisioned["node-1"], volumes=13),
        backend_event("node-2", t0 + 59.8, total=50.0, free=40.0,
                      provisioned=provisioned["node-2"], reserved_percentage=10.0, thin=False,
                      volumes=7),
    ]))
    return batches
