"""The database layer: URL handling, redaction, the lazy pool, and the embedded default."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from schema_architect.server.db import (
    Database,
    DatabaseUnavailable,
    describe_url,
    is_pooler_url,
    normalize_url,
    redact_url,
)

NEON = "postgresql://neondb_owner:npg_S3cr3t@ep-cool-123-pooler.us-east-2.aws.neon.tech/neondb?sslmode=require"


@pytest.mark.parametrize("url", [
    "postgres://u:p@h/db", "postgresql://u:p@h/db", "postgresql+psycopg://u:p@h/db",
])
def test_url_schemes_are_accepted(url: str) -> None:
    assert normalize_url(url) == "postgresql://u:p@h/db"


def test_other_schemes_are_refused_without_the_password() -> None:
    with pytest.raises(DatabaseUnavailable) as info:
        normalize_url("mysql://root:hunter2@h/db")
    assert "hunter2" not in str(info.value) and "postgresql://" in str(info.value)


def test_redaction_and_description() -> None:
    assert "npg_S3cr3t" not in redact_url(f"failed to connect to {NEON}")
    assert redact_url("host=x password=abc user=y") == "host=x password=*** user=y"
    assert describe_url(NEON) == "ep-cool-123-pooler.us-east-2.aws.neon.tech/neondb"
    assert describe_url("postgresql://u@localhost:6432/app") == "localhost:6432/app"
    assert is_pooler_url(NEON)
    assert not is_pooler_url(NEON.replace("-pooler", ""))


@pytest.mark.anyio
async def test_no_connection_until_asked_then_the_given_url(pg_url: str, tmp_path: Path) -> None:
    db = Database(pg_url, project=tmp_path)
    assert db._pool is None  # constructing it connects to nothing
    async with db.connection() as conn:
        row = await (await conn.execute("SELECT 1")).fetchone()
    assert row == (1,)
    await db.close()


@pytest.mark.anyio
async def test_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    db = Database("postgresql://u:topsecret@127.0.0.1:1/nope", project=tmp_path, connect_timeout_s=1)
    with pytest.raises(DatabaseUnavailable) as info:
        async with db.connection():
            pass
    message = str(info.value)
    assert "127.0.0.1:1/nope" in message and "topsecret" not in message
    await db.close()


@pytest.mark.anyio
async def test_embedded_default_starts_under_the_project_and_stops(tmp_path: Path) -> None:
    db = Database(None, project=tmp_path)
    async with db.connection() as conn:
        row = await (await conn.execute("SELECT current_database()")).fetchone()
    assert row == ("schema_architect",)
    assert db.describe() == "embedded PostgreSQL (.schema-architect/pgdata)/schema_architect"
    assert (tmp_path / ".schema-architect" / ".gitignore").read_text().splitlines()[-1] == "*"
    pid_file = tmp_path / ".schema-architect/pgdata/postmaster.pid"
    pid = int(pid_file.read_text().split()[0])
    await db.close()
    # close() returns once the server has shut down: PostgreSQL removes its pid file as the last step of a
    # clean shutdown, and the postmaster is gone (a zombie not yet reaped by its parent counts as gone).
    assert not pid_file.exists()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE

    # reused across runs: the same data folder, the same database
    db = Database(None, project=tmp_path)
    async with db.connection() as conn:
        row = await (await conn.execute("SELECT current_database()")).fetchone()
    assert row == ("schema_architect",)
    await db.close()


def test_redaction_covers_query_parameters_and_conninfo() -> None:
    from schema_architect.server.db import url_secrets

    assert redact_url("postgresql://u@h/db?password=abc&sslmode=require") == \
        "postgresql://u@h/db?password=***&sslmode=require"
    assert redact_url("host=h password='a b c' sslpassword=x api_key=k1 access_token=t1") == \
        "host=h password=*** sslpassword=*** api_key=*** access_token=***"
    assert set(url_secrets("postgresql://u:p%40ss%2Fw@h/db?sslpassword=keypw")) == {"p%40ss%2Fw", "keypw", "p@ss/w"}


@pytest.mark.anyio
async def test_a_pgbouncer_hint_is_not_sent_to_libpq(pg_url: str, tmp_path: Path) -> None:
    db = Database(pg_url + ("&" if "?" in pg_url else "?") + "pgbouncer=true", project=tmp_path)
    async with db.connection() as conn:
        assert conn.prepare_threshold is None
        row = await (await conn.execute("SELECT current_setting('application_name')")).fetchone()
    assert row == ("schema-architect",)
    await db.close()
