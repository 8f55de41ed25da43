"""Streamable HTTP: a real `schema-architect serve --transport http` process, loopback and guarded."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from conftest import REPO

pytestmark = pytest.mark.anyio

EXE = str(Path(sys.executable).parent / "schema-architect")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextmanager
def http_server(host: str, port: int, project: Path = REPO, **env: str):
    proc = subprocess.Popen([EXE, "--project", str(project), "serve", "--transport", "http", "--host", host,
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "SCHEMA_ARCHITECT_EMBEDDED": "false", **env})
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex((host, port)) == 0:
                    break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_tools_over_http_on_loopback() -> None:
    port = free_port()
    with http_server("127.0.0.1", port):
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            names = {t.name for t in (await client.list_tools()).tools}
            result = await client.call_tool("read_schema_spec", {"tables": ["tasks"]})
        async with Client(f"http://127.0.0.1:{port}/mcp", mode="legacy") as client:  # the 2025 protocol
            legacy = await client.call_tool("read_schema_spec", {"tables": ["tags"]})
    assert {"read_schema_spec", "diff_models_vs_spec", "propose_table", "run_scoped_query"} <= names
    assert result.structured_content["tables"][0]["name"] == "tasks"
    assert legacy.structured_content["tables"][0]["name"] == "tags"


def test_beyond_loopback_refuses_to_start_without_hosts_and_token() -> None:
    proc = subprocess.run([EXE, "--project", str(REPO), "serve", "--transport", "http", "--host", "0.0.0.0"],
                          capture_output=True, text=True, timeout=30,
                          env={**os.environ, "SCHEMA_ARCHITECT_EMBEDDED": "false"})
    assert proc.returncode == 2
    assert "SCHEMA_ARCHITECT_ALLOWED_HOSTS" in proc.stderr and "SCHEMA_ARCHITECT_HTTP_TOKEN" in proc.stderr


async def test_beyond_loopback_needs_the_bearer_token() -> None:
    host = "127.0.0.2"  # loopback range, but not the loopback name: treated as exposed
    port = free_port(host)
    token = "t0ken-for-the-test"
    with http_server(host, port, SCHEMA_ARCHITECT_ALLOWED_HOSTS=f"{host}:{port}",
                     SCHEMA_ARCHITECT_HTTP_TOKEN=token):
        async with httpx2.AsyncClient() as http:
            denied = await http.post(f"http://{host}:{port}/mcp", json={})
            wrong_host = await http.post(f"http://{host}:{port}/mcp", json={},
                                         headers={"Authorization": f"Bearer {token}", "Host": "evil.example"})
        assert denied.status_code == 401
        assert wrong_host.status_code == 421
        async with (httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http,
                    Client(streamable_http_client(f"http://{host}:{port}/mcp", http_client=http)) as client):
            result = await client.call_tool("read_schema_spec", {"tables": ["messages"]})
    assert result.structured_content["tables"][0]["name"] == "messages"
