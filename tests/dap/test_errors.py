"""Every Canopy error is answered ``success: false`` with its readable message, whatever the
layer that raised it; anything else is a bug: answered as an internal error and logged with
its traceback, and the session goes on."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from .client import launch_configured, spawn_stdio_adapter, speaking_to
from .helpers import PATROL


async def test_a_picture_without_graphviz_is_refused_with_the_reason(tmp_path: Path) -> None:
    """The runtime's PictureError is a Canopy error like any other, not an internal error."""
    no_dot = tmp_path / "bin"
    no_dot.mkdir()
    process = spawn_stdio_adapter(tmp_path, environment={"PATH": str(no_dot)})
    async with speaking_to(process) as client:
        await launch_configured(client, PATROL, mode="manual", blackboard={"battery": 100})
        await client.next_event("stopped")
        message = await client.fails("canopy/picture", {"format": "svg"})
        assert message == "Graphviz 'dot' is not installed; DOT is available"
        dot = await client.ok("canopy/picture", {"format": "dot"})
        assert dot["content"].startswith("digraph ")


async def test_a_bug_in_a_handler_is_logged_and_answered_as_an_internal_error(
    tmp_path: Path,
) -> None:
    script = Path(__file__).with_name("buggy_adapter.py")
    process = spawn_stdio_adapter(tmp_path, script=script, stderr=subprocess.PIPE)
    async with speaking_to(process) as client:
        await client.ok("initialize", {"adapterID": "canopy"})
        message = await client.fails("threads")
        assert message == (
            "internal error in threads: KeyError (the debug adapter's log has the details)"
        )
        await client.ok("configurationDone")  # the session goes on
    assert process.stderr is not None
    log = await asyncio.to_thread(process.stderr.read)
    text = log.decode()
    assert "request threads failed" in text
    assert "Traceback (most recent call last)" in text
    assert "KeyError: 'threadFilter'" in text
