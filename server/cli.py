"""The `schema-architect` command: serve the MCP server, or call one tool from a shell or CI.

Exit codes: 0 success, 1 the tool reported an error (message on stderr), 2 a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

#: Drift severities, worst first (tools/drift/); kept here so `--help` needs no heavy import.
SEVERITIES = ("breaking", "data-loss-risk", "degraded", "cosmetic", "info")


class UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="schema-architect",
        description="A database architect's tools for SQLModel + PostgreSQL (Neon), over MCP or here.",
    )
    parser.add_argument("--project", type=Path, default=None,
                        help="project root (default: the current folder)")
    parser.add_argument("--spec", default=None, help="spec path relative to the project root "
                        "(default: specs/database/schema.md)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the MCP server (stdio by default, as Claude Code launches it)")
    serve.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP only: address to bind (default loopback; "
                       "anything else needs SCHEMA_ARCHITECT_ALLOWED_HOSTS and SCHEMA_ARCHITECT_HTTP_TOKEN)")
    serve.add_argument("--port", type=int, default=8765, help="HTTP only: port (endpoint /mcp)")

    call = sub.add_parser("call", help="run one tool in-process as MCP would; print its result as JSON")
    call.add_argument("tool", help="tool name, e.g. read_schema_spec")
    group = call.add_mutually_exclusive_group()
    group.add_argument("--args", dest="args_json", default=None, help="tool arguments as a JSON object")
    group.add_argument("--args-file", type=Path, default=None, help="a file holding the JSON arguments")
    check = sub.add_parser("check", help="CI: drift between spec, models (and database); exit 1 on drift")
    check.add_argument("--models", default=None, help="the SQLModel models: a file, folder or module")
    check.add_argument("--database", action="store_true", help="also compare the live database")
    check.add_argument("--tables", default=None, help="comma-separated tables to compare (default: all)")
    check.add_argument("--include-managed", action="store_true",
                       help="also list the differences on Better Auth's tables that ours do not depend on (info)")
    check.add_argument("--fail-on", choices=SEVERITIES, default="degraded",
                       help="exit 1 when drift this severe or worse exists (default: degraded)")
    check.add_argument("--format", choices=["text", "json"], default="text")

    init = sub.add_parser("init", help="set up a project: .mcp.json and the Claude Code subagents")
    init.add_argument("--force", action="store_true", help="overwrite files you changed")
    init.add_argument("--as", dest="prefix", default=None, metavar="PREFIX",
                      help="install our subagents as PREFIX-<name> (when yours already use our names)")

    seed = sub.add_parser("seed", help="fill the embedded database with synthetic rows that follow the spec")
    seed.add_argument("--users", type=int, default=20, help="synthetic users (default 20)")
    seed.add_argument("--rows-per-user", type=int, default=20,
                      help="average rows per user in each user table (default 20; a tenth of the users get 5x)")
    seed.add_argument("--seed", type=int, default=1, help="another seed gives other, again deterministic, rows")

    role = sub.add_parser("scoped-role", help="print the DDL of a read-only role for run_scoped_query")
    role.add_argument("--role", default="schema_architect_reader", help="the role's name")
    role.add_argument("--rls", action="store_true",
                      help="also RLS policies keyed on the caller setting, for the spec's user tables")
    return parser


def _settings(ns: argparse.Namespace):
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from .db import redact_url
    from .settings import Settings

    if ns.project is not None and not ns.project.is_dir():
        raise UsageError(f"--project {ns.project} is not a folder; pass your project's root folder")
    try:
        return Settings.load(ns.project, spec_path=ns.spec)
    except (ValidationError, SettingsError) as exc:
        raise UsageError(f"invalid setting: {redact_url(str(exc))}") from None


def _tool_arguments(ns: argparse.Namespace) -> dict:
    if ns.args_file is not None:
        try:
            text = ns.args_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read --args-file {ns.args_file}: {exc.strerror}") from None
    else:
        text = ns.args_json or "{}"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"tool arguments are not valid JSON ({exc.msg} at line {exc.lineno} column "
                         f"{exc.colno}); pass an object such as '{{\"tables\": [\"tasks\"]}}'") from None
    if not isinstance(value, dict):
        raise UsageError("tool arguments must be a JSON object, e.g. '{\"tables\": [\"tasks\"]}'")
    return value


async def call_tool(settings, name: str, arguments: dict) -> tuple[bool, dict | None, str]:
    """Call a tool through an in-memory MCP client: (ok, structured result, error text)."""
    from mcp import Client

    from .app import create_server

    server = create_server(settings)
    async with Client(server) as client:
        names = [t.name for t in (await client.list_tools()).tools]
        result = await client.call_tool(name, arguments) if name in names else None
    if result is None:
        raise UsageError(f"unknown tool {name!r}; the tools are: {', '.join(names)}")
    text = " ".join(getattr(c, "text", "") for c in result.content)
    return (not result.is_error, result.structured_content, text)


def run(argv: list[str] | None, out: TextIO, err: TextIO) -> int:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    parser = build_parser()
    try:
        ns = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage message
        return int(exc.code or 0) and 2
    try:
        if ns.command == "serve":
            return _serve(ns, err)
        if ns.command == "call":
            import anyio

            ok, structured, text = anyio.run(call_tool, _settings(ns), ns.tool, _tool_arguments(ns))
            if not ok:
                err.write(text.removeprefix(f"Error executing tool {ns.tool}: ") + "\n")
                return 1
            out.write(json.dumps(structured, indent=2, ensure_ascii=False) + "\n")
            return 0
        if ns.command == "check":
            return _check(ns, out, err)
        if ns.command == "init":
            return _init(ns, out, err)
        if ns.command == "scoped-role":
            return _scoped_role(ns, out)
        if ns.command == "seed":
            return _seed(ns, out, err)
    except UsageError as exc:
        err.write(f"schema-architect: {exc}\n")
        return 2
    return 2


def _check(ns: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import anyio

    arguments = {"models": ns.models, "include_database": ns.database, "include_managed": ns.include_managed,
                 "tables": [t.strip() for t in ns.tables.split(",") if t.strip()] if ns.tables else None,
                 "detail": "full"}  # the report too: people read it
    settings = _settings(ns).model_copy(update={"page_bytes": 0})  # CI judges every drift, not one page
    ok, result, text = anyio.run(call_tool, settings, "diff_models_vs_spec",
                                 {k: v for k, v in arguments.items() if v is not None})
    if not ok:
        err.write(text.removeprefix("Error executing tool diff_models_vs_spec: ") + "\n")
        return 1
    assert result is not None  # a tool's success carries its structured result
    threshold = SEVERITIES.index(ns.fail_on)
    failing = [d for d in result["drifts"] if SEVERITIES.index(d["severity"]) <= threshold]
    role = anyio.run(_role_report, settings) if ns.database else None
    if ns.format == "json":
        if role is not None:
            result["role"] = role.model_dump()
        out.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    else:
        out.write(result["report"] + "\n")
        for finding in result.get("findings", []):
            out.write(f"note: {finding['message']}\n")
        for line in role.lines() if role is not None else []:
            out.write(f"note: {line}\n")
        if failing:
            out.write(f"{len(failing)} drift(s) at or above {ns.fail_on}.\n")
        if result.get("verdict") == "UNKNOWN":
            out.write("UNKNOWN: a side could not be read (see the notes); nothing can be said about it.\n")
    # one verdict: IN_SYNC exits 0; DRIFTED (at or above --fail-on) and UNKNOWN (a side unread) exit 1
    return 1 if failing or result.get("verdict") == "UNKNOWN" else 0


async def _role_report(settings):
    """What the role run_scoped_query would run as can do (docs: tools/database/role.py)."""
    from ..tools.database.role import read_role_report
    from .app import open_database

    db = open_database(settings)
    try:
        async with db.connection() as conn:
            return await read_role_report(conn, role=settings.scoped_role, owner_column=settings.owner_column)
    finally:
        await db.close()


def _init(ns: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ..tools.project.init import MCP_CONFIG, InitError, init_project, portable_command

    project = (ns.project or Path.cwd()).resolve()
    command, why = portable_command()
    try:
        report = init_project(project, command=command, force=ns.force, prefix=ns.prefix)
    except InitError as exc:
        err.write(f"schema-architect: {exc}\n")
        return 1
    out.write("\n".join(report.lines()) + "\n")
    if any(f.path == MCP_CONFIG and f.action in ("created", "updated") for f in report.files):
        out.write(f"{MCP_CONFIG} runs: {' '.join(command)} ({why}).\n")
    if any(f.action == "kept" and f.path != MCP_CONFIG for f in report.files):
        out.write("Some subagents of yours have our names and were kept. Rename yours to keep both, or run "
                  "`schema-architect init --as PREFIX` to install ours as PREFIX-<name>.\n")
    return 0


def _seed(ns: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Rebuild the embedded database from the spec and fill it with synthetic rows; say what was made."""
    import anyio
    from pydantic import ValidationError

    from ..tools.project.seed import SeedPlan

    settings = _settings(ns)
    if settings.database_url is not None:
        raise UsageError("seed fills only the embedded database (it empties every table first), and "
                         "DATABASE_URL is set. Unset it to seed the embedded PostgreSQL under .schema-architect/.")
    if not settings.embedded:
        raise UsageError("seed fills the embedded database, and SCHEMA_ARCHITECT_EMBEDDED is false.")
    try:
        plan = SeedPlan(users=ns.users, rows_per_user=ns.rows_per_user, seed=ns.seed)
    except ValidationError as exc:
        raise UsageError(f"invalid seed size: {exc.errors()[0]['loc'][0]} {exc.errors()[0]['msg']}") from None
    state, where = anyio.run(_seed_embedded, settings, plan)
    if state.problem is not None:
        err.write(f"schema-architect: {state.problem.message} Fix: {state.problem.fix}\n")
        return 1
    if state.seeded is None:
        err.write(f"schema-architect: nothing seeded: no readable spec at {settings.spec_path}\n")
        return 1
    report = state.seeded
    out.write(f"Seeded {where} from {settings.spec_path} in {report.seconds:g} s (seed {plan.seed}):\n")
    out.write(f"  {report.users} users, ids {report.heavy_users[0]} … (same pattern, numbered to "
              f"{plan.users})\n" if report.heavy_users else "  no users table\n")
    if report.heavy_users:
        out.write(f"  heavy users ({plan.heavy_rows} rows each per user table): {', '.join(report.heavy_users)}"
                  f"{' …' if plan.heavy_users > len(report.heavy_users) else ''}\n")
        out.write(f"  light users ({plan.light_rows} rows each per user table): {', '.join(report.light_users)}"
                  f"{' …' if report.light_users else ''}\n")
    out.write("  rows per table: " + ", ".join(f"{t} {n}" for t, n in report.rows.items()) + "\n")
    for table, why in report.skipped.items():
        out.write(f"  left empty: {table}: {why}\n")
    out.write("run_scoped_query with user_id set to one of these ids now reads that user's rows.\n")
    return 0


