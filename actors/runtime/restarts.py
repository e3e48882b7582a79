"""How often each actor was restarted, as ``cinderblock up``'s supervisor records it.

The supervisor (``actors/runtime/supervisor.py``, task "reliability") rewrites
``DATA_DIR/status.json`` at every start and death of an actor:
``{"actors": {NAME: {"pid": ..., "started_at": ..., "restarts": N, ...}}}``. Readers
(``cinderblock health``, the metrics exporter) take the counts from there when the
actors do not report them themselves; a missing or unreadable file means none known.
"""

from __future__ import annotations

import json
from pathlib import Path

STATUS_FILE = "status.json"


def supervised_restarts(data_dir: Path) -> dict[str, int]:
    try:
        actors = json.loads((data_dir / STATUS_FILE).read_text()).get("actors")
    except (OSError, ValueError, AttributeError):
        return {}
    if not isinstance(actors, dict):
        return {}
    return {name: a["restarts"] for name, a in actors.items()
            if isinstance(a, dict) and isinstance(a.get("restarts"), int)}
