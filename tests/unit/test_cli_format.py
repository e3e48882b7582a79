"""The CLI's output formats on their own: every format of a record and of a listing
parses back to the same values; -c picks by header or field name; times are ISO 8601."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

import pytest
import yaml

from cinderblock.actors.cli.format import (
    Column,
    ColumnError,
    Listing,
    iso_time,
    record,
    render_listing,
    render_record,
)
from cinderblock.protocol.messages.attachments import Attachment
from cinderblock.protocol.messages.volumes import Volume
from cinderblock.protocol.states import AttachmentStatus, VolumeStatus

VOL = Volume("v-1", "demo", 2, VolumeStatus.AVAILABLE, name="a, \"quoted\" name",
             metadata={"k": "v", "n": "1"}, created_at=1796124026.24)
LISTING = Listing((Column("id", "ID"), Column("name", "Name"), Column("size", "Size"),
                   Column("attached_to", "Attached to")),
                  [("v-1", 'a, "quoted" name', 2, ["vm-1", "vm-2"]), ("v-2", None, 10, [])])


def test_times_become_iso_8601_in_utc_and_an_unset_time_none() -> None:
    shown = record(VOL)
    assert shown["created_at"] == "2026-12-01T11:20:26.240000+00:00"
    assert datetime.fromisoformat(shown["created_at"]).timestamp() == pytest.approx(
        1796124026.24)
    assert shown["updated_at"] is None and iso_time(True) is True


def test_every_epoch_field_is_shown_as_a_time_whatever_the_message() -> None:
    attachment = Attachment("a-1", "v-1", "demo", AttachmentStatus.ATTACHED,
                            created_at=1796124026.24, attached_at=1796124027.5)
    shown = record(attachment)
    assert shown["attached_at"] == "2026-12-01T11:20:27.500000+00:00"
    assert record({"expires_at": 1796124026.24, "ts": 0})["expires_at"].startswith("2026-12-01T")
    assert record({"stopped_at": "v-9"})["stopped_at"] == "v-9"  # not a number: as it is


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_a_record_in_json_and_yaml_keeps_its_types(fmt: str) -> None:
    text = render_record(record(VOL), fmt, ["id", "size", "metadata"])
    parsed = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    assert parsed == {"id": "v-1", "size": 2, "metadata": {"k": "v", "n": "1"}}


def test_a_record_as_value_and_csv() -> None:
    assert render_record(record(VOL), "value", ["name", "size"]).splitlines() == [
        'a, "quoted" name', "2"]
    rows = list(csv.reader(io.StringIO(render_record(record(VOL), "csv", ["name", "size"]))))
    assert rows == [["name", "size"], ['a, "quoted" name', "2"]]


def test_a_listing_in_every_format() -> None:
    as_json = json.loads(render_listing(LISTING, "json"))
    assert as_json[0] == {"id": "v-1", "name": 'a, "quoted" name', "size": 2,
                          "attached_to": ["vm-1", "vm-2"]}
    assert yaml.safe_load(render_listing(LISTING, "yaml")) == as_json
    rows = list(csv.DictReader(io.StringIO(render_listing(LISTING, "csv"))))
    assert rows[0] == {"ID": "v-1", "Name": 'a, "quoted" name', "Size": "2",
                       "Attached to": "vm-1, vm-2"}
    assert rows[1]["Name"] == "" and rows[1]["Attached to"] == ""
    assert render_listing(LISTING, "value", ["Size", "ID"]).splitlines() == ["2 v-1", "10 v-2"]
    table = render_listing(LISTING, "table")
    assert "| ID  | Name" in table and "vm-1, vm-2" in table


def test_columns_are_picked_by_header_or_field_name_and_an_unknown_one_is_refused() -> None:
    assert render_listing(LISTING, "value", ["attached_to"]).splitlines()[0] == "vm-1, vm-2"
    assert render_listing(LISTING, "value", ["attached to"]).splitlines()[0] == "vm-1, vm-2"
    with pytest.raises(ColumnError, match="no column 'Colour'; the columns are: ID, Name"):
        render_listing(LISTING, "table", ["Colour"])
    with pytest.raises(ColumnError, match="no column 'colour'"):
        render_record(record(VOL), "json", ["colour"])
