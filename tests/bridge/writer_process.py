"""A writer in its own process, for crash and concurrency tests.

Appends ``TickStarted`` events with idempotency keys ``<writer>-<n>`` and prints one JSON line
per acknowledged event, flushed as soon as its append returned, so the parent knows exactly
which appends were acknowledged when it kills this process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from canopy.bridge import open_store

from .helpers import tick


async def write(url: str, writer: str, start: int, count: int, batch: int) -> None:
    async with open_store(url) as store:
        print(json.dumps({"ready": True}), flush=True)
        for first in range(start, start + count, batch):
            numbers = range(first, min(first + batch, start + count))
            offsets = await store.append(
                [tick(writer, n + 1, key=f"{writer}-{n}") for n in numbers]
            )
            for n, offset in zip(numbers, offsets, strict=True):
                sys.stdout.write(json.dumps({"key": f"{writer}-{n}", "offset": offset}) + "\n")
            sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--writer", default="w")
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(write(args.url, args.writer, args.start, args.count, args.batch))


if __name__ == "__main__":
    main()
