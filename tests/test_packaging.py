"""Canopy installs under one ``canopy`` namespace, so a user's own top-level ``server`` or
``schemas`` package never collides with Canopy's: the built wheel in a fresh virtual
environment runs a tree that imports the user's packages, in the adapter and in a local pod."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

from .dap.client import launch_configured, speaking_to

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("schemas", "bridge", "server", "dap", "lsp")
BUILD = 300  # seconds for a build or an install step

TREE = """\
name: shadows
root:
  type: Sequence
  name: shadows
  children:
    - type: behaviours:UsesMyPackages
      name: uses_my_packages
"""

BEHAVIOURS = """\
from pathlib import Path

import py_trees
import schemas
import server

HERE = Path(__file__).resolve().parent


class UsesMyPackages(py_trees.behaviour.Behaviour):
    def update(self):
        mine = (
            Path(server.__file__).resolve().parent.parent == HERE
            and Path(schemas.__file__).resolve().parent.parent == HERE
            and server.WHO == "the user's server" and schemas.WHO == "the user's schemas"
        )
        return py_trees.common.Status.SUCCESS if mine else py_trees.common.Status.FAILURE
"""


def package_folders() -> set[str]:
    """Dotted names of every folder of the layers that holds Python modules or packaged data."""
    found = set()
    for layer in LAYERS:
        for folder in [ROOT / layer, *(p for p in (ROOT / layer).rglob("*") if p.is_dir())]:
            if "__pycache__" in folder.parts:
                continue
            if any(f.suffix in {".py", ".json"} for f in folder.iterdir() if f.is_file()):
                relative = folder.relative_to(ROOT).parts
                found.add(".".join(("canopy", *relative)))
    return found


def test_the_package_list_names_every_folder() -> None:
    """A new sub-package left out of ``pyproject.toml`` would be missing from the wheel."""
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert set(settings["tool"]["setuptools"]["packages"]) == package_folders()


@pytest.fixture(scope="module")
def fresh_canopy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment holding only the built wheel; Canopy's dependencies come from
    the test environment's site-packages (a ``.pth`` line), which holds no ``canopy`` package:
    the editable install is a finder that only a ``.pth`` file in a site directory loads."""
    base = tmp_path_factory.mktemp("wheel")
    # Built from a copy: the build writes build/ and *.egg-info beside the sources, which
    # must neither litter the checkout nor be shared by two test workers building at once.
    source = base / "source"
    for name in ("pyproject.toml", "README.md"):
        source.mkdir(exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    for layer in LAYERS:
        shutil.copytree(ROOT / layer, source / layer, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--quiet"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "-w", str(base), str(source)], check=True, timeout=BUILD
    )
    (wheel,) = base.glob("canopy_debug-*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"canopy"}
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=BUILD)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [python, *pip[1:], "install", "--no-deps", str(wheel)], check=True, timeout=BUILD
    )
    purelib = [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
    site = Path(subprocess.run(purelib, check=True, capture_output=True, text=True).stdout.strip())
    (site / "test-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return venv


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's project with its own top-level ``server`` and ``schemas`` packages."""
    root = tmp_path / "project"
    for name in ("server", "schemas"):
        (root / name).mkdir(parents=True)
        (root / name / "__init__.py").write_text(f'WHO = "the user\'s {name}"\n')
    (root / "behaviours.py").write_text(BEHAVIOURS)
    (root / "tree.yaml").write_text(TREE)
    return root


def adapter(venv: Path, project: Path, data: Path) -> subprocess.Popen[bytes]:
    """The installed ``canopy dap``, started in the user's project over pipes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CANOPY_") and k != "PYTHONPATH"}
    return subprocess.Popen(
        [str(venv / "bin" / "canopy"), "dap", "--data-dir", str(data)],
        cwd=project,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        bufsize=0,
    )


@pytest.mark.parametrize("where", [{}, {"pod": "local"}], ids=["adapter", "local-pod"])
async def test_a_tree_imports_the_users_own_server_and_schemas(
    fresh_canopy: Path, project: Path, tmp_path: Path, where: dict[str, Any]
) -> None:
    async with speaking_to(adapter(fresh_canopy, project, tmp_path / "canopy")) as client:
        await launch_configured(client, str(project / "tree.yaml"), cwd=str(project), **where)
        # Exit code 0: the root succeeded, so the behaviour saw the user's own packages.
        assert await client.next_event("exited") == {"exitCode": 0}
