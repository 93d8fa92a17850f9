"""Benchmark of what a ``chat`` span costs a model call: ``TracedModel`` against the bare model.

The model is the offline one with no latency, so a call is only Canopy's own work (hashing the
request, building the response) and the difference is the span's cost. Three variants, each
run in rounds alternating with the bare model (``B V B V ...``), per-call figures the median
over rounds:

- ``off``: TracedModel with no tracer provider installed (no endpoint configured): the API's
  no-op span, what every deployment that does not trace pays;
- ``on``: TracedModel with the provider of ``start_tracing`` exporting over OTLP/HTTP to a
  collector in another process (this script run with ``--collector``), which decodes every
  export with the protocol's classes and counts the spans. The cost includes the batch
  processor's thread serialising and sending them (it is CPU of this process), and the
  collector's count is checked against the calls made, so no span was dropped unseen.

Reported per call: wall microseconds and CPU microseconds of the whole process
(``time.process_time``), for the bare model and each variant, and the difference.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from measure import emit_report
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from canopy.server.llm import LanguageModel, ModelRequest
from canopy.server.llm.costs import CostTable
from canopy.server.llm.offline import OfflineModel
from canopy.server.telemetry import TracedModel, start_tracing, stop_tracing

REQUEST = ModelRequest(
    model="claude-sonnet-4-5",
    messages=({"role": "user", "content": "Classify: my card was charged twice"},),
    max_tokens=64,
    temperature=0.0,
)


async def calls(model: LanguageModel, count: int) -> tuple[float, float]:
    """Wall and CPU seconds of ``count`` calls."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        await model.complete(REQUEST)
    return time.perf_counter() - wall, time.process_time() - cpu


async def rounds(
    bare: LanguageModel, traced: LanguageModel, count: int, repeats: int
) -> dict[str, Any]:
    """Alternating rounds of the bare and the traced model; medians per call in µs."""
    figures: dict[str, list[float]] = {"bare_wall": [], "bare_cpu": [], "wall": [], "cpu": []}
    for _ in range(repeats):
        for prefix, model in (("bare_", bare), ("", traced)):
            wall, cpu = await calls(model, count)
            figures[prefix + "wall"].append(wall / count * 1e6)
            figures[prefix + "cpu"].append(cpu / count * 1e6)
    result = {f"{name}_us": round(statistics.median(values), 2) for name, values in figures.items()}
    result["overhead_wall_us"] = round(result["wall_us"] - result["bare_wall_us"], 2)
    result["overhead_cpu_us"] = round(result["cpu_us"] - result["bare_cpu_us"], 2)
    return result


async def collector() -> None:
    """Take OTLP/HTTP exports on a free port (printed), count their spans, print the count
    when stdin closes."""
    received = 0

    async def export(request: web.Request) -> web.Response:
        nonlocal received
        body = ExportTraceServiceRequest.FromString(await request.read())
        received += sum(
            len(scope.spans) for spans in body.resource_spans for scope in spans.scope_spans
        )
        answer = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=answer, content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", export)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)  # type: ignore[union-attr]
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()
    print(received, flush=True)


async def measure(count: int, repeats: int, endpoint: str) -> dict[str, Any]:
    """The ``off`` rounds, then the ``on`` rounds exporting to ``endpoint``."""
    with tempfile.TemporaryDirectory() as folder:
        fixtures = Path(folder) / "fixtures.yaml"
        answer = {"text": "billing", "usage": {"input_tokens": 42, "output_tokens": 3}}
        fixtures.write_text(yaml.safe_dump({"responses": {REQUEST.fingerprint(): answer}}))
        bare = OfflineModel(fixtures)
        counted = OfflineModel(fixtures)
        traced = TracedModel(counted, costs=CostTable())
        await calls(traced, count)  # warm-up: imports, first spans
        off = await rounds(bare, traced, count, repeats)
        before = counted.calls
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
        start_tracing("canopy-bench")
        on = await rounds(bare, traced, count, repeats)
        stop_tracing()
    return {"off": off, "on": on, "traced_calls_with_provider": counted.calls - before}


def main(count: int, repeats: int) -> dict[str, Any]:
    """Start the collector, measure, and check it received a span per traced call."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--collector"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    stdin, stdout = process.stdin, process.stdout
    assert stdin is not None
    assert stdout is not None
    try:
        port = stdout.readline().strip()
        report = asyncio.run(measure(count, repeats, f"http://127.0.0.1:{port}"))
    finally:
        stdin.close()
    received = int(stdout.readline())
    process.wait()
    off, on = report["off"], report["on"]
    print(
        f"span off: +{off['overhead_wall_us']} µs wall, +{off['overhead_cpu_us']} µs CPU per call;"
        f" on: +{on['overhead_wall_us']} µs wall, +{on['overhead_cpu_us']} µs CPU per call"
        f" (bare call {on['bare_wall_us']} µs); collector received {received} spans",
        file=sys.stderr,
    )
    return {
        "benchmark": "tracing_overhead",
        "calls_per_round": count,
        "rounds": repeats,
        **report,
        "spans_exported": received,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds, for a smoke run")
    parser.add_argument("--out", type=Path, help="also write the JSON report here")
    parser.add_argument("--collector", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.collector:
        asyncio.run(collector())
    else:
        count, repeats = (500, 5) if options.quick else (2000, 15)
        emit_report(main(count, repeats), options.out)
