"""The Python side of the triage workflow: the order lookup the billing analyst may call, the
support policy, and the reply sent back.

``response_policy`` holds the example's deliberate bug: its table knows the urgencies support
had when it was written, but ``classify``'s schema also lets the model answer ``critical``.
"""

from __future__ import annotations

from typing import Any

ORDERS: dict[str, dict[str, Any]] = {
    "A-1042": {
        "order_id": "A-1042",
        "item": "Trail running shoes",
        "amount": 89.0,
        "currency": "EUR",
        "payments": [
            {"id": "pay_7731", "amount": 89.0, "status": "captured", "date": "2026-03-03"},
            {"id": "pay_7746", "amount": 89.0, "status": "captured", "date": "2026-03-03"},
        ],
    },
}

RESPONSE_HOURS = {"low": 72, "normal": 24, "high": 4}
"""How soon support answers, by urgency."""

REFUND_LIMIT = {"billing": 200.0, "shipping": 50.0, "account": 0.0, "other": 0.0}
"""What an agent may refund without a supervisor, by category (EUR)."""


def lookup_order(order_id: str) -> dict[str, Any]:
    """The order and its payments (a read: the tool is declared with ``effects: false``)."""
    order = ORDERS.get(order_id)
    if order is None:
        return {"order_id": order_id, "error": "no such order"}
    return order


def response_policy(category: str, urgency: str) -> dict[str, Any]:
    """What support promises for this ticket."""
    hours = RESPONSE_HOURS[urgency]  # the deliberate bug: 'critical' is not in the table
    return {
        "respond_within_hours": hours,
        "refund_limit_eur": REFUND_LIMIT.get(category, 0.0),
        "escalate": hours <= 4,
    }


def format_reply(ticket_id: str, summary: str, policy: dict[str, Any]) -> str:
    """The answer posted on the ticket."""
    escalated = "Escalated to a supervisor. " if policy["escalate"] else ""
    return (
        f"[{ticket_id}] {summary}\n"
        f"{escalated}We will get back to you within {policy['respond_within_hours']} hours."
    )
