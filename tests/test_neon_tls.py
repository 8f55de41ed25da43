"""Neon's URLs and TLS, against Debian's PostgreSQL 15 with ssl=on and a self-signed certificate.

Proves: a URL as Neon hands it out (sslmode=require, channel_binding=require) connects through our
Database over TLS with SCRAM channel binding; the same URL against a server without TLS, a wrong
password, or an unverifiable certificate fails at once (no retrying until the timeout) with a message
that says what to fix and holds no password; our connections carry application_name=schema-architect.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from schema_architect.server.db import APPLICATION_NAME, Database, DatabaseUnavailable, normalize_url

from conftest import require
from pgservers import PASSWORD, PgServer, missing

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def tls_server(neon_pg15):
    return neon_pg15


@pytest.fixture(scope="module")
def plain_server():
    require(missing())
    with PgServer(tls=False) as server:
        yield server


async def first_connection_error(db: Database) -> str:
    """What DatabaseUnavailable says when ``db`` opens its first connection (the pool closed after)."""
    with pytest.raises(DatabaseUnavailable) as info:
        async with db.connection():
            pass
    await db.close()
    return str(info.value)


async def test_neon_style_url_connects_over_tls_with_channel_binding(tls_server: PgServer, tmp_path: Path) -> None:
    url = tls_server.url("neondb", sslmode="require", channel_binding="require")
    db = Database(url, project=tmp_path, connect_timeout_s=10)
    try:
        async with db.connection() as conn:
            cur = await conn.execute(
                "SELECT s.ssl, s.version, a.application_name FROM pg_stat_ssl s "
                "JOIN pg_stat_activity a USING (pid) WHERE pid = pg_backend_pid()")
            ssl, version, app = await cur.fetchone()
        assert ssl is True and version.startswith("TLS")
        assert app == APPLICATION_NAME
        assert db.describe() == f"127.0.0.1:{tls_server.port}/neondb"
    finally:
        await db.close()


async def test_require_against_a_server_without_tls_is_a_clear_immediate_error(
        plain_server: PgServer, tmp_path: Path, connect_attempts: list[str]) -> None:
    db = Database(plain_server.url(sslmode="require"), project=tmp_path, connect_timeout_s=15)
    message = await first_connection_error(db)
    assert connect_attempts == ["failed"], "a missing TLS must not be retried until the timeout"
    assert "does not support SSL" in message and "sslmode=require" in message, message
    assert f"127.0.0.1:{plain_server.port}/postgres" in message
    assert PASSWORD not in message


async def test_wrong_password_fails_at_once_without_showing_it(tls_server: PgServer, tmp_path: Path,
                                                                connect_attempts: list[str]) -> None:
    wrong = "npg_Wr0ngPassw0rd"
    db = Database(tls_server.url("neondb", password=wrong, sslmode="require"), project=tmp_path,
                  connect_timeout_s=15)
    message = await first_connection_error(db)
    assert connect_attempts == ["failed"], "a wrong password must not be retried until the timeout"
    assert "password authentication failed" in message and "Check the user and password" in message
    assert wrong not in message and PASSWORD not in message


async def test_unverifiable_certificate_is_a_tls_error(tls_server: PgServer, tmp_path: Path) -> None:
    # verify-full with no root certificate: libpq refuses; the message points at TLS, not a timeout.
    db = Database(tls_server.url("neondb", sslmode="verify-full", sslrootcert=str(tmp_path / "none.crt")),
                  project=tmp_path, connect_timeout_s=15)
    message = await first_connection_error(db)
    assert "TLS" in message and PASSWORD not in message


def test_neon_hosts_default_to_tls_and_keep_their_parameters() -> None:
    bare = "postgresql://neondb_owner:npg_x@ep-cool-123.us-east-2.aws.neon.tech/neondb"
    assert normalize_url(bare).endswith("/neondb?sslmode=require")
    given = bare + "?sslmode=verify-full&channel_binding=require&options=endpoint%3Dep-cool-123"
    assert normalize_url(given) == given  # nothing rewritten: libpq and Neon's proxy read them
    assert normalize_url("postgresql://u:p@localhost/db") == "postgresql://u:p@localhost/db"


async def test_options_endpoint_parameter_reaches_the_server_untouched(tls_server: PgServer,
                                                                        tmp_path: Path) -> None:
    # Neon's proxy reads options=endpoint%3D<id>; plain PostgreSQL reads options as server flags, so a
    # -c setting shows the parameter arrives as written (percent-decoded by libpq).
    url = tls_server.url("neondb", sslmode="require", options="-c%20search_path%3Dneon_probe")
    db = Database(url, project=tmp_path, connect_timeout_s=10)
    try:
        async with db.connection() as conn:
            assert (await (await conn.execute("SHOW search_path")).fetchone()) == ("neon_probe",)
    finally:
        await db.close()


def test_a_direct_psycopg_connection_confirms_the_server_requires_nothing_else(tls_server: PgServer) -> None:
    # Control: the same server answers without TLS too, so the TLS test above proves the URL chose TLS.
    with psycopg.connect(tls_server.url("neondb", sslmode="disable")) as conn:
        row = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
    assert row == (False,)
