"""The REST front's answer to a failure of its own: a handler that raises something
unexpected (a bug) is answered as Cinder answers one, a 500 ``computeFault`` in JSON
with the request's id, and logged with its traceback; the front goes on serving."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient, TestServer

from cinderblock.actors.rest.app import SERVER_ERRED, Front, build_app
from cinderblock.actors.rest.auth import Authenticator
from cinderblock.protocol.client.client import Client


class BuggyClient:
    """Stands in for the gateway's client: listing volumes hits a bug."""

    def acting_for(self, *args: Any, **kwargs: Any) -> BuggyClient:
        return self

    async def list_volumes(self, **kwargs: Any) -> Any:
        raise KeyError("a bug")


async def test_a_bug_is_a_cinder_computefault_500_logged_with_its_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    front = Front(cast(Client, BuggyClient()), Authenticator(tmp_path, "127.0.0.1"))
    async with TestClient(TestServer(build_app(front))) as http:
        with caplog.at_level(logging.ERROR, logger="cinderblock.actors.rest.app"):
            resp = await http.get("/v3/volumes", headers={"X-Auth-Token": "u:p"})
            body = await resp.json()
        assert resp.status == 500
        assert body == {"computeFault": {"code": 500, "message": SERVER_ERRED}}
        rid = resp.headers["x-openstack-request-id"]
        assert rid.startswith("req-")
        (record,) = [r for r in caplog.records if rid in r.getMessage()]
        assert "GET /v3/volumes failed" in record.getMessage()
        assert record.exc_info is not None and record.exc_info[0] is KeyError
        versions = await http.get("/v3")  # still serving
        assert versions.status == 200
