"""A service that reports a bug through the real Sentry SDK: ``python sentry_app.py DSN ORDER``
looks up an order that does not exist and reports the KeyError, then prints its event id."""

from __future__ import annotations

import sys

import sentry_sdk


def lookup(orders: dict[int, str], order: int) -> str:
    if order not in orders:
        raise KeyError(f"order {order} not found at 0x{id(orders):x}")
    return orders[order]


def checkout(order: int) -> str:
    return lookup({1: "book"}, order)


def main() -> None:
    dsn, order = sys.argv[1], int(sys.argv[2])
    sentry_sdk.init(
        dsn=dsn, release="shop@1.4.2", environment="staging", default_integrations=False
    )
    try:
        checkout(order)
    except KeyError as error:
        event_id = sentry_sdk.capture_exception(error)
    sentry_sdk.flush(timeout=30)
    print(event_id)


if __name__ == "__main__":
    main()
