"""What every ``cinderblock`` command shares: the usage error and finding a
running cluster from its data directory's ``endpoints.json``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cinderblock.protocol.client.client import SyncClient


class UsageError(Exception):
    """Bad command-line input, or no cluster where one was expected; printed as one line."""


def read_endpoints(data_dir: Path) -> dict[str, Any]:
    """The endpoints a running ``cinderblock up`` published (and its pid)."""
    path = data_dir / "endpoints.json"
    try:
        found = json.loads(path.read_text())
        if not isinstance(found, dict):
            raise ValueError("not a JSON object")
        return found
    except (OSError, ValueError) as exc:
        raise UsageError(f"no running cluster found ({path}: {exc}); start one with "
                         "`cinderblock up`, or give --gateway / CINDERBLOCK_GATEWAY") from exc


def endpoint_from(data_dir: Path, name: str = "gateway") -> str:
    endpoint = read_endpoints(data_dir).get(name)
    if not isinstance(endpoint, str):
        raise UsageError(f"no {name} endpoint in {data_dir / 'endpoints.json'}")
    return endpoint


def client(args: argparse.Namespace) -> SyncClient:
    """The client a command's common options (``--gateway``/``--data-dir``, ``--project``,
    ``--admin``) describe."""
    endpoint = args.gateway or endpoint_from(args.data_dir)
    return SyncClient(endpoint, project=args.project, admin=args.admin)
