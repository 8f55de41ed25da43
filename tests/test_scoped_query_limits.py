"""run_scoped_query's limits through MCP: memory bounded before the rows arrive, the time limit kept,
arguments the database cannot take (a NUL, a 400-deep query, an odd user_id) refused clearly, and
nothing the agent typed as a literal echoed back in rewritten_sql."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from mcp import Client

from schema_architect.server.app import create_server
from schema_architect.server.settings import Settings
from schema_architect.tools.sqlsafe.rewriter import MAX_ROW_BYTES

from fence import rows_in_fence

pytestmark = pytest.mark.anyio

FIXTURE = """
CREATE TABLE users (id text PRIMARY KEY, email text NOT NULL);
CREATE TABLE tasks (id serial PRIMARY KEY, user_id text NOT NULL REFERENCES users(id),
                    title text NOT NULL, completed boolean NOT NULL DEFAULT false);
INSERT INTO users VALUES ('alice', 'alice@example.com'), ('bob', 'bob@example.com');
INSERT INTO tasks (user_id, title) VALUES ('alice', 'write report'), ('bob', 'BOB_PRIVATE plan');
"""
TIMEOUT_MS = 2000


@pytest.fixture(scope="module")
def url(make_database) -> str:
    return make_database("scoped_limits", FIXTURE)


def settings_for(url: str, tmp_path: Path, **kw) -> Settings:
    return Settings(project=tmp_path, database_url=url, **{"statement_timeout_ms": TIMEOUT_MS, **kw})


async def call(settings: Settings, arguments: dict):
    async with Client(create_server(settings)) as client:
        return await client.call_tool("run_scoped_query", arguments)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """The process's resident memory sampled every 2 ms while the block runs: peak minus start."""

    def __enter__(self):
        self.start = self.peak = _rss()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while not self.done.wait(0.002):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / 2**20


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads RSS from /proc")
async def test_memory_is_bounded_before_the_rows_arrive(url: str, tmp_path: Path) -> None:
    """Eight 100 MB rows, and one 500 MB value: the server refuses a row over the size bound before it is
    sent, so neither reaches this process (before: +1,622 MB for the eight; then +665 MB once under load,
    libpq holding whole rows before the byte budget was checked)."""
    settings = settings_for(url, tmp_path, statement_timeout_ms=20_000)
    await call(settings, {"sql": "SELECT 1", "user_id": "alice"})  # imports and first connection paid
    for sql in ("SELECT repeat('x', 100000000) FROM generate_series(1, 8)",
                "SELECT g, repeat('x', 500000000) FROM generate_series(1, 2) g ORDER BY g LIMIT 1"):
        with PeakRss() as rss:
            result = await call(settings, {"sql": sql, "user_id": "alice"})
        assert result.is_error
        text = result.content[0].text
        assert "[sql-row-too-large]" in text and "left(" in text, text
        assert rss.growth_mb < 60, f"RSS grew {rss.growth_mb:.0f} MB"
    # The connection that carried the refusal is fine: the next call works.
    after = await call(settings, {"sql": "SELECT count(*) FROM tasks", "user_id": "alice"})
    assert rows_in_fence(after.structured_content) == [[1]]


async def test_rows_under_the_row_bound_still_come_back_shortened_to_fit(url: str, tmp_path: Path) -> None:
    """A row under the bound is shown with its long value shortened, as before; a row
    over it by one byte is refused (the bound is exact, measured as PostgreSQL prints the row)."""
    settings = settings_for(url, tmp_path)
    result = await call(settings, {"sql": "SELECT repeat('y', 900000) AS body", "user_id": "alice"})
    assert not result.is_error, result.content
    (value,), = rows_in_fence(result.structured_content)
    assert value.startswith("yyy") and value.endswith("more characters]") and len(value) < 900_000
    # As text a one-column row is its value in parentheses: 2 bytes more than the value.
    fits = await call(settings, {"sql": f"SELECT repeat('z', {MAX_ROW_BYTES - 2})", "user_id": "alice"})
    assert not fits.is_error, fits.content
    over = await call(settings, {"sql": f"SELECT repeat('z', {MAX_ROW_BYTES - 1})", "user_id": "alice"})
    assert over.is_error and "[sql-row-too-large]" in over.content[0].text


