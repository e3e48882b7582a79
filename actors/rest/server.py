"""The REST front's process: ``cinderblock actor rest --config FILE --listen HOST:PORT``
(``--log-file``, ``--log-format`` as every actor's).

One aiohttp server and one client-library connection to the gateway, opened at
start and kept for the life of the process; every HTTP request is a call (or a
few) on it, pipelined with the others. Stops on SIGTERM/SIGINT.

Over TLS when the cluster file gives ``rest_certfile`` and ``rest_keyfile`` (TLS 1.2 at
least, Python's ``ssl``). A front beyond loopback refuses to start without them: its
callers send their tokens, which plain HTTP would show to the network; unless
``rest_plain_http`` says that TLS ends in front of it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from pathlib import Path

from aiohttp import web

from cinderblock.actors.rest.access_log import AccessLog
from cinderblock.actors.rest.access_log import log as access_log
from cinderblock.actors.rest.app import Front, build_app
from cinderblock.actors.rest.auth import AuthConfigError, Authenticator, is_loopback
from cinderblock.actors.runtime import logs
from cinderblock.actors.runtime.config import ClusterConfig, load
from cinderblock.actors.runtime.keyring import FRONT_USER, secret_key_file
from cinderblock.actors.runtime.parent import die_with_parent
from cinderblock.protocol.client.client import Client

log = logging.getLogger("cinderblock.rest")


def split_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise SystemExit(f"--listen wants HOST:PORT, got {listen!r}")
    return host.strip("[]"), int(port)


def tls_context(cfg: ClusterConfig, host: str) -> ssl.SSLContext | None:
    """The front's TLS (``rest_certfile``, ``rest_keyfile``), or None for plain HTTP,
    which only loopback (or ``rest_plain_http``) may serve."""
    if not cfg.rest_certfile:
        if not is_loopback(host) and not cfg.rest_plain_http:
            raise AuthConfigError(
                f"a REST front on {host} (beyond loopback) would take its callers' tokens "
                "over plain HTTP: give rest_certfile and rest_keyfile (its TLS certificate "
                "and key, PEM) in the cluster file, or rest_plain_http = true if TLS ends "
                "in front of it on this host")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cfg.rest_certfile, cfg.rest_keyfile)
    except OSError as exc:  # ssl.SSLError too: not PEM, or the key is not the cert's
        raise AuthConfigError(f"cannot load rest_certfile {cfg.rest_certfile} with "
                              f"rest_keyfile {cfg.rest_keyfile}: {exc}") from None
    return context


async def serve(config: Path, listen: str) -> None:
    cfg = load(config)
    host, port = split_listen(listen)
    auth = Authenticator(Path(cfg.data_dir), host)  # beyond loopback: tokens, then TLS
    tls = tls_context(cfg, host)
    key = secret_key_file(Path(cfg.data_dir), FRONT_USER) if cfg.security else None
    client = Client(cfg.gateway, project="", user="rest-front", timeout=30.0, key=key)
    async with client:
        front = Front(client, auth, name=f"{host}:{port}")
        runner = web.AppRunner(build_app(front), access_log=access_log,
                               access_log_class=AccessLog)
        await runner.setup()
        await web.TCPSite(runner, host, port, ssl_context=tls, reuse_address=True).start()
        log.info("REST front on %s://%s:%d/v3 (%s)", "https" if tls else "http", host, port,
                 "noauth, loopback" if auth.noauth else "tokens")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()


def run_front(config: Path, listen: str, verbose: bool = False, log_file: Path | None = None,
              log_format: str = "text") -> int:
    """Serve until SIGTERM; log as the actors do (``log_file`` or stderr, text or JSON),
    a line for each HTTP request among them (``actors.rest.access_log``)."""
    logs.setup("rest", verbose, log_file, log_format)
    die_with_parent()
    try:
        asyncio.run(serve(config, listen))
    except AuthConfigError as exc:
        log.error("rest cannot start: %s", exc)
        return 1
    except OSError as exc:
        log.error("rest cannot start: %s", exc)
        return 1
    return 0
