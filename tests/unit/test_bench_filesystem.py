"""bench.throughput names the file system its data is on (the file backend's creates
cost what that file system's creates cost)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cinderblock.bench.throughput import data_filesystem

MOUNTS = """\
/dev/vda / ext4 rw,relatime 0 0
tmpfs /mnt tmpfs rw 0 0
/dev/loop0 /mnt/data xfs rw 0 0
/dev/loop1 /mnt/my\\040disk ext4 rw 0 0
/dev/loop2 /mnt/data xfs rw 0 0
"""


@pytest.mark.parametrize(("path", "kind", "mount"), [
    ("/var/lib/x", "ext4", "/"),
    ("/mnt", "tmpfs", "/mnt"),
    ("/mntx/y", "ext4", "/"),  # a mount point is a whole name, not a prefix of one
    ("/mnt/data/nodes/node-1", "xfs", "/mnt/data"),
    ("/mnt/my disk/volumes", "ext4", "/mnt/my disk"),  # /proc/mounts escapes the space
])
def test_the_longest_mount_point_holding_the_path_is_its_file_system(
    path: str, kind: str, mount: str, tmp_path: Path,
) -> None:
    found = data_filesystem(Path(path), MOUNTS, sys_fs=tmp_path)
    assert (found["type"], found["mount"]) == (kind, mount)


def test_a_later_mount_on_the_same_point_hides_the_earlier(tmp_path: Path) -> None:
    mounts = MOUNTS.replace("/dev/loop2 /mnt/data xfs", "/dev/loop2 /mnt/data btrfs")
    assert data_filesystem(Path("/mnt/data/a"), mounts, sys_fs=tmp_path)["type"] == "btrfs"


@pytest.mark.parametrize(("journal_task", "journal"), [
    ("<none>\n", False),  # ext4 without a journal: what the kernel writes there
    ("812\n", True),  # the journal's thread
    (None, None),  # not known
])
def test_an_ext4_says_whether_it_has_a_journal(
    journal_task: str | None, journal: bool | None, tmp_path: Path,
) -> None:
    if journal_task is not None:
        (tmp_path / "ext4" / "vda").mkdir(parents=True)
        (tmp_path / "ext4" / "vda" / "journal_task").write_text(journal_task)
    found = data_filesystem(Path("/srv"), MOUNTS, sys_fs=tmp_path)
    assert found == {"type": "ext4", "mount": "/", "journal": journal}


def test_other_file_systems_say_nothing_of_a_journal(tmp_path: Path) -> None:
    (tmp_path / "ext4" / "loop0").mkdir(parents=True)
    (tmp_path / "ext4" / "loop0" / "journal_task").write_text("5\n")  # not consulted
    assert data_filesystem(Path("/mnt/data"), MOUNTS, sys_fs=tmp_path)["journal"] is None


def test_this_machines_temporary_directory_is_on_a_mounted_file_system(
    tmp_path: Path,
) -> None:
    found = data_filesystem(tmp_path)
    assert found["type"] != "unknown" and str(tmp_path).startswith(found["mount"])
