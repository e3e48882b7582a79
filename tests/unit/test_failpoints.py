"""Named failpoints: off by default, armed from the environment, once with a marker dir."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cinderblock.actors.runtime import failpoints


def run_point(env: dict[str, str], name: str = "test.point") -> subprocess.CompletedProcess[str]:
    code = (
        "from cinderblock.actors.runtime import failpoints as f\n"
        f"p = f.declare({name!r})\n"
        "p()\n"
        "print('passed')\n"
    )
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)


def test_an_unarmed_failpoint_does_nothing() -> None:
    done = run_point({failpoints.ENV: "some.other.point"})
    assert done.returncode == 0 and done.stdout == "passed\n"


def test_an_armed_failpoint_kills_its_process_as_kill_9_would() -> None:
    done = run_point({failpoints.ENV: "test.point"})
    assert done.returncode == -signal.SIGKILL and done.stdout == ""


def test_a_failpoint_armed_to_raise_raises_at_that_place() -> None:
    done = run_point({failpoints.ENV: "x,test.point=raise"})
    assert done.returncode == 1 and "FailPointError: failpoint test.point" in done.stderr


def test_with_a_marker_dir_a_failpoint_fires_once_across_restarts(tmp_path: Path) -> None:
    env = {failpoints.ENV: "test.point=kill", failpoints.ENV_DIR: str(tmp_path)}
    assert run_point(env).returncode == -signal.SIGKILL
    assert (tmp_path / "test.point").exists()
    again = run_point(env)
    assert again.returncode == 0 and again.stdout == "passed\n"


def test_an_unknown_action_is_refused_with_its_name() -> None:
    done = run_point({failpoints.ENV: "test.point=explode"})
    assert done.returncode == 1
    assert "failpoint 'test.point' has action 'explode'" in done.stderr


def test_a_name_declared_twice_is_refused_and_declared_lists_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # declared in a copy of the registry: the matrix of every real failpoint
    # (tests/e2e/test_e2e_failpoints.py) must not find this one in a later test
    monkeypatch.setattr(failpoints, "_DECLARED", dict(failpoints._DECLARED))
    point = failpoints.declare("test.unit.once")
    assert "test.unit.once" in failpoints.declared()
    point()  # not armed in this process
    with pytest.raises(ValueError, match="declared twice"):
        failpoints.declare("test.unit.once")
