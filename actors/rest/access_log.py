"""The REST front's access log: one line an HTTP request, as Cinder's API logs them.

    2026-12-04T05:01:02.345+00:00 rest INFO cinderblock.rest.access [req-5c1e…
      project=demo volume=8f0e…] "POST /v3/volumes/8f0e…/action" 202 0 B 3.21 ms user=demo

The line goes through the actor's log (``actors.runtime.logs``): its request id is the
answer's ``x-openstack-request-id``, and the front's calls to the gateway carry the
same id (``Client.acting_for``), so a gateway line about a refused request names the
HTTP request that asked. The project is the caller's once authenticated (``-`` before);
the volume is the one the path names. A token is never logged: only the method, the path
with its query, the status, the size of the answer, the time, the user and, when the
caller sent one, its own ``X-OpenStack-Request-ID`` (``global=``, as Cinder logs Nova's).
"""

from __future__ import annotations

import logging
import re

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest

from cinderblock.actors.rest.auth import Caller
from cinderblock.actors.runtime.logs import REQUEST

log = logging.getLogger("cinderblock.rest.access")
VOLUME_PATH = "/volumes/{id}"
GLOBAL_HEADER = "X-OpenStack-Request-ID"  # a caller's own id (Nova sends its request's)
GLOBAL_ID = re.compile(r"req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def access_line(method: str, path_qs: str, status: int, size: int, seconds: float,
                user: str, global_id: str | None = None) -> str:
    """What the line says beyond the ids its prefix carries."""
    line = f'"{method} {path_qs}" {status} {size} B {seconds * 1000:.2f} ms user={user}'
    return f"{line} global={global_id}" if global_id else line


def global_request_id(header: str | None) -> str | None:
    """The caller's ``X-OpenStack-Request-ID`` when it is one (``req-<uuid>``, as
    oslo.middleware accepts it), else None: logged beside the front's own id, never
    used as it, and nothing else a caller sends reaches the log unchecked."""
    return header if header is not None and GLOBAL_ID.fullmatch(header) else None


# what the front keeps on each HTTP request (aiohttp's typed keys)
REQUEST_ID = web.RequestKey("request_id", str)  # the front's own, made for each request
CALLER = web.RequestKey("caller", Caller)  # who is asking, once authenticated


def request_ids(request: BaseRequest) -> tuple[str, str, str]:
    """(request id, project, volume id) of an HTTP request, ``-`` for what it lacks."""
    rid = request.get(REQUEST_ID) or "-"
    caller = request.get(CALLER)
    project = caller.project if caller is not None else "-"
    volume = "-"
    if isinstance(request, web.Request):
        resource = request.match_info.route.resource
        if resource is not None and VOLUME_PATH in resource.canonical:
            volume = request.match_info.get("id", "-")
    return rid, project, volume


class AccessLog(AbstractAccessLogger):
    """aiohttp's access logger, writing through the actor's log with the request's ids."""

    def log(self, request: BaseRequest, response: web.StreamResponse, time: float) -> None:
        caller = request.get(CALLER)
        user = caller.user if caller is not None else "-"
        token = REQUEST.set(request_ids(request))
        try:
            self.logger.info("%s", access_line(
                request.method, request.path_qs, response.status, response.body_length, time,
                user, global_request_id(request.headers.get(GLOBAL_HEADER))))
        finally:
            REQUEST.reset(token)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