async def _seed_embedded(settings, plan):
    from ..tools.project.scratch import follow_spec
    from .db import Database

    db = Database(None, project=settings.project, embedded=True, connect_timeout_s=settings.connect_timeout_s)
    try:
        async with db.connection() as conn:
            state = await follow_spec(conn, settings.project, settings.spec_path,
                                      owner_column=settings.owner_column, seed=plan, force=True)
        return state, db.describe()
    finally:
        await db.close()


def _scoped_role(ns: argparse.Namespace, out: TextIO) -> int:
    from ..tools.run_scoped_query import scoped_role_ddl

    user_tables = None
    if ns.rls:
        from ..tools.read_schema_spec import read_schema_spec
        from ..tools.spec.lint import find_users_table

        settings = _settings(ns)
        try:
            spec = read_schema_spec(settings.project, settings.spec_path)
        except ValueError as exc:
            raise UsageError(f"--rls reads the user tables from the spec: {exc}") from None
        from ..tools.schema.model import Schema

        schema = Schema(tables=spec.tables)
        users_table, _ = find_users_table(schema, settings.owner_column, None)
        user_tables = [t.name for t in spec.tables if t.column(settings.owner_column) or t.name == users_table]
        out.write(scoped_role_ddl(ns.role, user_tables=user_tables, owner_column=settings.owner_column,
                                  users_table=users_table))
        return 0
    out.write(scoped_role_ddl(ns.role))
    return 0


