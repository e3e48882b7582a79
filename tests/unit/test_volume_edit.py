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
