"""The database connection: any PostgreSQL URL (Neon included) or the embedded default.

Nothing connects until a tool asks for a connection, so tools that need no database never wait for one.
Passwords never leave this module: everything shown to users goes through :func:`redact_url` or
:meth:`Database.describe`, and every error raised here is scrubbed of the URL's secrets.

What Neon needs (design.md, "Neon, concretely"), and where it is handled:

- URLs as Neon hands them out (``sslmode=require``, ``channel_binding=require``, ``options=endpoint%3D``)
  go to libpq as they are; a ``*.neon.tech`` host without ``sslmode`` gets ``sslmode=require``.
- ``-pooler`` hosts are PgBouncer in transaction mode: ``prepare_threshold=None`` (never a server-side
  prepared statement); tools keep state in one transaction only (``set_config(..., true)``).
- Cold starts: a connection is retried with backoff (0.1 s doubling to 2 s) until ``connect_timeout_s``;
  errors that retrying cannot fix (bad password, no TLS, unknown host or database) fail at once.
- Idle cuts and restarts: :class:`_Pool` checks a connection before handing it out when it sat idle
  for a while or its socket has something to say (a closed socket is readable), and replaces a dead
  one without the caller noticing. A connection lost during a call is reported as DatabaseUnavailable.

The pool is small and ours (not psycopg_pool): psycopg_pool backs off up to seconds between checks of
dead idle connections after a restart, retries a wrong password until its timeout, and keeps no
last error to report; each of those surfaced to the agent as a slow or unclear failure.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

import anyio

from ..tools.schema.errors import DatabaseUnavailable
from .embedded import EmbeddedPostgres
from .fair import Busy, FairGate, Ticket

if TYPE_CHECKING:
    from psycopg import AsyncConnection

log = logging.getLogger("schema_architect.db")

#: Set on every connection we open (unless the URL names one), so ours can be told apart on the server.
APPLICATION_NAME = "schema-architect"
#: A connection idle this long is checked (one empty query) before it is handed out.
CHECK_AFTER_IDLE_S = 2.0
#: A connection idle this long is closed instead (Neon cuts idle connections; one would fail the check).
MAX_IDLE_S = 240.0
#: How long after a call its background work starts (Database.read_only_later): by then the call's answer
#: has left, so the two do not share the event loop.
LATER_S = 0.05
#: Connections are renewed after this long, so none lives forever.
MAX_LIFETIME_S = 1800.0
_BACKOFF_FIRST_S, _BACKOFF_MAX_S = 0.1, 2.0


class DatabaseBusy(DatabaseUnavailable):
    """The caller has as many database calls running and waiting as it may (server/fair.py)."""


_SCHEMES = ("postgresql+psycopg://", "postgresql+psycopg2://", "postgresql+asyncpg://", "postgres://",
            "postgresql://")
#: URL query / conninfo keys whose values are secret.
_SECRET_KEYS = r"(?:ssl)?password|passwd|pwd|[a-z_]*token|api[_-]?key|[a-z_]*secret"


def normalize_url(url: str) -> str:
    """libpq accepts postgres:// and postgresql://; SQLAlchemy-style driver suffixes are dropped."""
    url = url.strip()
    for scheme in _SCHEMES:
        if url.startswith(scheme):
            url = "postgresql://" + url[len(scheme):]
            return _neon_defaults(url)
    raise DatabaseUnavailable(
        f"DATABASE_URL must start with postgresql:// or postgres:// (got {redact_url(url)!r}). "
        "Copy the connection string from your Neon dashboard."
    )


def _neon_defaults(url: str) -> str:
    """Neon only accepts TLS: a neon.tech URL without sslmode gets sslmode=require, not libpq's 'prefer'."""
    parts = urlsplit(url)
    if (parts.hostname or "").endswith(".neon.tech") and "sslmode" not in dict(parse_qsl(parts.query)):
        return url + ("&" if parts.query else "?") + "sslmode=require"
    return url


