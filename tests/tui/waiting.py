"""Waiting in dashboard tests: for a condition, or for the next repaints; never for
a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from textual.pilot import Pilot

from cinderblock.tui.app import DashboardApp

T = TypeVar("T")


async def until(pilot: Pilot[Any], probe: Callable[[], T | None], timeout: float = 10.0) -> T:
    """Let the app run until ``probe`` answers something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        await pilot.pause(0.05)
    raise AssertionError(f"gave up after {timeout:g}s waiting for {probe.__doc__ or probe}")


async def repainted(app: DashboardApp, pilot: Pilot[Any], times: int = 2) -> None:
    """Until the dashboard repainted ``times`` more times (its refresh timer; a paused
    dashboard counts its refreshes too)."""
    after = app.refreshes + times

    def done() -> bool:
        """the repaints"""
        return app.refreshes >= after

    await until(pilot, done)
