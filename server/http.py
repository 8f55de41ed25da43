"""Streamable HTTP: loopback by default; beyond loopback only with allowed hosts and a bearer token.

On loopback the SDK's DNS-rebinding protection already refuses foreign Host headers. Binding to another
address exposes every tool (including run_scoped_query) to the network, so the server then refuses to
start unless both an allowed-hosts list and a bearer token are set, and checks the token on every request.

Bounds (issue 35), each a setting (docs/settings.md):

- Sessions (2025-protocol clients; 2026 requests carry none): the SDK's own cap on live sessions
  (``http_max_sessions``, 503 past it) and idle expiry (``http_session_idle_s``: a session with no
  request in flight that long is closed), and here a cap per client (``http_max_sessions_per_client``,
  429): a client is its bearer token or JWT when it sends one, else its address.
- Slow clients: a connection must send a whole request head within ``http_header_timeout_s`` of opening
  (or of its previous response), and a body may not stall longer than ``http_body_timeout_s`` (408);
  uvicorn answers 503 past ``http_max_connections`` connections or requests in progress.
- Who is calling, for the pool's fair shares (server/fair.py): each request sets :data:`fair.CALLER` to
  its session, or to its TCP connection when it has none.
- Shutdown: SIGTERM and SIGINT stop the server cleanly (:func:`serve_http`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable, Callable], Awaitable[None]]


class HttpConfigError(ValueError):
    """The HTTP options are unsafe or incomplete; the message says which setting to add."""


def check_exposure(host: str, allowed_hosts: list[str], token: str | None, *, verified_tokens: bool = False) -> None:
    """Refuse to serve beyond loopback without allowed hosts and a guard on every request (a static
    bearer token, or JWTs verified against a JWKS: ``verified_tokens``)."""
    if host in LOOPBACK:
        return
    missing = [name for name, value in (("SCHEMA_ARCHITECT_ALLOWED_HOSTS", allowed_hosts),
                                        ("SCHEMA_ARCHITECT_HTTP_TOKEN", token or verified_tokens)) if not value]
    if missing:
        raise HttpConfigError(
            f"--host {host} serves the tools beyond this machine, which needs {' and '.join(missing)}: "
            "set SCHEMA_ARCHITECT_ALLOWED_HOSTS to the host names clients use (comma-separated, e.g. "
            "mcp.example.com:8765) and SCHEMA_ARCHITECT_HTTP_TOKEN to a long random secret that clients "
            "send as 'Authorization: Bearer <token>'. Or keep --host 127.0.0.1."
        )


def require_bearer(app: ASGIApp, token: str) -> ASGIApp:
    """Wrap an ASGI app so every HTTP request must carry ``Authorization: Bearer <token>``."""
    expected = f"Bearer {token}".encode()

    async def guarded(scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, expected):
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"www-authenticate", b'Bearer realm="schema-architect"')]})
                await send({"type": "http.response.body",
                            "body": b'{"error": "missing or wrong bearer token"}'})
                return
        await app(scope, receive, send)

    return guarded


def http_app(server: MCPServer, *, host: str, allowed_hosts: list[str], token: str | None,
             limits: HttpLimits | None = None) -> ASGIApp:
    from mcp.server.transport_security import TransportSecuritySettings

    check_exposure(host, allowed_hosts, token)
    limits = limits or HttpLimits()
    security = None
    if allowed_hosts:
        security = TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=allowed_hosts,
                                             allowed_origins=[f"https://{h}" for h in allowed_hosts]
                                             + [f"http://{h}" for h in allowed_hosts])
    app = server.streamable_http_app(host=host, transport_security=security, max_sessions=limits.max_sessions,
                                     session_idle_timeout=limits.session_idle_s)
    limited = SessionLimits(app, limits)
    return require_bearer(limited, token) if token else limited


@dataclass
class HttpLimits:
    """The HTTP bounds, from the settings (``http_*``, ``shutdown_timeout_s``)."""

    max_sessions: int = 1000
    max_sessions_per_client: int = 100
    session_idle_s: float = 600.0
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_connections: int = 1000
    shutdown_timeout_s: float = 10.0

    @classmethod
    def from_settings(cls, settings) -> HttpLimits:
        return cls(max_sessions=settings.http_max_sessions,
                   max_sessions_per_client=settings.http_max_sessions_per_client,
                   session_idle_s=settings.http_session_idle_s, header_timeout_s=settings.http_header_timeout_s,
                   body_timeout_s=settings.http_body_timeout_s, max_connections=settings.http_max_connections,
                   shutdown_timeout_s=settings.shutdown_timeout_s)


_SESSION_HEADER = b"mcp-session-id"


@dataclass
class _Live:
    client: str
    last_active: float = field(default_factory=time.monotonic)
    in_flight: int = 0


class SessionLimits:
    """ASGI middleware: sessions per client capped, request bodies timed, the caller named for the pool.

    Sessions are seen from outside the SDK: one opens when a request without a session id is answered with
    one, and ends when the SDK answers 404 for it, when it is deleted, or when it has had no request in
    flight for ``session_idle_s`` (the SDK's own idle rule, which closes it at that moment)."""

    def __init__(self, app: ASGIApp, limits: HttpLimits) -> None:
        from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE

        self.app, self.limits = app, limits
        self.max_body = DEFAULT_MAX_REQUEST_BODY_SIZE
        self.sessions: dict[str, _Live] = {}
        self.opening: Counter[str] = Counter()  # initialize requests in flight, per client

    def live(self, client: str | None = None) -> int:
        """Live sessions (of ``client``), expired ones forgotten first."""
        now = time.monotonic()
        for sid in [s for s, live in self.sessions.items()
                    if not live.in_flight and now - live.last_active > self.limits.session_idle_s]:
            del self.sessions[sid]
        return sum(1 for live in self.sessions.values() if client is None or live.client == client)

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from .fair import CALLER

        headers = dict(scope.get("headers") or [])
        sid = headers.get(_SESSION_HEADER, b"").decode("latin-1") or None
        peer = scope.get("client") or ("?", 0)
        CALLER.set(("session", sid) if sid else ("conn", f"{peer[0]}:{peer[1]}"))
        receive, opens = await self._read_body(scope, receive, send)
        if receive is None:
            return
        client = _client_key(headers, peer[0])
        if opens and sid is None:
            if self.live(client) + self.opening[client] >= self.limits.max_sessions_per_client:
                await _reply(send, 429, "Too many open sessions for this client: close some (DELETE) or let them "
                             f"expire ({self.limits.session_idle_s:g} s idle)", [(b"retry-after", b"5")])
                return
            self.opening[client] += 1
        opening = opens and sid is None
        live = self.sessions.get(sid) if sid else None
        if live is not None:
            live.in_flight += 1
        status = 0

        def opened() -> None:  # counted as a live session (or not at all) from now on
            nonlocal opening
            if opening:
                opening = False
                self.opening[client] -= 1
                if not self.opening[client]:
                    del self.opening[client]

        async def watched(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                given = dict(message.get("headers") or []).get(_SESSION_HEADER)
                if sid is None and given and status < 400:
                    self.sessions[given.decode("latin-1")] = _Live(client)
                opened()
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            opened()
            if live is not None:
                live.in_flight -= 1
                live.last_active = time.monotonic()
            if sid and (status == 404 or (scope["method"] == "DELETE" and 200 <= status < 300)):
                self.sessions.pop(sid, None)

    async def _read_body(self, scope: Scope, receive: Callable, send: Callable):
        """The body read ahead, each chunk within ``body_timeout_s``: (a receive that replays it, whether it
        is an initialize request), or (None, False) when it stalled (408) or was too large (413)."""
        if scope["method"] != "POST":
            return receive, False
        chunks, size, more = [], 0, True
        while more:
            message = None
            with anyio.move_on_after(self.limits.body_timeout_s):
                message = await receive()
            if message is None:
                await _reply(send, 408, f"The request body stalled for {self.limits.body_timeout_s:g} s",
                             [(b"connection", b"close")])
                return None, False
            if message["type"] != "http.request":  # the client left
                return None, False
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_body:
                await _reply(send, 413, "Request body too large", [(b"connection", b"close")])
                return None, False
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay, _is_initialize(body)


def _is_initialize(body: bytes) -> bool:
    if b"initialize" not in body:
        return False
    try:
        message = json.loads(body)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("method") == "initialize"


def _client_key(headers: dict, address: str) -> str:
    """A client: its credential (hashed) when it sends one, else its address."""
    if credential := headers.get(b"authorization"):
        return "token:" + hashlib.sha256(credential).hexdigest()[:16]
    return f"address:{address}"


async def _reply(send: Callable, status: int, message: str, headers: list | None = None) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32000, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def timed_protocol(header_timeout_s: float) -> type:
    """uvicorn's h11 protocol, closing a connection whose request head is not whole ``header_timeout_s``
    after it opened or after its previous response (uvicorn alone waits for it forever)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class TimedH11Protocol(H11Protocol):
        _head_timer = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._watch_head()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._watch_head()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._watch_head()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _watch_head(self) -> None:
            waiting = self.conn.their_state is h11.IDLE and not self.transport.is_closing()
            if waiting and self._head_timer is None and self.timeout_keep_alive_task is None:
                self._head_timer = self.loop.call_later(header_timeout_s, self._head_timeout)
            elif not waiting:
                self._disarm()

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timeout(self) -> None:
            self._head_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

    return TimedH11Protocol


def serve_http(server: MCPServer, *, host: str, port: int, allowed_hosts: list[str], token: str | None,
               limits: HttpLimits | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then stop cleanly: no new connections, calls in flight get
    ``shutdown_timeout_s`` to finish (then are cancelled, their queries cancelled in PostgreSQL), the
    server's lifespan closes the pool and stops the embedded PostgreSQL, and this returns (exit code 0)."""
    import uvicorn

    limits = limits or HttpLimits()
    app = http_app(server, host=host, allowed_hosts=allowed_hosts, token=token, limits=limits)
    # A long keep-alive: under load, uvicorn's 5 s default can close a connection just as a client
    # reuses it, and that request is lost (seen in bench/bench_load.py).
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_keep_alive=75,
                            http=timed_protocol(limits.header_timeout_s), limit_concurrency=limits.max_connections,
                            # a float: uvicorn hands it to asyncio.wait_for, which takes one
                            timeout_graceful_shutdown=limits.shutdown_timeout_s,  # type: ignore[arg-type]
                            lifespan="on")
    # uvicorn stops on the signal, then raises it again once it has restored the handlers it found: with
    # Python's defaults the process would die by the signal (SIGTERM) or a KeyboardInterrupt (SIGINT).
    # Handlers that do nothing make that last raise harmless; the shutdown itself is uvicorn's.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _ignore)
    uvicorn.Server(config).run()


def _ignore(_signum: int, _frame: object) -> None:
    pass
