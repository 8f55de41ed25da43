"""server/stdio.py: the threadless stdio transport `schema-architect serve` uses.

Spawned as an MCP client spawns it (pipes); what the tools or their child processes write to stdout
goes to stderr, never into the protocol; a message far larger than asyncio's 64 KB line default
passes; with stdin a regular file the SDK's own transport serves instead.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

pytestmark = pytest.mark.anyio

SERVER = Path(__file__).parent / "fixtures" / "stdio" / "noisy_server.py"

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def _call(text: str, id_: int = 2) -> dict:
    return {"jsonrpc": "2.0", "id": id_, "method": "tools/call",
            "params": {"name": "noisy", "arguments": {"text": text}}}


def _session_input(*messages: dict) -> bytes:
    return b"".join(json.dumps(m).encode() + b"\n" for m in (INITIALIZE, INITIALIZED) + messages)


async def test_a_client_session_is_not_corrupted_by_writes_to_stdout() -> None:
    big = "x" * (3 * 1024 * 1024)  # one JSON-RPC line of 3 MB each way
    async with Client(StdioServerParameters(command=sys.executable, args=[str(SERVER)])) as client:
        small = await client.call_tool("noisy", {"text": "hi"})
        large = await client.call_tool("noisy", {"text": big})
    assert not small.is_error and small.structured_content == {"length": 2}
    assert not large.is_error and large.structured_content == {"length": len(big)}


def test_over_pipes_the_noise_goes_to_stderr_and_stdout_is_given_back() -> None:
    proc = subprocess.Popen([sys.executable, str(SERVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    try:
        proc.stdin.write(_session_input(_call("abc")))
        proc.stdin.flush()
        answered = []
        while len(answered) < 2 and (line := proc.stdout.readline()):
            answered.append(json.loads(line))  # every line before the answers must be JSON-RPC
        proc.stdin.close()  # end of input ends the session (in-flight calls are cancelled by the SDK)
        rest, err = proc.stdout.read(), proc.stderr.read()
        proc.wait()
    finally:
        watchdog.cancel()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert [m.get("id") for m in answered] == [1, 2]
    assert answered[1]["result"]["structuredContent"] == {"length": 3}
    assert rest.decode() == "served and returned\n"  # no noise; fd 1 given back after serving
    for noise in ("print noise", "fd 1 noise", "child noise", "child stderr"):
        assert noise in err.decode()


def test_with_stdin_a_regular_file_the_sdk_transport_serves(tmp_path: Path) -> None:
    requests = tmp_path / "requests.jsonl"
    requests.write_bytes(_session_input())
    with requests.open("rb") as stdin:
        done = subprocess.run([sys.executable, str(SERVER)], stdin=stdin, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    lines = done.stdout.decode().splitlines()
    assert json.loads(lines[0])["result"]["serverInfo"]["name"] == "noisy"
    assert lines[1:] == ["served and returned"]


def test_the_sdk_still_runs_the_lowlevel_server_stdio_reaches() -> None:
    """server/stdio.py reaches one private SDK name (MCPServer has no public accessor for the low-level
    server, and run_stdio_async takes no streams): if an SDK release renames it or runs something else,
    stdio would silently fall back to the SDK's threaded transport. Fail loudly here instead."""
    import inspect

    from mcp.server.mcpserver import MCPServer

    from schema_architect.server.stdio import lowlevel_server

    server = MCPServer("probe")
    lowlevel = lowlevel_server(server)
    assert lowlevel is not None, "MCPServer._lowlevel_server is gone: update server/stdio.py's lowlevel_server"
    assert "self._lowlevel_server.run(" in inspect.getsource(MCPServer.run_stdio_async), (
        "run_stdio_async no longer runs _lowlevel_server: check what server/stdio.py serves still matches it")
    assert list(inspect.signature(lowlevel.run).parameters)[:3] == [
        "read_stream", "write_stream", "initialization_options"], "Server.run no longer takes our streams"


def test_a_line_that_is_not_json_rpc_is_answered_and_the_session_goes_on() -> None:
    """What the SDK's own transport does with a line it cannot parse: the loop gets the error, answers
    it, and reads on; the next call is served."""
    proc = subprocess.Popen([sys.executable, str(SERVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    try:
        proc.stdin.write(_session_input() + b"this is not json\n" + json.dumps(_call("abcd")).encode() + b"\n")
        proc.stdin.flush()
        answered = []
        while not any(m.get("id") == 2 for m in answered) and (line := proc.stdout.readline()):
            answered.append(json.loads(line))
        proc.stdin.close()
        err = proc.stderr.read()
        proc.wait()
    finally:
        watchdog.cancel()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert answered[0]["id"] == 1 and answered[-1]["id"] == 2
    assert answered[-1]["result"]["structuredContent"] == {"length": 4}
    assert all("error" in m for m in answered[1:-1]), answered
