"""Streamable HTTP: loopback by default; beyond loopback only with allowed hosts and a bearer token.

On loopback the SDK's DNS-rebinding protection already refuses foreign Host headers. Binding to another
address exposes every tool (including run_scoped_query) to the network, so the server then refuses to
start unless both an allowed-hosts list and a bearer token are set, and checks the token on every request.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

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


def http_app(server: MCPServer, *, host: str, allowed_hosts: list[str], token: str | None) -> ASGIApp:
    from mcp.server.transport_security import TransportSecuritySettings

    check_exposure(host, allowed_hosts, token)
    security = None
    if allowed_hosts:
        security = TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=allowed_hosts,
                                             allowed_origins=[f"https://{h}" for h in allowed_hosts]
                                             + [f"http://{h}" for h in allowed_hosts])
    app = server.streamable_http_app(host=host, transport_security=security)
    return require_bearer(app, token) if token else app


def serve_http(server: MCPServer, *, host: str, port: int, allowed_hosts: list[str], token: str | None) -> None:
    import uvicorn

    app = http_app(server, host=host, allowed_hosts=allowed_hosts, token=token)
    # A long keep-alive: under load, uvicorn's 5 s default can close a connection just as a client
    # reuses it, and that request is lost (seen in bench/bench_load.py).
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_keep_alive=75)
