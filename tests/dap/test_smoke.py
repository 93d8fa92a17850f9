"""The adapter end to end over a real pipe: launch, stop at a breakpoint, inspect, step, end."""

from __future__ import annotations

from .client import DapClient
from .helpers import core_scenario


async def test_a_breakpoint_stops_and_the_state_can_be_inspected(client: DapClient) -> None:
    await core_scenario(client)
    await client.wait_closed()  # a stdio adapter exits after disconnect
