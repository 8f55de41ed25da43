"""The database connection: any PostgreSQL URL (Neon included) or the embedded default.

Nothing connects until a tool asks for a connection, so tools that need no database never wait for one.
Passwords never leave this module: everything shown to users goes through :func:`redact_url` or
:meth:`Database.describe`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from typing import TYPE_CHECKING

import anyio

from .embedded import EmbeddedPostgres

if TYPE_CHECKING:
    from psycopg import AsyncConnection


class DatabaseUnavailable(RuntimeError):
    """No database could be reached or none is configured; the message says what to do."""


_SCHEMES = ("postgresql+psycopg://", "postgresql+psycopg2://", "postgresql+asyncpg://", "postgres://",
            "postgresql://")


def normalize_url(url: str) -> str:
    """libpq accepts postgres:// and postgresql://; SQLAlchemy-style driver suffixes are dropped."""
    url = url.strip()
    for scheme in _SCHEMES:
        if url.startswith(scheme):
            return "postgresql://" + url[len(scheme):]
    raise DatabaseUnavailable(
        f"DATABASE_URL must start with postgresql:// or postgres:// (got {redact_url(url)!r}). "
        "Copy the connection string from your Neon dashboard."
    )


def redact_url(text: str) -> str:
    """Mask passwords in URLs and password= parameters anywhere in a text."""
    text = re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)
    return re.sub(r"(?i)(password=)[^&\s]+", r"\1***", text)


def describe_url(url: str) -> str:
    """``host/dbname`` for results: enough to say which database, nothing secret."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    host = parts.hostname or query.get("host", "localhost")
    if host.startswith("/"):
        host = "local socket"
    db = unquote(parts.path.lstrip("/")) or query.get("dbname", "postgres")
    port = f":{parts.port}" if parts.port and parts.port != 5432 else ""
    return f"{host}{port}/{db}"


def is_pooler_url(url: str) -> bool:
    """Neon's pooler (PgBouncer, transaction mode) hosts carry '-pooler' in their first label."""
    host = urlsplit(url).hostname or ""
    return "-pooler" in host.split(".")[0] or "pgbouncer=true" in url


class Database:
    """A lazily opened async connection pool over the configured URL or the embedded server."""

    def __init__(self, url: str | None, *, project: Path, embedded: bool = True, max_size: int = 5,
                 connect_timeout_s: float = 20.0,
                 on_embedded_start: Callable[["AsyncConnection"], Awaitable[object]] | None = None) -> None:
        self._url = normalize_url(url) if url else None
        self._project = project
        self._allow_embedded = embedded
        self._max_size = max_size
        self._connect_timeout_s = connect_timeout_s
        self._embedded: EmbeddedPostgres | None = None
        self._on_embedded_start = on_embedded_start
        self._pool = None
        self._lock = anyio.Lock()

    @property
    def configured(self) -> bool:
        return self._url is not None or self._allow_embedded

    def describe(self) -> str:
        if self._embedded:
            return f"embedded PostgreSQL ({self._embedded.data_dir_display})/{self._embedded.dbname}"
        if self._url:
            return describe_url(self._url)
        return "embedded PostgreSQL (not started)"

    async def _open(self):
        from psycopg_pool import AsyncConnectionPool  # imported here: start-up stays fast

        if self._url is None:
            if not self._allow_embedded:
                raise DatabaseUnavailable(
                    "No database is configured. Set DATABASE_URL (e.g. in .env) or enable the embedded "
                    "PostgreSQL (SCHEMA_ARCHITECT_EMBEDDED=true)."
                )
            self._embedded = EmbeddedPostgres(self._project)
            self._url = await anyio.to_thread.run_sync(self._embedded.start)
        kwargs: dict = {"autocommit": True}
        if is_pooler_url(self._url):
            kwargs["prepare_threshold"] = None  # PgBouncer in transaction mode: no server-side prepares
        pool = AsyncConnectionPool(
            self._url, min_size=0, max_size=self._max_size, kwargs=kwargs, open=False,
            check=AsyncConnectionPool.check_connection, timeout=self._connect_timeout_s,
            name="schema-architect",
        )
        await pool.open(wait=False)
        if self._embedded is not None and self._on_embedded_start is not None:
            async with pool.connection() as conn:
                await self._on_embedded_start(conn)
        return pool

    async def pool(self):
        async with self._lock:
            if self._pool is None:
                self._pool = await self._open()
            return self._pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator:
        """A pooled connection in autocommit mode; tools open their own transactions."""
        from psycopg_pool import PoolTimeout

        pool = await self.pool()
        try:
            conn = await pool.getconn()
        except PoolTimeout as exc:
            raise DatabaseUnavailable(
                f"Cannot connect to {self.describe()} within {self._connect_timeout_s:g} s "
                f"({redact_url(str(exc)) or 'no answer'}). Check DATABASE_URL and that the database "
                "is running; tools that do not need a database keep working."
            ) from None
        try:
            yield conn
        finally:
            await pool.putconn(conn)  # the pool rolls back anything left open

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        if self._embedded is not None:
            await anyio.to_thread.run_sync(self._embedded.stop)
