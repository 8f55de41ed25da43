"""propose_table never runs the agent's text: not as Python (generated code is built from literals) and
not as SQL (each expression is parsed as one expression, each statement sent alone, the proof rolled
back). Through MCP, as an agent calls it, against a real PostgreSQL holding data that must survive."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import psycopg
import pytest
from mcp import Client

from schema_architect.server.app import create_server
from schema_architect.server.settings import Settings
from schema_architect.tools.database.ddl import DDLRefused, check_ddl
from schema_architect.tools.database.expressions import ExpressionError, sql_expression
from schema_architect.tools.models.codegen import GeneratedCodeError, sqlmodel_code, verify_generated
from schema_architect.tools.propose_table import proof
from schema_architect.tools.schema.model import Column, Table

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def db(make_database) -> str:
    """users (for the owner FK) and app_settings, whose two rows every test checks are still there."""
    url = make_database("codegen_safety")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id text PRIMARY KEY)")
        conn.execute("CREATE TABLE app_settings (key text PRIMARY KEY, value text)")
        conn.execute("INSERT INTO app_settings VALUES ('a', '1'), ('b', '2')")
    return url


def untouched(url: str) -> None:
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM app_settings").fetchone()[0] == 2
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert tables == {"users", "app_settings"}


def project(tmp_path: Path) -> Path:
    spec = tmp_path / "specs" / "database" / "schema.md"
    spec.parent.mkdir(parents=True)
    spec.write_text("# Database schema\n")
    return tmp_path


async def propose(tmp_path: Path, url: str, arguments: dict):
    settings = Settings(project=project(tmp_path), database_url=url)
    async with Client(create_server(settings)) as client:
        return await client.call_tool("propose_table", {"name": "notes", "detail": "full", **arguments})


def python_breakouts(marker: Path) -> list[str]:
    """Text that would run code if it were pasted into a docstring, a comment or a string literal."""
    run = f"__import__('os').system('touch {marker}')"
    return [
        f'Notes."""\n    {run}\n    """',
        f"Notes.'''\n    {run}\n    '''",
        f'Notes.\\\n"""\n{run}\n#',
        f"Notes. # comment\n{run}\n",
        f'Notes.")\n{run}\nx = ("',
        f"Notes.\r{run}\r",
        "Notes. ends with a backslash \\",
    ]


@pytest.mark.parametrize("shape", range(7))
async def test_purpose_and_description_are_literals_never_code(tmp_path: Path, db: str, shape: int) -> None:
    marker = tmp_path / "MARKER"
    text = python_breakouts(marker)[shape]
    result = await propose(tmp_path, db, {
        "purpose": text,
        "columns": [{"name": "body", "type": "text", "description": text},
                    {"name": "title", "type": "text", "default": f"'{text.replace(chr(39), chr(39) * 2)}'"}],
    })
    assert not result.is_error, result.content
    data = result.structured_content
    assert data["dry_run"]["ok"] is True, data["dry_run"]
    assert not marker.exists(), "the generated code ran the agent's text"
    tree = ast.parse(data["sqlmodel_code"])
    table_class = next(n for n in tree.body if isinstance(n, ast.ClassDef))
    assert ast.get_docstring(table_class, clean=False) == text.strip()  # the text, as a literal
    assert text in [k.value.value for n in ast.walk(tree) if isinstance(n, ast.Call)
                    for k in n.keywords if k.arg == "description"]
    untouched(db)


@pytest.mark.parametrize("name", ['a"); DROP TABLE app_settings; --', "x\nimport os", "a b", "é", "body #"])
async def test_column_names_are_checked_identifiers(tmp_path: Path, db: str, name: str) -> None:
    result = await propose(tmp_path, db, {"purpose": "x", "columns": [{"name": name, "type": "text"}]})
    assert result.is_error and "not a plain PostgreSQL identifier" in result.content[0].text
    untouched(db)


async def test_a_python_keyword_column_gets_a_safe_attribute(tmp_path: Path, db: str) -> None:
    result = await propose(tmp_path, db, {"purpose": "x", "columns": [{"name": "class", "type": "text"},
                                                                       {"name": "global", "type": "int"}]})
    assert not result.is_error, result.content
    data = result.structured_content
    assert data["dry_run"]["ok"] is True, data["dry_run"]
    assert "class_: str" in data["sqlmodel_code"] and "'name': 'class'" in data["sqlmodel_code"]


@pytest.mark.parametrize("default, words", [
    ("'x'); COMMIT; DELETE FROM app_settings; --", "not one SQL expression"),
    ("'x'; COMMIT; DELETE FROM app_settings", "statements"),
    ("1; DROP TABLE app_settings", "statements"),
    ("0; COMMIT", "statements"),
    ("(SELECT count(*) FROM app_settings)", "subquery"),
    ("EXISTS (SELECT 1 FROM app_settings)", "subquery"),
    ("1 FROM app_settings", "more than one expression"),
    ("1, 2", "more than one expression"),
    ("1) , CHECK (false", "not one SQL expression"),
    ("$1", "parameter"),
    ("", "empty"),
])
async def test_sql_in_a_default_is_one_expression_or_refused(tmp_path: Path, db: str, default: str,
                                                             words: str) -> None:
    result = await propose(tmp_path, db, {"purpose": "x",
                                          "columns": [{"name": "title", "type": "text", "default": default}]})
    assert result.is_error, result.structured_content
    message = result.content[0].text
    assert words in message and "default of title" in message and "e.g." in message  # what, and what to pass
    untouched(db)


