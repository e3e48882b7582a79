"""Every attach action, new and old, in any order, on the gateway's real ``Attachments``
and store: hypothesis draws the steps (v3 create, update, complete and delete;
reserve, initialize, attach, begin and roll back detaching, terminate, detach,
unreserve; a node that refuses its next call; the gateway restarting on its file, after
which every status is as it was) and after each one the gateway must hold:

* each volume's status is what its attachments make it, or a status of its own an
  old action gave it: ``attaching`` reserved (no attachment attaching) or ``detaching``
  begun (the attachments make it ``in-use``);
* a volume whose type does not allow multiattach has at most one attachment;
* the node exports exactly the attachments that have a connection;
* the file says what memory says (attachments, and each volume's status);
* every refusal is one a caller can act on (input, state, not found, the node's).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Any, cast

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from cinderblock.actors.gateway.volume_store import GatewayStore
from cinderblock.actors.runtime.actor import Request
from cinderblock.protocol.messages.attachments import (
    AttachmentCreate,
    AttachmentRef,
    AttachmentUpdate,
    VolumeAttach,
    VolumeConnection,
    VolumeDetach,
)
from cinderblock.protocol.messages.volumes import VolumeRef
from cinderblock.protocol.states import AttachmentStatus, VolumeStatus, volume_status_for
from cinderblock.protocol.wire.codec import Context, Envelope
from cinderblock.protocol.wire.errors import (
    CinderblockError,
    InvalidInput,
    InvalidState,
    NotFound,
    Unavailable,
)
from tests.conftest import open_gateway_store
from tests.unit.test_attachment_flow import MULTI, PLAIN, StubGateway

V, A = VolumeStatus, AttachmentStatus
VOLUMES = ("plain", "multi")
HOSTS = ("h1", "h2")
INSTANCES = ("0c4bd2d1-7a3f-4d4e-8f43-2b1d3e9a5c10", "6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9")
ACTIONABLE = (InvalidInput, InvalidState, NotFound, Unavailable)


class AttachMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = Path(tempfile.mkdtemp(prefix="cb-attach-machine-"))
        self.stack = contextlib.AsyncExitStack()
        store: GatewayStore = self.run(
            self.stack.enter_async_context(open_gateway_store(self.dir / "gateway.db")))
        self.gw = StubGateway(store)
        self.run(self.gw.attachments.open())
        self.run(self.add_volumes())
        self.made: list[str] = []  # attachment ids made, some gone since

    async def add_volumes(self) -> None:
        for vol in (self.gw.add_volume("plain", PLAIN), self.gw.add_volume("multi", MULTI)):
            await self.gw.store.save_status(vol)  # its row committed

    def run(self, step: Any) -> Any:
        return self.loop.run_until_complete(step)

    def teardown(self) -> None:
        self.run(self.stack.aclose())
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def act(self, op: str, body: Any) -> Any:
        handler = self.gw.attachments.handlers()[op]
        env = Envelope("req", 1, op, None, Context("p1", "p1"))

        async def call() -> Any:
            answer = handler(Request(env, body, cast(Any, None), b""))
            return await answer if asyncio.iscoroutine(answer) else answer

        try:
            got = self.run(call())
        except CinderblockError as exc:
            assert isinstance(exc, ACTIONABLE), f"{op} failed with {exc!r}"
            return None
        finally:
            self.gw.router.failure = None  # a refusal lasts one step
        if getattr(got, "id", None) and got.id not in self.made:
            self.made.append(got.id)
        return got

    def some_attachment(self, n: int) -> str:
        return self.made[n % len(self.made)] if self.made else "no-such-attachment"

    # ---- the new way ------------------------------------------------------------------
    @rule(volume=st.sampled_from(VOLUMES), instance=st.sampled_from(INSTANCES))
    def create(self, volume: str, instance: str) -> None:
        self.act("attachment.create", AttachmentCreate(volume, instance))

    @rule(n=st.integers(0, 20), host=st.sampled_from(HOSTS))
    def update(self, n: int, host: str) -> None:
        self.act("attachment.update", AttachmentUpdate(self.some_attachment(n), {"host": host}))

    @rule(n=st.integers(0, 20))
    def complete(self, n: int) -> None:
        self.act("attachment.complete", AttachmentRef(self.some_attachment(n)))

    @rule(n=st.integers(0, 20))
    def delete(self, n: int) -> None:
        self.act("attachment.delete", AttachmentRef(self.some_attachment(n)))

    # ---- the old way ------------------------------------------------------------------
    @rule(volume=st.sampled_from(VOLUMES),
          op=st.sampled_from(["volume.reserve", "volume.unreserve", "volume.begin_detaching",
                              "volume.roll_detaching"]))
    def volume_status(self, volume: str, op: str) -> None:
        self.act(op, VolumeRef(volume))

    @rule(volume=st.sampled_from(VOLUMES), host=st.sampled_from(HOSTS),
          op=st.sampled_from(["volume.initialize_connection", "volume.terminate_connection"]))
    def connection(self, volume: str, host: str, op: str) -> None:
        self.act(op, VolumeConnection(volume, {"host": host}))

    @rule(volume=st.sampled_from(VOLUMES), instance=st.sampled_from((None, *INSTANCES)),
          host=st.sampled_from((None, *HOSTS)), mode=st.sampled_from(["rw", "ro"]))
    def attach(self, volume: str, instance: str | None, host: str | None, mode: str) -> None:
        self.act("volume.attach", VolumeAttach(volume, "/dev/vdb", instance, host, mode))

    @rule(volume=st.sampled_from(VOLUMES), n=st.one_of(st.none(), st.integers(0, 20)))
    def detach(self, volume: str, n: int | None) -> None:
        self.act("volume.detach", VolumeDetach(
            volume, None if n is None else self.some_attachment(n)))

    # ---- the node -----------------------------------------------------------------------
    @rule()
    def node_refuses_its_next_call(self) -> None:
        self.gw.router.failure = Unavailable("the node is busy")

    @rule(volume=st.sampled_from(VOLUMES), host=st.sampled_from(HOSTS))
    def connection_the_node_refuses(self, volume: str, host: str) -> None:
        self.gw.router.failure = Unavailable("the node is busy")
        self.act("volume.initialize_connection", VolumeConnection(volume, {"host": host}))

    # ---- the gateway ----------------------------------------------------------------------
    @rule()
    def gateway_restarts(self) -> None:
        """The gateway stops and starts again on its file (the node keeps its exports):
        every status is as it was, the volumes an old action reserved or began
        detaching too (the machine's steps end whole, so nothing was cut short)."""
        before = self.statuses()
        exports = self.gw.router.exports
        self.run(self.stack.aclose())
        self.stack = contextlib.AsyncExitStack()
        store: GatewayStore = self.run(
            self.stack.enter_async_context(open_gateway_store(self.dir / "gateway.db")))
        self.gw = StubGateway(store)
        self.gw.router.exports = exports
        self.run(self.gw.attachments.open())
        assert self.statuses() == before

    def statuses(self) -> dict[str, str]:
        """Each volume's status and each of its attachments'."""
        held = {vid: self.gw.store.volumes[vid].status.value for vid in VOLUMES}
        for vid in VOLUMES:
            held.update({a.id: a.status.value
                         for a in self.gw.attachments.attachments.of_volume(vid)})
        return held

    # ---- what must hold -----------------------------------------------------------------
    @invariant()
    def each_volume_is_what_its_attachments_make_it(self) -> None:
        for vid in VOLUMES:
            atts = self.gw.attachments.attachments.of_volume(vid)
            made = volume_status_for(a.status for a in atts)
            status = self.gw.store.volumes[vid].status
            reserved = status is V.ATTACHING and made in (V.AVAILABLE, V.IN_USE)
            begun = status is V.DETACHING and made is V.IN_USE
            assert status is made or reserved or begun, (vid, status, made, atts)
            if vid == "plain":
                assert len(atts) <= 1, atts

    @invariant()
    def the_node_exports_the_attachments_with_a_connection(self) -> None:
        connected = {f"volume-{a.volume_id}.{a.id}" for vid in VOLUMES
                     for a in self.gw.attachments.attachments.of_volume(vid)
                     if a.connection_info}
        assert set(self.gw.router.exports) == connected

    @invariant()
    def the_file_says_what_memory_says(self) -> None:
        reader = self.gw.store.read_only()
        rows = dict(reader.execute("SELECT id, status FROM attachments").fetchall())
        held = {a.id: a.status.value for vid in VOLUMES
                for a in self.gw.attachments.attachments.of_volume(vid)}
        assert rows == held
        for vid in VOLUMES:
            (status,) = reader.execute("SELECT status FROM volumes WHERE id=?",
                                       (vid,)).fetchone()
            assert status == self.gw.store.volumes[vid].status.value, vid


AttachMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40,
                                           deadline=None)
test_every_attach_action_in_any_order_keeps_the_gateway_whole = AttachMachine.TestCase
