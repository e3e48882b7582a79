"""Microversions as Cinder negotiates them (``OpenStack-API-Version: volume 3.x``).

No header means 3.0; ``latest`` means the newest; a version outside
[MIN, MAX] is refused with 406. Every answer names the version it was served
at in the same header, with ``Vary: OpenStack-API-Version``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cinderblock.actors.rest.errors import HttpFault

HEADER = "OpenStack-API-Version"
LEGACY_HEADER = "X-OpenStack-Volume-API-Version"
_VERSION = re.compile(r"^([1-9]\d*)\.(0|[1-9]\d*)$")


@dataclass(frozen=True, slots=True, order=True)
class Version:
    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    def at_least(self, text: str) -> bool:
        return self >= parse_version(text)


def parse_version(text: str) -> Version:
    m = _VERSION.match(text.strip())
    if m is None:
        raise HttpFault(400, f"API Version String {text!r} is of invalid format. "
                        "Must be of format MajorNum.MinorNum.")
    return Version(int(m.group(1)), int(m.group(2)))


MIN = Version(3, 0)
MAX = Version(3, 71)


def negotiate(header: str | None, legacy: str | None = None) -> Version:
    """The version a request asks for, from its headers."""
    wanted = _volume_part(header) if header else (legacy.strip() if legacy else None)
    if not wanted:
        return MIN
    if wanted == "latest":
        return MAX
    version = parse_version(wanted)
    if not MIN <= version <= MAX:
        raise HttpFault(406, f"Version {version} is not supported by the API. "
                        f"Minimum is {MIN} and maximum is {MAX}.")
    return version


def _volume_part(header: str) -> str | None:
    for item in header.split(","):
        service, _, value = item.strip().partition(" ")
        if service.lower() == "volume":
            return value.strip()
    return None


def response_headers(version: Version) -> dict[str, str]:
    return {HEADER: f"volume {version}", "Vary": HEADER}


def version_document(base_url: str) -> dict[str, object]:
    """``GET /`` and ``GET /v3/``: the one API version served, Cinder's shape."""
    return {
        "id": "v3.0", "status": "CURRENT", "version": str(MAX), "min_version": str(MIN),
        "updated": "2022-08-31T00:00:00Z",
        "links": [{"rel": "self", "href": f"{base_url}/v3/"}],
        "media-types": [{"base": "application/json",
                         "type": "application/vnd.openstack.volume+json;version=3"}],
    }
