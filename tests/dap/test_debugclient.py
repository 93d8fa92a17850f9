"""``canopy dap`` driven by a client we did not write: Microsoft's DebugClient.

The scenarios live in ``tests/dap/js`` (Node's built-in test runner with
``@vscode/debugadapter-testsupport``); this test installs their locked dependencies when needed
(``npm ci``, skipped while ``node_modules`` matches ``package-lock.json``) and runs them as real
subprocesses, failing with their output. Only ``npm`` (and the Node.js it comes with) is needed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parent / "js"
STAMP = JS / "node_modules" / ".canopy-lock-sha256"  # inside node_modules: never committed
INSTALL_TIMEOUT = 240
TEST_TIMEOUT = 150


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(
            "npm is not on PATH: the DebugClient tests in tests/dap/js need Node.js 20+ and npm "
            "(https://nodejs.org); install them, or put them on PATH",
            pytrace=False,
        )
    return npm


def _canopy() -> Path:
    """The ``canopy`` console script of the Python running this test (its virtualenv)."""
    scripts = Path(sys.executable).parent
    for name in ("canopy", "canopy.exe"):
        if (scripts / name).is_file():
            return scripts / name
    pytest.fail(
        f"no canopy script next to {sys.executable}: install the project (pip install -e .)",
        pytrace=False,
    )


def _lock_digest() -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((JS / name).read_bytes())
    return digest.hexdigest()


def _run(command: list[str], timeout: int, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            command,
            cwd=JS,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        output = expired.output or ""
        if isinstance(output, bytes):
            output = output.decode("utf-8", "replace")
        pytest.fail(
            f"`{' '.join(command[1:])}` in {JS} took more than {timeout} s:\n{output}",
            pytrace=False,
        )


@pytest.mark.timeout(INSTALL_TIMEOUT + TEST_TIMEOUT + 30)
def test_the_debugclient_scenarios_pass() -> None:
    npm = _npm()
    env = {
        **os.environ,
        "CANOPY_DAP_EXECUTABLE": str(_canopy()),
        "NO_COLOR": "1",
        "NO_UPDATE_NOTIFIER": "1",
        "npm_config_update_notifier": "false",
        "npm_config_fund": "false",
        "npm_config_audit": "false",
    }
    env.pop("FORCE_COLOR", None)
    env.pop("NODE_OPTIONS", None)  # e.g. an inspector flag of the caller's shell

    digest = _lock_digest()
    current = STAMP.read_text(encoding="utf-8").strip() if STAMP.is_file() else None
    if current != digest:
        install = _run([npm, "ci", "--no-audit", "--no-fund"], INSTALL_TIMEOUT, env)
        if install.returncode != 0:
            pytest.fail(
                f"`npm ci` in {JS} failed (exit {install.returncode}):\n{install.stdout}",
                pytrace=False,
            )
        STAMP.write_text(digest + "\n", encoding="utf-8")

    result = _run([npm, "test"], TEST_TIMEOUT, env)
    if result.returncode != 0:
        pytest.fail(
            f"the DebugClient scenarios failed (`npm test` in {JS}, exit {result.returncode}):\n"
            f"{result.stdout}",
            pytrace=False,
        )
    print(result.stdout)  # shown with -s or -rA: which scenarios ran, and the known deviations
