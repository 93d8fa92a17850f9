"""NDJSON log lines sent as evidence: ``canopy evidence ingest`` in a real process against a
running server, over a real socket; and the lines route posted raw, with every way a line can
be refused while the others are kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from canopy.server.api.keys import EVIDENCE

from ..conftest import Running, bearer
from ..test_cli import canopy, environment

TRACE = (
    "Traceback (most recent call last):\n"
    '  File "/srv/app/orders.py", line 12, in total\n'
    "    return price / count\n"
    "ZeroDivisionError: division by zero\n"
)


def line(**fields: Any) -> str:
    return json.dumps(fields) + "\n"


async def test_the_cli_sends_a_file_in_chunks_and_reports_bad_lines_by_number(
    server: Running, tmp_path: Path
) -> None:
    token = await server.issue("ann", "acme")
    padding = "x" * 100
    lines = [line(ts="2026-03-01T12:00:00Z", level="info", msg=padding)] * 12_000
    lines.append(line(ts=1772366400, level="ERROR", msg="payment failed", service="billing"))
    lines.append("{not json\n")
    lines.append(line(time="2026-03-01T12:00:01Z", level="error", stacktrace=TRACE))
    lines.append("\n")
    lines.append(line(level="error", message="bad time", time=True))
    lines.append(line(level="error", message="y" * (1024 * 1024)))
    logs = tmp_path / "shop.ndjson"
    logs.write_text("".join(lines))
    assert logs.stat().st_size > 1024 * 1024  # more than one chunk
    done = await canopy(
        "evidence",
        "ingest",
        str(logs),
        "--service",
        "shop",
        cwd=tmp_path,
        env=environment(CANOPY_URL=server.url, CANOPY_TOKEN=token),
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout == "2 evidence (2 new), 12000 line(s) skipped, 3 refused\n"
    assert "line 12002: not JSON" in done.stderr
    assert "line 12005: 'time' True is not a time" in done.stderr
    assert "line 12006: longer than 1 MiB; not sent" in done.stderr
    assert "3 line(s) refused" in done.stderr
    logged, raised = [s.evidence for s in await server.app[EVIDENCE].reports("acme")]
    assert (logged.service, logged.level, logged.message) == ("billing", "error", "payment failed")
    assert logged.time.isoformat() == "2026-03-01T12:00:00+00:00"
    assert (raised.service, raised.exception_type, raised.message) == (
        "shop",
        "ZeroDivisionError",
        "division by zero",
    )
    assert [(f.function, f.line) for f in raised.frames] == [("total", 12)]
    # Sending the file again keeps nothing twice.
    again = await canopy(
        "evidence",
        "ingest",
        str(logs),
        "--service",
        "shop",
        "--url",
        server.url,
        "--token",
        token,
        cwd=tmp_path,
        env=environment(),
    )
    assert again.stdout == "2 evidence (0 new), 12000 line(s) skipped, 3 refused\n"
    assert len(await server.app[EVIDENCE].reports("acme")) == 2


async def post(
    http: aiohttp.ClientSession, server: Running, token: str, body: str, **options: Any
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/x-ndjson", **bearer(token)}
    headers.update(options.pop("headers", {}))
    async with http.post(
        f"{server.url}/api/v1/evidence/lines", data=body.encode(), headers=headers, **options
    ) as response:
        return response.status, await response.json(content_type=None)


async def test_lines_with_aliases_and_refusals(
    server: Running, http: aiohttp.ClientSession
) -> None:
    token = await server.issue("bob", "globex")
    body = "".join(
        [
            line(
                timestamp=1772366400123,
                severity="CRITICAL",
                **{"service.name": "pay", "exception.type": "Timeout", "version": "3.1"},
                env="staging",
            ),
            line(level="warning", service="pay", msg="slow"),
            line(level="error", msg="no service"),
            "[1, 2]\n",
            line(level="error", service=7),
            line(level="error", service="pay", ts=-5),
        ]
    )
    status, answer = await post(http, server, token, body, params={"first_line": "41"})
    assert status == 200
    assert answer == {
        "evidence": 1,
        "new": 1,
        "skipped": 1,
        "refused": 4,
        "errors": [
            {
                "line": 43,
                "detail": "no 'service': name it in the line, or give the request's service",
            },
            {"line": 44, "detail": "must be a JSON object, not list"},
            {"line": 45, "detail": "'service' must be a string, not int"},
            {"line": 46, "detail": "time 1969-12-31T23:59:55+00:00 is before 1970"},
        ],
    }
    [kept] = [s.evidence for s in await server.app[EVIDENCE].reports("globex")]
    assert (kept.service, kept.release, kept.environment) == ("pay", "3.1", "staging")
    assert (kept.level, kept.exception_type, kept.time.microsecond) == ("fatal", "Timeout", 123000)
    # The query names the service of lines without one.
    status, answer = await post(http, server, token, line(level="error"), params={"service": "x"})
    assert (status, answer["new"]) == (200, 1)
    status, answer = await post(http, server, token, "", params={"first_line": "0"})
    assert (status, answer["field"]) == (400, "first_line")
    status, answer = await post(http, server, token, "{}", headers={"Content-Type": "image/png"})
    assert status == 415
    async with http.post(f"{server.url}/api/v1/evidence/lines", data=b"{}") as response:
        assert response.status == 401
