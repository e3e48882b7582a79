"""bench.throughput: a short run with a dashboard's subscriber reads every event."""

from __future__ import annotations

import multiprocessing
import tempfile
from pathlib import Path

from cinderblock.bench.throughput import data_filesystem, run_cluster

# A create's flows and statuses publish about 37 events (docs/performance.md); the
# run's warm-up creates are read too, so every measured create brings at least 30.
EVENTS_PER_CREATE_AT_LEAST = 30


def test_a_short_run_with_events_reads_them_in_a_process_of_its_own() -> None:
    # CPU is read from /proc in clock ticks (10 ms): 200 creates are some 80 ms of the
    # actors' CPU, never all of it under a tick (20 were, once, on a fast machine)
    volumes = 200
    result = run_cluster(volumes=volumes, concurrency=4, backend="null", warmup=2,
                         events=True, front="native", security=True)
    assert result["creates_per_s"] > 0 and result["cpu_ms_per_volume"] > 0
    assert result["events_received"] >= volumes * EVENTS_PER_CREATE_AT_LEAST
    assert not multiprocessing.active_children()  # the subscriber was stopped


def test_a_short_run_without_events_starts_no_subscriber() -> None:
    result = run_cluster(volumes=10, concurrency=4, backend="null", warmup=2, events=False,
                         front="native", security=True)
    assert result["events_received"] == 0
    assert result["subscriber_cpu_ms_per_volume"] == 0
    # the run's data was in the temporary directory (TMPDIR): the answer names its file system
    assert result["data_filesystem"] == data_filesystem(Path(tempfile.gettempdir()))
