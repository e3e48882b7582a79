"""The actor shell: sockets, request/reply, casts, events, lifecycle.

An actor is one asyncio loop that owns its sockets and its state. It binds a
ROUTER (peers and clients come to it) and/or connects DEALERs (it goes to
peers), and every incoming message goes through one dispatch:

- ``rep``  settles the pending call it answers (``Calls``);
- ``req`` / ``cast`` is parsed into the op's typed body and handed to the
  handler registered for the op: a plain function runs inline, a coroutine
  function runs as a task owned by the actor's TaskGroup. A req gets exactly
  one reply: the handler's return value, or ``{code, message, details}``;
- anything undecodable gets an ``invalid_input`` error reply and is otherwise
  ignored: an actor never dies of a message.

Who sends (``actors.runtime.trust``, on unless the cluster file says
``security = false``): every bound socket is a CURVE server whose ZAP handler
admits only the keys allowed there, and every message carries its connection's
User-Id, the name of its key. A sender the actor does not know gets nothing;
an op the sender's roles may not send (``protocol.messages.ops.OP_TABLE``) is
refused ``forbidden`` before its handler runs; a user's project, name and roles
come from its key, never from the envelope (only actors and ``front`` peers
pass a context on); a reply settles only the call made to its sender.

Bounded in bytes: the requests an actor holds while their (async) handlers run
are counted in bytes per peer (``INFLIGHT_PEER_BYTES``) and in all
(``INFLIGHT_TOTAL_BYTES``); past either, a request is answered ``unavailable`` at
once instead of being kept, so a peer that floods an actor with large requests
gets refusals, and the actor's memory stays where it was.

Lifecycle as pykka's: ``on_start``, then messages, then ``on_stop``.
SIGTERM/SIGINT (or ``stop()``) wind the actor down in this order:

1. it stops taking requests (a new one is refused: ``the actor is stopping``);
   replies to its own calls still come in;
2. the running handlers get ``stop_grace_s`` to finish, then are cancelled,
   and every call still waiting fails with ``Closed``;
3. its other tasks (periodic jobs, flushers) are cancelled and awaited;
4. its sockets close, and only then ``on_stop`` runs: no handler or flow is
   still writing to a database that ``on_stop`` closes.

A failed ``on_start`` winds down the same way (``on_stop`` closes whatever
the start had opened, so it must cope with a partial start), then raises.
A periodic job (``every``) that raises is logged and runs again next time;
it never takes its actor down. Its database found damaged does (``_watch``): the
actor winds down the same way, then ``run`` raises ``DatabaseDamaged``. A task
that fails ends the actor at once; it still lets go of its database file.

Every actor runs its flows through ``run_flow``, which keeps their traces in
the actor's ``FlowHistory``, and answers ``flow.recent`` from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import secrets
import signal
import sqlite3
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import zmq

from cinderblock.actors.flow.engine import LinearFlow
from cinderblock.actors.flow.history import FlowHistory
from cinderblock.actors.flow.reply import recent_reply
from cinderblock.actors.runtime.collector import WATCH as COLLECTOR
from cinderblock.actors.runtime.collector import freeze_what_started
from cinderblock.actors.runtime.database import Database, DatabaseDamaged
from cinderblock.actors.runtime.events import EventPublisher
from cinderblock.actors.runtime.log_levels import levels, set_levels
from cinderblock.actors.runtime.logs import REQUEST
from cinderblock.actors.runtime.peer_turns import PeerTurns
from cinderblock.actors.runtime.redial import Redial, routing_id, same_process
from cinderblock.actors.runtime.trust import Authenticator, Trust
from cinderblock.protocol.messages.flows import FlowTraceList
from cinderblock.protocol.messages.health import ActorStats
from cinderblock.protocol.messages.log_levels import ActorLogLevels, LogLevelsAsk, LogLevelsSet
from cinderblock.protocol.messages.ops import OPS, SENDERS
from cinderblock.protocol.messages.volumes import Empty
from cinderblock.protocol.wire.access import Principal, may_send
from cinderblock.protocol.wire.batching import Batcher
from cinderblock.protocol.wire.codec import (
    MAX_FRAME,
    SYSTEM_CONTEXT,
    Context,
    Envelope,
    MalformedMessage,
    decode_frame,
    encode,
    next_id,
)
from cinderblock.protocol.wire.errors import (
    CinderblockError,
    Closed,
    Forbidden,
    InternalError,
    InvalidInput,
    PeerGone,
    Timeout,
    Unavailable,
)
from cinderblock.protocol.wire.pending_guard import EVENT_STRUCT, WATCHED, PendingGuard
from cinderblock.protocol.wire.rpc import STOPPING, Calls
from cinderblock.protocol.wire.schema import SchemaError, dump, parse
from cinderblock.protocol.wire.throttled_log import ThrottledLog
from cinderblock.protocol.wire.transport import Channel, tune

log = logging.getLogger(__name__)
rejected = ThrottledLog(log)  # what peers control is logged a few times a minute at most
DEFAULT_TIMEOUT = 30.0
RECONNECT_POLL_S = 0.1  # how often when_connected tries a peer not connected again
# how long a cast or call to a node not connected (yet, or again) waits for it to be
# (a node started again says hello within a heartbeat of its start)
NODE_CONNECT_GRACE = 5.0
ROUTER_RCVHWM = 100
INFLIGHT_PEER_BYTES = 16 << 20
INFLIGHT_TOTAL_BYTES = 128 << 20
_LATER = object()  # the reply is sent later, by AfterCommit
READER_ROLES = frozenset({"admin", "monitor"})  # may read an actor's statistics
E = TypeVar("E", bound=BaseException)
T = TypeVar("T")


def _restarts() -> int | None:
    """How often this actor was restarted, if its supervisor says (CINDERBLOCK_RESTARTS)."""
    text = os.environ.get("CINDERBLOCK_RESTARTS")
    return int(text) if text is not None and text.isdigit() else None


RESTARTS = _restarts()


class FrameTooLarge(InternalError):
    """A message of ours would not fit in a frame (a reply too big to page)."""


async def when_connected(attempt: Callable[[], Awaitable[T]], within: float) -> T:
    """``attempt()`` (a send to one peer); while that peer is not connected (yet: actors
    say hello within a heartbeat of a restart of either side), tried again every
    ``RECONNECT_POLL_S`` for ``within`` seconds, then its ``PeerGone``."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await attempt()
        except PeerGone:
            if time.monotonic() >= deadline:
                raise
        await asyncio.sleep(RECONNECT_POLL_S)


