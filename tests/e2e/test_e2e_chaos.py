"""The kill suite, short: the code of ``python -m cinderblock.bench.chaos`` on one seed
and a smaller load. ``cinderblock up`` runs the cluster; the gateway, the quota
actor, the scheduler and a node are each SIGKILLed once, and the quota actor frozen
for 3 s besides (SIGSTOP, its connections open), while 150 creates, 30 deletes, 6
migrations, 4 backups, 3 restores into existing volumes and 3 backup deletes are under
way, and once the cluster has settled nothing is stuck, every migrated volume is
available on one node holding its bytes, every backup request made one backup at most
and each available one restores its volume's bytes, each volume restored into holds its
backup's bytes (or, its restore unacknowledged, its own), each acknowledged backup
delete left its backup gone, every acknowledged request reached its final state, no
request id made two volumes, quota equals what exists (the quota actor forgetting each
applied op's id as soon as the gateway has had its answer), node files and backup
repositories equal the gateway's lists, and ``up`` started every killed actor again
(and no other)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from cinderblock.bench.chaos import Kill, SeedResult, Settings, run_seed, table
from cinderblock.bench.chaos_plan import KINDS
from tests.conftest import _DATA_DIRS, require_root

# Exact quota under any fault is the quota journal's (issue 9): before it, a kill with
# requests in flight leaves reservations that wait a day, and this test says so (xfail)
# instead of failing; with it, every check must hold.
JOURNAL = importlib.util.find_spec("cinderblock.actors.gateway.quota_journal") is not None


@pytest.mark.timeout(180)
def test_killing_one_actor_of_each_kind_under_load_loses_strands_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    _DATA_DIRS.append(tmp_path)  # the session's check: no actor left behind
    settings = Settings(creates=150, deletes=30, migrations=6, backups=4, group_snapshots=3,
                        extends=4, restores=3, backup_deletes=3, freeze=("quota",),
                        freeze_s=3.0,
                        window_s=12.5, settle_s=35.0)
    result = run_seed(1, settings, data_root=tmp_path, keep=True)
    report = f"{table([result])}\n(data and logs in {result.data_dir})"
    killed = {"node" if k.actor.startswith("node-") else k.actor for k in result.kills}
    assert killed == set(KINDS), report
    assert [(f.actor, f.frozen_s) for f in result.freezes] == [("quota", 3.0)], report
    assert result.acked_creates == 150 and result.acked_deletes == 30, report
    assert (result.migrations, result.backups, result.group_snapshots, result.extends,
            result.restores, result.backup_deletes) == (6, 4, 3, 4, 3, 3), report
    assert result.failed_checks() in ([], ["quota"]), report
    if result.failed_checks() and not JOURNAL:
        pytest.xfail(f"quota is exact under faults only with the quota journal:\n{report}")
    assert result.ok, report
    # every commit and release applied is remembered only until the gateway has had its
    # answer (the kill suite keeps none past the quota actor's next look): a few are left
    assert result.quota_ids_kept is not None and result.quota_ids_kept < 50, report
    assert result.dialled_again is not None, report  # the actors say how often


@pytest.mark.timeout(180)
@pytest.mark.tools("ss")
def test_a_node_cut_off_until_tcp_gave_up_loses_strands_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    """``bench.chaos --freeze node --cut``, short: besides the kills, a node is frozen for
    3 s with its TCP connections broken as the freeze begins (``ss -K``), so what its
    peers send it meanwhile is lost and the same process comes back on new connections;
    once settled, every check holds as after the kills."""
    require_root("break a node's TCP connections (ss -K)")
    result, frozen, report = _one_short_freeze(tmp_path, 2, "node", cut=True)
    assert frozen.actor.startswith("node-") and frozen.frozen_s == 3.0, report
    # at least its connection to the gateway; those to the scheduler, killed just before
    # in this seed's plan, may still be reconnecting (CI saw 2 of the usual 4)
    assert frozen.cut is not None and frozen.cut >= 1, report
    assert result.acked_creates == 100 and result.acked_deletes == 20, report
    assert result.ok, report


@pytest.mark.timeout(180)
@pytest.mark.tools("ss", "nft")
def test_a_gateway_whose_peers_connect_again_while_it_holds_their_old_connections_is_mended(
    tmp_path: Path,
) -> None:
    """``bench.chaos --freeze gateway --wedge``, short: besides the kills, the gateway is
    frozen for 3 s while its peers' sides of their connections to it break and the resets
    that would tell it are dropped, so that when it thaws it still holds the old
    connections under the routing ids its nodes connect again with. A node dials again
    within the hold (``actors.runtime.redial``), and once settled every check holds."""
    require_root("break connections (ss -K) and drop resets (nft)")
    result, frozen, report = _one_short_freeze(tmp_path, 3, "gateway", wedge=True)
    assert frozen.actor == "gateway" and frozen.wedged is not None, report
    assert frozen.wedged >= 2, report  # the two nodes' connections at least
    assert frozen.dialled_after_s is not None, report
    assert result.acked_creates == 100 and result.acked_deletes == 20, report
    assert result.ok, report


def _one_short_freeze(tmp_path: Path, seed: int, kind: str, *, cut: bool = False,
                      wedge: bool = False) -> tuple[SeedResult, Kill, str]:
    """A short seed under the four kills with an actor of ``kind`` frozen 3 s (its
    connections cut or wedged): the result, the freeze, and the report to fail with."""
    _DATA_DIRS.append(tmp_path)
    settings = Settings(creates=100, deletes=20, migrations=2, backups=2, extends=2,
                        freeze=(kind,), freeze_s=3.0, cut=cut, wedge=wedge, window_s=10.0,
                        settle_s=35.0)
    result = run_seed(seed, settings, data_root=tmp_path, keep=True)
    [frozen] = result.freezes
    return result, frozen, f"{table([result])}\n(data and logs in {result.data_dir})"
