"""Fixtures the unit tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.unit.channel_pair import ChannelPair


@pytest.fixture
async def pair() -> AsyncIterator[ChannelPair]:
    p = ChannelPair()
    try:
        yield p
    finally:
        p.close()
