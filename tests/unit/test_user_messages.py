"""User messages on a real gateway store: recorded when a volume goes to an error
status, listed a page at a time (newest first), each page's reply within a frame."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, cast

import pytest

from cinderblock.actors.gateway import user_messages
from cinderblock.actors.gateway.user_messages import MAX_KEPT, UserMessages
from cinderblock.actors.gateway.volume_store import GatewayStore, VolumeRecord
from cinderblock.actors.runtime.actor import Request
from cinderblock.protocol.messages.user_messages import (
    MessageList,
    MessageListRequest,
    MessageRef,
    UserMessage,
)
from cinderblock.protocol.messages.volumes import VolumeType
from cinderblock.protocol.states import VolumeStatus
from cinderblock.protocol.wire.codec import MAX_FRAME, Context, Envelope, encode
from cinderblock.protocol.wire.errors import InvalidInput
from cinderblock.protocol.wire.schema import dump
from tests.conftest import open_gateway_store

PLAIN = VolumeType("type-plain", "plain")
REASON = "No valid backend was found. " + "x" * 200  # a reason as long as they come


class Services:
    def __init__(self, store: GatewayStore) -> None:
        self.store = store


def failed(n: int, project: str) -> VolumeRecord:
    return VolumeRecord(id=f"vol-{n:05d}", project_id=project, user_id=project, size=1,
                        status=VolumeStatus.ERROR, volume_type=PLAIN,
                        availability_zone="nova", reason=REASON)


def ask(messages: UserMessages, body: MessageListRequest, project: str = "p1",
        admin: bool = False) -> MessageList:
    roles = ("admin", "member") if admin else ("member",)
    env = Envelope("req", 1, "message.list", None, Context(project, project, roles))
    reply = messages.on_list(Request(env, body, cast(Any, None), b""))
    size = len(encode(Envelope("rep", 2, "message.list", dump(reply), corr_id=1)))
    assert size < MAX_FRAME, size  # the reply fits in a frame
    return reply


async def test_thousands_of_messages_are_listed_a_page_at_a_time(tmp_path: Path) -> None:
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        messages = UserMessages(Services(store))
        for n in range(5000):
            messages.record(failed(n, "p1" if n % 5 else "p2"), request_id=f"req-{n}")
        await store.db.flush()
        assert len(messages.kept) == 5000 <= MAX_KEPT

        def every(project: str, admin: bool = False, **filters: Any) -> list[str]:
            got, marker, pages = [], None, 0
            while True:
                reply = ask(messages, MessageListRequest(marker=marker, **filters),
                            project, admin)
                got += [m.resource_uuid for m in reply.messages]
                pages, marker = pages + 1, reply.next_marker
                if marker is None:
                    assert pages > 1 or len(got) < 1000
                    return got

        mine = every("p1")
        assert mine == [f"vol-{n:05d}" for n in reversed(range(5000)) if n % 5]
        assert every("p2", all_projects=True) == [f"vol-{n:05d}" for n in
                                                  reversed(range(0, 5000, 5))]  # not admin
        assert len(every("p2", admin=True, all_projects=True)) == 5000
        assert every("p1", sort_dir="asc") == [f"vol-{n:05d}" for n in range(5000) if n % 5]
        with pytest.raises(InvalidInput, match="sort_dir 'status'"):
            ask(messages, MessageListRequest(sort_dir="status"))
        first = ask(messages, MessageListRequest(limit=3))
        assert [m.resource_uuid for m in first.messages] == ["vol-04999", "vol-04998",
                                                             "vol-04997"]
        assert first.next_marker == first.messages[-1].id
        (one,) = ask(messages, MessageListRequest(resource_uuid="vol-00007")).messages
        assert one.request_id == "req-7" and one.user_message.endswith(REASON)
        theirs = ask(messages, MessageListRequest(limit=1), project="p2").messages[0].id
        with pytest.raises(InvalidInput, match="marker"):
            ask(messages, MessageListRequest(marker=theirs))  # another project's
        assert time.time() < one.expires_at


async def test_messages_made_at_the_same_time_are_each_listed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pages are in (created_at, id) order, not the order the messages were kept in:
    three made at one instant, the clock then set back for a fourth."""
    clock = iter([1000.0, 1000.0, 1000.0, 999.0])
    monkeypatch.setattr(time, "time", lambda: next(clock, 999.0))
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        messages = UserMessages(Services(store))
        for n in range(4):
            messages.record(failed(n, "p1"))
        for sort_dir in (None, "desc", "asc"):
            got: list[UserMessage] = []
            marker = None
            while True:
                reply = messages.on_list(Request(
                    Envelope("req", 1, "message.list", None, Context("p1", "p1")),
                    MessageListRequest(limit=1, marker=marker, sort_dir=sort_dir),
                    cast(Any, None), b""))
                got += reply.messages
                marker = reply.next_marker
                if marker is None:
                    break
            assert sorted(m.resource_uuid for m in got) == [f"vol-{n:05d}" for n in range(4)]
            assert [(m.created_at, m.id) for m in got] == sorted(
                ((m.created_at, m.id) for m in got), reverse=sort_dir != "asc")


async def test_past_the_bound_the_project_holding_the_most_loses_its_oldest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(user_messages, "MAX_KEPT", 10)
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        messages = UserMessages(Services(store))
        for n in range(2):
            messages.record(failed(n, "quiet"))
        for n in range(100, 120):  # a flood of errors in another project
            messages.record(failed(n, "flooder"))
        await store.db.flush()
        kept = {m.resource_uuid for m in messages.kept.values()}
        assert kept == {"vol-00000", "vol-00001", *(f"vol-{n:05d}" for n in range(112, 120))}
        assert messages.held == {"quiet": 2, "flooder": 8}
        rows = await store.db.fetchall("SELECT resource_uuid FROM user_messages")
        assert {row[0] for row in rows} == kept  # the file holds what memory does

        again = UserMessages(Services(store))  # as after a restart
        await again.load()
        assert again.held == messages.held
        for n in range(3):
            again.record(failed(200 + n, "third"))
        await store.db.flush()
        assert again.held == {"quiet": 2, "flooder": 5, "third": 3}


async def test_a_deleted_message_no_longer_counts_against_its_project(tmp_path: Path) -> None:
    async with open_gateway_store(tmp_path / "gateway.db") as store:
        messages = UserMessages(Services(store))
        messages.record(failed(1, "p1"))
        messages.record(failed(2, "p1"))
        (first, _) = messages.kept.values()
        env = Envelope("req", 1, "message.delete", None, Context("p1", "p1"))
        await messages.on_delete(Request(env, MessageRef(first.id), cast(Any, None), b""))
        assert messages.held == {"p1": 1} and first.id not in messages.kept
