"""The client library refuses what cannot be stored or sent before it sends anything:
an ``invalid_input`` error, no traceback, no call left pending."""

from __future__ import annotations

import pytest

from cinderblock.actors.runtime.config import free_port
from cinderblock.protocol.client.client import Client
from cinderblock.protocol.messages.volumes import VolumeListRequest
from cinderblock.protocol.wire.errors import InvalidInput
from cinderblock.protocol.wire.schema import SchemaError, parse


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
