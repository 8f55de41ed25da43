"""Better Auth's credentials never reach an agent: masked in SELECT *, refused in filters (issue 26).

On the table shapes Better Auth really makes: its CLI's quoted ``"user"`` with camelCase columns
(``"userId"``, ``"accessToken"``), and Drizzle's plural snake_case tables (``usePlural``, ``user_id``,
``access_token``). Through MCP, as the owner (BYPASSRLS, Neon's default) and as a read-only role.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from mcp import Client

from schema_architect.server.app import create_server
from schema_architect.server.settings import Settings

from fence import rows_in_fence

pytestmark = pytest.mark.anyio

ROLES = """
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mc_owner') THEN CREATE ROLE mc_owner LOGIN BYPASSRLS; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mc_ro') THEN CREATE ROLE mc_ro LOGIN NOBYPASSRLS; END IF;
END $$;
ALTER SCHEMA public OWNER TO mc_owner;
SET ROLE mc_owner;
"""

# Better Auth's CLI (Kysely): singular tables, "user" quoted, camelCase columns.
CAMEL = ROLES + """
CREATE TABLE "user" (id text PRIMARY KEY, name text NOT NULL, email text NOT NULL UNIQUE,
  "emailVerified" boolean NOT NULL, image text, "createdAt" timestamptz NOT NULL DEFAULT now(),
  "updatedAt" timestamptz NOT NULL DEFAULT now());
CREATE TABLE session (id text PRIMARY KEY, "expiresAt" timestamptz NOT NULL, token text NOT NULL UNIQUE,
  "ipAddress" text, "userAgent" text, "userId" text NOT NULL REFERENCES "user"(id) ON DELETE CASCADE);
CREATE TABLE account (id text PRIMARY KEY, "accountId" text NOT NULL, "providerId" text NOT NULL,
  "userId" text NOT NULL REFERENCES "user"(id) ON DELETE CASCADE, "accessToken" text, "refreshToken" text,
  "idToken" text, password text);
CREATE TABLE jwks (id text PRIMARY KEY, "publicKey" text NOT NULL, "privateKey" text NOT NULL);
INSERT INTO "user" VALUES ('u_alice', 'Alice', 'alice@example.com', true, NULL), \
('u_bob', 'Bob', 'bob@example.com', true, NULL);
INSERT INTO session VALUES ('s1', now() + interval '1 day', 'TOKEN_ALICE_SECRET', '127.0.0.1', 'ua', 'u_alice'),
                           ('s2', now() + interval '1 day', 'TOKEN_BOB_SECRET', '127.0.0.1', 'ua', 'u_bob');
INSERT INTO account VALUES ('a1', 'alice', 'credential', 'u_alice', NULL, NULL, NULL, 'HASH_ALICE_SECRET'),
                           ('a2', 'gh', 'github', 'u_alice', 'ACCESS_SECRET', 'REFRESH_SECRET', 'ID_SECRET', NULL);
INSERT INTO jwks VALUES ('k1', 'PUBLIC', 'PRIVATE_KEY_SECRET');
ALTER TABLE session ENABLE ROW LEVEL SECURITY; ALTER TABLE account ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON session FOR SELECT TO mc_ro USING ("userId" = current_setting('app.user_id', true));
CREATE POLICY own ON account FOR SELECT TO mc_ro USING ("userId" = current_setting('app.user_id', true));
GRANT USAGE ON SCHEMA public TO mc_ro; GRANT SELECT ON ALL TABLES IN SCHEMA public TO mc_ro;
RESET ROLE;
"""

# Drizzle with usePlural: plural snake_case tables.
SNAKE = ROLES + """
CREATE TABLE users (id text PRIMARY KEY, name text NOT NULL, email text NOT NULL UNIQUE,
  email_verified boolean NOT NULL DEFAULT false);
CREATE TABLE sessions (id text PRIMARY KEY, expires_at timestamptz NOT NULL, token text NOT NULL UNIQUE,
  user_id text NOT NULL REFERENCES users(id) ON DELETE CASCADE);
CREATE TABLE accounts (id text PRIMARY KEY, provider_id text NOT NULL, user_id text NOT NULL REFERENCES users(id),
  access_token text, refresh_token text, id_token text, password text);
CREATE TABLE verifications (id text PRIMARY KEY, identifier text NOT NULL, value text NOT NULL,
  expires_at timestamptz NOT NULL);
CREATE TABLE notes (id serial PRIMARY KEY, user_id text NOT NULL REFERENCES users(id), body text, api_key text);
INSERT INTO users VALUES ('u_alice', 'Alice', 'alice@example.com'), ('u_bob', 'Bob', 'bob@example.com');
INSERT INTO sessions VALUES ('s1', now() + interval '1 day', 'TOKEN_ALICE_SECRET', 'u_alice'),
                            ('s2', now() + interval '1 day', 'TOKEN_BOB_SECRET', 'u_bob');
INSERT INTO accounts VALUES ('a1', 'credential', 'u_alice', NULL, NULL, NULL, 'HASH_ALICE_SECRET'),
                            ('a2', 'github', 'u_alice', 'ACCESS_SECRET', 'REFRESH_SECRET', 'ID_SECRET', NULL);
