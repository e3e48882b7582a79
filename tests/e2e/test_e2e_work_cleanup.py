"""Cinder's work cleanup (``cinder work-cleanup``, ``POST /workers/cleanup``): an
admin mends now, not after the reconciler's ``reconcile_after_s``, what a crash left in a
transitional status. The crashes are real (nodes killed while deletes stall in them,
then started again; a scheduler frozen while a create waits for it) and the reconciler's
own rounds are off, so nothing but the cleanup moves a record on."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable

import pytest

from cinderblock.protocol.client.client import SyncClient
from cinderblock.protocol.wire.errors import Forbidden, InvalidInput
from tests.cli_zygote import run_script
from tests.conftest import E2ECluster, every_actor_answers
from tests.e2e.test_e2e_flow_history import frozen
from tests.e2e.test_e2e_reconcile import kill_and_restart_nodes, stalling
from tests.e2e.test_rest_clients import admin_commands, gone, rows, tool, wait_for

NO_ROUNDS = {"reconcile_every_s": 0.0, "reconcile_after_s": 3600.0}


@pytest.fixture
def stalls_deletes(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(rest_fronts=1, node_overrides=stalling("delete_volume"), **NO_ROUNDS)


@pytest.fixture
def no_rounds(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(**NO_ROUNDS)


def test_cinder_work_cleanup_sends_again_the_deletes_a_crash_left_on_the_services_named(
    stalls_deletes: E2ECluster,
) -> None:
    """Two deletes stall in their nodes, which are killed and started again: both stay
    ``deleting``. A plain ``work-cleanup`` asks for the services that are down (Cinder's
    default), and there are none; one with ``--resource-id`` cleans that volume's own
    service only, and only once ``--is-up true`` says the service may be up; then the
    volume services clean the other. A node stopped is a service nobody can clean for;
    a resource that is not pending is a 400."""
    c = stalls_deletes
    cinder, _ = admin_commands(c, "3.24")
    with SyncClient(c.gateway, project="cleanup", timeout=20.0,
                    key=c.user_key("cleanup")) as user, \
            SyncClient(c.gateway, project="admin", admin=True, timeout=20.0,
                       key=c.user_key("admin", admin=True)) as admin:
        first, second = (user.create_volume(1, wait=True) for _ in range(2))
        for vol in (first, second):
            user.delete_volume(vol.id)
        _statuses(admin, {first.id: "deleting", second.id: "deleting"})
        second_backend = _backend(admin, second.id)
        kill_and_restart_nodes(c)
        wait_for(lambda: not admin.cluster_stats(timeout=10.0).missing)  # the nodes answer
        time.sleep(0.5)
        _statuses(admin, {first.id: "deleting", second.id: "deleting"})

        assert "No cleanable services matched cleanup criteria." in cinder("work-cleanup")
        out = cinder("work-cleanup", "--resource-id", second.id)
        assert "No cleanable services matched cleanup criteria." in out
        time.sleep(0.5)
        _statuses(admin, {first.id: "deleting", second.id: "deleting"})

        out = cinder("work-cleanup", "--resource-id", second.id, "--is-up", "true")
        assert out.startswith("Following services will be cleaned:"), out
        assert [r[2:] for r in rows(out)] == [[second_backend, "cinder-volume"]]
        gone(admin, second.id)
        _statuses(admin, {first.id: "deleting"})

        out = cinder("work-cleanup", "--is-up", "true", "--binary", "cinder-volume")
        assert sorted(r[2] for r in rows(out)) == ["node-1@file", "node-2@file"]
        gone(admin, first.id)

        out = cinder("work-cleanup", "--is-up", "true")
        assert sorted(r[3] for r in rows(out)) == ["cinder-scheduler", "cinder-volume",
                                                   "cinder-volume"]
        ids = {int(r[0]) for r in rows(out)}  # the same on every call: a stable number
        assert ids == {int(r[0]) for r in rows(cinder("work-cleanup", "--is-up", "true"))}

        c.cluster.stop_actor("node-2")  # down: nobody can clean for it
        wait_for(lambda: not {b.backend: b.up for b in admin.list_backends()}["node-2@file"])
        out = cinder("work-cleanup")
        assert out.startswith("There are no alternative nodes to do cleanup for the following "
                              "services:"), out
        assert [r[2:] for r in rows(out)] == [["node-2@file", "cinder-volume"]]

        missing = str(uuid.uuid4())
        done = run_script(_cinder_argv(c, "work-cleanup", "--resource-id", missing,
                                       "--is-up", "true"), 60.0, _env())
        assert done.returncode != 0
        assert f"There is no resource with UUID {missing} pending cleanup" in done.stderr
        assert "(HTTP 400)" in done.stderr


async def test_a_create_no_node_holds_is_left_to_the_rounds_and_only_admins_clean(
    no_rounds: E2ECluster,
) -> None:
    """A create that no node holds or works on may still be on its way to one, for all a
    cleanup can tell (its verdict, ``error``, waits for ``reconcile_after_s``): with the
    scheduler frozen while the create waits for it, the cleanup looks at it and leaves it
    ``creating``, and the thawed scheduler places it. A user may not ask for a cleanup;
    an admin naming a node there is not is told which there are."""
    c = no_rounds
    async with c.client("unplaced") as user, c.client("admin", admin=True) as admin:
        await every_actor_answers(c, admin)
        with frozen(c.cluster.pids()["scheduler"]):
            vol = await user.create_volume(1)
            done = await admin.work_cleanup(every_node=True, unplaced=True)  # as the CLI's
            assert (done.looked_at, done.mended, done.unanswered) == (1, (), ())
            one = await admin.work_cleanup(unplaced=True, resource_id=vol.id)
            assert (one.looked_at, one.mended, one.resource_node) == (1, (), None)
            assert (await user.show_volume(vol.id)).status == "creating"
        assert (await user.wait_for_status(vol.id, "available", timeout=20)).host
        with pytest.raises(Forbidden):
            await user.work_cleanup(("node-1",))
        with pytest.raises(InvalidInput, match="no storage node is named node-9"):
            await admin.work_cleanup(("node-9",))
        with pytest.raises(InvalidInput, match="pending cleanup"):
            await admin.work_cleanup(resource_id=vol.id)


def _statuses(admin: SyncClient, expected: dict[str, str]) -> None:
    assert {v: admin.show_volume(v).status for v in expected} == expected


def _cinder_argv(c: E2ECluster, *args: str) -> list[str]:
    return [tool("cinder"), "--os-auth-type", "noauth", "--os-user-id", "admin",
            "--os-project-id", "admin", "--os-endpoint", c.rest_url,
            "--os-volume-api-version", "3.24", *args]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "CINDER_"))}


def _backend(admin: SyncClient, volume_id: str) -> str:
    host = admin.show_volume(volume_id).host
    assert host is not None
    return host.partition("#")[0]
