"""The distribution installs every package folder, under the one cinderblock namespace."""

from __future__ import annotations

import tomllib
from pathlib import Path

import cinderblock

ROOT = Path(__file__).resolve().parents[2]
TOPS = {"actors", "protocol", "storage_node", "tui", "bench"}


def _pyproject() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def _package_folders() -> set[str]:
    found = set()
    for top in TOPS:
        for init in (ROOT / top).rglob("__init__.py"):
            folder = init.parent.relative_to(ROOT)
            if "namespace_root" not in folder.parts:
                found.add("cinderblock." + ".".join(folder.parts))
    return found


def test_the_packages_list_names_every_package_folder_and_nothing_else() -> None:
    setuptools = _pyproject()["tool"]["setuptools"]  # type: ignore[index]
    listed = set(setuptools["packages"])
    assert listed == _package_folders() | {"cinderblock"}


def test_every_top_level_folder_maps_into_the_cinderblock_namespace() -> None:
    mapping = _pyproject()["tool"]["setuptools"]["package-dir"]  # type: ignore[index]
    assert {f"cinderblock.{top}": top for top in TOPS}.items() <= mapping.items()
    assert all(name == "cinderblock" or name.startswith("cinderblock.") for name in mapping)


def test_the_installed_modules_come_from_this_checkout() -> None:
    import cinderblock.protocol.client as client

    assert Path(client.__file__).resolve().is_relative_to(ROOT / "protocol")
    assert cinderblock.__version__ == _pyproject()["project"]["version"]  # type: ignore[index]