def _serve(ns: argparse.Namespace, err: TextIO) -> int:
    import gc

    # Start-up creates some 100k long-lived objects (modules, classes, schemas) and no garbage, yet the
    # collector would walk them all, twice over, while they are made: ~0.1 s of a ~1 s start. Collect
    # nothing until the server is built, then freeze what exists so later collections skip it too.
    gc.disable()
    try:
        from .app import create_server

        settings = _settings(ns)
        try:
            server = create_server(settings)
        except ValueError as exc:  # JwtConfigError: the token settings are incomplete or unsafe
            raise UsageError(str(exc)) from None
    finally:
        gc.freeze()
        gc.enable()
    if ns.transport == "stdio":
        import anyio

        from .stdio import serve_stdio

        anyio.run(serve_stdio, server)
        return 0
    from .http import HttpConfigError, check_exposure, serve_http

    token = settings.http_token.get_secret_value() if settings.http_token else None
    if settings.jwt_jwks_url:
        if token:
            raise UsageError("Set SCHEMA_ARCHITECT_HTTP_TOKEN or SCHEMA_ARCHITECT_JWT_JWKS_URL, not both: both "
                             "would read the one Authorization header. With JWTs, every request is verified.")
        token = None
    try:
        check_exposure(ns.host, settings.allowed_hosts, token, verified_tokens=bool(settings.jwt_jwks_url))
    except HttpConfigError as exc:
        raise UsageError(str(exc)) from None
    err.write(f"schema-architect: serving MCP at http://{ns.host}:{ns.port}/mcp\n")
    from .http import HttpLimits

    serve_http(server, host=ns.host, port=ns.port, allowed_hosts=settings.allowed_hosts, token=token,
               limits=HttpLimits.from_settings(settings))
    return 0


def main() -> None:
    sys.exit(run(sys.argv[1:], sys.stdout, sys.stderr))


if __name__ == "__main__":
    main()
