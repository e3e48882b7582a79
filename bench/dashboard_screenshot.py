"""Make the README's screenshot: a real cluster, some creates, the dashboard.

    python -m cinderblock.bench.dashboard_screenshot [docs/dashboard.svg]

Starts an embedded cluster in a temporary directory (two nodes of 50 GiB,
one keeping 10% reserved), runs the dashboard headless on it, creates 48
volumes over a few seconds and one that is over quota (so a reverted flow
shows), saves an SVG, and stops the cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from cinderblock.actors.runtime.cluster import Cluster
from cinderblock.actors.runtime.config import embedded
from cinderblock.actors.runtime.keyring import add_user
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.wire.errors import OverQuota
from cinderblock.tui.app import DashboardApp

SIZE = (150, 44)


async def creates(gateway: str, batches: int, keys: Path) -> None:
    types = ["__DEFAULT__", "FCVolumeType"]
    async with Client(gateway, admin=True, key=keys / "admin.key_secret") as admin:
        await admin.set_quota("demo", volumes=1000, gigabytes=10000)
        await admin.set_quota("tiny", gigabytes=10)
    async with Client(gateway, project="demo", key=keys / "demo.key_secret") as client:
        for i in range(0, 4 * batches, 4):
            batch = [client.create_volume(1 + (i + k) % 2, name=f"vol-{i + k:03d}",
                                          volume_type=types[(i + k) % 2], wait=True)
                     for k in range(4)]
            await asyncio.gather(*batch)
            await asyncio.sleep(0.4)
    async with Client(gateway, project="tiny", key=keys / "tiny.key_secret") as client:
        with contextlib.suppress(OverQuota):  # the reverted flow is what is to be seen
            await client.create_volume(50, name="too-big")


async def shoot(gateway: str, events: str, out: Path, keys: Path) -> None:
    app = DashboardApp(gateway, events, key=keys / "admin.key_secret")
    async with app.run_test(size=SIZE) as pilot:
        while app.model.link.up is not True:
            await pilot.pause(0.05)
        await creates(gateway, 12, keys)
        await pilot.pause(1.5)
        app.save_screenshot(filename=out.name, path=str(out.parent))


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "docs/dashboard.svg").resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = embedded(Path(tmp), capacity_gb=50)
        nodes = (cfg.nodes[0], replace(cfg.nodes[1], reserved_percentage=10.0))
        cluster = Cluster(replace(cfg, nodes=nodes))
        try:
            cluster.start()
            add_user(Path(tmp), "tiny", "tiny", ("member",))
            asyncio.run(shoot(cluster.cfg.gateway, cluster.cfg.events, out, Path(tmp, "keys")))
        finally:
            cluster.stop()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
