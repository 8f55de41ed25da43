"""Paths stay in the project: a models path, a spec path or a file init writes that resolves outside the
project root (../, absolute, a symlink pointing out) is refused before anything is read, run or written."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from mcp import Client

from schema_architect.server.app import create_server
from schema_architect.server.cli import run
from schema_architect.server.settings import Settings
from schema_architect.tools.models.reader import find_models, read_models
from schema_architect.tools.project.init import InitError, init_project
from schema_architect.tools.schema.paths import ProjectPathError, inside_project

from conftest import REPO

pytestmark = pytest.mark.anyio


def evil_models(folder: Path, marker: Path) -> Path:
    """A models file that leaves a marker when it is imported (run)."""
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / "evil.py"
    file.write_text(f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
                    "from sqlmodel import SQLModel, Field\n\n\nclass Evil(SQLModel, table=True):\n"
                    "    id: int | None = Field(default=None, primary_key=True)\n")
    return file


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(project, the outside evil.py, its marker)."""
    project = tmp_path / "project"
    spec = project / "specs" / "database" / "schema.md"
    spec.parent.mkdir(parents=True)
    shutil.copy(REPO / "specs" / "database" / "schema.md", spec)
    marker = tmp_path / "MARKER"
    return project, evil_models(tmp_path / "outside", marker), marker


def models_arguments(project: Path, evil: Path) -> list[str]:
    (project / "backend").mkdir(exist_ok=True)
    (project / "backend" / "link.py").symlink_to(evil)
    (project / "linked").symlink_to(evil.parent, target_is_directory=True)
    return ["../outside/evil.py", "../outside", str(evil), str(evil.parent), "backend/link.py", "linked/evil.py",
            "linked", "backend/../../outside/evil.py"]


async def test_diff_refuses_models_outside_the_project(layout) -> None:
    project, evil, marker = layout
    async with Client(create_server(Settings(project=project, embedded=False))) as client:
        for models in models_arguments(project, evil):
            result = await client.call_tool("diff_models_vs_spec", {"models": models})
            assert result.is_error, (models, result.structured_content)
            assert "outside the project root" in result.content[0].text, result.content[0].text
            assert not marker.exists(), f"{models} was imported"


async def test_diff_refuses_auto_discovered_models_linked_from_outside(layout) -> None:
    project, evil, marker = layout
    (project / "models.py").symlink_to(evil)
    async with Client(create_server(Settings(project=project, embedded=False))) as client:
        result = await client.call_tool("diff_models_vs_spec", {})
    assert result.is_error and "outside the project root" in result.content[0].text
    assert not marker.exists()


async def test_diff_refuses_a_spec_outside_the_project(layout, tmp_path: Path) -> None:
    project, _, _ = layout
    shutil.copy(project / "specs" / "database" / "schema.md", tmp_path / "schema.md")
    async with Client(create_server(Settings(project=project, embedded=False))) as client:
        for spec in ("../schema.md", str(tmp_path / "schema.md")):
            result = await client.call_tool("diff_models_vs_spec", {"spec": spec})
            assert result.is_error and "outside the project root" in result.content[0].text
            result = await client.call_tool("read_schema_spec", {"path": spec})
            assert result.is_error and "outside the project root" in result.content[0].text


def test_cli_check_refuses_models_outside_the_project(layout) -> None:
    project, evil, marker = layout
    out, err = io.StringIO(), io.StringIO()
    code = run(["--project", str(project), "check", "--models", "../outside/evil.py"], out, err)
    assert code != 0 and "outside the project root" in err.getvalue()
    assert not marker.exists()


def test_read_models_refuses_before_running_anything(layout) -> None:
    project, evil, marker = layout
    for models in models_arguments(project, evil):
        with pytest.raises(ProjectPathError, match="outside the project root"):
            read_models(project, models)
    assert not marker.exists()
    inside = evil_models(project / "backend" / "app", project / "INSIDE")
    assert find_models(project, "backend/app/evil.py").files == ["backend/app/evil.py"]
    assert inside.is_file()


def test_inside_project(tmp_path: Path) -> None:
    (tmp_path / "p" / "a").mkdir(parents=True)
    (tmp_path / "p" / "out").symlink_to(tmp_path)
    root = tmp_path / "p"
    assert inside_project(root, "a/b.py", "x") == (root / "a" / "b.py").resolve()
    assert inside_project(root, "a/../a/new/file.md", "x") == (root / "a" / "new" / "file.md").resolve()
    for bad in ("../x", "/etc/passwd", "out/x", "a/../../x", "a\x00b", ""):
        with pytest.raises(ProjectPathError):
            inside_project(root, bad, "x")


COMMAND = ["/opt/schema-architect/bin/schema-architect", "serve"]


def test_init_refuses_a_symlinked_agents_folder(tmp_path: Path) -> None:
    project, outside = tmp_path / "project", tmp_path / "outside"
    (project / ".claude").mkdir(parents=True)
    outside.mkdir()
    (project / ".claude" / "agents").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InitError, match="outside the project root"):
        init_project(project, command=COMMAND)
    assert list(outside.iterdir()) == []
    assert not (project / ".mcp.json").exists()  # checked before anything was written


def test_init_refuses_a_symlinked_claude_folder_and_mcp_json(tmp_path: Path) -> None:
    project, outside = tmp_path / "project", tmp_path / "outside"
    project.mkdir()
    outside.mkdir()
    (project / ".claude").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InitError, match="outside the project root"):
        init_project(project, command=COMMAND)
    assert list(outside.iterdir()) == []

    (project / ".claude").unlink()
    (outside / "config.json").write_text("{}")
    (project / ".mcp.json").symlink_to(outside / "config.json")
    with pytest.raises(InitError, match="outside the project root"):
        init_project(project, command=COMMAND)
    assert (outside / "config.json").read_text() == "{}"
    assert not (project / ".claude").exists()
