"""The type checker and the linter are clean (issue 32): mypy on the package, ruff on the whole tree.

Their settings are in pyproject.toml ([tool.mypy], [tool.ruff]); tools/sqlsafe and tools/run_scoped_query,
the path every agent query takes, are type checked strictly. Neither tool needs the network.

mypy cannot follow the package-dir mapping (``schema_architect.tools`` is the folder ``tools/``), so it is
given a folder of links laid out as the installed package and checks ``-p schema_architect`` there; its
report is translated back to paths in this repository.

Run as a script (``python tests/test_static_checks.py``) to print both reports.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = REPO / "pyproject.toml"
PACKAGE = "schema_architect"


def _package_folders() -> dict[str, str]:
    """``{"tools": "tools", "server": "server", ...}``: each subpackage and its folder, from pyproject."""
    mapping = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["setuptools"]["package-dir"]
    return {name.removeprefix(f"{PACKAGE}."): folder for name, folder in mapping.items()}


def _require(module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        pytest.fail(f"{module} is not installed: it is a test dependency, `pip install -e '.[test]'`", pytrace=False)


def run_mypy() -> tuple[int, str]:
    """mypy's exit code and report, with paths relative to the repository."""
    with tempfile.TemporaryDirectory(prefix="mypy-") as scratch:
        links = Path(scratch) / "links" / PACKAGE
        links.mkdir(parents=True)
        folders = _package_folders()
        for name, folder in folders.items():
            (links / name).symlink_to(REPO / folder, target_is_directory=True)
        env = {**os.environ, "MYPYPATH": str(links.parent)}
        done = subprocess.run(
            [sys.executable, "-m", "mypy", "--config-file", str(PYPROJECT), "--cache-dir",
             str(Path(scratch) / "cache"), "--no-error-summary", "--no-pretty", "-p", PACKAGE],
            cwd=scratch, env=env, capture_output=True, text=True, check=False,
        )
        report = done.stdout + done.stderr
        for name, folder in folders.items():  # mypy names files relative to its working folder
            report = report.replace(f"{links.relative_to(scratch) / name}/", f"{folder}/")
        return done.returncode, report.strip()


def run_ruff() -> tuple[int, str]:
    """ruff's exit code and report (pyproject's [tool.ruff] says what it lints)."""
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "--quiet", "."],
        cwd=REPO, capture_output=True, text=True, check=False,
    )
    return done.returncode, (done.stdout + done.stderr).strip()


def test_mypy_is_clean() -> None:
    _require("mypy")
    code, report = run_mypy()
    errors = [line for line in report.splitlines() if ": error:" in line]
    assert code == 0 and not report, f"mypy reports {len(errors)} errors:\n{report}"


def test_ruff_is_clean() -> None:
    _require("ruff")
    code, report = run_ruff()
    assert code == 0 and not report, f"ruff reports:\n{report}\n(`ruff check --fix` applies the safe fixes)"


if __name__ == "__main__":
    for name, run in (("mypy", run_mypy), ("ruff", run_ruff)):
        code, report = run()
        print(f"== {name}: exit {code}\n{report}\n")
