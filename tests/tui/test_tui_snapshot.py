"""Snapshots of the dashboard fed a fixed minute of events on a fixed clock.

No cluster and no sockets: the model is filled from ``tui.demo.scene`` and the
app never starts its workers, so every run draws the same screen. Review the
SVGs in tests/__snapshots__/ when a layout changes on purpose, and accept
them with ``pytest tests/test_tui_snapshot.py --snapshot-update``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cinderblock.tui.app import DashboardApp
from cinderblock.tui.demo import scene
from cinderblock.tui.model.model import Model

T0 = 1_700_000_000.0
NOW = T0 + 60.0
Snap = Callable[..., bool]


def scene_app(up: bool = True) -> DashboardApp:
    model = Model(gateway="tcp://127.0.0.1:5555", events="tcp://127.0.0.1:5556")
    for now, events in scene(T0):
        model.apply(events, now)
    model.link.mark(up, NOW - 7.0, "" if up else "timeout: no reply to ping within 1.5s")
    return DashboardApp(None, None, model=model, clock=lambda: NOW)


@pytest.fixture
def utc() -> Iterator[None]:
    """Clock times print the same wherever the test runs."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def test_the_flows_pane_fits_an_80x24_terminal(snap_compare: Snap) -> None:
    assert snap_compare(scene_app(), terminal_size=(80, 24))


def test_the_volumes_pane_fits_an_80x24_terminal(snap_compare: Snap) -> None:
    assert snap_compare(scene_app(), press=["2"], terminal_size=(80, 24))


def test_the_backends_pane_draws_capacity_bars(snap_compare: Snap) -> None:
    assert snap_compare(scene_app(), press=["3"], terminal_size=(80, 24))


def test_the_rates_pane_draws_a_minute_of_sparklines(snap_compare: Snap) -> None:
    assert snap_compare(scene_app(), press=["4"], terminal_size=(80, 24))


def test_a_large_terminal_shows_every_pane_at_once(snap_compare: Snap) -> None:
    assert snap_compare(scene_app(), terminal_size=(160, 44))


def test_a_failed_flow_opens_as_a_timeline_with_its_reason(snap_compare: Snap, utc: Any) -> None:
    assert snap_compare(scene_app(), press=["enter"], terminal_size=(110, 32))


def test_a_cluster_that_is_down_says_so(snap_compare: Snap) -> None:
    assert snap_compare(scene_app(up=False), terminal_size=(80, 24))


def test_k_turns_the_volumes_pane_to_snapshots(snap_compare: Snap) -> None:
    assert snap_compare(scene_app(), press=["2", "k"], terminal_size=(80, 24))


def test_the_groups_of_a_large_terminal(snap_compare: Snap) -> None:
    assert snap_compare(scene_app(), press=["2", "k", "k", "k"], terminal_size=(160, 44))
