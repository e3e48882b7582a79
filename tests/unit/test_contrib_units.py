"""The systemd units under contrib/ are units systemd accepts, and each starts the
cinderblock command it is named for."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cinderblock.actors.runtime.parent import EXIT_CANNOT_START

UNITS = Path(__file__).resolve().parents[2] / "contrib" / "systemd"
ACTORS = {"cinderblock-gateway.service": "actor gateway", "cinderblock-quota.service":
          "actor quota", "cinderblock-scheduler.service": "actor scheduler",
          "cinderblock-exporter.service": "actor exporter", "cinderblock-rest.service":
          "actor rest", "cinderblock-node@.service": "node --host %i"}


def test_every_actor_has_a_unit_that_runs_it_with_the_cluster_file() -> None:
    for name, command in ACTORS.items():
        text = (UNITS / name).read_text()
        (exec_start,) = [ln for ln in text.splitlines() if ln.startswith("ExecStart=")]
        assert f"/usr/bin/cinderblock {command} " in exec_start, name
        assert "--config ${CINDERBLOCK_CLUSTER}" in exec_start
        assert "--log-file /var/lib/cinderblock/logs/" in exec_start
        assert "KillSignal=SIGTERM" in text and "WantedBy=cinderblock.target" in text
        # restarted when it fails, but not when it exits as one that must not start again
        assert "Restart=on-failure" in text
        assert f"RestartPreventExitStatus={EXIT_CANNOT_START}" in text.splitlines()


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze is missing (apt-get install systemd)")
        pytest.skip("needs systemd-analyze")
    for unit in UNITS.iterdir():
        text = unit.read_text().replace("/usr/bin/cinderblock", shutil.which("true") or "")
        name = unit.name.replace("@.", "@node-1.")
        (tmp_path / name).write_text(text)
    done = subprocess.run(["systemd-analyze", "verify", "--man=no",
                           *sorted(str(p) for p in tmp_path.iterdir())],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
