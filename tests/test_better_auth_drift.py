"""Issue 26, drift half: Better Auth's tables are never altered by our fixes, and are compared where our
tables depend on them.

Better Auth's real table shapes in a real PostgreSQL (research/better_auth.md): the singular, quoted
``"user"`` its CLI makes with camelCase columns; the same tables in snake_case (Drizzle); ``usePlural``
(users, sessions...); a ``users`` modelName. Each is run through the ``diff_models_vs_spec`` MCP tool
with the common stub model (``class User`` with its id only) and without it, with and without
``include_managed``, and every fix of every drift is walked: none may touch a Better Auth table.
Then what our tables depend on is still compared: the key's type, the columns the spec or the models
declare. And ALTER COLUMN TYPE is never called cosmetic when it rewrites the table, checked by running
the fix on a real table and looking at its relfilenode.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import psycopg
import pytest
from mcp import Client

from schema_architect.server.app import create_server
from schema_architect.server.cli import run
from schema_architect.server.settings import Settings

from test_drift_kinds import check as diff, fix_for, make_project


def offered(drift: dict) -> list[dict]:
    """Every fix of the drift, whether its proof on a copy let it through or withheld it (the proof is
    tests/test_proven_file_fixes.py's)."""
    return drift.get("fixes", []) + drift.get("withheld", [])

pytestmark = pytest.mark.anyio

MODELS = "backend/models.py"


# ---------------------------------------------------------------------------------------------------
# Better Auth's tables as they are made

def _camel(user: str, session: str, account: str, verification: str, ts: str = "timestamptz") -> str:
    """Better Auth's CLI (Kysely): quoted camelCase columns, text ids."""
    u = f'"{user}"'
    return f"""
CREATE TABLE {u} ("id" text NOT NULL PRIMARY KEY, "name" text NOT NULL, "email" text NOT NULL UNIQUE,
  "emailVerified" boolean NOT NULL, "image" text, "createdAt" {ts} DEFAULT CURRENT_TIMESTAMP NOT NULL,
  "updatedAt" {ts} DEFAULT CURRENT_TIMESTAMP NOT NULL);
CREATE TABLE "{session}" ("id" text NOT NULL PRIMARY KEY, "expiresAt" {ts} NOT NULL, "token" text NOT NULL UNIQUE,
  "createdAt" {ts} DEFAULT CURRENT_TIMESTAMP NOT NULL, "updatedAt" {ts} NOT NULL, "ipAddress" text,
  "userAgent" text, "userId" text NOT NULL REFERENCES {u} ("id") ON DELETE CASCADE);
CREATE INDEX "{session}_userId_idx" ON "{session}" ("userId");
CREATE TABLE "{account}" ("id" text NOT NULL PRIMARY KEY, "accountId" text NOT NULL, "providerId" text NOT NULL,
  "userId" text NOT NULL REFERENCES {u} ("id") ON DELETE CASCADE, "accessToken" text, "refreshToken" text,
  "idToken" text, "accessTokenExpiresAt" {ts}, "refreshTokenExpiresAt" {ts}, "scope" text, "password" text,
  "createdAt" {ts} DEFAULT CURRENT_TIMESTAMP NOT NULL, "updatedAt" {ts} NOT NULL);
CREATE TABLE "{verification}" ("id" text NOT NULL PRIMARY KEY, "identifier" text NOT NULL, "value" text NOT NULL,
  "expiresAt" {ts} NOT NULL, "createdAt" {ts} DEFAULT CURRENT_TIMESTAMP NOT NULL,
  "updatedAt" {ts} DEFAULT CURRENT_TIMESTAMP NOT NULL);
CREATE TABLE "jwks" ("id" text NOT NULL PRIMARY KEY, "publicKey" text NOT NULL, "privateKey" text NOT NULL,
  "createdAt" {ts} NOT NULL, "expiresAt" {ts});
"""


SNAKE = """
CREATE TABLE "user" ("id" text PRIMARY KEY NOT NULL, "name" text NOT NULL, "email" text NOT NULL,
  "email_verified" boolean DEFAULT false NOT NULL, "image" text, "created_at" timestamp DEFAULT now() NOT NULL,
  "updated_at" timestamp DEFAULT now() NOT NULL, CONSTRAINT "user_email_unique" UNIQUE("email"));
CREATE TABLE "session" ("id" text PRIMARY KEY NOT NULL, "expires_at" timestamp NOT NULL, "token" text NOT NULL,
  "created_at" timestamp DEFAULT now() NOT NULL, "updated_at" timestamp NOT NULL, "ip_address" text,
  "user_agent" text, "user_id" text NOT NULL, CONSTRAINT "session_token_unique" UNIQUE("token"));
CREATE TABLE "account" ("id" text PRIMARY KEY NOT NULL, "account_id" text NOT NULL, "provider_id" text NOT NULL,
  "user_id" text NOT NULL, "access_token" text, "refresh_token" text, "id_token" text,
  "access_token_expires_at" timestamp, "refresh_token_expires_at" timestamp, "scope" text, "password" text,
  "created_at" timestamp NOT NULL, "updated_at" timestamp NOT NULL);
CREATE TABLE "verification" ("id" text PRIMARY KEY NOT NULL, "identifier" text NOT NULL, "value" text NOT NULL,
  "expires_at" timestamp NOT NULL, "created_at" timestamp DEFAULT now(), "updated_at" timestamp DEFAULT now());
ALTER TABLE "session" ADD CONSTRAINT "session_user_id_user_id_fk" FOREIGN KEY ("user_id") REFERENCES "user"("id")
  ON DELETE cascade;
ALTER TABLE "account" ADD CONSTRAINT "account_user_id_user_id_fk" FOREIGN KEY ("user_id") REFERENCES "user"("id")
  ON DELETE cascade;
"""

#: shape -> (the user table's name, Better Auth's tables, their DDL)
SHAPES: dict[str, tuple[str, list[str], str]] = {
    "cli-camelCase": ("user", ["user", "session", "account", "verification", "jwks"],
                      _camel("user", "session", "account", "verification")),
    "drizzle-snake_case": ("user", ["user", "session", "account", "verification"], SNAKE),
    "usePlural": ("users", ["users", "sessions", "accounts", "verifications", "jwks"],
                  _camel("users", "sessions", "accounts", "verifications", ts="timestamp")),
    "modelName-users": ("users", ["users", "session", "account", "verification", "jwks"],
                        _camel("users", "session", "account", "verification")),
}


def tasks_sql(user: str, key: str = "text") -> str:
    return (f'CREATE TABLE tasks (id serial PRIMARY KEY, user_id {key} NOT NULL REFERENCES "{user}" (id) '
            "ON DELETE CASCADE, title varchar(200) NOT NULL)")


def spec_text(user: str) -> str:
    """The spec as projects write it: Better Auth named in prose, the user table only referenced."""
    return f"""# Database schema

Sign-in is handled by Better Auth (JWT plugin); our tables point at its user table.

- `{user}`: Managed by Better Auth, only referenced.

## Table: tasks

| Column | Type | Constraints |
|---|---|---|
| id | serial | PRIMARY KEY |
| user_id | text | NOT NULL, FK → {user}.id ON DELETE CASCADE |
| title | varchar(200) | NOT NULL |
"""


STUB = '''

class User(SQLModel, table=True):
    __tablename__ = "{user}"

    id: str = Field(primary_key=True)
'''


def models_text(user: str, stub: bool, key_type: str = "str") -> str:
    head = "import uuid\n\nfrom sqlalchemy import Text\nfrom sqlmodel import Field, SQLModel\n"
    task = f'''

class Task(SQLModel, table=True):
    __tablename__ = "tasks"

    id: int | None = Field(default=None, primary_key=True)
    user_id: {key_type} = Field({"sa_type=Text, " if key_type == "str" else ""}foreign_key="{user}.id", \
ondelete="CASCADE")
    title: str = Field(max_length=200)
'''
    return head + (STUB.format(user=user) if stub else "") + task


# ---------------------------------------------------------------------------------------------------
# No fix ever touches a Better Auth table

_TARGET = re.compile(r'\b(?:ALTER\s+TABLE(?:\s+ONLY)?(?:\s+IF\s+EXISTS)?|DROP\s+TABLE(?:\s+IF\s+EXISTS)?|'
                     r'CREATE\s+TABLE(?:\s+IF\s+NOT\s+EXISTS)?|TRUNCATE(?:\s+TABLE)?|COMMENT\s+ON\s+(?:TABLE|COLUMN)|'
                     r'CREATE\s+(?:UNIQUE\s+)?INDEX(?:\s+CONCURRENTLY)?(?:\s+IF\s+NOT\s+EXISTS)?\s+\S+\s+ON|'
                     r'CREATE\s+TRIGGER\s+\S+\s+(?:BEFORE|AFTER)\s+\w+\s+ON)\s+("[^"]+"|[\w.]+)', re.I)
_ALEMBIC = re.compile(r"op\.\w+\(\s*'([^']+)'|op\.\w+\(\s*\"([^\"]+)\"|table_name=['\"]([^'\"]+)")


def tables_touched(fix: dict) -> set[str]:
    """The tables a fix's SQL or Alembic operation changes (comments ignored)."""
    sql = "\n".join(line for line in (fix.get("migration_sql") or "").splitlines()
                    if not line.lstrip().startswith("--"))
    found = {m.group(1).strip('"').rpartition(".")[2] for m in _TARGET.finditer(sql)}
    for m in _ALEMBIC.finditer(fix.get("alembic_op") or ""):
        found.add(next(g for g in m.groups() if g))
    return found


def assert_no_ddl_on(data: dict, managed: set[str]) -> None:
    for drift in data["drifts"]:
        for fix in drift.get("fixes", []):
            touched = tables_touched(fix) & managed
            assert not touched, f"{drift['object']} ({drift['kind']}) offers DDL on {touched}: {fix}"
            if drift["object"].split(".")[0] in managed:
                assert fix["side"] in ("spec", "models") and not fix.get("migration_sql") \
                    and not fix.get("alembic_op"), (drift["object"], fix)


def test_the_ddl_walker_sees_a_managed_table() -> None:
    # the walker itself: it must catch what the old result offered on users
    assert tables_touched({"migration_sql": 'ALTER TABLE users DROP COLUMN "emailVerified";'}) == {"users"}
    assert tables_touched({"migration_sql": 'ALTER TABLE "user" ALTER COLUMN name TYPE varchar;'}) == {"user"}
    assert tables_touched({"migration_sql": "CREATE INDEX CONCURRENTLY ix ON session (token);"}) == {"session"}
    assert tables_touched({"alembic_op": "op.drop_column('users', 'image')"}) == {"users"}
    assert tables_touched({"migration_sql": "-- ALTER TABLE users\nALTER TABLE tasks ADD CONSTRAINT c "
                                            'FOREIGN KEY (user_id) REFERENCES "user" (id);'}) == {"tasks"}


@pytest.mark.parametrize("stub", [True, False], ids=["stub", "no-stub"])
@pytest.mark.parametrize("shape", list(SHAPES))
async def test_no_fix_touches_better_auths_tables(shape: str, stub: bool, tmp_path: Path, make_database) -> None:
    user, tables, ddl = SHAPES[shape]
    url = make_database(f"ba_{shape}", ddl + ";\n" + tasks_sql(user))
    project = make_project(tmp_path, models_text(user, stub), spec_text(user))
    managed = set(tables)

    data = await diff(project, url, detail="full")
    assert set(data["managed_elsewhere"]) == managed, data["better_auth"]
    assert data["drifts"] == [], data["report"]  # nothing real differs; Better Auth's own columns are not ours
    assert data["clean"]
    why = next(v for k, v in data["better_auth"].items() if user in k.split(" / "))
    assert why.startswith("the spec says Better Auth manages it (specs/database/schema.md:"), why
    assert_no_ddl_on(data, managed)

    full = await diff(project, url, detail="full", include_managed=True)
    assert full["clean"] and set(full["managed_elsewhere"]) == managed
    assert full["drifts"], "include_managed lists the differences our tables do not depend on"
    assert {d["severity"] for d in full["drifts"]} == {"info"}, full["report"]
    assert_no_ddl_on(full, managed)


def check_cli(project: Path, *options: str) -> tuple[int, dict, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(["--project", str(project), "check", "--models", MODELS, "--format", "json", *options], out, err)
    return code, (json.loads(out.getvalue()) if out.getvalue().startswith("{") else {}), out.getvalue() + err.getvalue()


def test_the_stub_gives_no_drift_on_users_and_check_passes(tmp_path: Path, make_database, monkeypatch) -> None:
    """The issue's project: the spec says users is managed by Better Auth (and lists the columns it
    relies on), the models carry the stub, the database is Better Auth's CLI schema with usePlural."""
    spec = """# Database schema

## Table: users

> Managed by Better Auth, only referenced.

| Column | Type | Constraints |
|---|---|---|
| id | text | PRIMARY KEY |
| name | text | NOT NULL |
| email | text | NOT NULL, UNIQUE |
| emailVerified | boolean | NOT NULL |
| createdAt | timestamp | NOT NULL |

## Table: tasks

| Column | Type | Constraints |
|---|---|---|
| id | serial | PRIMARY KEY |
| user_id | text | NOT NULL, FK → users.id ON DELETE CASCADE |
| title | varchar(200) | NOT NULL |
"""
    project = make_project(tmp_path, models_text("users", stub=True), spec)
    code, data, text = check_cli(project)
    assert code == 0, text
    assert [d for d in data["drifts"] if d["object"].split(".")[0] == "users"] == [], data["report"]
    assert data["better_auth"]["users"].startswith("the spec says Better Auth manages it (specs/database/schema.md:")
    assert data["clean"]

    url = make_database("ba_check", SHAPES["usePlural"][2] + ";\n" + tasks_sql("users"))
    monkeypatch.setenv("DATABASE_URL", url)
    code, data, text = check_cli(project, "--database")
    assert code == 0 and data["drifts"] == [], text
    assert data["compared"] == ["spec", "models", "database"]
    code, data, text = check_cli(project, "--database", "--include-managed")
    assert code == 0 and {d["severity"] for d in data["drifts"]} == {"info"}, text
    assert_no_ddl_on(data, set(SHAPES["usePlural"][1]))


async def test_a_stub_never_makes_the_table_ours(tmp_path: Path) -> None:
    # Nothing in the spec names Better Auth; the models' users has only its id and tasks.user_id points
    # at it: it is the owner's table, which this stack gets from Better Auth.
    spec = spec_text("users").replace("Sign-in is handled by Better Auth (JWT plugin); our tables point at its "
                                      "user table.\n\n- `users`: Managed by Better Auth, only referenced.\n", "")
    assert "better" not in spec.lower()
    project = make_project(tmp_path, models_text("users", stub=True), spec)
    data = await diff(project)
    assert data["managed_elsewhere"] == ["users"]
    assert data["better_auth"]["users"].startswith("our tables' owner column references users and the models have "
                                                   "only a stub of it")
    assert data["drifts"] == [] and data["clean"], data["drifts"]


# ---------------------------------------------------------------------------------------------------
# What our tables depend on is still compared

async def test_a_changed_key_type_on_users_is_breaking(tmp_path: Path, make_database) -> None:
    # Better Auth with generateId: "uuid"; the spec and the stub say text ids.
    ddl = SHAPES["usePlural"][2].replace('"id" text NOT NULL PRIMARY KEY, "name"',
                                         '"id" uuid NOT NULL PRIMARY KEY, "name"')
    ddl = ddl.replace('"userId" text NOT NULL', '"userId" uuid NOT NULL')
    url = make_database("ba_uuid_key", ddl + ";\n" + tasks_sql("users", key="uuid"))
    spec = spec_text("users").replace("- `users`: Managed by Better Auth, only referenced.\n", """
## Table: users (managed by Better Auth)

| Column | Type | Constraints |
|---|---|---|
| id | text | PRIMARY KEY |
""")
    project = make_project(tmp_path, models_text("users", stub=True), spec)
    for include_managed in (False, True):
        data = await diff(project, url, include_managed=include_managed)
        (drift,) = [d for d in data["drifts"] if d["object"] == "users.id"]
        assert (drift["kind"], drift["severity"]) == ("column-type", "breaking"), drift
        assert drift["sides"]["database"]["value"] == "uuid"
        assert {f["side"] for f in drift["fixes"]} == {"spec", "models"}
        assert "uuid" in fix_for(drift, "models")["model_change"]
        assert "UUID" in fix_for(drift, "spec")["spec_patch"].upper()
        assert_no_ddl_on(data, set(SHAPES["usePlural"][1]))
        assert not data["clean"]


async def test_a_stub_mapping_another_spelling_than_the_database_is_breaking(tmp_path: Path, make_database) -> None:
    # Better Auth's CLI made "user"; the stub (and the FK) say users.
    url = make_database("ba_spelling", SHAPES["cli-camelCase"][2] + ";\n" + tasks_sql("user"))
    project = make_project(tmp_path, models_text("users", stub=True), spec_text("user"))
    for include_managed in (False, True):
        data = await diff(project, url, include_managed=include_managed)
        (drift,) = [d for d in data["drifts"] if d["kind"] == "table-name"]
        assert drift["severity"] == "breaking" and drift["sides"]["database"]["value"] == "user", drift
        assert [f["side"] for f in offered(drift)] == ["models"]  # the spec only names it in prose
        assert '__tablename__ = "user"' in fix_for(drift, "models")["model_change"]
        assert_no_ddl_on(data, set(SHAPES["cli-camelCase"][1]) | {"users"})


SPEC_READS = """# Database schema

## Table: users (managed by Better Auth)

| Column | Type | Constraints |
|---|---|---|
| id | text | PRIMARY KEY |
| email | text | NOT NULL, UNIQUE |
| email_verified | boolean | NOT NULL |

## Table: tasks

| Column | Type | Constraints |
|---|---|---|
| id | serial | PRIMARY KEY |
| user_id | text | NOT NULL, FK → users.id ON DELETE CASCADE |
| title | varchar(200) | NOT NULL |
"""

MODELS_READ = models_text("users", stub=False).replace("\n\nclass Task", '''

class User(SQLModel, table=True):
    __tablename__ = "users"

    id: str = Field(sa_type=Text, primary_key=True)
    email: str | None = Field(default=None, sa_type=Text)
    role: str | None = Field(default=None, sa_type=Text)


class Task''')


async def test_columns_the_app_reads_are_real_drift(tmp_path: Path, make_database) -> None:
    project = make_project(tmp_path, MODELS_READ, SPEC_READS)
    # spec and models disagree on users.email, a column both declare: real drift, not hidden
    data = await diff(project)
    (drift,) = [d for d in data["drifts"] if d["object"] == "users.email"]
    assert (drift["kind"], drift["severity"]) == ("nullability", "degraded")
    assert {f["side"] for f in offered(drift)} <= {"spec", "models"}

    # Better Auth's table as its CLI made it (camelCase, usePlural): the spec's email_verified and the
    # models' role are not there, and email is NOT NULL.
    url = make_database("ba_reads", SHAPES["usePlural"][2] + ";\n" + tasks_sql("users"))
    data = await diff(project, url, detail="full")
    by = {(d["object"], d["kind"]): d for d in data["drifts"]}
    rename = by[("users.emailVerified", "possible-rename")]
    assert rename["severity"] == "breaking" and rename["sides"]["spec"]["value"].startswith("email_verified")
    assert "emailVerified" in fix_for(rename, "spec")["spec_patch"]
    role = by[("users.role", "extra-column")]
    assert role["severity"] == "breaking"  # the models map a column Better Auth's table does not have
    assert [f["side"] for f in offered(role)] == ["models"]
    email = by[("users.email", "nullability")]
    assert "models" in email["sides"] and email["severity"] in ("breaking", "degraded")
    assert_no_ddl_on(data, set(SHAPES["usePlural"][1]))
    # Better Auth's other columns (name, image...) are not drift: the stub need not carry them
    assert not [d for d in data["drifts"] if d["object"] in ("users.name", "users.image", "users.createdAt")]


async def test_better_auths_table_missing_from_the_database_is_breaking(tmp_path: Path, make_database) -> None:
    url = make_database("ba_missing", "CREATE TABLE tasks (id serial PRIMARY KEY, user_id text NOT NULL, "
                                      "title varchar(200) NOT NULL)")
    project = make_project(tmp_path, models_text("users", stub=True), spec_text("users"))
    data = await diff(project, url)
    (drift,) = [d for d in data["drifts"] if d["object"] == "users"]
    assert (drift["kind"], drift["severity"]) == ("missing-table", "breaking")
    assert not drift.get("fixes") and "npx @better-auth/cli migrate" in drift["message"]


# ---------------------------------------------------------------------------------------------------
# Where the spec says so

def test_the_spec_says_so_in_a_heading_a_quote_a_note_or_prose() -> None:
    from schema_architect.tools.drift import spec_claims

    text = """# Schema

Authentication is handled by Better Auth: it manages user, session and account.

## Table: profiles

> Reference only: Better Auth creates this table (modelName).

| Column | Type |
|---|---|
| id | text |

## Table: tasks

Every row belongs to a user (the Better Auth user id in user_id). Passwords are managed by Better Auth.

```python
class Task(SQLModel, table=True):  # tasks
    # Managed by Better Auth? no: ours
    user_id: str
```

## Auth (Better Auth)

- verification
- jwks

### Table: twoFactor

> Managed by Better Auth's two-factor plugin; its secret column is never read.
"""
    claims = spec_claims(text, "schema.md", {"profiles", "tasks", "twoFactor"})
    assert claims == {"user": "schema.md:3", "session": "schema.md:3", "account": "schema.md:3",
                      "profiles": "schema.md:7", "verification": "schema.md:25", "jwks": "schema.md:26",
                      "twofactor": "schema.md:30"}


# ---------------------------------------------------------------------------------------------------
# A type change that rewrites the table is never cosmetic, and its lock note says so

REWRITES = [  # (spec type, database type)
    ("varchar", "text"), ("text", "varchar"), ("text", "varchar(50)"), ("varchar(100)", "varchar(50)"),
    ("varchar(50)", "varchar(100)"), ("varchar(50)", "varchar"), ("numeric(12,2)", "numeric(10,2)"),
    ("numeric(10,2)", "numeric"), ("bigint", "integer"), ("timestamptz", "timestamp"),
]


async def _diff_spec_database(project: Path, url: str) -> dict:
    settings = Settings(project=project, database_url=url)
    async with Client(create_server(settings)) as client:
        result = await client.call_tool("diff_models_vs_spec", {"include_database": True, "detail": "full"})
    assert not result.is_error, result.content
    return result.structured_content


@pytest.mark.parametrize(("want", "have"), REWRITES, ids=[f"{h}->{w}" for w, h in REWRITES])
async def test_a_type_fix_that_rewrites_the_table_is_never_cosmetic(want: str, have: str, tmp_path: Path,
                                                                    make_database) -> None:
    value = "'2020-01-01'" if "time" in have else ("1" if have in ("integer",) or "numeric" in have else "'abc'")
    url = make_database("ba_rewrite", f"CREATE TABLE items (id serial PRIMARY KEY, v {have} NOT NULL);"
                                      f"CREATE INDEX items_v ON items (v); INSERT INTO items (v) VALUES ({value})")
    spec = tmp_path / "specs" / "database" / "schema.md"
    spec.parent.mkdir(parents=True)
    spec.write_text(f"# Schema\n\n## Table: items\n\n| Column | Type | Constraints |\n|---|---|---|\n"
                    f"| id | serial | PRIMARY KEY |\n| v | {want} | NOT NULL |\n\n**Indexes:**\n- `items_v`: (v)\n")
    data = await _diff_spec_database(tmp_path, url)
    (drift,) = [d for d in data["drifts"] if d["object"] == "items.v"]
    fix = fix_for(drift, "database")
    with psycopg.connect(url, autocommit=True) as conn:
        before = conn.execute("SELECT pg_relation_filenode('items')").fetchone()[0]
        conn.execute("SET TimeZone = 'Europe/Paris'")  # a server not on UTC: timestamp -> timestamptz rewrites
        for statement in fix["migration_sql"].split(";\n"):
            if statement.strip() and not statement.lstrip().startswith("--"):
                conn.execute(statement)
        rewritten = conn.execute("SELECT pg_relation_filenode('items')").fetchone()[0] != before
    assert rewritten == ("no rewrite" not in fix["lock_notes"]), (fix["lock_notes"], rewritten)
    if rewritten:
        assert drift["severity"] != "cosmetic" and "rewrites the table" in fix["lock_notes"], drift
