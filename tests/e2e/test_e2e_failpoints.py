"""The failpoint matrix (issue 9): every named failpoint, kill -9 of its process there,
restart by the supervisor ``up`` runs, then a correct final state: nothing stuck, quota
equal to what exists, no reservation left, no orphan or missing file.

Each group of points runs in its own supervised cluster with all of them armed at once
(each fires once; the restarted process runs past it), the groups side by side. The
one-cluster-per-point matrix is ``python -m cinderblock.bench.failpoints``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cinderblock.bench.failpoints import Run, all_failpoints, grouped, process_of, run_started
from tests.conftest import _DATA_DIRS

pytestmark = pytest.mark.timeout(300)


def test_every_declared_failpoint_is_named_by_its_process_and_is_in_a_group() -> None:
    points = all_failpoints()
    assert len(points) >= 60  # before/after each commit and send of every flow
    assert {process_of(p) for p in points} == {"gateway", "quota", "scheduler", "node"}
    groups = grouped(points)
    assert sorted(p for group in groups.values() for p in group) == points
    assert all(groups.values()), groups


async def test_a_kill_at_every_failpoint_leaves_the_settled_cluster_exact(
    tmp_path: Path,
) -> None:
    groups = grouped(all_failpoints())
    dirs = {name: tmp_path / name for name in groups}
    _DATA_DIRS.extend(d.resolve() for d in dirs.values())
    runs: list[Run] = await asyncio.gather(
        *(run_started(points, dirs[name], max_rounds=12) for name, points in groups.items()))
    for run in runs:
        assert run.violations == [], run
        assert sorted(run.fired) == sorted(run.points), (
            f"not reached: {sorted(set(run.points) - run.fired)}")
        assert sum(run.restarts.values()) == len(run.points), run.restarts  # one death each
