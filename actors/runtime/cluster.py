"""Start, watch and stop a whole cluster of actor processes on this machine.

Used by ``cinderblock up``, by the tests and by the benchmarks. Every actor is
its own OS process (``cinderblock actor KIND``); the cluster writes the
config they all read, remembers their PIDs, and always stops exactly those
processes (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from cinderblock.actors.runtime.config import ClusterConfig, rest_url
from cinderblock.actors.runtime.keyring import provision, secret_key_file
from cinderblock.actors.runtime.parent import PARENT_PID_ENV
from cinderblock.protocol.client.client import SyncClient
from cinderblock.protocol.wire.errors import CinderblockError


class ClusterError(RuntimeError):
    """The cluster did not come up; the text says which actor and where its log is."""


class Cluster:
    """Starts and stops one cluster's actor processes, by their PIDs.

    ``supervisor=True`` (``cinderblock up``): this process is the cluster's
    supervisor. Its actors stop when it dies, even by SIGKILL (Linux's parent
    death signal), and ``endpoints.json`` carries its pid for ``cinderblock down``.
    """

    def __init__(self, cfg: ClusterConfig, supervisor: bool = False,
                 log_format: str = "text", env: Mapping[str, str] | None = None) -> None:
        self.cfg = cfg
        self.env = dict(env or {})  # given to every actor on top of ours (failpoints)
        self.supervisor = supervisor
        self.log_format = log_format  # text, or json (one object a line)
        self.data_dir = Path(cfg.data_dir)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        # how each was started (kind, host, listen), so a supervisor can start it again
        self.spawned: dict[str, tuple[str, str | None, str | None]] = {}
        self._published = False  # whether endpoints.json is ours to remove

    @property
    def config_path(self) -> Path:
        return self.data_dir / "cluster.json"

    def endpoints(self) -> dict[str, str]:
        c = self.cfg
        found = {"gateway": c.gateway, "events": c.events, "quota": c.quota,
                 "scheduler": c.scheduler, "stats": c.stats, "events_in": c.events_in}
        for i, listen in enumerate(c.rest):  # the REST fronts: "rest", "rest-2", ...
            found["rest" if i == 0 else f"rest-{i + 1}"] = rest_url(listen,
                                                                    bool(c.rest_certfile))
        if c.metrics:
            found["metrics"] = f"http://{c.metrics}/metrics"
        return found

    def start(self, timeout: float = 30.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        if self.cfg.security:
            provision(self.cfg)
        self.cfg.save(self.config_path)
        for kind in ("quota", "scheduler", "gateway"):
            self.spawn(kind)
        for node in self.cfg.nodes:
            if node.host not in self.procs:  # else started on its own host and handed over
                self.spawn("node", node.host)
        for i, listen in enumerate(self.cfg.rest):
            self.spawn("rest", listen=listen, name=f"rest-{i + 1}")
        if self.cfg.metrics:
            self.spawn("exporter")
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        tmp = self.data_dir / "endpoints.json.tmp"
        published: dict[str, object] = dict(self.endpoints())
        if self.supervisor:
            published["pid"] = os.getpid()
        tmp.write_text(json.dumps(published, indent=2))
        tmp.replace(self.data_dir / "endpoints.json")
        self._published = True

    def spawn(self, kind: str, host: str | None = None, listen: str | None = None,
              name: str | None = None) -> subprocess.Popen[bytes]:
        name = name or host or kind
        cmd = [sys.executable, "-m", "cinderblock", "actor", kind, "--config",
               str(self.config_path)]
        if host:
            cmd += ["--host", host]
        if listen:
            cmd += ["--listen", listen]
        # log lines go to NAME.log (rotated by the actor); anything else it prints
        # (a crash before logging starts) to NAME.stderr
        cmd += ["--log-file", str(self.log_path(name)), "--log-format", self.log_format]
        log = open(self.log_path(name, "stderr"), "ab")  # noqa: SIM115 (child owns it)
        env = {**os.environ, **self.env}
        if self.supervisor:
            env[PARENT_PID_ENV] = str(os.getpid())
        # glibc: buffers of 256 KiB and more are mapped and unmapped, never kept in the
        # heap (its adaptive threshold would keep a flood of large frames as RSS for good).
        env.setdefault("MALLOC_MMAP_THRESHOLD_", str(256 << 10))
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
        log.close()
        self.procs[name] = proc
        self.spawned[name] = (kind, host, listen)
        return proc

    def respawn(self, name: str) -> subprocess.Popen[bytes]:
        """Start the actor called ``name`` again, as it was started (same endpoints)."""
        kind, host, listen = self.spawned[name]
        return self.spawn(kind, host, listen, name)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        wanted = {n.backend_id for n in self.cfg.nodes}
        with SyncClient(self.cfg.gateway, admin=True, timeout=2.0, key=self.key("admin")
                        ) as client:
            while True:
                self._check_alive()
                try:
                    up = {b.backend for b in client.list_backends() if b.up}
                    tls = bool(self.cfg.rest_certfile)
                    if wanted <= up and all(_http_answers(a, tls) for a in self.cfg.rest) \
                            and (not self.cfg.metrics or _listening(self.cfg.metrics)):
                        return
                except CinderblockError:
                    pass  # not up yet; try again until the deadline
                if time.monotonic() > deadline:
                    raise ClusterError(f"cluster not ready after {timeout:g}s; "
                                       f"logs in {self.data_dir / 'logs'}")
                time.sleep(0.05)

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise ClusterError(f"{name} exited with {proc.returncode}: "
                                   f"{self.last_words(name)} (log: {self.log_path(name)})")

    def log_path(self, name: str, kind: str = "log") -> Path:
        """An actor's log (``kind="stderr"``: what it printed outside logging)."""
        return self.data_dir / "logs" / f"{name}.{kind}"

    def last_words(self, name: str) -> str:
        """The last line an actor wrote: on stderr (a crash) if anything, else in its
        log (a start that failed says why there)."""
        said = last_line(self.log_path(name, "stderr"))
        return said if said != "no output" else last_line(self.log_path(name))

    def key(self, user: str) -> Path | None:
        """A user's secret-key file (None when the cluster runs without security)."""
        return secret_key_file(self.data_dir, user) if self.cfg.security else None

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.procs.items()}

    def stop_actor(self, name: str, grace: float = 5.0) -> None:
        proc = self.procs.pop(name)
        _terminate([proc], grace)

    def stop(self, grace: float = 5.0) -> None:
        """Stop every actor this cluster started; the endpoints file goes first, so
        no command finds a cluster that is going away."""
        if self._published:
            (self.data_dir / "endpoints.json").unlink(missing_ok=True)
            self._published = False
        procs, self.procs = list(self.procs.values()), {}
        _terminate(procs, grace)

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _terminate(procs: list[subprocess.Popen[bytes]], grace: float) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _http_answers(listen: str, tls: bool = False) -> bool:
    """Whether the REST front on ``listen`` answers its version document. Over TLS the
    certificate is not checked: this asks whether the process serves yet, and sends
    nothing but the unauthenticated version request (the operator's CA, which signed
    the front's certificate, is not this launcher's to know)."""
    context = None
    if tls:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        with urllib.request.urlopen(rest_url(listen, tls) + "/", timeout=1.0,
                                    context=context) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def _listening(address: str) -> bool:
    """Whether something accepts connections on ``address`` ("host:port", "[v6]:port"):
    the metrics exporter, whose scrape may need a client certificate to answer."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=1.0):
            return True
    except OSError:
        return False


def last_line(log: Path) -> str:
    """The last thing an actor wrote (a start that failed says why there)."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "no output"
    return lines[-1].strip(" |+-") if lines else "no output"


def with_quota_defaults(cfg: ClusterConfig, **limits: int) -> ClusterConfig:
    return replace(cfg, quota_defaults={**cfg.quota_defaults, **limits})
