"""Issue 14, item 11: the models are read with the project's own SQLModel, or the result says they were not.

A real second virtualenv with SQLModel 0.0.14 (created once per test run, under pytest's tmp dir) plays the
project's interpreter. SQLModel 0.0.14 maps ``datetime`` to ``timestamp``; the server's SQLModel (>= 0.0.45)
maps it to ``timestamptz``, so which interpreter imported the models decides whether a spec's
``timestamptz`` is drift.

No package index at test time: the virtualenv is installed from the wheels .ci/run downloads into
.ci/wheels/old-sqlmodel (the pins are .ci/old-sqlmodel.txt). Without them these tests skip, saying so;
under CI=true they fail.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from through_mcp import diff_models_vs_spec as diff

from conftest import REPO, require

pytestmark = pytest.mark.anyio

PINS = REPO / ".ci" / "old-sqlmodel.txt"
WHEELS = REPO / ".ci" / "wheels" / "old-sqlmodel"
OLD_SQLMODEL = re.search(r"^sqlmodel==(\S+)", PINS.read_text(), re.M).group(1)

SPEC = """# Database schema

## Table: events

| Column | Type | Constraints |
|---|---|---|
| id | serial | PRIMARY KEY |
| happened_at | {ts} | NOT NULL |
"""

MODELS = '''from datetime import datetime
from typing import Optional

from sqlmodel import Field, SQLModel


class Event(SQLModel, table=True):
    __tablename__ = "events"

    id: Optional[int] = Field(default=None, primary_key=True)
    happened_at: datetime
'''


@pytest.fixture(scope="session")
def old_sqlmodel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with SQLModel 0.0.14 (and an SQLAlchemy 2.0 it supports), installed offline from WHEELS."""
    require(None if WHEELS.is_dir() else
            f"needs the wheels of {PINS.relative_to(REPO)} in {WHEELS.relative_to(REPO)}; download them with: "
            f"python -m pip download -d {WHEELS.relative_to(REPO)} -r {PINS.relative_to(REPO)} (.ci/run does this)")
    venv = tmp_path_factory.mktemp("venvs") / f"sqlmodel-{OLD_SQLMODEL}"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    installed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                                "--disable-pip-version-check", "--no-index", "--find-links", str(WHEELS),
                                "-r", str(PINS)],
                               capture_output=True, text=True, timeout=240)
    assert installed.returncode == 0, f"{WHEELS} does not hold what {PINS} asks for:\n{installed.stderr[-2000:]}"
    return venv


def make_project(tmp_path: Path, ts: str, pins: str | None = None) -> Path:
    (tmp_path / "specs" / "database").mkdir(parents=True)
    (tmp_path / "specs" / "database" / "schema.md").write_text(SPEC.format(ts=ts))
    (tmp_path / "backend").mkdir()
    (tmp_path / "backend" / "models.py").write_text(MODELS)
    if pins is not None:
        (tmp_path / "backend" / "requirements.txt").write_text(pins)
    return tmp_path


def timestamp_drift(data: dict) -> list[dict]:
    return [d for d in data["drifts"] if d["object"] == "events.happened_at" and d["kind"] == "timestamp-timezone"]


async def test_the_project_venv_imports_the_models_and_the_result_says_so(tmp_path: Path,
                                                                          old_sqlmodel_venv: Path) -> None:
    project = make_project(tmp_path, "timestamptz", pins=f"sqlmodel=={OLD_SQLMODEL}\n")
    (project / ".venv").symlink_to(old_sqlmodel_venv, target_is_directory=True)
    data = await diff(project)
    models = data["sides"][1]
    assert models["python"] == ".venv/bin/python"
    assert models["versions"]["sqlmodel"] == OLD_SQLMODEL
    assert models["versions"]["sqlalchemy"].startswith("2.0.")
    (drift,) = timestamp_drift(data)  # 0.0.14 creates timestamp, the spec wants timestamptz
    assert drift["sides"]["models"]["value"] == "timestamp" and drift["sides"]["spec"]["value"] == "timestamptz"
    assert "caveat" not in drift  # read with the version the project pins
    assert not [f for f in data.get("findings", []) if f["rule"] == "models-versions-differ"]


async def test_the_callers_virtual_env_is_used(tmp_path: Path, old_sqlmodel_venv: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path, "timestamp")
    monkeypatch.setenv("VIRTUAL_ENV", str(old_sqlmodel_venv))
    data = await diff(project)
    assert data["sides"][1]["python"] == str(old_sqlmodel_venv / "bin" / "python")
    assert data["sides"][1]["versions"]["sqlmodel"] == OLD_SQLMODEL
    assert timestamp_drift(data) == [], data["drifts"]  # timestamp on both sides


async def test_without_a_project_interpreter_the_version_difference_is_said(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # The project pins 0.0.14 but has no virtualenv: the server's SQLModel reads the models (timestamptz),
    # so the spec's timestamp (what 0.0.14 really creates) shows as drift that may not be real.
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    project = make_project(tmp_path, "timestamp", pins=f"fastapi\nsqlmodel=={OLD_SQLMODEL}  # pinned\n")
    data = await diff(project, detail="full")
    models = data["sides"][1]
    assert models["python"] == "the server's interpreter"
    server_version = models["versions"]["sqlmodel"]
    assert server_version != OLD_SQLMODEL
    (finding,) = [f for f in data.get("findings", []) if f["rule"] == "models-versions-differ"]
    assert finding["severity"] == "warning"
    assert f"sqlmodel {server_version}" in finding["message"]
    assert f"sqlmodel=={OLD_SQLMODEL} (backend/requirements.txt)" in finding["message"]
    assert "no project virtualenv was found" in finding["message"]
    (drift,) = timestamp_drift(data)
    assert drift["caveat"] == (f"The models' type comes from the library version used: read with sqlmodel "
                               f"{server_version}, the project pins sqlmodel=={OLD_SQLMODEL} "
                               "(backend/requirements.txt). "
                               f"sqlmodel {server_version} maps a plain `datetime` field to timestamptz; the pinned "
                               "version maps it to timestamp (sqlmodel 0.0.45 changed it), so with the project's own "
                               "version this side would say timestamp.")
    assert "Caveat: " in data["report"]


async def test_the_specs_sqlmodel_code_is_read_with_the_projects_meaning_too(tmp_path: Path,
                                                                            old_sqlmodel_venv: Path) -> None:
    # Issue 29: a spec whose SQLModel code equals the models reports no drift under the project's 0.0.14,
    # where a plain datetime is timestamp on both sides (not timestamptz for the spec's code only).
    project = make_project(tmp_path, "timestamptz", pins=f"sqlmodel=={OLD_SQLMODEL}\n")
    (project / "specs" / "database" / "schema.md").write_text(
        f"# Database schema\n\n## Events\n\n```python\n{MODELS}```\n")
    (project / ".venv").symlink_to(old_sqlmodel_venv, target_is_directory=True)
    data = await diff(project)
    assert data["sides"][1]["versions"]["sqlmodel"] == OLD_SQLMODEL
    assert data["drifts"] == [] and data["clean"], data["drifts"]
