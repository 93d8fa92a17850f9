"""Retention rules: how much of a topic the log keeps.

Execution telemetry grows with every tick, so ``debugging.execution`` (and pod facts in
``debugging.internal``) may be pruned by age or to the newest N events of each stream. The
incident ``debugging.timeline`` is the record of what happened and is never pruned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from .errors import ConfigurationError
from .events import TOPICS, Topic

__all__ = ["RetentionRule", "parse_retention"]

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


@dataclass(frozen=True, slots=True)
class RetentionRule:
    """Keep, in ``topic``, events younger than ``max_age`` and the newest ``keep_last`` events of
    each stream; an event goes when any limit set excludes it."""

    topic: str
    keep_last: int | None = None
    max_age: timedelta | None = None

    def __post_init__(self) -> None:
        if self.topic not in TOPICS:
            raise ConfigurationError(f"retention: unknown topic {self.topic!r}")
        if self.topic == Topic.TIMELINE:
            raise ConfigurationError(f"retention: {Topic.TIMELINE} is never pruned")
        if self.keep_last is None and self.max_age is None:
            raise ConfigurationError(f"retention for {self.topic}: give keep_last or max_age")
        if self.keep_last is not None and self.keep_last < 1:
            raise ConfigurationError(f"retention for {self.topic}: keep_last must be >= 1")
        if self.max_age is not None and self.max_age <= timedelta(0):
            raise ConfigurationError(f"retention for {self.topic}: max_age must be positive")


def parse_retention(text: str) -> list[RetentionRule]:
    """Parse ``"debugging.execution:keep=100000,age=7d;debugging.internal:age=30d"``.

    ``keep`` is events per stream, ``age`` a number with a unit s, m, h or d.
    """
    rules = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        topic, _, limits = part.partition(":")
        keep_last: int | None = None
        max_age: timedelta | None = None
        for limit in filter(None, (x.strip() for x in limits.split(","))):
            name, _, value = limit.partition("=")
            if name == "keep" and value.isdigit():
                keep_last = int(value)
            elif name == "age" and (m := _DURATION.match(value)):
                max_age = timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
            else:
                raise ConfigurationError(
                    f"retention: cannot read {limit!r} in {part!r}"
                    " (expected keep=<events> or age=<number><s|m|h|d>)"
                )
        rules.append(RetentionRule(topic.strip(), keep_last, max_age))
    return rules