def redact_url(text: str) -> str:
    """Mask passwords in URLs, and password=/token=/secret= values, anywhere in a text."""
    text = re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)
    return re.sub(rf"(?i)\b({_SECRET_KEYS})(\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s'\"]+)", r"\1\2***", text)


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


def url_secrets(url: str) -> list[str]:
    """The secret values in a URL (password, token-like parameters), raw and percent-decoded."""
    parts = urlsplit(url)
    found: list[str] = []
    netloc = parts.netloc.rpartition("@")[0]
    if ":" in netloc:
        found.append(netloc.partition(":")[2])
    for key, value in parse_qsl(parts.query, keep_blank_values=False):
        if re.fullmatch(_SECRET_KEYS, key, re.IGNORECASE):
            found.append(value)
    out: list[str] = []
    for secret in found:
        for form in (secret, unquote(secret)):
            if len(form) >= 3 and form not in out:
                out.append(form)
    return sorted(out, key=len, reverse=True)


def _first_line(exc: BaseException) -> str:
    """libpq's message without its 'connection failed:' prefix and hint lines."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.removeprefix("connection failed: ").strip()


#: Connection errors that retrying cannot fix, by what libpq / PostgreSQL / PgBouncer / Neon say.
_PERMANENT = (
    ("does not support ssl", "tls"), ("ssl is not enabled", "tls"), ("ssl/tls required", "tls"),
    ("insecure", "tls"), ("certificate", "tls"), ("channel binding", "tls"),
    ("password authentication failed", "login"), ("authentication failed", "login"),
    ("no password supplied", "login"), ("no pg_hba.conf entry", "login"), ("no such user", "login"),
    ("role \"", "login"),
    ("could not translate host name", "host"), ("name or service not known", "host"),
    ("does not exist", "database"), ("no such database", "database"),
    ("invalid", "url"), ("unsupported startup parameter", "url"),
)
_ADVICE = {
    "tls": "The URL requires TLS (sslmode=require, as Neon's do) and the server cannot provide it, or "
           "the TLS handshake failed. Neon always speaks TLS: check the host in DATABASE_URL. A local "
           "server without TLS needs sslmode=prefer or disable instead.",
    "login": "Check the user and password in DATABASE_URL (copy the connection string again from the "
             "Neon dashboard; passwords can be reset there).",
    "host": "Check the host name in DATABASE_URL.",
    "database": "Check the database (and role) name in DATABASE_URL.",
    "url": "Check DATABASE_URL: copy the connection string from the Neon dashboard.",
}


#: Checked first: worth retrying even when a permanent marker also appears in the text.
_TRANSIENT = ("too many connections", "starting up", "shutting down", "in recovery", "cannot connect now",
              "server login has been failing", "cannot connect to server", "closed the connection",
              "connection refused", "timeout expired", "timed out")


def _permanent_kind(exc: BaseException) -> str | None:
    message = str(exc).lower()
    if any(marker in message for marker in _TRANSIENT):
        return None
    for marker, kind in _PERMANENT:
        if marker in message:
            return kind
    return None


class _Idle:
    __slots__ = ("conn", "since", "born")

    def __init__(self, conn: AsyncConnection, since: float, born: float) -> None:
        self.conn, self.since, self.born = conn, since, born


class _Pool:
    """At most ``max_size`` connections; idle ones reused newest first; dead ones replaced."""

    def __init__(self, conninfo: str, kwargs: dict, *, max_size: int, timeout: float,
                 describe: Callable[[], str], scrub: Callable[[str], str], gate: FairGate | None = None,
                 caller: Callable[[], Hashable | None] = lambda: None) -> None:
        self._conninfo = conninfo
        self._kwargs = kwargs
        self._timeout = timeout
        self._describe = describe
        self._scrub = scrub
        #: The slots, shared fairly between callers (server/fair.py).
        self.gate = gate or FairGate(max_size)
        self._caller = caller
        self.max_size = max_size
        self._idle: list[_Idle] = []
        self._born: dict[int, float] = {}  # id(conn) -> when it was opened, for checked-out connections
        self._tickets: dict[int, Ticket] = {}  # id(conn) -> its slot, for checked-out connections
        self.opened = 0  # connections in existence (idle + checked out + being opened)
        self.closed = False

    async def acquire(self) -> AsyncConnection:
        return (await self.acquire_reused())[0]

    async def acquire_reused(self, *, check_idle: bool = True) -> tuple[AsyncConnection, bool]:
        """A connection, and whether it was an idle one reused. ``check_idle=False`` hands an idle
        connection out unchecked, however long it sat: the caller retries if it turns out dead."""
        if self.closed:
            raise DatabaseUnavailable("The server is shutting down; its database connections are closed.")
        deadline = time.monotonic() + self._timeout
        caller = self._caller()
        ticket = self.gate.try_acquire(caller)  # a free slot, the usual case: no timeout scope to set up
        if ticket is None:
            ticket = await self._wait_for_slot(caller)
        try:
            conn = await self._reuse(deadline, check_idle)
            if conn is None:
                conn = await self._connect(deadline)
                reused = False
            else:
                reused = True
        except BaseException:
            self.gate.release(ticket)
            raise
        self._tickets[id(conn)] = ticket
        return conn, reused

    def has_idle(self) -> bool:
        return bool(self._idle)

    async def drop_idle(self) -> None:
        """Close every idle connection (one was found dead: after a restart or a suspend, all are)."""
        idle, self._idle = self._idle, []
        for item in idle:
            await self._discard(item.conn)

    async def _wait_for_slot(self, caller: Hashable | None) -> Ticket:
        try:
            ticket = await self.gate.acquire(caller, self._timeout)
        except Busy as exc:
            raise DatabaseBusy(
                f"Busy: {exc}, the most one caller may have (SCHEMA_ARCHITECT_CALLER_MAX_CALLS="
                f"{self.gate.per_caller}). Wait for your running calls to finish, then call again."
            ) from None
        if ticket is None:
            slow = " Your recent calls were slow, so the last free connections are kept for quick calls." \
                if self.gate.is_slow(caller) else ""
            raise DatabaseUnavailable(
                f"All {self.max_size} connections to {self._describe()} stayed busy for {self._timeout:g} s."
                f"{slow} Try again; raise SCHEMA_ARCHITECT_POOL_MAX_SIZE if this keeps happening."
            )
        return ticket

    async def _reuse(self, deadline: float, check_idle: bool = True) -> AsyncConnection | None:
        while self._idle:
            item = self._idle.pop()
            now = time.monotonic()
            if now - item.since > MAX_IDLE_S or now - item.born > MAX_LIFETIME_S:
                await self._discard(item.conn)
                continue
            if (check_idle and now - item.since > CHECK_AFTER_IDLE_S) or _has_input(item.conn):
                if not await self._check(item.conn, deadline):
                    log.info("dropped a connection to %s that the server closed", self._describe())
                    await self._discard(item.conn)
                    continue
            self._born[id(item.conn)] = item.born
            return item.conn
        return None

    async def _check(self, conn: AsyncConnection, deadline: float) -> bool:
        if conn.closed or conn.broken:
            return False
        with anyio.move_on_after(max(0.5, min(5.0, deadline - time.monotonic()))):
            try:
                await conn.execute("", prepare=False)
                return True
            except Exception:  # noqa: BLE001 (any failure means: not usable)
                return False
        return False

    async def _connect(self, deadline: float) -> AsyncConnection:
        import psycopg

        delay, attempts, last = _BACKOFF_FIRST_S, 0, None
        self.opened += 1
        try:
            while True:
                attempts += 1
                remaining = deadline - time.monotonic()
                kwargs = self._kwargs
                if "connect_timeout" not in self._conninfo:  # libpq's per-attempt limit (2 s at least)
                    kwargs = {**kwargs, "connect_timeout": max(2, min(10, round(remaining)))}
                try:
                    conn = await psycopg.AsyncConnection.connect(self._conninfo, **kwargs)
                except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:
                    last = self._scrub(_first_line(exc))
                    if kind := _permanent_kind(exc):
                        raise DatabaseUnavailable(
                            f"Cannot connect to {self._describe()}: {last}. {_ADVICE[kind]} "
                            "Tools that do not need a database keep working."
                        ) from None
                    remaining = deadline - time.monotonic()
                    if remaining <= 0.05:
                        raise DatabaseUnavailable(
                            f"Cannot connect to {self._describe()} within {self._timeout:g} s "
                            f"({attempts} attempts; last: {last}). Check DATABASE_URL and that the database "
                            "is running (a Neon compute wakes up in seconds; raise "
                            "SCHEMA_ARCHITECT_CONNECT_TIMEOUT_S if it needs longer). Tools that do not need "
                            "a database keep working."
                        ) from None
                    log.info("database %s not answering (%s); retrying in %.1f s", self._describe(), last,
                             min(delay, remaining))
                    await anyio.sleep(min(delay, remaining))
                    delay = min(delay * 2, _BACKOFF_MAX_S)
                    continue
                self._born[id(conn)] = time.monotonic()
                if attempts > 1:
                    log.info("connected to %s after %d attempts", self._describe(), attempts)
                return conn
        except BaseException:
            self.opened -= 1
            raise

    async def release(self, conn: AsyncConnection) -> None:
        """Back to the idle list if clean, else closed. Never raises; shielded from cancellation."""
        from psycopg import pq

        born = self._born.pop(id(conn), time.monotonic())
        ticket = self._tickets.pop(id(conn), None)
        if (not self.closed and not conn.closed and not conn.broken and conn.autocommit
                and conn.info.transaction_status == pq.TransactionStatus.IDLE):
            self._idle.append(_Idle(conn, time.monotonic(), born))  # clean: nothing to await, nothing to shield
            self._give_back(ticket)
            return
        try:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                status = conn.info.transaction_status if not conn.closed else None
                usable = not self.closed and not conn.closed and not conn.broken
                if usable and status in (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR):
                    try:
                        await conn.rollback()
                        status = conn.info.transaction_status
                    except Exception:  # noqa: BLE001
                        usable = False
                if usable and status == pq.TransactionStatus.IDLE:
                    if not conn.autocommit:
                        await conn.set_autocommit(True)
                    self._idle.append(_Idle(conn, time.monotonic(), born))
                    return
                await self._discard(conn)
        except Exception:  # noqa: BLE001
            await self._discard(conn)
        finally:
            self._give_back(ticket)

    def _give_back(self, ticket: Ticket | None) -> None:
        if ticket is not None:
            self.gate.release(ticket)

    async def _discard(self, conn: AsyncConnection) -> None:
        self.opened -= 1
        with anyio.CancelScope(shield=True), anyio.move_on_after(2), suppress(Exception):
            await conn.close()

    async def close(self) -> None:
        self.closed = True
        idle, self._idle = self._idle, []
        for item in idle:
            await self._discard(item.conn)


def _has_input(conn: AsyncConnection) -> bool:
    """True when an idle connection's socket is readable: the server closed it or sent a notice."""
    import select

    try:
        fd = conn.pgconn.socket
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))
    except Exception:  # noqa: BLE001 (no socket, no poll on this platform: check it)
        return True


