"""Initialization options: typed, each checked on its own; a wrong one is reported to the user
and replaced by its default, and the session goes on."""

from __future__ import annotations

from pathlib import Path

from pytest_lsp import LanguageClient

from .conftest import PATROL, diagnostics_of, session
from .test_completion import complete


async def test_wrong_options_are_reported_and_defaulted(workspace: Path) -> None:
    options = {"validateOn": "sometimes", "workspaceClasses": "yes", "maxPythonFile": 3}
    async with session(options) as (client, warnings):
        await wrong_options_defaulted(client, warnings, workspace)


async def wrong_options_defaulted(
    client: LanguageClient, warnings: list[str], workspace: Path
) -> None:
    assert len(warnings) == 3
    assert warnings[0] == (
        "option 'validateOn': Invalid enum value 'sometimes' (got 'sometimes');"
        " using the default 'change'"
    )
    assert "option 'workspaceClasses': Expected `bool`, got `str`" in warnings[1]
    assert warnings[2].startswith("unknown option 'maxPythonFile' ignored; known options:")
    # The session goes on with the defaults: classes beside the tree are offered.
    found = await complete(client, workspace / "new.yaml", "root:\n  type: ", 1)
    assert "robot:Scan" in found
    assert await diagnostics_of(client, PATROL / "patrol.yaml") == []


async def test_options_that_are_not_an_object_are_all_defaulted() -> None:
    async with session(["validateOn"]) as (_, warnings):
        assert warnings == [
            "initializationOptions must be an object, not ['validateOn']; using defaults"
        ]


async def test_good_options_apply(workspace: Path) -> None:
    options = {"workspaceClasses": False, "maxPythonFiles": 0, "validateOn": "save"}
    async with session(options) as (client, warnings):
        assert warnings == []
        found = await complete(client, workspace / "new.yaml", "root:\n  type: ", 1)
        assert "Sequence" in found
        assert "robot:Scan" not in found
