"""The one rule for tests that need a tool or root: skip on a laptop, fail in CI."""

from __future__ import annotations

import pytest

from tests.conftest import require_tool


def test_a_missing_tool_skips_the_test_on_a_laptop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="needs no-such-tool-x on PATH"):
        require_tool("sh", "no-such-tool-x")


def test_a_missing_tool_fails_the_test_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_tool("no-such-tool-x")


def test_tools_that_are_there_let_the_test_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    require_tool("sh")

