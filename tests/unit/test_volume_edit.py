"""volume.modify's checks (actors/gateway/volume_edit.py): what a change would set,
all checked before anything is changed."""

from __future__ import annotations

from typing import Any

import pytest

from cinderblock.actors.gateway.volume_edit import boolean, planned_change
from cinderblock.actors.gateway.volume_store import VolumeRecord
from cinderblock.protocol.messages.volumes import VolumeModify, VolumeType
from cinderblock.protocol.states import VolumeStatus
from cinderblock.protocol.wire.errors import InvalidInput, NotFound


def volume(**metadata: str) -> VolumeRecord:
    return VolumeRecord("v1", "p", "u", 1, VolumeStatus.AVAILABLE, VolumeType("t", "T"),
                        "nova", name="old", metadata=dict(metadata))


def test_a_rename_is_stripped_and_a_null_description_clears_it() -> None:
    change = planned_change(VolumeModify("v1", ("name", "description"), "  new  ", None),
                            volume())
    assert change == {"name": "new", "description": None}


def test_metadata_is_merged_replaced_or_pruned() -> None:
    rec = volume(a="1", b="2")
    assert planned_change(VolumeModify("v1", metadata={"c": "3"}), rec) == {
        "metadata": {"a": "1", "b": "2", "c": "3"}}
    assert planned_change(VolumeModify("v1", metadata={"c": "3"}, replace_metadata=True),
                          rec) == {"metadata": {"c": "3"}}
    assert planned_change(VolumeModify("v1", delete_metadata=("a",)), rec) == {
        "metadata": {"b": "2"}}
    assert rec.metadata == {"a": "1", "b": "2"}, "nothing changed on the record itself"


def test_a_missing_metadata_key_is_not_found_and_a_bad_one_invalid() -> None:
    with pytest.raises(NotFound):
        planned_change(VolumeModify("v1", delete_metadata=("zz",)), volume())
    with pytest.raises(InvalidInput):
        planned_change(VolumeModify("v1", metadata={"bad*key": "v"}), volume())
    with pytest.raises(InvalidInput):
        planned_change(VolumeModify("v1", ("size",)), volume())


@pytest.mark.parametrize(("value", "flag"), [
    (True, True), (False, False), ("true", True), ("False", False), ("1", True), ("no", False),
    (1, True), (0, False)])
def test_flags_take_a_boolean_or_cinder_s_boolean_words(value: Any, flag: bool) -> None:
    assert boolean("bootable", value) is flag


@pytest.mark.parametrize("value", ["maybe", 2, [True], 1.0])
def test_anything_else_is_not_a_boolean(value: Any) -> None:
    with pytest.raises(InvalidInput, match="not a valid boolean"):
        boolean("readonly", value)


def test_image_metadata_is_merged_and_pruned_and_checked_as_cinder_s_schema() -> None:
    """``os-set_image_metadata`` merges, ``os-unset_image_metadata`` drops a key (a
    missing one is Cinder's GlanceMetadataNotFound); keys as metadata's, string values up
    to a TEXT's 65,535 characters, and at most 128 KiB in all on one volume."""
    rec = volume()
    rec.image_metadata = {"hw_disk_bus": "scsi"}
    assert planned_change(VolumeModify("v1", image_metadata={"os_type": "linux"}), rec) == {
        "image_metadata": {"hw_disk_bus": "scsi", "os_type": "linux"}}
    assert planned_change(VolumeModify("v1", delete_image_metadata=("hw_disk_bus",)), rec) == {
        "image_metadata": {}}
    assert planned_change(VolumeModify("v1", image_metadata={"hw_disk_bus": "scsi"}),
                          rec) == {}, "the same items: nothing to change"
    assert rec.image_metadata == {"hw_disk_bus": "scsi"}, "nothing changed on the record"
    with pytest.raises(NotFound, match="Glance metadata for volume/snapshot v1 cannot be "):
        planned_change(VolumeModify("v1", delete_image_metadata=("os_type",)), rec)
    long_value = "x" * 65_535
    assert planned_change(VolumeModify("v1", image_metadata={"k": long_value}), rec)
    for bad, says in (({"bad*key": "v"}, "must be 1-255 characters"),
                      ({"k": 1}, "must be a string of at most 65535"),
                      ({"k": long_value + "x"}, "must be a string of at most 65535"),
                      ({"a": long_value, "b": long_value}, "a volume holds at most 131072"),
                      (["k"], "is not of type 'object'")):
        with pytest.raises(InvalidInput, match=says):
            planned_change(VolumeModify("v1", image_metadata=bad), rec)
