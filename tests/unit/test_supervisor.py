"""The supervisor's restart policy (plain code) and how it words an actor's end."""

from __future__ import annotations

import signal

from cinderblock.actors.runtime.supervisor import RestartPolicy, describe_exit


def test_each_death_within_a_minute_doubles_the_wait_before_the_next_start() -> None:
    policy = RestartPolicy(max_per_minute=10, first_s=0.2, max_s=1.0)
    delays = [policy.died("gateway", now) for now in (0.0, 1.0, 2.0, 3.0, 4.0)]
    assert delays == [0.2, 0.4, 0.8, 1.0, 1.0]


def test_deaths_older_than_a_minute_no_longer_count() -> None:
    policy = RestartPolicy(max_per_minute=2, first_s=0.2)
    assert policy.died("quota", 0.0) == 0.2
    assert policy.died("quota", 30.0) == 0.4
    assert policy.died("quota", 70.5) == 0.4  # the first death left the window
    assert policy.died("quota", 71.0) is None  # three within a minute: over the cap


def test_one_actor_dying_often_does_not_count_against_another() -> None:
    policy = RestartPolicy(max_per_minute=1)
    assert policy.died("node-1", 0.0) is not None
    assert policy.died("node-2", 0.1) is not None
    assert policy.died("node-1", 0.2) is None


def test_exit_statuses_are_told_as_signals_or_codes() -> None:
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(1) == "exited with status 1"
    assert describe_exit(-200) == "killed by signal 200"