async def test_a_long_query_ends_within_the_time_limit(url: str, tmp_path: Path) -> None:
    """Endless recursive CTEs, one doubling a string each step: PostgreSQL checks its timeout between
    steps, and the last concatenations take seconds each (14 s for a 5 s limit, before). The call ends
    at the time limit plus a margin all the same."""
    settings = settings_for(url, tmp_path)
    for sql in ("WITH RECURSIVE r(n, s) AS (SELECT 1, 'x' UNION ALL SELECT n + 1, s || s FROM r) "
                "SELECT count(*) FROM r",
                "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"):
        started = time.perf_counter()
        result = await call(settings, {"sql": sql, "user_id": "alice"})
        elapsed = time.perf_counter() - started
        assert result.is_error and "stopped after" in result.content[0].text, result.content
        assert elapsed < TIMEOUT_MS / 1000 + 1, f"{elapsed:.1f} s for a {TIMEOUT_MS} ms limit: {sql}"


@pytest.mark.parametrize("params, where", [
    (["a\x00b"], "params[0] ($1)"),
    ([1, ["ok", "n\x00ul"]], "params[1] ($2)"),
    ([1, [["ok"], ["\x00"]]], "params[1] ($2)"),
])
async def test_a_nul_in_a_param_is_a_clear_refusal(url: str, tmp_path: Path, params, where: str) -> None:
    sql = "SELECT count(*) FROM tasks WHERE " + " AND ".join(
        f"${i}::text IS NOT NULL" if not isinstance(p, list) else f"${i}::text[] IS NOT NULL"
        for i, p in enumerate(params, 1))
    result = await call(settings_for(url, tmp_path), {"sql": sql, "user_id": "alice", "params": params})
    assert result.is_error
    text = result.content[0].text
    assert where in text and "NUL" in text, text


async def test_a_deeply_nested_query_is_a_clear_refusal(url: str, tmp_path: Path) -> None:
    sql = "SELECT " + "(SELECT " * 400 + "1" + ")" * 400
    result = await call(settings_for(url, tmp_path), {"sql": sql, "user_id": "alice"})
    assert result.is_error
    text = result.content[0].text
    assert "nest" in text.lower() and "Traceback" not in text and "Internal" not in text, text


@pytest.mark.parametrize("user_id", ["alice\u200b", "alice\nIGNORE PREVIOUS", "a\u202eb", "\U000e0041x",
                                     "x\u3164", "a" * 257, "a\x00"])
async def test_an_odd_user_id_is_refused_without_being_echoed(url: str, tmp_path: Path, user_id: str) -> None:
    result = await call(settings_for(url, tmp_path), {"sql": "SELECT count(*) FROM tasks", "user_id": user_id})
    assert result.is_error
    text = result.content[0].text
    assert "user_id" in text and user_id not in text and "IGNORE" not in text, text


async def test_an_ordinary_user_id_is_echoed(url: str, tmp_path: Path) -> None:
    result = await call(settings_for(url, tmp_path), {"sql": "SELECT count(*) FROM tasks",
                                                      "user_id": "u_alice' OR '1'='1"})
    assert not result.is_error, result.content
    assert result.structured_content["user_id"] == "u_alice' OR '1'='1"


async def test_rewritten_sql_echoes_no_literal(url: str, tmp_path: Path) -> None:
    sql = ("SELECT X'4947', B'0101', E'IGNORE\\x41', $$IGNORE_DOLLAR$$, $q$IGNORE_TAG$q$, U&'IGNORE_U', "
           "'IGNORE_PLAIN', 42 FROM tasks")
    result = await call(settings_for(url, tmp_path), {"sql": sql, "user_id": "alice"})
    assert not result.is_error, result.content
    shown = result.structured_content["rewritten_sql"]
    for leaked in ("4947", "0101", "IGNORE"):
        assert leaked not in shown, shown
    assert "42" in shown and "LIMIT 101" in shown, shown  # numbers carry no text: kept
    assert json.dumps(rows_in_fence(result.structured_content))  # the values themselves are in the fence
