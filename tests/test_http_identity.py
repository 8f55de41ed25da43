"""run_scoped_query bound to a verified identity over HTTP: Better Auth-style JWTs (EdDSA) signed by a key
made here, checked against a JWKS served here on loopback, by a real `serve --transport http` process."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from schema_architect.server.app import create_server
from schema_architect.server.settings import Settings

from fence import rows_in_fence
from test_http import free_port, http_server

pytestmark = pytest.mark.anyio

ISSUER = AUDIENCE = "https://todo.example"
KID = "better-auth-key-1"
KEY = Ed25519PrivateKey.generate()
OTHER_KEY = Ed25519PrivateKey.generate()
FIXTURE = """
CREATE TABLE users (id text PRIMARY KEY, email text NOT NULL);
CREATE TABLE tasks (id serial PRIMARY KEY, user_id text NOT NULL REFERENCES users(id), title text NOT NULL);
INSERT INTO users VALUES ('alice', 'a@example.com'), ('bob', 'b@example.com');
INSERT INTO tasks (user_id, title) VALUES ('alice', 'alice task'), ('bob', 'BOB_PRIVATE task');
"""


def token(key=KEY, *, sub: str = "alice", aud: str = AUDIENCE, iss: str = ISSUER, exp_in: int = 300,
          algorithm: str = "EdDSA") -> str:
    claims = {"sub": sub, "aud": aud, "iss": iss, "exp": int(time.time()) + exp_in, "iat": int(time.time())}
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": KID})


@pytest.fixture(scope="module")
def jwks_url():
    public = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(KEY.public_key()))
    body = json.dumps({"keys": [{**public, "kid": KID, "alg": "EdDSA", "use": "sig"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/api/auth/jwks"
    server.shutdown()


@pytest.fixture(scope="module")
def todo_url(make_database) -> str:
    return make_database("identity", FIXTURE)


def env(todo_url: str, jwks: str) -> dict[str, str]:
    return {"DATABASE_URL": todo_url, "SCHEMA_ARCHITECT_JWT_JWKS_URL": jwks, "SCHEMA_ARCHITECT_JWT_ISSUER": ISSUER,
            "SCHEMA_ARCHITECT_JWT_AUDIENCE": AUDIENCE}


@pytest.fixture(scope="module")
def served(todo_url: str, jwks_url: str, tmp_path_factory):
    port = free_port()
    with http_server("127.0.0.1", port, tmp_path_factory.mktemp("identity"), **env(todo_url, jwks_url)):
        yield f"http://127.0.0.1:{port}/mcp"


async def query(endpoint: str, bearer: str, arguments: dict):
    async with (httpx2.AsyncClient(headers={"Authorization": f"Bearer {bearer}"}) as http,
                Client(streamable_http_client(endpoint, http_client=http)) as client):
        return await client.call_tool("run_scoped_query", {"sql": "SELECT title FROM tasks", **arguments})


async def test_the_caller_is_the_tokens_subject(served: str) -> None:
    result = await query(served, token(), {})
    assert not result.is_error, result.content
    data = result.structured_content
    assert data["user_id"] == "alice" and data["verified"] is True
    assert rows_in_fence(data) == [["alice task"]]
    same = await query(served, token(), {"user_id": "alice"})
    assert not same.is_error and rows_in_fence(same.structured_content) == [["alice task"]]


async def test_a_user_id_other_than_the_tokens_is_refused(served: str) -> None:
    result = await query(served, token(), {"user_id": "bob"})
    assert result.is_error
    assert "differs from the user of the verified token" in result.content[0].text
    assert "BOB_PRIVATE" not in result.content[0].text


@pytest.mark.parametrize("case", ["expired", "wrong audience", "wrong issuer", "alg none", "wrong key",
                                  "HMAC with the public key", "no token", "garbage"])
async def test_bad_tokens_get_401_before_any_tool_runs(served: str, case: str) -> None:
    public_raw = KEY.public_key().public_bytes(encoding=Encoding.Raw, format=PublicFormat.Raw)
    bearer = {
        "expired": lambda: token(exp_in=-60),
        "wrong audience": lambda: token(aud="https://other.example"),
        "wrong issuer": lambda: token(iss="https://evil.example"),
        "alg none": lambda: token(None, algorithm="none"),
        "wrong key": lambda: token(OTHER_KEY),
        "HMAC with the public key": lambda: token(public_raw, algorithm="HS256"),
        "no token": lambda: None,
        "garbage": lambda: "not.a.jwt",
    }[case]()
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "t", "version": "1"}}}
    async with httpx2.AsyncClient() as http:
        response = await http.post(served, json=init,
                                   headers={**headers, "Accept": "application/json, text/event-stream"})
    assert response.status_code == 401, (case, response.status_code, response.text[:200])


async def test_a_jwks_out_of_reach_refuses_at_once(todo_url: str, tmp_path: Path) -> None:
    port, closed = free_port(), free_port()
    with http_server("127.0.0.1", port, tmp_path, **env(todo_url, f"http://127.0.0.1:{closed}/jwks")):
        # "At once": the client gives up after 5 s (a ReadTimeout fails the test), and a refused
        # connection to the JWKS is answered 401 without retrying it.
        async with httpx2.AsyncClient(timeout=5) as http:
            response = await http.post(f"http://127.0.0.1:{port}/mcp", json={},
                                       headers={"Authorization": f"Bearer {token()}"})
        assert response.status_code == 401


async def test_without_a_token_channel_run_scoped_query_is_refused(todo_url: str, jwks_url: str,
                                                                   tmp_path: Path) -> None:
    """Identity binding on, but called in-process (as over stdio): no token, so no rows for anyone."""
    settings = Settings(project=tmp_path, database_url=todo_url, jwt_jwks_url=jwks_url, jwt_issuer=ISSUER,
                        jwt_audience=AUDIENCE)
    async with Client(create_server(settings)) as client:
        result = await client.call_tool("run_scoped_query", {"sql": "SELECT title FROM tasks", "user_id": "bob"})
    assert result.is_error and "no verified token" in result.content[0].text
