"""Generic volume groups end to end, through the client library: group types (Cinder's
3.11) an admin makes, changes and deletes, which projects see without their specs."""

from __future__ import annotations

import uuid

import pytest

from cinderblock.protocol.client.client import Client
from cinderblock.protocol.wire.errors import Forbidden, InvalidInput, NotFound
from tests.conftest import E2ECluster


async def test_an_admin_makes_changes_and_deletes_a_group_type(
    cluster: E2ECluster, client: Client, admin: Client,
) -> None:
    name = f"cg-{uuid.uuid4().hex[:8]}"
    made = await admin.create_group_type(name, description=" crash-consistent ",
                                         group_specs={"consistent_group_snapshot_enabled":
                                                      "<is> True"})
    assert (made.name, made.description, made.is_public, made.group_specs) == (
        name, "crash-consistent", True, {"consistent_group_snapshot_enabled": "<is> True"})
    assert await admin.show_group_type(name) == made
    seen = await client.show_group_type(made.id)  # a project: no specs
    assert (seen.id, seen.name, seen.group_specs) == (made.id, name, {})
    assert made.id in {t.id for t in await client.list_group_types()}

    with pytest.raises(InvalidInput, match=f"Group Type {name} already exists"):
        await admin.create_group_type(f"  {name} ")
    with pytest.raises(InvalidInput, match="name can not be empty"):
        await admin.create_group_type("   ")
    with pytest.raises(InvalidInput, match=r"group spec .*1-255 characters"):
        await admin.create_group_type(f"{name}-x", group_specs={"k": "v" * 256})
    with pytest.raises(Forbidden):
        await client.create_group_type(f"{name}-mine")
    with pytest.raises(Forbidden):
        await client.delete_group_type(made.id)
    with pytest.raises(NotFound, match="Default group type can not be found"):
        await client.show_group_type("default")

    hidden = await admin.update_group_type(made.id, name=f"{name}-r", is_public=False,
                                           group_specs={"k": "v"},
                                           delete_specs=["consistent_group_snapshot_enabled"])
    assert (hidden.name, hidden.is_public, hidden.group_specs) == (f"{name}-r", False,
                                                                  {"k": "v"})
    with pytest.raises(NotFound):  # private: a project does not see it
        await client.show_group_type(made.id)
    assert made.id not in {t.id for t in await client.list_group_types()}
    with pytest.raises(NotFound, match="has no specs with key nope"):
        await admin.update_group_type(made.id, delete_specs=["nope"])

    await admin.delete_group_type(made.id)
    with pytest.raises(NotFound):
        await admin.show_group_type(made.id)
