"""The models child: nothing it starts outlives it (detached grandchildren included), and it never sees
the server's secrets. Real processes, real kills."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from mcp import Client

from schema_architect.server.app import create_server
from schema_architect.server.settings import Settings
from schema_architect.tools.models.reader import read_models

from conftest import REPO

TABLE = """
from sqlmodel import Field, SQLModel


class Thing(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
"""

DETACHED = """
import subprocess, sys
from pathlib import Path
helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
Path({pid_file!r}).write_text(str(helper.pid))
"""

DOUBLE_FORK = """
import os, time
from pathlib import Path
first = os.fork()
if first == 0:
    os.setsid()
    if os.fork() == 0:
        Path({pid_file!r}).write_text(str(os.getpid()))
        time.sleep(60)
        os._exit(0)
    os._exit(0)
os.waitpid(first, 0)
while not Path({pid_file!r}).exists():
    time.sleep(0.01)
"""

FOREVER = "\nwhile True:\n    pass\n"


def gone(pid: int, within: float = 2.0) -> bool:
    """The process no longer runs (absent, or a zombie nobody reaped yet)."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return True
        if stat[stat.rfind(")") + 2] == "Z":
            return True
        time.sleep(0.05)
    return False


def project(tmp_path: Path, body: str) -> Path:
    (tmp_path / "models.py").write_text(body + TABLE)
    return tmp_path


@pytest.mark.parametrize("spawn", [DETACHED, DOUBLE_FORK])
@pytest.mark.parametrize("then", ["", FOREVER], ids=["finishes", "times-out"])
def test_detached_descendants_die_with_the_child(tmp_path: Path, spawn: str, then: str) -> None:
    pid_file = tmp_path / "helper.pid"
    result = read_models(project(tmp_path, spawn.format(pid_file=str(pid_file)) + then), timeout=2.0)
    expected = ["models-import-timeout"] if then else []
    assert [f.rule for f in result.findings] == expected, result.findings
    if not then:
        assert [t.name for t in result.schema.tables] == ["thing"]
    helper = int(pid_file.read_text())
    assert gone(helper), f"the detached process {helper} outlived the models child"


def test_the_child_sees_none_of_the_servers_secrets(tmp_path: Path, monkeypatch) -> None:
    seen = tmp_path / "env.json"
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:secret@host/db")
    monkeypatch.setenv("SCHEMA_ARCHITECT_HTTP_TOKEN", "secret-token")
    monkeypatch.setenv("SOME_API_KEY", "secret")
    body = f"import json, os\nopen({str(seen)!r}, 'w').write(json.dumps(dict(os.environ)))\n"
    result = read_models(project(tmp_path, body))
    assert [t.name for t in result.schema.tables] == ["thing"], result.findings
    env = json.loads(seen.read_text())
    assert "secret" not in json.dumps(env)
    assert not {"DATABASE_URL", "SCHEMA_ARCHITECT_HTTP_TOKEN", "SOME_API_KEY"} & set(env)
    assert "PATH" in env


@pytest.mark.anyio
async def test_through_mcp_a_detached_helper_of_the_models_dies(tmp_path: Path, monkeypatch) -> None:
    spec = tmp_path / "specs" / "database" / "schema.md"
    spec.parent.mkdir(parents=True)
    shutil.copy(REPO / "specs" / "database" / "schema.md", spec)
    pid_file, seen = tmp_path / "helper.pid", tmp_path / "env.json"
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:secret@host/db")
    (tmp_path / "backend").mkdir()
    (tmp_path / "backend" / "models.py").write_text(
        DETACHED.format(pid_file=str(pid_file))
        + f"import json, os\nopen({str(seen)!r}, 'w').write(json.dumps(dict(os.environ)))\n"
        + (REPO / "specs" / "database" / "models.py").read_text())
    async with Client(create_server(Settings(project=tmp_path, embedded=False))) as client:
        result = await client.call_tool("diff_models_vs_spec", {})
    assert not result.is_error, result.content
    assert gone(int(pid_file.read_text()))
    assert "DATABASE_URL" not in json.loads(seen.read_text())
