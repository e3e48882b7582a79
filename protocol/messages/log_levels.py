"""Log levels read and changed while the cluster runs (Cinder's ``os-services`` ``get-log``
and ``set-log``, 3.32; an admin's).

    gateway → any actor   log.levels          (LogLevelsAsk) → ActorLogLevels: its loggers
                                              of a prefix and their effective levels
                          log.set_levels      (LogLevelsSet) → ActorLogLevels: the loggers
                                              set, at their new level
    client  → gateway     service.log_levels  (ServiceLogRequest) → ServiceLogList: the
                                              services a binary and server name, each
                                              asked at once; one that does not answer in
                                              time is named in ``missing``
                          service.set_log_levels  (ServiceLogRequest with a level) → the
                                              same, after the change

A service is named as Cinder's ``os-services`` names it: ``cinder-scheduler`` on host
``scheduler``, each node's ``cinder-volume`` on its backend (``node-1@file``); the
gateway and the quota actor, which Cinder has no binary for, as ``cinderblock-gateway``
and ``cinderblock-quota``. A REST front answers for its own process as ``cinder-api``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cinderblock.protocol.wire.schema import message

API_BINARY = "cinder-api"
SCHEDULER_BINARY = "cinder-scheduler"
VOLUME_BINARY = "cinder-volume"
GATEWAY_BINARY = "cinderblock-gateway"
QUOTA_BINARY = "cinderblock-quota"
# The binaries a request may name (Cinder's and this cluster's own; "" or "*": every one).
BINARIES = (API_BINARY, SCHEDULER_BINARY, VOLUME_BINARY, "cinder-backup", GATEWAY_BINARY,
            QUOTA_BINARY)


@message
@dataclass(frozen=True, slots=True)
class LogLevelsAsk:
    prefix: str = ""  # the loggers whose names start with it ("": every one)


@message
@dataclass(frozen=True, slots=True)
class LogLevelsSet:
    level: str  # DEBUG, INFO, WARNING or ERROR
    prefix: str = ""


@message
@dataclass(frozen=True, slots=True)
class ActorLogLevels:
    actor: str
    levels: dict[str, str] = field(default_factory=dict)  # logger name -> level name


@message
@dataclass(frozen=True, slots=True)
class ServiceLogRequest:
    """``binary`` and ``server`` pick the services (None, "" or "*": every one);
    ``level`` is the new level (``service.set_log_levels`` only)."""

    binary: str | None = None
    server: str | None = None
    prefix: str = ""
    level: str | None = None


@message
@dataclass(frozen=True, slots=True)
class ServiceLogLevels:
    binary: str
    host: str
    levels: dict[str, str] = field(default_factory=dict)


@message
@dataclass(frozen=True, slots=True)
class ServiceLogList:
    services: tuple[ServiceLogLevels, ...] = ()
    missing: tuple[str, ...] = ()  # services that did not answer in time (by host)
