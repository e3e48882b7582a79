"""What the CLI asks the gateway for: what a command shows, and no more (a cloud's
attachments are not read to show a page of volumes, nor its volumes to find one name)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from cinderblock.actors.cli import main as cli_main
from cinderblock.protocol.messages.attachments import Attachment
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.states import AttachmentStatus, VolumeStatus
from cinderblock.protocol.wire.errors import NotFound

VOLUMES = [Volume(f"vol-{n}", "demo", 1, VolumeStatus.IN_USE, name=f"name-{n % 2}")
           for n in range(4)]
ATTACHMENTS = [Attachment(f"att-{n}", f"vol-{n}", "demo", AttachmentStatus.ATTACHED,
                          instance_id=f"vm-{n}") for n in range(4)]


class Gateway:
    """A stand-in for the CLI's client: answers from the lists above, and keeps what
    it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, dict[str, Any]]] = []

    def list_volumes(self, **kw: Any) -> list[Volume]:
        self.asked.append(("list_volumes", kw))
        found = [v for v in VOLUMES if kw.get("name") in (None, v.name)]
        return found[:kw["limit"]] if kw.get("limit") is not None else found

    def list_attachments(self, volume_id: str | None = None, all_projects: bool = False,
                         volume_ids: Iterable[str] | None = None, **kw: Any
                         ) -> list[Attachment]:
        ids = None if volume_ids is None else list(volume_ids)
        self.asked.append(("list_attachments", {"volume_ids": ids}))
        return [a for a in ATTACHMENTS if ids is None or a.volume_id in ids]

    def show_volume(self, ref: str) -> Volume:
        self.asked.append(("show_volume", {"ref": ref}))
        for v in VOLUMES:
            if v.id == ref:
                return v
        raise NotFound(f"volume {ref} could not be found")


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Gateway:
    stand_in = Gateway()

    @contextmanager
    def client(args: Any) -> Iterator[Gateway]:
        yield stand_in

    monkeypatch.setattr(cli_main, "client", client)
    return stand_in


def test_a_page_of_volumes_asks_for_its_own_volumes_attachments_only(
    gateway: Gateway, capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli_main.main(["volume", "list", "--limit", "2", "-f", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["attached_to"]) for r in rows] == [("vol-0", ["vm-0"]),
                                                          ("vol-1", ["vm-1"])]
    assert gateway.asked[-1] == ("list_attachments", {"volume_ids": ["vol-0", "vol-1"]})


def test_a_volume_named_on_the_command_line_is_looked_for_by_its_name(
    gateway: Gateway, capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli_main.main(["volume", "show", "vol-3", "-f", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == "vol-3"
    assert cli_main.main(["volume", "show", "name-1", "-f", "json"]) == 1  # two have it
    assert "vol-1, vol-3" in capsys.readouterr().err
    assert ("list_volumes", {"name": "name-1"}) in gateway.asked
    assert all(kw.get("name") for op, kw in gateway.asked if op == "list_volumes")


def test_a_project_named_on_the_command_line_is_asked_of_the_gateway(
    gateway: Gateway, capsys: pytest.CaptureFixture[str],
) -> None:
    """``--tenant P`` (an admin's, as cinder's ``list --tenant``): that project's page
    from the gateway, not every project's filtered here."""
    assert cli_main.main(["volume", "list", "--tenant", "demo", "--admin", "--limit", "2",
                          "-f", "json"]) == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == ["vol-0", "vol-1"]
    listed = [kw for op, kw in gateway.asked if op == "list_volumes"]
    assert listed[-1]["all_projects"] is True and listed[-1]["project_id"] == "demo"
    assert listed[-1]["limit"] == 2


def test_the_bootable_zone_and_size_filters_are_asked_of_the_gateway(
    gateway: Gateway, capsys: pytest.CaptureFixture[str],
) -> None:
    """``volume list --bootable|--non-bootable --availability-zone Z --size N``: the
    gateway filters; neither flag asks for no bootable filter at all."""
    assert cli_main.main(["volume", "list", "--non-bootable", "--availability-zone", "east",
                          "--size", "3", "-f", "json"]) == 0
    listed = [kw for op, kw in gateway.asked if op == "list_volumes"]
    assert (listed[-1]["bootable"], listed[-1]["availability_zone"],
            listed[-1]["size"]) == (False, "east", 3)
    assert cli_main.main(["volume", "list", "--bootable", "-f", "json"]) == 0
    assert [kw for op, kw in gateway.asked if op == "list_volumes"][-1]["bootable"] is True
    assert cli_main.main(["volume", "list", "-f", "json"]) == 0
    assert [kw for op, kw in gateway.asked if op == "list_volumes"][-1]["bootable"] is None
    capsys.readouterr()
