"""bench.ceiling: a short run measures something and leaves no process behind."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from cinderblock.bench import ceiling


def _gone(pid: int) -> bool:
    """True when `pid` no longer exists (reaped, not a zombie child of ours)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _our_children() -> set[int]:
    children: set[int] = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
                children.add(int(entry.name))
    return children


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the PID of every hop process that measure_ceiling starts."""
    pids: list[int] = []
    real = ceiling._spawn_hop

    def recording(index: int, hops: int) -> subprocess.Popen[bytes]:
        proc = real(index, hops)
        pids.append(proc.pid)
        return proc

    monkeypatch.setattr(ceiling, "_spawn_hop", recording)
    return pids


def test_short_run_measures_and_cleans_up(spawned: list[int]) -> None:
    has_proc = Path("/proc/self/stat").exists()
    before = _our_children() if has_proc else set()
    result = ceiling.measure_ceiling(hops=4, requests=2000, window=32)
    assert result.rps > 0
    assert result.cpu_ms_per_request > 0
    assert result.messages_per_request == 10
    assert (result.hops, result.window) == (4, 32)
    assert len(spawned) == 4
    assert all(_gone(pid) for pid in spawned)
    if has_proc:
        assert not _our_children() - before


def test_the_batched_chain_measures_and_cleans_up_as_well(spawned: list[int]) -> None:
    result = ceiling.measure_ceiling(hops=4, requests=2000, window=32, batched=True)
    assert result.batched and result.rps > 0 and result.cpu_ms_per_request > 0
    assert result.messages_per_request == 10
    assert all(_gone(pid) for pid in spawned)


def test_single_hop_is_a_round_trip(spawned: list[int]) -> None:
    result = ceiling.measure_ceiling(hops=1, requests=500, window=8)
    assert result.rps > 0
    assert result.messages_per_request == 2
    assert all(_gone(pid) for pid in spawned)


def test_children_are_stopped_on_interrupt(
    spawned: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    real = ceiling._pump

    def interrupted(*args: object, **kwargs: object) -> int:
        nonlocal calls
        calls += 1
        if calls == 2:  # after the warm-up, in the timed phase
            raise KeyboardInterrupt
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ceiling, "_pump", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ceiling.measure_ceiling(hops=3, requests=1000, window=16)
    assert len(spawned) == 3
    assert all(_gone(pid) for pid in spawned)


def test_bad_arguments_start_nothing(spawned: list[int]) -> None:
    with pytest.raises(ValueError):
        ceiling.measure_ceiling(hops=0)
    assert spawned == []
