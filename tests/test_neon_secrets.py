"""The password (and any token) in DATABASE_URL never appears in anything the server emits.

Everything is captured: the process's stdout and stderr (file descriptors), every log record at DEBUG
from every logger (with tracebacks), MCP log and progress notifications, tool results and tool errors;
and, for the `schema-architect` command in a subprocess, its whole stdout and stderr. Runs: database
down, wrong password, database up (password in the URL's user info, then as ?password=), each calling
every tool that touches the database plus read_schema_spec. The password has URL-special characters,
so its percent-encoded form is looked for too.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from mcp import Client

from schema_architect.server.app import create_server
from schema_architect.server.settings import Settings

from pgservers import PgServer, free_port, make_project

pytestmark = pytest.mark.anyio

SECRET = "npg_S3cr#t/p@ss%w0rd"
ENCODED = quote(SECRET, safe="")
FORMS = {SECRET, ENCODED, quote(SECRET), "S3cr#t/p@ss", "w0rd"}
CALLS = [
    ("read_schema_spec", {}),
    ("run_scoped_query", {"sql": "SELECT title FROM tasks", "user_id": "u_alice"}),
    ("run_scoped_query", {"sql": "SELECT nope FROM tasks", "user_id": "u_alice"}),
    ("diff_models_vs_spec", {"include_database": True}),
    ("propose_table", {"name": "notes", "purpose": "Notes a user keeps on a task.",
                       "columns": [{"name": "body", "type": "text", "required": True}],
                       "references": ["tasks"]}),
]


@pytest.fixture(scope="module")
def pg(neon_pg15):
    with psycopg.connect(neon_pg15.admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE app_owner LOGIN PASSWORD {psycopg.sql.quote(SECRET)}")
    with psycopg.connect(neon_pg15.url("neondb"), autocommit=True) as conn:
        conn.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO app_owner")
        conn.execute("GRANT ALL ON SCHEMA public TO app_owner")
    return neon_pg15


def urls(pg: PgServer) -> dict[str, str]:
    down = free_port()
    return {
        "down": f"postgresql://app_owner:{ENCODED}@127.0.0.1:{down}/neondb?sslmode=require"
                f"&sslpassword={ENCODED}",
        "wrong-user-password": f"postgresql://postgres:{ENCODED}@127.0.0.1:{pg.port}/neondb?sslmode=require",
        "up": f"postgresql://app_owner:{ENCODED}@127.0.0.1:{pg.port}/neondb?sslmode=require"
              "&channel_binding=require",
        "up-query-password": f"postgresql://app_owner@127.0.0.1:{pg.port}/neondb?password={ENCODED}"
                             "&sslmode=require",
    }


class Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))  # includes the traceback text when there is one


def assert_no_secret(text: str, where: str) -> None:
    for form in FORMS:
        assert form not in text, f"{form!r} leaked in {where}: ...{text[max(0, text.find(form) - 200):][:400]}"


@pytest.mark.parametrize("case", ["down", "wrong-user-password", "up", "up-query-password"])
async def test_nothing_emitted_in_process_holds_the_password(pg: PgServer, case: str, tmp_path: Path,
                                                             capfd: pytest.CaptureFixture) -> None:
    settings = Settings(project=make_project(tmp_path), database_url=urls(pg)[case],
                        connect_timeout_s=0.5 if case == "down" else 5, models_timeout_s=60)
    handler, root = Everything(), logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    emitted: list[str] = []

    async def on_log(params) -> None:
        emitted.append(repr(params))

    async def on_progress(value, total, message) -> None:
        emitted.append(f"progress {value}/{total} {message}")

    outcomes = []
    try:
        async with Client(create_server(settings), logging_callback=on_log) as client:
            for name, arguments in CALLS:
                result = await client.call_tool(name, arguments, progress_callback=on_progress)
                outcomes.append((name, result.is_error))
                emitted.append(json.dumps(result.structured_content, default=str))
                emitted.extend(getattr(c, "text", "") for c in result.content)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    out, err = capfd.readouterr()
    for where, text in (("stdout", out), ("stderr", err), ("logs", "\n".join(handler.lines)),
                        ("results, errors, notifications", "\n".join(emitted))):
        assert_no_secret(text, where)

    errors = {name for name, is_error in outcomes if is_error}
    if case.startswith("up"):  # the run really reached the database: only the bad query failed
        assert outcomes[1] == ("run_scoped_query", False) and errors == {"run_scoped_query"}, emitted
        assert "nope" in "\n".join(emitted)
    else:
        # the diff compares the spec and the models, and says the database was not compared (issue 33)
        assert "run_scoped_query" in errors and not {"read_schema_spec", "diff_models_vs_spec"} & errors
        joined = "\n".join(emitted)
        assert '"rule": "database-unavailable"' in joined
        assert "Cannot connect to 127.0.0.1:" in joined
        assert ("Connection refused" if case == "down" else "password authentication failed") in joined


@pytest.mark.parametrize("case", ["down", "up"])
def test_the_command_emits_no_password(pg: PgServer, case: str, tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = {**os.environ, "DATABASE_URL": urls(pg)[case], "SCHEMA_ARCHITECT_CONNECT_TIMEOUT_S": "1.5"}
    for name, arguments in CALLS[1:3]:
        proc = subprocess.run(
            [sys.executable, "-m", "schema_architect.server.cli", "--project", str(project), "call", name,
             "--args", json.dumps(arguments)],
            env=env, capture_output=True, text=True, timeout=60)
        assert_no_secret(proc.stdout, f"{name} stdout")
        assert_no_secret(proc.stderr, f"{name} stderr")
        if case == "down":
            assert proc.returncode == 1 and "Cannot connect to 127.0.0.1:" in proc.stderr, proc.stderr
        elif "nope" in arguments["sql"]:
            assert proc.returncode == 1 and "nope" in proc.stderr, proc.stderr
        else:
            assert proc.returncode == 0 and json.loads(proc.stdout)["row_count"] == 3, proc.stderr