class Database:
    """A lazily opened pool of async connections over the configured URL or the embedded server."""

    def __init__(self, url: str | None, *, project: Path, embedded: bool = True, max_size: int = 5,
                 connect_timeout_s: float = 20.0, caller_max_calls: int = 2, quick_reserve: int = 1,
                 slow_call_s: float = 1.0, caller: Callable[[], Hashable | None] = lambda: None,
                 on_embedded_start: Callable[[AsyncConnection], Awaitable[object]] | None = None,
                 follow_spec: Callable[[AsyncConnection], Awaitable[object]] | None = None) -> None:
        """``follow_spec``: for the embedded database only, run on every connection before it is handed out
        (it rebuilds the database when the spec changed, cheaply does nothing otherwise); what it returns
        is kept as :attr:`embedded_state`. ``on_embedded_start`` runs once, when the embedded server starts.
        ``caller`` says who is calling (server/fair.py): each caller holds at most ``caller_max_calls``
        connections, and callers whose calls take ``slow_call_s`` or longer leave ``quick_reserve`` free."""
        self._url = normalize_url(url) if url else None
        self._described: str | None = None
        self._secrets = url_secrets(self._url) if self._url else []
        self._project = project
        self._allow_embedded = embedded
        self._max_size = max_size
        self._connect_timeout_s = connect_timeout_s
        #: The slots of the pool, shared fairly between callers (server/fair.py).
        self.gate = FairGate(max_size, per_caller=caller_max_calls, quick_reserve=quick_reserve, slow_s=slow_call_s)
        self._caller = caller
        self._embedded: EmbeddedPostgres | None = None
        self._on_embedded_start = on_embedded_start
        self._follow_spec = follow_spec
        self._pool: _Pool | None = None
        self._lock = anyio.Lock()
        self._follow_lock = anyio.Lock()
        #: What follow_spec last said about the embedded database (None: not embedded, or not started).
        self.embedded_state: Any = None  # follow_spec's ScratchState (tools/project/scratch.py)
        #: Connections handed out so far: a caller compares before and after to tell if it touched the database.
        self.touches = 0
        #: Work running off its caller's path (read_only_later)
        self._later: set[asyncio.Task[None]] = set()

    @property
    def is_embedded(self) -> bool:
        return self._embedded is not None or (self._url is None and self._allow_embedded)

    @property
    def configured(self) -> bool:
        return self._url is not None or self._allow_embedded

    def describe(self) -> str:
        if self._embedded:
            return f"embedded PostgreSQL ({self._embedded.data_dir_display})/{self._embedded.dbname}"
        if self._url:
            if self._described is None:  # said in every result: parse the URL once
                self._described = describe_url(self._url)
            return self._described
        return "embedded PostgreSQL (not started)"

    def scrub(self, text: str) -> str:
        """``text`` without the URL's password or tokens, in any form they may appear."""
        text = redact_url(text)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _connect_kwargs(self, url: str) -> dict:
        query = dict(parse_qsl(urlsplit(url).query))
        kwargs: dict = {"autocommit": True}
        if "application_name" not in query:
            kwargs["application_name"] = APPLICATION_NAME
        if is_pooler_url(url):
            kwargs["prepare_threshold"] = None  # PgBouncer in transaction mode: no server-side prepares
        return kwargs

    async def _open(self) -> _Pool:
        if self._url is None:
            if not self._allow_embedded:
                raise DatabaseUnavailable(
                    "No database is configured. Set DATABASE_URL (e.g. in .env) or enable the embedded "
                    "PostgreSQL (SCHEMA_ARCHITECT_EMBEDDED=true)."
                )
            self._embedded = EmbeddedPostgres(self._project)
            self._url = await anyio.to_thread.run_sync(self._embedded.start)
            self._secrets = url_secrets(self._url)
        conninfo = re.sub(r"(?<=[?&])pgbouncer=true(&|$)", "", self._url).rstrip("?&")  # not libpq's
        pool = _Pool(conninfo, self._connect_kwargs(self._url), max_size=self._max_size,
                     timeout=self._connect_timeout_s, describe=self.describe, scrub=self.scrub,
                     gate=self.gate, caller=self._caller)
        if self._embedded is not None and self._on_embedded_start is not None:
            conn = await pool.acquire()
            try:
                await self._on_embedded_start(conn)
            finally:
                await pool.release(conn)
        return pool

    async def _follow(self, conn: AsyncConnection) -> None:
        """The embedded database follows the spec: checked on each connection (one local query and a hash
        of the spec file); rebuilt, one caller at a time, when the spec changed."""
        async with self._follow_lock:
            follow = self._follow_spec
            assert follow is not None  # _handed_out calls this only with one
            self.embedded_state = await follow(conn)

    async def pool(self) -> _Pool:
        if self._pool is not None:  # opened: no lock to take
            return self._pool
        async with self._lock:
            if self._pool is None:
                self._pool = await self._open()
            return self._pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator:
        """A pooled connection in autocommit mode; tools open their own transactions.

        It is alive when handed out (checked if it sat idle). If it dies during the call (the server
        restarted), the caller gets DatabaseUnavailable saying so; the next call gets a new one.
        """
        import psycopg

        pool = await self.pool()
        conn = await pool.acquire()
        try:
            await self._handed_out(conn)
            yield conn
        except psycopg.OperationalError as exc:
            if conn.closed or conn.broken:
                raise self._lost(exc) from None
            raise
        finally:
            await pool.release(conn)

    async def _handed_out(self, conn: AsyncConnection) -> None:
        """Counted (a caller compares touches before and after), and on the embedded database made to
        follow the spec."""
        self.touches += 1
        if self._embedded is not None and self._follow_spec is not None:
            await self._follow(conn)

    def _lost(self, exc: BaseException) -> DatabaseUnavailable:
        return DatabaseUnavailable(
            f"The connection to {self.describe()} was lost during the call ({self.scrub(_first_line(exc))}); "
            "the database may have restarted or cut it. Call the tool again: a new connection is opened.")

    async def run_read_only(self, work: Callable[[AsyncConnection], Awaitable]):
        """``await work(conn)`` on a pooled connection handed out unchecked: no round trip before the
        call, whatever the pause. If the connection turns out dead (the server restarted, a Neon compute
        suspended, a pooler closed it), the idle ones are dropped and ``work`` runs once more on a new
        connection. Only for work that commits nothing: a retry repeats it whole."""
        import psycopg

        pool = await self.pool()
        for attempt in (1, 2):
            conn, reused = await pool.acquire_reused(check_idle=False)
            try:
                await self._handed_out(conn)
                return await work(conn)
            except psycopg.OperationalError as exc:
                if not (conn.closed or conn.broken):
                    raise
                if reused and attempt == 1:
                    log.info("a pooled connection to %s was closed by the server; the call runs again on a "
                             "new one", self.describe())
                    await pool.drop_idle()
                    continue
                raise self._lost(exc) from None
            finally:
                await pool.release(conn)
        raise AssertionError("unreachable")

    def read_only_later(self, work: Callable[[AsyncConnection], Awaitable[object]]) -> None:
        """``run_read_only(work)`` in a task of its own, off the caller's path: it starts once the call's
        answer has left (``LATER_S``), and only on an idle pooled connection (skipped when none is: it
        never opens one, nor takes one a call could have). A failure is logged, never raised;
        :meth:`close` cancels what still runs."""
        async def later() -> None:
            await anyio.sleep(LATER_S)
            if self._pool is None or not self._pool.has_idle():
                return
            try:
                await self.run_read_only(work)
            except Exception as exc:  # noqa: BLE001 - nobody waits for it: say it, never raise it
                log.info("background work on %s failed: %s", self.describe(), self.scrub(str(exc)))

        task = asyncio.get_running_loop().create_task(later())
        self._later.add(task)  # a strong reference until it ends: the loop keeps only a weak one
        task.add_done_callback(self._later.discard)

    async def close(self) -> None:
        for task in list(self._later):
            task.cancel()
        for task in list(self._later):
            with suppress(BaseException):
                await task
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        if self._embedded is not None:
            await anyio.to_thread.run_sync(self._embedded.stop)
