"""The client library refuses what cannot be stored or sent before it sends anything:
an ``invalid_input`` error, no traceback, no call left pending."""

from __future__ import annotations

import pytest

from cinderblock.actors.runtime.config import free_port
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.quota import QuotaSet, QuotaSets, QuotaShowMany
from cinderblock.protocol.messages.volumes import VolumeListRequest
from cinderblock.protocol.wire.errors import InternalError, InvalidInput
from cinderblock.protocol.wire.schema import SchemaError, dump, parse


@pytest.fixture
async def client() -> Client:
    # Nobody listens there: anything actually sent would wait for its deadline.
    return Client(f"tcp://127.0.0.1:{free_port()}", timeout=30.0)


async def test_a_quota_limit_past_cinders_cap_is_refused_before_it_is_sent(
    client: Client,
) -> None:
    with pytest.raises(InvalidInput, match="gigabytes must be an integer from -1 to 2147483647"):
        await client.set_quota("demo", gigabytes=18446744073709551615)
    assert len(client._calls) == 0
    client.close()


@pytest.mark.parametrize("size", [0, 2**31, 2**64])
async def test_a_size_beyond_what_is_stored_is_refused_before_it_is_sent(
    client: Client, size: int,
) -> None:
    with pytest.raises(InvalidInput, match="size must be an integer from 1 to"):
        await client.create_volume(size)
    with pytest.raises(InvalidInput, match="new_size must be an integer from 1 to"):
        await client.extend_volume("some-volume", size)
    assert len(client._calls) == 0
    client.close()


async def test_a_number_msgpack_cannot_hold_is_invalid_input_with_no_call_left_pending(
    client: Client,
) -> None:
    with pytest.raises(InvalidInput, match=r"volume\.list cannot be sent"):
        await client.list_volumes(limit=2**70)
    assert len(client._calls) == 0
    client.close()


def test_the_wire_schema_refuses_integers_sqlite_cannot_hold() -> None:
    with pytest.raises(SchemaError, match="must be an integer from"):
        parse(VolumeListRequest, {"limit": 2**64 - 1})
    assert parse(VolumeListRequest, {"limit": 2**63 - 1}).limit == 2**63 - 1


async def test_a_quota_listing_over_a_frame_is_asked_for_again_in_halves(
    client: Client, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Projects with many volume types' own quotas can make one ``quota.show_many``
    reply larger than a frame: the library asks again in halves, down to one project."""
    asked: list[tuple[str, ...]] = []

    async def call(op: str, body: QuotaShowMany, *args: object) -> dict[str, object]:
        asked.append(body.projects)
        if len(body.projects) > 2:  # as the actor refuses a reply over its frame
            raise InternalError("the reply quota.show_many would be 2000000 bytes, over "
                                "the 1048576-byte frame limit", {"op": op, "bytes": 2000000})
        reply: dict[str, object] = dump(QuotaSets(tuple(QuotaSet(p) for p in body.projects)))
        return reply

    monkeypatch.setattr(client, "call", call)
    shown = await client.show_quotas([f"p{n}" for n in range(5)])
    assert [q.project for q in shown] == ["p0", "p1", "p2", "p3", "p4"]
    assert asked == [("p0", "p1", "p2", "p3", "p4"), ("p0", "p1"), ("p2", "p3", "p4"),
                     ("p2",), ("p3", "p4")]

    async def broken(op: str, body: QuotaShowMany, *args: object) -> dict[str, object]:
        raise InternalError("a bug", {})  # not a reply's size: not asked again

    monkeypatch.setattr(client, "call", broken)
    with pytest.raises(InternalError, match="a bug"):
        await client.show_quotas(["p0", "p1"])
    client.close()