async def test_a_comment_in_a_default_does_not_survive(tmp_path: Path, db: str) -> None:
    result = await propose(tmp_path, db, {"purpose": "x", "columns": [
        {"name": "title", "type": "text", "default": "'t' -- ,\n/* x */"}]})
    assert not result.is_error, result.content
    data = result.structured_content
    assert data["dry_run"]["ok"] is True, data["dry_run"]
    assert "DEFAULT 't'," in data["ddl"][0] and "--" not in data["ddl"][0]
    assert "text(\"'t'\")" in data["sqlmodel_code"]
    untouched(db)


async def test_a_side_effecting_default_is_never_evaluated(tmp_path: Path, db: str) -> None:
    started = time.monotonic()
    result = await propose(tmp_path, db, {"purpose": "x", "columns": [
        {"name": "waited", "type": "text", "default": "pg_sleep(5)::text"}]})
    assert not result.is_error, result.content
    assert time.monotonic() - started < 5  # creating a table never evaluates a default
    untouched(db)


async def test_allowed_values_are_quoted_literals(tmp_path: Path, db: str) -> None:
    evil = "a'); DELETE FROM app_settings; --"
    result = await propose(tmp_path, db, {"purpose": "x", "columns": [
        {"name": "state", "type": "str", "allowed_values": [evil, "b\\'"]}]})
    assert not result.is_error, result.content
    assert result.structured_content["dry_run"]["ok"] is True, result.structured_content["dry_run"]
    untouched(db)


# --- the proof can never commit --------------------------------------------------------------------


async def test_transaction_control_is_never_sent(tmp_path: Path, db: str, monkeypatch) -> None:
    real = proof.table_ddl
    monkeypatch.setattr(proof, "table_ddl", lambda t: real(t) + ["COMMIT", "DELETE FROM app_settings"])
    result = await propose(tmp_path, db, {"purpose": "x"})
    dry = result.structured_content["dry_run"]
    assert dry["ok"] is False and "Refused to send 'COMMIT'" in dry["error"]
    assert not dry.get("statements")  # all checked before any was sent
    untouched(db)


async def test_several_statements_in_one_string_are_refused_by_the_server(tmp_path: Path, db: str,
                                                                         monkeypatch) -> None:
    """Even past our check, a string with a second statement cannot run: the extended protocol refuses it."""
    real = proof.table_ddl
    monkeypatch.setattr(proof, "check_ddl", lambda s: s, raising=False)
    monkeypatch.setattr("schema_architect.tools.database.ddl.check_ddl", lambda s: s)
    monkeypatch.setattr(proof, "table_ddl", lambda t: [real(t)[0].rstrip(";") + "; COMMIT; DELETE FROM app_settings;"])
    result = await propose(tmp_path, db, {"purpose": "x"})
    dry = result.structured_content["dry_run"]
    assert dry["ok"] is False and "multiple commands" in dry["error"], dry
    untouched(db)


def test_check_ddl_accepts_only_one_create() -> None:
    assert check_ddl("CREATE TABLE t (a int);")
    for bad in ("COMMIT", "END", "ROLLBACK", "SAVEPOINT s", "RELEASE SAVEPOINT s", "DELETE FROM t",
                "CREATE TABLE t (a int); COMMIT", "SET ROLE postgres", "BEGIN; CREATE TABLE t (a int)"):
        with pytest.raises(DDLRefused):
            check_ddl(bad)


async def test_the_dry_run_refuses_a_connection_inside_a_transaction(db: str) -> None:
    table = Table(name="notes", columns=[Column(name="id", type="integer", primary_key=True)], primary_key=["id"])
    async with await psycopg.AsyncConnection.connect(db) as conn:  # not autocommit
        await conn.execute("SELECT 1")
        result = await proof.dry_run(conn, table, _empty(), database="db")
    assert result.ran is False and "inside a transaction" in result.error
    untouched(db)


def _empty():
    from schema_architect.tools.schema.model import Schema

    return Schema()


# --- the generated module is checked ---------------------------------------------------------------


def test_verify_generated_refuses_anything_but_declarations() -> None:
    table = Table(name="notes", description='x"""\nimport os', columns=[
        Column(name="id", type="integer", primary_key=True, identity="serial"),
        Column(name="2 weird name", type="text", default="'a'", description="\n#"),
    ], primary_key=["id"])
    code = sqlmodel_code(table)  # passes its own check
    ast.parse(code)
    assert "c_2_weird_name" in code and "'name': '2 weird name'" in code
    for extra in ("import os\nos.system('id')\n", "class X(SQLModel):\n    x = __import__('os')\n",
                  "class X(SQLModel):\n    def f(self): pass\n", "print('hi')\n",
                  "class X(SQLModel):\n    y: int = Field(default=(lambda: 1)())\n",
                  # a comprehension of allowed names: refused as one (its node has no line number)
                  "class X(SQLModel):\n    y: int = [Field for Field in Field]\n"):
        with pytest.raises(GeneratedCodeError):
            verify_generated(code + "\n" + extra)


@pytest.mark.parametrize("text", ["1); DROP TABLE x; --", "now(); COMMIT", "(SELECT 1)", "a AS b", "1 UNION SELECT 2"])
def test_sql_expression_refuses(text: str) -> None:
    with pytest.raises(ExpressionError):
        sql_expression(text, "default")
