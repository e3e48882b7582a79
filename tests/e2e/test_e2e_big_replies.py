"""A listing larger than a frame: a `backend list` of 5,000 backends. It comes a page
at a time (at most 1,000 backends and about 512 KiB each), the client reads every
page, and the link between the gateway and the scheduler, and every later call, keep
working. (A reply over a frame is refused with a clear error: tests/unit/
test_actor_frames.py.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import zmq

from cinderblock.protocol.messages.scheduling import (
    BACKENDS_PAGE_BYTES,
    BACKENDS_PAGE_MAX,
    BackendList,
    BackendListRequest,
    BackendStatsMsg,
)
from cinderblock.protocol.wire.codec import pack
from cinderblock.protocol.wire.errors import InvalidInput
from cinderblock.protocol.wire.keys import curve_client, load_public, load_secret, secret_path
from cinderblock.protocol.wire.schema import dump, parse
from tests.conftest import E2ECluster, eventually, make_config, running_cluster

BACKENDS = 5000


@pytest.fixture
def one_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2ECluster]:
    with running_cluster(make_config(tmp_path_factory.mktemp("big"), nodes=1)) as c:
        yield c


def _publish_many_backends(c: E2ECluster, count: int) -> None:
    """node-1, with its own key, reports ``count`` backends of its host (a Cinder host
    may have many backends), each with a few capabilities."""
    zctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    pub = zctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 2000)
    pub.setsockopt(zmq.SNDHWM, count + 10)
    keys = c.cfg.path("keys")
    curve_client(pub, load_secret(secret_path(keys, "node-1")),
                 load_public(keys / "scheduler.key"))
    pub.connect(c.cfg.stats)
    try:
        time.sleep(0.5)  # the subscription reaches us
        for i in range(count):
            msg = BackendStatsMsg(
                backend=f"node-1@extra-{i:05d}", host="node-1", availability_zone="nova",
                total_capacity_gb=1.0, free_capacity_gb=0.0, allocated_capacity_gb=1.0,
                provisioned_capacity_gb=1.0, capabilities={"vendor_name": "cinderblock",
                                                           "storage_protocol": "nbd"})
            pub.send_multipart([b"stats", pack(dump(msg))])
    finally:
        pub.close()
        zctx.term()


async def test_a_backend_list_over_a_frame_comes_in_pages_and_every_later_call_works(
    one_node: E2ECluster,
) -> None:
    async with one_node.client("admin", admin=True) as admin:
        assert len(await admin.list_backends()) == 1
        await asyncio.to_thread(_publish_many_backends, one_node, BACKENDS)

        async def many() -> bool:
            return len(await admin.list_backends()) > BACKENDS
        await eventually(many, timeout=10.0)
        every = await admin.list_backends()
        names = [b.backend for b in every]
        assert names == sorted(set(names)) and len(names) == BACKENDS + 1
        raw = await admin.call("backend.list", BackendListRequest())
        first = parse(BackendList, raw, strict=False)
        assert len(first.backends) == BACKENDS_PAGE_MAX
        assert len(pack(raw)) <= BACKENDS_PAGE_BYTES + 4096
        assert first.next_marker == first.backends[-1].backend
        after = await admin.list_backends(limit=3, marker=names[4000])
        assert [b.backend for b in after] == names[4001:4004]
        with pytest.raises(InvalidInput, match="limit"):
            await admin.call("backend.list", BackendListRequest(limit=BACKENDS_PAGE_MAX + 1))
        with pytest.raises(InvalidInput, match="limit"):
            await admin.list_backends(limit=0)
        await admin.ping()
        volume = await admin.create_volume(1, wait=True)
        assert volume.status == "available" and volume.host == "node-1@file"
