"""The failed flows a user dismissed, kept in the data directory across dashboard sessions.

One JSON list of flow ids (``DATA_DIR/tui-dismissed.json``, the newest last, at most
``FORGET_MAX``), written whole to a temporary file and renamed, so a crash never leaves
half a file. A file that cannot be read is treated as empty: the dashboard then shows
those flows again, which loses nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from cinderblock.tui.model.flows import FORGET_MAX

FILE = "tui-dismissed.json"


def load(data_dir: Path) -> list[str]:
    try:
        found = json.loads((data_dir / FILE).read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(found, list):
        return []
    return [str(flow_id) for flow_id in found if isinstance(flow_id, str)][-FORGET_MAX:]


def save(data_dir: Path, flow_ids: Iterable[str]) -> None:
    path = data_dir / FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(list(flow_ids)[-FORGET_MAX:]))
    tmp.replace(path)
