"""The CLI: `schema-architect call` exit codes and output, in-process and as a real command."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from schema_architect.server.cli import run

from conftest import REPO

EXE = str(Path(sys.executable).parent / "schema-architect")


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def test_call_prints_the_structured_result_as_json() -> None:
    code, out, err = cli("--project", str(REPO), "call", "read_schema_spec", "--args", '{"tables": ["tasks"]}')
    assert code == 0, err
    data = json.loads(out)
    assert [t["name"] for t in data["tables"]] == ["tasks"]


def test_args_file(tmp_path: Path) -> None:
    args = tmp_path / "args.json"
    args.write_text('{"tables": ["messages"]}')
    code, out, _ = cli("--project", str(REPO), "call", "read_schema_spec", "--args-file", str(args))
    assert code == 0
    assert [t["name"] for t in json.loads(out)["tables"]] == ["messages"]


def test_tool_error_exits_1_with_the_message_on_stderr(tmp_path: Path) -> None:
    code, out, err = cli("--project", str(tmp_path), "call", "read_schema_spec")
    assert code == 1
    assert out == ""
    assert err.startswith("[spec-unreadable] No spec file at specs/database/schema.md")


def test_usage_errors_exit_2() -> None:
    code, _, err = cli("--project", str(REPO), "call", "read_schema_spec", "--args", "{not json")
    assert code == 2 and "not valid JSON" in err
    code, _, err = cli("--project", str(REPO), "call", "no_such_tool")
    assert code == 2 and "unknown tool 'no_such_tool'" in err and "read_schema_spec" in err
    code, _, err = cli("--project", str(REPO), "call", "read_schema_spec", "--args", "[1]")
    assert code == 2 and "JSON object" in err
    code, _, err = cli("--project", "/no/such/folder", "call", "read_schema_spec")
    assert code == 2 and "not a folder" in err
    code, _, _ = cli("frobnicate")
    assert code == 2


def test_the_installed_command(tmp_path: Path) -> None:
    proc = subprocess.run([EXE, "--project", str(REPO), "call", "read_schema_spec", "--args", "{}"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["path"] == "specs/database/schema.md"
    proc = subprocess.run([EXE, "--project", str(tmp_path), "call", "read_schema_spec"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "No spec file" in proc.stderr and "Traceback" not in proc.stderr