INSERT INTO verifications VALUES ('v1', 'alice@example.com', 'OTP_SECRET', now() + interval '1 hour');
INSERT INTO notes (user_id, body, api_key) VALUES ('u_alice', 'hello', 'NOTE_KEY_SECRET');
ALTER TABLE sessions ENABLE ROW LEVEL SECURITY; ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON sessions FOR SELECT TO mc_ro USING (user_id = current_setting('app.user_id', true));
CREATE POLICY own ON accounts FOR SELECT TO mc_ro USING (user_id = current_setting('app.user_id', true));
GRANT USAGE ON SCHEMA public TO mc_ro; GRANT SELECT ON ALL TABLES IN SCHEMA public TO mc_ro;
RESET ROLE;
"""

SECRETS = ("TOKEN_ALICE_SECRET", "TOKEN_BOB_SECRET", "HASH_ALICE_SECRET", "ACCESS_SECRET", "REFRESH_SECRET",
           "ID_SECRET", "PRIVATE_KEY_SECRET", "OTP_SECRET", "NOTE_KEY_SECRET")


@pytest.fixture(scope="module")
def camel(make_database) -> str:
    return make_database("masked_camel", CAMEL)


@pytest.fixture(scope="module")
def snake(make_database) -> str:
    return make_database("masked_snake", SNAKE)


def as_role(url: str, role: str) -> str:
    return re.sub(r"^(postgres(?:ql)?://)[^:@/]*", lambda m: m.group(1) + role, url)


async def query(url: str, role: str, tmp_path: Path, sql: str, **settings):
    s = Settings(project=tmp_path, database_url=as_role(url, role), statement_timeout_ms=2000, **settings)
    async with Client(create_server(s)) as client:
        result = await client.call_tool("run_scoped_query", {"sql": sql, "user_id": "u_alice"})
    text = json.dumps(result.model_dump(mode="json"))
    for secret in SECRETS:
        assert secret not in text, (sql, secret)
    return result


@pytest.mark.parametrize("role", ["mc_owner", "mc_ro"])
async def test_camel_case_tables_come_back_masked(camel: str, tmp_path: Path, role: str) -> None:
    result = await query(camel, role, tmp_path, "SELECT * FROM session", owner_column="userId")
    assert not result.is_error, result.content
    data = result.structured_content
    columns = [c["name"] for c in data["columns"]]
    rows = rows_in_fence(data)
    assert len(rows) == 1 and rows[0][columns.index("token")] == "<masked: 18 characters>"
    assert rows[0][columns.index("userId")] == "u_alice"  # ordinary columns untouched
    assert data["masked_columns"] == ["public.session.token"]

    accounts = await query(camel, role, tmp_path, 'SELECT * FROM account ORDER BY id', owner_column="userId")
    rows = rows_in_fence(accounts.structured_content)
    names = [c["name"] for c in accounts.structured_content["columns"]]
    assert [r[names.index("password")] for r in rows] == ["<masked: 17 characters>", None]
    assert [r[names.index("accessToken")] for r in rows] == [None, "<masked: 13 characters>"]
    assert sorted(accounts.structured_content["masked_columns"]) == [
        "public.account.accessToken", "public.account.idToken", "public.account.password",
        "public.account.refreshToken"]

    keys = await query(camel, role, tmp_path, 'SELECT "privateKey", "publicKey" FROM jwks',
                       owner_column="userId", shared_tables=["jwks"])
    assert rows_in_fence(keys.structured_content) == [["<masked: 18 characters>", "PUBLIC"]]


@pytest.mark.parametrize("role", ["mc_owner", "mc_ro"])
async def test_plural_snake_case_tables_and_the_setting(snake: str, tmp_path: Path, role: str) -> None:
    result = await query(snake, role, tmp_path, "SELECT s.*, a.* FROM sessions s JOIN accounts a USING (user_id)")
    assert not result.is_error, result.content
    assert sorted(result.structured_content["masked_columns"]) == [
        "public.accounts.access_token", "public.accounts.id_token", "public.accounts.password",
        "public.accounts.refresh_token", "public.sessions.token"]
    otp = await query(snake, role, tmp_path, "SELECT identifier, value FROM verifications",
                      shared_tables=["verifications"])
    assert rows_in_fence(otp.structured_content) == [["alice@example.com", "<masked: 10 characters>"]]
    note = await query(snake, role, tmp_path, "SELECT body, api_key FROM notes", sensitive_columns=["notes.api_*"])
    assert rows_in_fence(note.structured_content) == [["hello", "<masked: 15 characters>"]]


@pytest.mark.parametrize("role", ["mc_owner", "mc_ro"])
@pytest.mark.parametrize("sql", [
    "SELECT id FROM sessions WHERE token = 'TOKEN_ALICE_SECRET'",
    "SELECT id FROM sessions WHERE token LIKE 'TOKEN%'",
    "SELECT id FROM sessions ORDER BY token",
    "SELECT count(*) FROM accounts GROUP BY password",
    "SELECT s.id FROM sessions s JOIN accounts a ON a.access_token = s.token",
    "SELECT id FROM sessions WHERE EXISTS (SELECT 1 FROM accounts a WHERE a.refresh_token > 'R')",
])
async def test_a_filter_on_a_credential_is_refused(snake: str, tmp_path: Path, role: str, sql: str) -> None:
    result = await query(snake, role, tmp_path, sql)
    assert result.is_error
    assert "holds credentials" in result.content[0].text


async def test_the_spec_can_mark_a_column_secret(snake: str, tmp_path: Path) -> None:
    (tmp_path / "specs" / "database").mkdir(parents=True)
    (tmp_path / "specs" / "database" / "schema.md").write_text(
        "### Table: notes\n\n| Column | Type | Constraints | Description |\n|---|---|---|---|\n"
        "| id | SERIAL | PK | |\n| user_id | TEXT | FK -> users.id, NOT NULL | Owner |\n"
        "| body | TEXT | | The note |\n| api_key | TEXT | | Secret: the user's API key |\n")
    result = await query(snake, "mc_owner", tmp_path, "SELECT * FROM notes")
    assert result.structured_content["masked_columns"] == ["public.notes.api_key"]
