"""Cinder's default quota class: an admin sets the limits of every project that has no
limit of its own (``cinder quota-class-update default``, REST ``os-quota-class-sets``,
``cinderblock quota set-defaults``); a project over a lowered default creates nothing
more; the limits outlive a SIGKILL of the quota actor. A cluster of its own: the
defaults it changes are every project's."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from cinderblock.protocol.wire.errors import OverQuota
from tests.conftest import E2ECluster, every_actor_answers
from tests.e2e.test_rest_api import Api, fault
from tests.e2e.test_rest_clients import run, table, tool


@pytest.fixture
def quota_cluster(cluster_factory: Callable[..., E2ECluster]) -> E2ECluster:
    return cluster_factory(rest_fronts=1, backend="null")


async def test_the_default_class_s_limits_are_every_project_s_without_its_own(
    quota_cluster: E2ECluster,
) -> None:
    c = quota_cluster
    admin_api, project = Api(c.rest_url, "admin:admin"), f"qc-{uuid.uuid4().hex[:8]}"
    member_api = Api(c.rest_url, f"{project}:{project}")
    shown = admin_api.call("GET", "/v3/os-quota-class-sets/default").body["quota_class_set"]
    assert (shown["id"], shown["volumes"], shown["gigabytes"]) == ("default", 10, 1000)

    cinder = [tool("cinder"), "--os-auth-type", "noauth", "--os-user-id", "admin",
              "--os-project-id", "admin", "--os-endpoint", c.rest_url]
    run([*cinder, "quota-class-update", "--volumes", "2", "--snapshots", "4", "default"])
    assert table(run([*cinder, "quota-class-show", "default"]))["volumes"] == "2"
    async with c.client(project) as member, c.client("admin", admin=True) as admin:
        own = f"own-{uuid.uuid4().hex[:8]}"
        await admin.set_quota(own, volumes=5)
        assert (await member.show_quota()).limits["volumes"] == 2
        assert (await admin.show_quota(own)).limits["volumes"] == 5  # its own stays
        for _ in range(2):
            await member.create_volume(1, wait=True)
        with pytest.raises(OverQuota):
            await member.create_volume(1)
        # lowered below what a project uses: set all the same, as Cinder's (no check)
        put = admin_api.call("PUT", "/v3/os-quota-class-sets/default",
                             {"quota_class_set": {"volumes": 1, "class_name": "default"}})
        assert put.status == 200 and put.body["quota_class_set"]["volumes"] == 1
        assert "id" not in put.body["quota_class_set"]
        assert (await member.show_quota()).in_use["volumes"] == 2

        fault(member_api.call("GET", "/v3/os-quota-class-sets/default"), 403, "forbidden",
              "volume_extension:quota_classes")
        fault(member_api.call("PUT", "/v3/os-quota-class-sets/default",
                              {"quota_class_set": {"volumes": 50}}), 403, "forbidden",
              "volume_extension:quota_classes:update")
        fault(admin_api.call("PUT", "/v3/os-quota-class-sets/gold",
                             {"quota_class_set": {"volumes": 50}}), 400, "badRequest",
              "one quota class, 'default'")
        fault(admin_api.call("PUT", "/v3/os-quota-class-sets/default",
                             {"quota_class_set": {"volumes": 50, "floating_ips": 3}}), 400,
              "badRequest", "Bad key(s) in quota set: floating_ips")
        fault(admin_api.call("PUT", "/v3/os-quota-class-sets/default",
                             {"quota_class_set": {"volumes": -2}}), 400, "badRequest",
              "greater than or equal to -1")
        gold = admin_api.call("GET", "/v3/os-quota-class-sets/gold").body["quota_class_set"]
        assert (gold["id"], gold["volumes"]) == ("gold", 1)  # a class never set: defaults

        proc = c.cluster.procs["quota"]
        proc.kill()
        proc.wait()
        c.cluster.respawn("quota")
        await every_actor_answers(c, admin)
        defaults = (await admin.show_quota(project, defaults=True)).limits
        assert (defaults["volumes"], defaults["snapshots"]) == (1, 4)  # kept in quota.db
        assert (await member.show_quota()).limits["volumes"] == 1