class Link:
    """One socket of an actor: a bound ROUTER or a connected DEALER.

    Who is on the other end: on a DEALER, the server it dialled (``peer``, whose
    public key CURVE checked); on a secure ROUTER, the ZAP User-Id of each
    message's connection. A secure ROUTER addresses actors by the routing id
    their authenticated messages last came from (``routes``), never by a name a
    peer chose for itself, so a connection that merely calls itself ``node-1``
    receives nothing meant for node-1."""

    def __init__(self, actor: Actor, sock: zmq.Socket[bytes], routed: bool, peer: str = "",
                 secure: bool = False, guard: PendingGuard | None = None) -> None:
        self.actor = actor
        self.routed = routed
        self.peer = peer
        self.secure = secure and routed
        self.routes: dict[bytes, bytes] = {}  # actor name -> routing id (secure ROUTER)
        self.dialled: Dialled | None = None  # a DEALER: how to dial it again (Actor.redial)
        if self.secure:
            self.channel = Channel(sock, None, self._on_peer_frames, routed=routed,
                                   guard=guard)
        else:
            self.channel = Channel(sock, self._on_frames, routed=routed)
        self.out = Batcher(self.channel, routed, on_lost=actor.calls.fail)

    def _on_frames(self, frames: list[bytes]) -> int:
        if self.routed:
            identity = frames[0]
            return self.actor._receive(self, identity, identity.decode(errors="replace"),
                                       frames[-1])
        return self.actor._receive(self, b"", self.peer, frames[-1])

    def _on_peer_frames(self, user_id: str, frames: list[bytes]) -> int:
        return self.actor._receive(self, frames[0], user_id, frames[-1])

    def address(self, to: bytes) -> bytes:
        """The routing id of the actor named ``to`` (ROUTER), b"" on a DEALER."""
        if not self.routed:
            return b""
        if not self.secure:
            return to
        route = self.routes.get(to)
        if route is None:
            peer = to.decode(errors="replace")
            raise PeerGone(f"peer {peer!r} is not connected", {"peer": peer})
        return route

    def is_route(self, name: str, identity: bytes) -> bool:
        """Whether ``identity`` (the routing id a message came from) is where the actor
        ``name`` is reached: on a secure ROUTER, the connection that actor's own key
        last spoke from (only an actor's key sets its route); without keys, any."""
        return not self.secure or self.routes.get(name.encode()) == identity

    def send(self, identity: bytes, env: Envelope, call: int | None = None,
             now: bool = False, hold: bool = False) -> None:
        """Send one message: at once if it is the first to its peer in this loop turn,
        or ``now`` (a peer that is not connected is ``PeerGone`` here), else by the end
        of the turn with the others (``Batcher``). One over the frame limit is refused
        here (``FrameTooLarge``), never sent to be dropped by the peer (which would cut
        the connection). ``hold``: with the next message to that peer in this turn
        (``Batcher.send``)."""
        payload = encode(env)
        if len(payload) > MAX_FRAME:
            raise FrameTooLarge(
                f"the {env.kind} {env.op} would be {len(payload)} bytes, over the "
                f"{MAX_FRAME}-byte frame limit", {"op": env.op, "bytes": len(payload)})
        self.out.send(identity, payload, call, now, hold)

    def cast(self, op: str, body: Any, ctx: Context | None = None, to: bytes = b"") -> None:
        self.send(self.address(to), Envelope("cast", next_id(), op, dump(body),
                                             ctx or SYSTEM_CONTEXT))

    def push(self, to: bytes, op: str, body: Any) -> None:
        """An unsolicited event to one peer (a status change a client watches)."""
        self.send(to, Envelope("evt", next_id(), op, dump(body)))

    async def call(
        self,
        op: str,
        body: Any,
        ctx: Context | None = None,
        to: bytes = b"",
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Any:
        return await self.request(op, body, ctx, to, timeout)

    def request(
        self,
        op: str,
        body: Any,
        ctx: Context | None = None,
        to: bytes = b"",
        timeout: float = DEFAULT_TIMEOUT,
        hold: bool = False,
    ) -> asyncio.Future[Any]:
        """Send a request now (what this link sends next goes after it; ``hold``: in
        the same message as the next, ``Batcher.send``); its reply settles the future
        (``call`` awaits it)."""
        msg_id = next_id()
        calls = self.actor.calls
        peer = to.decode(errors="replace") if self.routed else self.peer
        fut = calls.start(msg_id, op, timeout, (self, peer))
        try:
            self.send(self.address(to), Envelope("req", msg_id, op, dump(body),
                                                 ctx or SYSTEM_CONTEXT), msg_id, hold=hold)
        except CinderblockError:
            calls.forget(msg_id)
            raise
        return fut

    def connection_lost(self) -> None:
        """The DEALER's connection closed: its calls in flight can have no answer."""
        lost = self.actor.calls.lost_to((self, self.peer), f"the connection to {self.peer} "
                                        "closed before it answered")
        if lost:
            log.info("%d calls to %s lost with its connection", lost, self.peer)

    def give_up(self, reason: str, to: str | None = None) -> int:
        """The DEALER's server (on a ROUTER, the peer named ``to``) is judged frozen or
        cut off: its calls in flight fail now with ``Timeout`` (``reason``), not at
        their deadline. How many."""
        peer = self.peer if to is None else to
        given_up = self.actor.calls.given_up_on((self, peer), reason)
        if given_up:
            log.warning("%d calls to %s given up: %s", given_up, peer, reason)
        return given_up

    def move_to(self, sock: zmq.Socket[bytes]) -> None:
        """A DEALER dialled again (``Actor.redial``): what this turn sent goes on the
        old socket, which closes with what it holds; from now on, ``sock``."""
        old = self.channel
        self.channel = Channel(sock, self._on_frames, routed=False)
        self.out.move_to(self.channel)
        old.close()

    def close(self) -> None:
        self.out.flush()  # what this turn sent still goes (replies during a stop)
        self.channel.close()


@dataclass(eq=False)
class Dialled:
    """How a DEALER was dialled, to dial it again under a new routing id
    (``Actor.redial``), and what its hellos and connection say (``Redial``)."""

    endpoint: str
    name: str  # ours: the routing id's first part
    server: str
    closed: Callable[[], None] | None  # what its connection closing means to its owner
    redial: Redial = field(default_factory=Redial)
    monitor: Channel | None = None


@dataclass(frozen=True, slots=True)
class Request:
    """A request or cast as a handler sees it: typed body, who sent it, how to answer."""

    env: Envelope
    body: Any
    link: Link
    sender: bytes  # the routing id to answer to
    peer: str = ""  # who sent it: an actor's or user's name (its key's, when secure)
    context: Context | None = None  # from the key (secure), else from the envelope

    @property
    def ctx(self) -> Context:
        return self.context or self.env.context or Context()


Handler = Callable[[Request], Any]


@dataclass(frozen=True, slots=True)
class AfterCommit:
    """What a plain (non-async) handler returns when its reply must wait for
    its writes to be durable: the reply goes out when ``committed`` resolves,
    without a task per request."""

    committed: asyncio.Future[None]
    reply: Any


class Actor:
    """Base class: subclasses set ``name``, open links in ``on_start`` and list handlers."""

    name = "actor"
    heartbeat_s = 2.0
    stop_grace_s = 3.0  # how long running handlers may take to finish on stop
    # Ops whose reply waits for the next message to the same peer in its loop turn and
    # goes in it (``Batcher.send(hold=True)``), or at the turn's end.
    held_replies: frozenset[str] = frozenset()

    def __init__(self, events_endpoint: str | None = None) -> None:
        self.calls = Calls()
        self.zctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        self._events_endpoint = events_endpoint
        self._links: list[Link] = []
        self._handlers: dict[str, tuple[Handler, bool]] = {}
        self._stop = asyncio.Event()
        self._stopped_by: DatabaseDamaged | None = None  # what stopped it, if not a signal
        self._tasks: set[asyncio.Task[Any]] = set()
        self._handling: set[asyncio.Task[Any]] = set()  # running async handlers
        self._accepting = True
        self._tg: asyncio.TaskGroup | None = None
        self.started_at = time.time()
        self.handled = 0
        self.events: EventPublisher
        self.flow_history = FlowHistory()
        self.trust: Trust | None = None  # None: no CURVE, the envelope's context is believed
        self.process_token = secrets.token_hex(8)  # in our DEALERs' routing ids
        self.refused = 0  # messages dropped: unknown sender, or an actor under another name
        self._auth: Authenticator | None = None
        self._monitors: list[Channel] = []
        self._held: dict[bytes, int] = {}  # bytes of requests in flight, per peer
        self._held_total = 0
        self.refused_busy = 0
        # At most a few hundred of one peer's requests run at once; the rest wait in line.
        self._turns: PeerTurns[tuple[Handler, Request, int]] = PeerTurns()

    # ---- to override ---------------------------------------------------
    def handlers(self) -> dict[str, Handler]:
        return {}

    def prepare(self) -> None:
        """Runs first, before the event publisher connects (the gateway binds its hub here)."""

    async def on_start(self) -> None:
        pass

    async def on_stop(self) -> None:
        pass

    def peer_connected(self, name: str) -> None:
        """The actor ``name`` speaks from a new connection: its first message since it
        started, or since this actor did (on a bound ROUTER, by its key)."""

    def peer_reconnected(self, name: str) -> None:
        """The actor ``name``, the same process, speaks from a connection it dialled
        again under a new routing id (on a bound ROUTER, by its key): what was sent to
        it, or by it, on the old one and not yet read may be lost."""

    def statistics(self) -> dict[str, Any]:
        return {"handled": self.handled, "pending_calls": len(self.calls),
                "flows": self.flow_history.statistics(), "refused": self.refused,
                "held_bytes": self._held_total, "refused_busy": self.refused_busy,
                "turns": self._turns.statistics(),
                "dialled_again": sum(link.dialled.redial.dials for link in self._links
                                     if link.dialled is not None),
                "restarts": RESTARTS, "sent": self.sent(), "collector": COLLECTOR.statistics(),
                "uptime_s": round(time.time() - self.started_at, 3)}

    def sent(self) -> dict[str, int]:
        """ZeroMQ messages sent on this actor's links and the envelopes in them (a batch
        carries several), and envelopes lost because their peer left within a turn."""
        outs = [link.out.statistics() for link in self._links]
        return {key: sum(out[key] for out in outs) for key in ("messages", "envelopes", "lost")}

    def database(self) -> Database | None:
        """The SQLite file this actor owns, if any (its state is part of ``stats``)."""
        return None

    # ---- log levels (an admin's: Cinder's os-services get-log and set-log) ------
    def on_log_levels(self, req: Request) -> ActorLogLevels:
        check_admin(req.ctx, "log.levels")
        body: LogLevelsAsk = req.body
        return ActorLogLevels(self.name, levels(body.prefix))

    def on_log_set_levels(self, req: Request) -> ActorLogLevels:
        check_admin(req.ctx, "log.set_levels")
        body: LogLevelsSet = req.body
        names = set_levels(body.prefix, body.level)
        log.warning("%s: %d loggers of prefix %r set to %s by %s", self.name, len(names),
                    body.prefix, body.level.upper(), req.ctx.user_id)
        return ActorLogLevels(self.name, levels(body.prefix))

    # ---- statistics ----------------------------------------------------
    async def on_stats(self, req: Request) -> ActorStats:
        check_reader(req.ctx, "stats")
        return await self.stats_snapshot()

    async def stats_snapshot(self) -> ActorStats:
        """What ``stats`` answers: liveness, uptime, restarts, queues, database state."""
        db = self.database()
        queues = {f"{'router' if link.routed else 'dealer'}-{i}": link.channel.queued
                  for i, link in enumerate(self._links)}
        queues["tasks"] = len(self._tasks)
        return ActorStats(
            actor=self.name, pid=os.getpid(), started_at=self.started_at,
            uptime_s=round(time.time() - self.started_at, 3), restarts=RESTARTS,
            handled=self.handled, pending_calls=len(self.calls), queues=queues,
            database=await db.health() if db is not None else {"state": "none"},
            flows=self.flow_history.statistics(), details=_plain(self.statistics()))

    # ---- flows ---------------------------------------------------------
    def run_flow(self, flow: LinearFlow[Any], c: Any, volume_id: str, ctx: Context
                 ) -> Coroutine[Any, Any, None]:
        """One of this actor's flows, to await: its events published, its trace kept
        (the run itself, not a coroutine wrapping it: one frame less per flow)."""
        return flow.run(c, self.events, volume_id, history=self.flow_history,
                        project_id=ctx.project_id)

    def on_flow_recent(self, req: Request) -> FlowTraceList:
        return recent_reply(self.flow_history, self.name, req.body, time.time())

    # ---- sockets -------------------------------------------------------
    def bind(self, endpoint: str, domain: str) -> Link:
        """A ROUTER on ``endpoint``; secure, it admits the keys ``domain`` allows."""
        sock = self.zctx.socket(zmq.ROUTER)
        tune(sock)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        if self.trust is None:
            # Without keys a peer started again (same identity) takes its name over at
            # once, before the dead connection is noticed. With keys, never: handover
            # would let any admitted peer take another's routing id and its replies;
            # there, actors' ids carry a random suffix and routes follow the key.
            sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
        # What waits unread for one peer: a sender past it is held back by TCP (nothing
        # is lost), so a flood stays in the sender's buffers, not in this process.
        sock.setsockopt(zmq.RCVHWM, ROUTER_RCVHWM)
        # What a connection holds inside libzmq (an endless multipart message, which no
        # libzmq limit sees) is counted in bytes and cut past a bound (pending_guard).
        guard = PendingGuard(curve=True) if self.trust is not None else None
        self.serve(sock, domain, guard)
        sock.bind(endpoint)
        if guard is not None:
            guard.local_port = int(sock.getsockopt_string(zmq.LAST_ENDPOINT).rsplit(":", 1)[1])
        return self._add(Link(self, sock, routed=True, secure=self.trust is not None,
                              guard=guard))

    def connect(self, endpoint: str, identity: str, server: str, *,
                calls_lost_with_connection: bool = False,
                on_disconnect: Callable[[], None] | None = None) -> Link:
        """A DEALER to the actor ``server``. Secure, the routing id is ``identity``,
        this process's token and a count (``redial.routing_id``): the server addresses
        us by our key, not by this id. When the connection closes (the server died, or
        was stopped), with ``calls_lost_with_connection`` a call in flight fails at
        once with ``PeerGone``, as no answer can come, instead of waiting out its
        timeout (what is sent next waits in the socket until the server is back); and
        ``on_disconnect`` is told."""
        def closed() -> None:
            if calls_lost_with_connection:
                link.connection_lost()
            if on_disconnect is not None:
                on_disconnect()

        watched = calls_lost_with_connection or on_disconnect is not None
        dialled = Dialled(endpoint, identity, server, closed if watched else None)
        sock = self._dealer(dialled)
        link = Link(self, sock, routed=False, peer=server)
        link.dialled = dialled
        self._watch_connection(link, sock)
        sock.connect(endpoint)
        return self._add(link)

    def _dealer(self, dialled: Dialled) -> zmq.Socket[bytes]:
        sock = self.zctx.socket(zmq.DEALER)
        tune(sock)
        identity = dialled.name.encode()
        if self.trust is not None:
            identity = routing_id(dialled.name, self.process_token, dialled.redial.dials)
        sock.setsockopt(zmq.IDENTITY, identity)
        self.dial(sock, dialled.server)
        return sock

    def _watch_connection(self, link: Link, sock: zmq.Socket[bytes]) -> None:
        """A DEALER's connection made (its handshake) and closed, told to its
        ``Redial`` and, closed, to its owner (``Dialled.closed``)."""
        dialled = link.dialled
        assert dialled is not None

        def on_event(frames: list[bytes]) -> None:
            event, _value = EVENT_STRUCT.unpack_from(frames[0])
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                dialled.redial.connected(time.monotonic())
            elif event == zmq.EVENT_DISCONNECTED:
                dialled.redial.disconnected()
                if dialled.closed is not None:
                    dialled.closed()

        events = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
        dialled.monitor = Channel(events, on_event)
        self._monitors.append(dialled.monitor)

    def greet(self, link: Link, timeout: float,
              answered: Callable[[], None] | None = None) -> None:
        """A hello (a ping) to a DEALER's server, its answer awaited in a task
        (``answered`` told of it). Not answered within ``timeout`` on a connection made
        since the server last answered, the DEALER is dialled again (``redial``), with
        keys."""
        sent_at = time.monotonic()
        try:
            answer = link.request("ping", Empty(), timeout=timeout)
        except CinderblockError:
            return  # stopping
        self.spawn(self._hello_answered(link, answer, sent_at, answered))

    async def _hello_answered(self, link: Link, answer: asyncio.Future[Any], sent_at: float,
                              answered: Callable[[], None] | None) -> None:
        dialled = link.dialled
        assert dialled is not None
        try:
            await answer
        except Timeout:
            if self.trust is not None and dialled.redial.unanswered(sent_at, time.monotonic()):
                self.redial(link)
            return
        except (PeerGone, Closed):
            return  # its connection closed, or we stop: no answer either way
        except CinderblockError:  # an answer, if not the one ``answered`` waits for
            dialled.redial.answered(time.monotonic())
            return
        dialled.redial.answered(time.monotonic())
        if answered is not None:
            answered()

    def redial(self, link: Link) -> None:
        """Make a DEALER anew under a new routing id of this process, its server not
        answering over a connection that is up (``actors.runtime.redial``): what the
        old socket held is lost with it, as with a connection that closed."""
        dialled = link.dialled
        assert dialled is not None and dialled.monitor is not None
        old_monitor = dialled.monitor
        self._monitors.remove(old_monitor)
        old_monitor.close()  # before its socket: what it says next is the old connection's
        link.channel.sock.disable_monitor()
        sock = self._dealer(dialled)
        link.move_to(sock)
        self._watch_connection(link, sock)
        sock.connect(dialled.endpoint)
        log.warning("%s has not answered %s on a connection made since its last answer: "
                    "dialled again under a new routing id (%d so far)", dialled.server,
                    self.name, dialled.redial.dials)
        link.connection_lost()  # their answers would come to the old routing id
        if dialled.closed is not None:
            dialled.closed()

    def serve(self, sock: zmq.Socket[bytes], domain: str,
              guard: PendingGuard | None = None) -> None:
        """Make a socket about to bind a CURVE server (nothing when not secure); its
        failed handshakes are counted (``Trust.count_refusal``), and its connections
        come and go in ``guard``."""
        if self.trust is not None:
            self.trust.serve(sock, domain)
            if guard is None:
                monitor = Channel(self.trust.watch_handshakes(sock), self.trust.on_monitor_event)
            else:
                events = self.trust.watch_handshakes(sock, WATCHED)
                trust = self.trust
                monitor = Channel(events, lambda frames: guard.on_monitor_event(
                    frames, lambda event: trust.count_refusal()))
            self._monitors.append(monitor)

    def dial(self, sock: zmq.Socket[bytes], server: str) -> None:
        """Make a socket about to connect a CURVE client of ``server``."""
        if self.trust is not None:
            self.trust.dial(sock, server)

    def _add(self, link: Link) -> Link:
        self._links.append(link)
        return link

    # ---- tasks ---------------------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run a coroutine owned by this actor; it is cancelled when the actor stops."""
        assert self._tg is not None, "spawn() before run()"
        task = self._tg.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def every(self, seconds: float, tick: Callable[[], Awaitable[None] | None]) -> None:
        self.spawn(self._every(seconds, tick))

    async def _every(self, seconds: float, tick: Callable[[], Awaitable[None] | None]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                result = tick()
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:  # logged; the job runs again next time
                what = getattr(tick, "__qualname__", tick)
                log.exception("%s: periodic %s failed", self.name, what)
                self._if_file_damaged(exc, f"by the periodic {what}")

    # ---- lifecycle -----------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        if self.trust is not None:
            self._auth = self.trust.start(self.zctx)
        self.prepare()
        self.events = EventPublisher(self.zctx, self._events_endpoint, self.name,
                                     self.dial)
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                handlers = {"flow.recent": self.on_flow_recent, "stats": self.on_stats,
                            "log.levels": self.on_log_levels,
                            "log.set_levels": self.on_log_set_levels, **self.handlers()}
                self._handlers = {
                    op: (fn, inspect.iscoroutinefunction(fn)) for op, fn in handlers.items()
                }
                try:
                    await self.on_start()
                except BaseException:
                    log.error("%s failed to start; closing what it opened", self.name)
                    await self._wind_down()
                    raise
                self.every(self.heartbeat_s, self._heartbeat)
                db = self.database()
                if db is not None:
                    self.spawn(self._watch(db))
                frozen = freeze_what_started()
                log.info("%s started (%d objects kept out of the collector's walks)",
                         self.name, frozen)
                await self._stop.wait()
                log.info("%s stopping", self.name)
                await self._wind_down()
        finally:
            await self._let_go_of_database()
            self.events.close()
            self._close_links()
            for monitor in self._monitors:
                monitor.close()
            if self._auth is not None:
                self._auth.stop()
        if self._stopped_by is not None:
            raise self._stopped_by

    async def _watch(self, db: Database) -> None:
        """The actor's file found damaged (``Database.watch``): stop as on SIGTERM (the
        running handlers finish, the waiting ones are refused, the file is closed), then
        end ``run`` with the error, which the process exits on as on a refused start."""
        try:
            await db.watch()
        except DatabaseDamaged as exc:
            self._stopped_by = exc
            self.stop()

    async def _let_go_of_database(self) -> None:
        """After a stop on an error, which skipped ``on_stop``: the file is let go of
        (after a wind-down it is closed already, and this does nothing)."""
        db = self.database()
        if db is None:
            return
        try:
            await db.abandon()
        except Exception:
            log.exception("%s: letting go of %s failed", self.name, db.path)

    async def _wind_down(self) -> None:
        """Steps 1-4 of the module docstring."""
        self._accepting = False
        for _handler, request, size in self._turns.clear():
            self._refuse_stopping(request, size)
        if self._handling:
            await asyncio.wait(set(self._handling), timeout=self.stop_grace_s)
        self.calls.fail_all(STOPPING)
        await self._cancel(self._tasks)
        self._close_links()
        try:
            await self.on_stop()
        except Exception:
            log.exception("%s: on_stop failed", self.name)

    @staticmethod
    async def _cancel(tasks: set[asyncio.Task[Any]]) -> None:
        for task in list(tasks):
            task.cancel()
        if tasks:
            await asyncio.wait(set(tasks))

    def _close_links(self) -> None:
        for link in self._links:
            link.close()
        for monitor in self._monitors:
            monitor.close()
        if self._auth is not None:
            self._auth.stop()

    def _heartbeat(self) -> None:
        if self.events.listening:  # statistics are built only for somebody to read
            self.events.emit("heartbeat", statistics=self.statistics())

    # ---- dispatch ------------------------------------------------------
    def _receive(self, link: Link, identity: bytes, peer: str, frame: bytes) -> int:
        """Every envelope of a frame (one, or a batch: they share their sender);
        returns how many there were."""
        principal = self._principal(link, identity, peer) if self.trust is not None else None
        if self.trust is not None and principal is None:
            self.refused += 1  # no reply: an unknown sender learns nothing
            return 1
        try:
            decoded = decode_frame(frame)
        except MalformedMessage as exc:
            self._refuse(link, identity, exc.msg_id, "?", InvalidInput(f"bad message: {exc}"))
            return 1
        if link.routed and (len(decoded) > 1 or (principal is not None and principal.is_actor)):
            link.out.reads_batches(identity)  # it sent a batch, or it is one of our actors
        for env, size in decoded:
            if isinstance(env, MalformedMessage):
                self._refuse(link, identity, env.msg_id, "?", InvalidInput(f"bad message: {env}"))
            elif env.kind == "rep":
                self.calls.settle(env, (link, peer))
            elif env.kind != "evt":
                self._dispatch(link, identity, env, peer, principal, size)
        return len(decoded)

    def _principal(self, link: Link, identity: bytes, peer: str) -> Principal | None:
        """Who sent it, by its key; an actor only under its own name, and then the
        routing id it came from is where that actor is reached from now on. Another
        routing id of the same process is that process on a new connection, which it
        dialled again (``actors.runtime.redial``: ``peer_reconnected``). Another
        process's is that actor started again, and what was asked of the process
        before it fails now with ``PeerGone`` (a caller that waits for a peer to connect
        asks the new one) instead of at its deadline."""
        assert self.trust is not None
        principal = self.trust.principal(peer)
        if principal is None or not (link.routed and principal.is_actor):
            return principal
        name = peer.encode()
        if identity.partition(b"/")[0] != name:
            return None  # an actor's key under another actor's name
        previous = link.routes.get(name)
        if previous != identity:
            link.routes[name] = identity
            if previous is not None and same_process(previous, identity):
                log.info("%s speaks from a new connection of the same process", peer)
                self.peer_reconnected(peer)
                return principal
            if previous is not None:
                lost = self.calls.lost_to((link, peer), f"{peer} was started again before "
                                          "it answered")
                if lost:
                    log.info("%d calls to %s lost with its previous process", lost, peer)
            self.peer_connected(peer)
        return principal

    def _dispatch(self, link: Link, identity: bytes, env: Envelope, peer: str = "",
                  principal: Principal | None = None, size: int = 0) -> None:
        entry = self._handlers.get(env.op)
        if entry is None:
            error = InvalidInput(f"unknown op {env.op!r} for the {self.name}", {"op": env.op})
            self._refuse(link, identity, env.msg_id, env.op, error, env.kind)
            return
        if principal is not None and not may_send(SENDERS[env.op], principal):
            refusal = Forbidden(_refusal(env.op, peer, principal), {"op": env.op})
            self._refuse(link, identity, env.msg_id, env.op, refusal, env.kind)
            return
        try:
            body: Any = parse(OPS[env.op], env.body)
        except SchemaError as exc:
            error = InvalidInput(f"invalid {env.op} request: {exc}", {"field": exc.field})
            self._refuse(link, identity, env.msg_id, env.op, error, env.kind)
            return
        handler, is_async = entry
        request = Request(env, body, link, identity, peer, _context(env, principal))
        if not self._accepting:  # the peer finds us going away: not its fault, nor ours
            stopping = Unavailable(f"the {self.name} is stopping", {"actor": self.name})
            self._refuse(link, identity, env.msg_id, env.op, stopping, env.kind)
            return
        self.handled += 1
        token = REQUEST.set(_log_ids(request))
        if log.isEnabledFor(logging.DEBUG):  # an admin's set-log: every request, named
            log.debug("%s: %s %s from %s", self.name, env.kind, env.op, peer)
        try:  # a task made here inherits the request's ids for its log lines
            if is_async:
                if self._turns.full(identity) or not self._hold(identity, size):
                    self.refused_busy += 1
                    busy = Unavailable(
                        f"the {self.name} holds as many bytes of requests as it may from this "
                        "peer or in all; try again once they are answered",
                        {"peer_bytes": INFLIGHT_PEER_BYTES, "total_bytes": INFLIGHT_TOTAL_BYTES})
                    self._refuse(link, identity, env.msg_id, env.op, busy, env.kind)
                    return
                if self._turns.take(identity, (handler, request, size)):
                    self._start(handler, request, size)
            else:  # answered while the socket drains: at once, not at the turn's end
                self._answer(request, self._run_sync(handler, request), now=True)
        finally:
            REQUEST.reset(token)

    def _run_sync(self, handler: Handler, request: Request) -> tuple[Any, CinderblockError | None]:
        try:
            result = handler(request)
            if type(result) is AfterCommit:
                result.committed.add_done_callback(partial(self._committed, request, result))
                return _LATER, None
            return result, None
        except CinderblockError as exc:
            return None, exc
        except Exception as exc:
            return None, self._internal(request, exc)

    def _internal(self, request: Request, exc: Exception) -> InternalError:
        """A handler's bug or fault, logged, as its caller hears it (a damaged file also
        stops the actor: ``_if_file_damaged``)."""
        log.exception("%s failed on %s", self.name, request.env.op)
        self._if_file_damaged(exc, f"by {request.env.op}")
        if isinstance(exc, DatabaseDamaged):  # its text names the file's path: for the log
            return InternalError(f"{request.env.op} failed: the {self.name}'s database is "
                                 f"damaged; the {self.name} stops until a start finds it whole")
        return InternalError(f"{request.env.op} failed: {exc}")

    def _if_file_damaged(self, exc: Exception, when: str) -> None:
        """SQLite reporting the actor's file damaged, on any connection to it: the actor
        stops (``Database.note_damage``)."""
        db = self.database()
        if db is not None and isinstance(exc, sqlite3.DatabaseError):
            db.note_damage(exc, when)

    def _hold(self, peer: bytes, size: int) -> bool:
        held = self._held.get(peer, 0)
        if held + size > INFLIGHT_PEER_BYTES or self._held_total + size > INFLIGHT_TOTAL_BYTES:
            return False
        self._held[peer] = held + size
        self._held_total += size
        return True

    def _let_go(self, peer: bytes, size: int) -> None:
        self._held_total -= size
        left = self._held[peer] - size
        if left:
            self._held[peer] = left
        else:
            del self._held[peer]

    def _start(self, handler: Handler, request: Request, size: int) -> None:
        task = self.spawn(self._run_async(handler, request, size))
        self._handling.add(task)
        task.add_done_callback(self._handling.discard)

    async def _run_async(self, handler: Handler, request: Request, size: int = 0) -> None:
        try:
            await self._answer_async(handler, request)
        finally:
            self._let_go(request.sender, size)
            self._next_turn(request.sender)

    def _next_turn(self, peer: bytes) -> None:
        """One of the peer's requests is done: start the next one in its line."""
        following = self._turns.done(peer)
        if following is None:
            return
        handler, request, size = following
        if not self._accepting:
            self._refuse_stopping(request, size)
            self._next_turn(peer)
            return
        token = REQUEST.set(_log_ids(request))
        try:
            self._start(handler, request, size)
        finally:
            REQUEST.reset(token)

    def _refuse_stopping(self, request: Request, size: int) -> None:
        """A request that waited in line when the actor began to stop."""
        self._let_go(request.sender, size)
        env = request.env
        stopping = Unavailable(f"the {self.name} is stopping", {"actor": self.name})
        self._refuse(request.link, request.sender, env.msg_id, env.op, stopping, env.kind)

    async def _answer_async(self, handler: Handler, request: Request) -> None:
        try:
            result, error = await handler(request), None
        except CinderblockError as exc:
            result, error = None, drop_frames(exc)
        except Exception as exc:
            result, error = None, self._internal(request, exc)
            drop_frames(exc)
        self._answer(request, (result, error))

    def _committed(self, request: Request, after: AfterCommit, fut: asyncio.Future[None]) -> None:
        exc = fut.exception()
        if exc is None:
            self._answer(request, (after.reply, None))
        else:
            self._answer(request, (None, InternalError(f"{request.env.op} was not saved: {exc}")))

    def _answer(self, request: Request, outcome: tuple[Any, CinderblockError | None],
                now: bool = False) -> None:
        result, error = outcome
        if result is _LATER:
            return
        env = request.env
        if env.kind != "req":
            if error is not None:
                rejected.warning("failed cast", "%s cast %s failed: %s", self.name, env.op,
                                 error.message)
            return
        self.reply(request, result, error, now)

    def reply(self, request: Request, result: Any, error: CinderblockError | None = None,
              now: bool = False) -> None:
        env = request.env
        reply = Envelope(
            "rep", next_id(), env.op, None if error else dump(result), None, env.msg_id,
            error.to_wire() if error else None,
        )
        try:
            request.link.send(request.sender, reply, now=now,
                              hold=not now and env.op in self.held_replies)
        except FrameTooLarge as exc:  # the caller hears why, instead of nothing
            log.error("%s: %s", self.name, exc.message)
            self.reply(request, None, exc, now)
        except CinderblockError as exc:
            rejected.warning("no reply", "could not reply to %r: %s", request.sender[:64],
                             exc.message)

    def _refuse(
        self, link: Link, identity: bytes, msg_id: int | None, op: str,
        error: CinderblockError, kind: str = "req",
    ) -> None:
        if kind != "req":
            if isinstance(error, Forbidden):
                log.debug("%s dropped a %s %s: %s", self.name, kind, op[:64], error.message)
            else:
                rejected.warning("dropped", "%s dropped a %s %s: %s", self.name, kind, op[:64],
                                 error.message[:200])
            return
        reply = Envelope("rep", next_id(), op, None, None, msg_id, error.to_wire())
        with contextlib.suppress(CinderblockError):  # the sender is gone: nobody to tell
            link.send(identity, reply, now=True)  # refused while draining: at once


def drop_frames(exc: E) -> E:
    """``exc`` and the exceptions chained to it without their tracebacks, once it is
    answered. A traceback holds the frames it went through, and one of them (a flow's
    run, a future it was set on) usually holds the exception: a cycle, which only the
    cyclic collector frees. A peer sending thousands of requests that fail (over
    quota) would leave tens of thousands of such objects per second, and collecting
    them stalled the loop for over 100 ms at a time."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        each = stack.pop()
        if each is None or id(each) in seen:
            continue
        seen.add(id(each))
        each.__traceback__ = None
        stack += (each.__cause__, each.__context__)
    return exc


def _refusal(op: str, peer: str, principal: Principal) -> str:
    senders, has = SENDERS[op], ",".join(sorted(principal.roles))
    if "admin" in senders and not principal.is_actor:
        return f"only an admin may send {op} ({peer} is {has})"
    return f"{op} is reserved to {', '.join(sorted(senders))} ({peer} is {has})"


def _context(env: Envelope, principal: Principal | None) -> Context | None:
    """Who a request acts for: the key's user; an actor's or a front's envelope
    context (they pass on the user they act for); without security, the envelope's."""
    if principal is None or principal.is_actor or "front" in principal.roles:
        return env.context
    request_id = env.context.request_id if env.context is not None else ""
    return Context(principal.project, principal.name, tuple(sorted(principal.roles)),
                   request_id)


def _log_ids(request: Request) -> tuple[str, str, str]:
    """The request id, project and volume on a request's log lines."""
    ctx = request.ctx  # who it acts for (the key's user, or the context an actor passed)
    return (ctx.request_id or "-", ctx.project_id or "-", _volume_of(request.body))


def _volume_of(body: Any) -> str:
    """The volume a request is about, for its log lines ("-" if none)."""
    found = getattr(body, "volume_id", None)
    if found is None:
        inner = getattr(body, "request", None)  # node.create_volume carries the request
        found = getattr(inner, "volume_id", None)
    return found if isinstance(found, str) else "-"


def check_admin(ctx: Context, op: str) -> None:
    """Log levels are an admin's (the gateway relays an admin's request)."""
    if not ctx.is_admin:
        raise Forbidden(f"only an admin may send {op}", {"op": op})


def check_reader(ctx: Context, op: str) -> None:
    """Statistics are for admins and monitors (metrics exporters, health probes)."""
    if not READER_ROLES & set(ctx.roles):
        raise Forbidden(f"{op} is for admins and monitors", {"op": op})


def _plain(value: Any) -> Any:
    """A statistics() snapshot as the wire carries it (string keys, no tuples of pairs)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
