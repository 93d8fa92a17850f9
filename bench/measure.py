"""Measuring helpers shared by the benchmarks (each script stays runnable on its own:
``python bench/<name>.py`` puts this folder on the import path)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["emit_report", "machine_busy_seconds", "percentile"]


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending, non-empty sequence."""
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def machine_busy_seconds() -> float | None:
    """Busy CPU seconds of all cores since boot, from ``/proc/stat`` (None where absent): what
    other processes used during a run is this minus the benchmark's own CPU time."""
    try:
        first_line = Path("/proc/stat").read_text().split("\n", 1)[0]
    except OSError:
        return None
    ticks = [int(value) for value in first_line.split()[1:9]]
    idle = ticks[3] + ticks[4]  # idle + iowait; the rest (user .. steal) is busy
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")


def emit_report(report: Mapping[str, Any], out: Path | None) -> None:
    """Print ``report`` as one compact JSON line, the last of stdout (what tools read), and
    write the same line to ``out`` when given."""
    line = json.dumps(report, separators=(",", ":"))
    if out:
        out.write_text(line + "\n")
    print(line, flush=True)
