"""tools/database/pipeline.py: statements sent in one write, one implicit transaction, results in order.

Each test runs on a real PostgreSQL and checks what a cursor would have given: types, errors with their
SQLSTATE, the connection idle afterwards, and, when the exchange is cut short, the statement cancelled in
PostgreSQL and the connection drained back to idle (or closed when its state is unknown).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import anyio
import psycopg
import pytest

from schema_architect.tools.database.pipeline import run_batch, run_script

pytestmark = pytest.mark.anyio


@pytest.fixture(params=[True, False], ids=["autocommit", "no-autocommit"])
async def conn(pg_url: str, request: pytest.FixtureRequest):
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=request.param) as conn:
        yield conn


async def test_results_come_back_in_order_with_the_types_a_cursor_gives(conn) -> None:
    first, second, third = await run_batch(conn, [
        ("SELECT $1::int + 1 AS n, $2::text AS t", [41, "x"]),
        ("SELECT $1::numeric AS d, timestamptz '2025-01-02 03:04:05+00' AS at, $2::int[] AS ids",
         [Decimal("1.50"), [1, 2]]),
        ("ROLLBACK", ()),
    ])
    assert first.columns == [("n", 23), ("t", 25)] and first.rows == [(42, "x")]
    assert second.rows == [(Decimal("1.50"), dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC), [1, 2])]
    assert third.rows == [] and third.error is None and not third.aborted
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


async def test_the_statements_share_one_implicit_transaction_and_no_begin_is_added(conn) -> None:
    setting, seen, _ = await run_batch(conn, [
        ("SELECT set_config('transaction_read_only', 'on', true)", ()),
        ("SELECT current_setting('transaction_read_only'), txid_current_if_assigned() IS NULL", ()),
        ("ROLLBACK", ()),
    ])
    assert setting.error is None and seen.rows == [("on", True)]
    cur = await conn.execute("SELECT current_setting('transaction_read_only')")
    assert (await cur.fetchone())[0] == "off"  # it ended with the batch
    if not conn.autocommit:
        await conn.rollback()


async def test_a_failing_statement_is_reported_and_the_rest_are_aborted(conn) -> None:
    ok, failed, after = await run_batch(conn, [
        ("SELECT 1", ()),
        ("SELECT 1 / $1::int", [0]),
        ("SELECT 2", ()),
    ])
    assert ok.rows == [(1,)]
    assert isinstance(failed.error, psycopg.errors.DivisionByZero) and failed.error.sqlstate == "22012"
    assert after.aborted and after.rows == []
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    (again,) = await run_batch(conn, [("SELECT 3", ())])  # usable at once
    assert again.rows == [(3,)]


async def test_max_rows_loads_no_more_and_large_messages_go_both_ways(conn) -> None:
    big = "x" * 3_000_000  # larger than any socket buffer: several writes and reads
    capped, echoed = await run_batch(conn, [
        ("SELECT g FROM generate_series(1, 10000) g", ()),
        ("SELECT length($1::text), repeat('y', 2000000) AS y", [big]),
    ], max_rows=5)
    assert capped.rows == [(1,), (2,), (3,), (4,), (5,)]
    assert echoed.rows[0][0] == 3_000_000 and len(echoed.rows[0][1]) == 2_000_000


async def _backend_state(pg_url: str, pid: int) -> str | None:
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as other:
        cur = await other.execute("SELECT state || ':' || query FROM pg_stat_activity WHERE pid = %s", (pid,))
        row = await cur.fetchone()
    return row[0] if row else None


async def test_a_call_cancelled_mid_way_cancels_the_query_in_postgresql(conn, pg_url: str) -> None:
    """Issue 35: closing the socket alone left the backend sleeping until the statement timeout while the
    pool opened another connection. Now a cancel request ends it, and the connection comes back idle."""
    pid = conn.pgconn.backend_pid
    started = anyio.current_time()
    with anyio.move_on_after(0.2) as scope:
        await run_batch(conn, [("SELECT pg_sleep(30)", ())])
    assert scope.cancelled_caught and anyio.current_time() - started < 2
    assert not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert not (await _backend_state(pg_url, pid) or "").startswith("active")
    (again,) = await run_batch(conn, [("SELECT 3", ())])  # and it is usable at once
    assert again.rows == [(3,)]


async def test_a_connection_that_cannot_be_drained_is_closed_after_its_cancel(conn, pg_url: str,
                                                                              monkeypatch) -> None:
    from schema_architect.tools.database import pipeline

    async def refuse(*_args, **_kwargs) -> bool:
        return False

    monkeypatch.setattr(pipeline, "cancel_and_drain", refuse)
    with anyio.move_on_after(0.2):
        await run_batch(conn, [("SELECT pg_sleep(30)", ())])
    assert conn.closed


async def test_a_busy_connection_is_refused(pg_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(pg_url) as conn:  # not autocommit: BEGIN is sent
        await conn.execute("SELECT 1")
        with pytest.raises(ValueError, match="idle connection"):
            await run_batch(conn, [("SELECT 1", ())])


async def test_a_value_psycopg_cannot_adapt_is_refused_before_anything_is_sent(conn) -> None:
    with pytest.raises(psycopg.ProgrammingError):
        await run_batch(conn, [("SELECT 1", ()), ("SELECT $1", [object()])])
    assert not conn.closed
    (again,) = await run_batch(conn, [("SELECT 1", ())])
    assert again.rows == [(1,)]


async def test_copy_is_refused_and_gives_the_connection_up(conn) -> None:
    with anyio.fail_after(5), pytest.raises(psycopg.OperationalError, match="COPY"):
        await run_batch(conn, [("COPY (SELECT 1) TO STDOUT", ()), ("SELECT 1", ())])
    assert conn.closed


#: A small statement, one of 100 MB, a small one: for a byte budget of 1 MB.
OVER_A_MEGABYTE = [
    ("SELECT 1", ()),
    ("SELECT g, repeat('x', 100000) FROM generate_series(1, 1000) g", ()),
    ("SELECT 2", ()),
]


async def test_streamed_rows_stop_at_the_byte_budget_and_give_the_connection_up(conn) -> None:
    """Reading stops once more than max_bytes arrived: the rows so far, ``cut``, the rest never awaited."""
    with anyio.fail_after(10):
        first, big, after = await run_batch(conn, OVER_A_MEGABYTE, max_bytes=1_000_000)
    assert first.rows == [(1,)] and not first.cut
    assert big.cut and len(big.rows) < 20 and [r[0] for r in big.rows] == list(range(1, len(big.rows) + 1))
    assert after.aborted
    assert not conn.closed  # the rest was cancelled in PostgreSQL and drained
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


async def test_a_single_value_larger_than_the_budget_is_cut(conn) -> None:
    """Reading stops at the budget, and nothing after that value is read. The value itself may have been
    taken whole already: libpq reads a message to its end in one call when the bytes keep coming (the
    per-value gap in docs/security.md), so whether the row is kept depends on timing, not on us."""
    with anyio.fail_after(10):
        (huge,) = await run_batch(conn, [("SELECT repeat('x', 300000000), g FROM generate_series(1, 3) g", ())],
                                  max_bytes=1_000_000)
    assert huge.cut and len(huge.rows) <= 1 and conn.closed


async def test_streaming_within_the_budget_gives_what_loading_gives(conn) -> None:
    capped, typed, _ = await run_batch(conn, [
        ("SELECT g FROM generate_series(1, 10000) g", ()),
        ("SELECT $1::numeric AS d, $2::int[] AS ids", [Decimal("1.50"), [1, 2]]),
        ("ROLLBACK", ()),
    ], max_rows=250, max_bytes=1_000_000)
    assert capped.rows == [(g,) for g in range(1, 251)] and not capped.cut  # past max_rows: dropped, not cut
    assert typed.columns == [("d", 1700), ("ids", 1007)] and typed.rows == [(Decimal("1.50"), [1, 2])]
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE and not conn.closed
    failed, aborted = await run_batch(conn, [("SELECT 1 / g FROM generate_series(3, -3, -1) g", ()),
                                             ("SELECT 2", ())], max_bytes=1_000_000)
    assert isinstance(failed.error, psycopg.errors.DivisionByZero) and aborted.aborted
    assert not conn.closed


async def test_the_client_deadline_ends_a_statement_the_server_cannot_interrupt(conn) -> None:
    """PostgreSQL's own timeout cannot stop a step in the middle; past ``timeout`` the client stops waiting."""
    started = anyio.current_time()
    ok, slow = await run_batch(conn, [("SELECT 1", ()), ("SELECT pg_sleep(5)", ())], timeout=0.5)
    assert anyio.current_time() - started < 1.5
    # PostgreSQL holds the first result until the Sync (or a full buffer): nothing had arrived, so the
    # statement being read, the first, fails and the rest never ran.
    assert isinstance(ok.error, psycopg.errors.QueryCanceled) and slow.aborted
    assert not conn.closed  # pg_sleep answers the cancel request: drained, idle again
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


async def test_reset_runs_after_a_failure_in_its_own_transaction_in_the_same_write(conn) -> None:
    """The reset segment follows its own Sync: a failed statement aborts only the rest of its segment."""
    first, _ = await run_batch(conn, [("SELECT pg_advisory_lock(99), 1 / (random() * 0)::int", ()), ("SELECT 1", ())],
                               reset=("SELECT pg_advisory_unlock_all()",))
    assert first.error is not None
    cur = await conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
    assert (await cur.fetchone())[0] == 0
    if not conn.autocommit:
        await conn.rollback()


async def test_a_failing_reset_closes_the_connection(conn) -> None:
    (ok,) = await run_batch(conn, [("SELECT 1", ())], reset=("SELECT 1 / 0",))
    assert ok.rows == [(1,)]
    assert conn.closed  # its state is unknown: the pool drops it


async def test_a_deadline_during_the_reset_keeps_every_result(conn) -> None:
    """The statements are done and only the reset is still running when the deadline comes: their
    results stand (no extra one appended), and the connection, in an unknown state, is closed."""
    (ok,) = await run_batch(conn, [("SELECT 1", ())], reset=("SELECT pg_sleep(2)",), timeout=0.5)
    assert ok.rows == [(1,)] and ok.error is None
    assert conn.closed


async def test_join_transaction_runs_in_the_callers_open_transaction(pg_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(pg_url) as conn:  # not autocommit: BEGIN is sent
        cur = await conn.execute("SELECT txid_current()")
        (txid,) = await cur.fetchone()
        (seen,) = await run_batch(conn, [("SELECT txid_current()", ())], join_transaction=True)
        assert seen.rows == [(txid,)]
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS  # still the caller's
        with pytest.raises(ValueError, match="idle connection"):  # a reset would end the caller's transaction
            await run_batch(conn, [("SELECT 1", ())], join_transaction=True, reset=("ROLLBACK",))
        await conn.rollback()


async def test_a_script_is_one_query_message_whose_dollar_parameters_stay_unbound(conn) -> None:
    """run_script: what the extended protocol cannot carry, an EXPLAIN (GENERIC_PLAN) of a query with $1."""
    if conn.info.server_version < 160000:
        pytest.skip("EXPLAIN (GENERIC_PLAN) is PostgreSQL 16+")
    plain, plan, text = await run_script(conn, [
        "SELECT 41 + 1 AS n, NULL::text AS nothing -- a trailing comment swallows nothing",
        "EXPLAIN (FORMAT JSON, GENERIC_PLAN) SELECT relname FROM pg_class WHERE oid = $1",
        "SELECT 'x'::text",
    ])
    assert plain.rows == [["42", None]] and [name for name, _ in plain.columns] == ["n", "nothing"]
    assert '"Plan"' in plan.rows[0][0] and text.rows == [["x"]]
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


async def test_a_script_stops_at_its_first_error(conn) -> None:
    ok, failed, after = await run_script(conn, ["SELECT 1", "SELECT 1 / 0", "SELECT 2"])
    assert ok.rows == [["1"]]
    assert isinstance(failed.error, psycopg.errors.DivisionByZero) and failed.error.sqlstate == "22012"
    assert after.aborted and after.error is None
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


async def test_a_script_inside_a_transaction_leaves_its_state_to_the_caller(conn) -> None:
    _, _, failed = await run_script(conn, ["BEGIN", "SAVEPOINT s", "SELECT 1 / 0"])
    assert failed.error is not None
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
    await run_script(conn, ["ROLLBACK"])
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


async def test_a_script_cancelled_mid_way_cancels_the_query_in_postgresql(conn) -> None:
    with anyio.move_on_after(0.2) as scope:
        await run_script(conn, ["SELECT pg_sleep(30)"])
    assert scope.cancelled_caught
    assert not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    (again,) = await run_script(conn, ["SELECT 1"])
    assert again.rows == [["1"]]


async def test_psycopg_adapter_matches_the_library(conn) -> None:
    """The one use of psycopg pieces without documented API (tools/database/psycopg_adapter.py): if psycopg
    changes them, this fails naming the installed version, and the adapter is the one place to fix."""
    from schema_architect.tools.database import psycopg_adapter

    where = (f"psycopg {psycopg.__version__} differs from what tools/database/psycopg_adapter.py was written "
             f"for (psycopg {psycopg_adapter.TESTED_WITH})")
    values = [41, "x", Decimal("1.50"), [1, 2], None, dt.date(2025, 1, 2)]
    try:
        adapter = psycopg_adapter.Adapter(conn)
        dumped, types, formats = adapter.dump(values)
        sql = "SELECT $1::int + 1, $2::text, $3::numeric, $4::int[], $5::text, $6::date"
        result = conn.pgconn.exec_params(sql.encode(), dumped, param_types=types, param_formats=formats)
        loaded = adapter.load(result, 1)
        failed = conn.pgconn.exec_(b"SELECT 1 / 0")
        error = psycopg_adapter.error_from_result(failed, conn.info.encoding)
    except (AttributeError, ImportError, TypeError) as exc:
        pytest.fail(f"{where}: {type(exc).__name__}: {exc}")
    cur = await conn.execute("SELECT %s::int + 1, %s::text, %s::numeric, %s::int[], %s::text, %s::date", values)
    assert loaded == [await cur.fetchone()], f"{where}: rows load differently from a cursor's"
    assert psycopg_adapter.param_types(conn, values) == tuple(types), where
    assert isinstance(error, psycopg.errors.DivisionByZero) and error.diag.message_primary, where
    if not conn.autocommit:
        await conn.rollback()


def test_tools_reach_the_database_one_way() -> None:
    """Issue 32: one batch API (this module's), no second route to libpq, psycopg internals in one adapter.

    Plain ``conn.execute`` of a one-off statement stays allowed (pipeline.py's docstring says when)."""
    import re
    from pathlib import Path

    tools = Path(__file__).resolve().parents[1] / "tools"
    allowed = {"database/pipeline.py": {"pgconn", ".pipeline(", "error_from_result"},  # (its docstring: why not)
               "database/psycopg_adapter.py": {"pgconn", "Transformer", "error_from_result"}}
    forbidden = {
        ".pipeline(": r"\.pipeline\(", "pgconn": r"\bpgconn\b", "psycopg.generators": r"psycopg\.generators",
        "Transformer": r"\bTransformer\b", "error_from_result": r"\berror_from_result\b",
        "conn.cursor(": r"\bconn\.cursor\(", "conn.lock": r"\bconn\.lock\b", "conn.wait(": r"\bconn\.wait\(",
    }
    found = []
    for path in sorted(tools.rglob("*.py")):
        where = path.relative_to(tools).as_posix()
        text = path.read_text(encoding="utf-8")
        for name, pattern in forbidden.items():
            if name not in allowed.get(where, set()) and re.search(pattern, text):
                found.append(f"{where}: {name}")
    assert not found, "send statements with tools/database/pipeline.py (run_batch, run_script): " + ", ".join(found)


def test_queries_are_files_read_once_and_composed_whole() -> None:
    from schema_architect.tools.database.queries import compose, query

    assert query("hypopg_reset.sql") is query("hypopg_reset.sql")  # read once
    assert not query("hypopg_reset.sql").startswith("--")  # the file's header stays home
    # a fragment goes in whole: its braces and trailing comment are its own, not slots or the template's end
    assert compose("SELECT {a} AS x", a="'{1,2}'::int[] -- c\n") == "SELECT '{1,2}'::int[] -- c\n AS x"


async def test_over_tcp_the_kernel_counts_the_bytes_and_the_budget_holds(pg_url: str) -> None:
    """On TCP the bytes received are the kernel's count (tcpi_bytes_received), read through a socket
    object that borrows libpq's descriptor: the budget holds as on a Unix socket, and the descriptor
    stays libpq's (the connection goes on after every reading of it)."""
    from schema_architect.tools.database.pipeline import _Meter

    from pgproxy import ProxyProcess, through, unix_target

    with ProxyProcess(unix_target(pg_url), delay_s=0) as proxy:
        async with await psycopg.AsyncConnection.connect(through(pg_url, proxy), autocommit=True) as conn:
            assert _Meter(conn.pgconn.socket).exact
            for _ in range(3):
                (small,) = await run_batch(conn, [("SELECT repeat('x', 1000)", ())], max_bytes=1_000_000)
                assert small.rows == [("x" * 1000,)] and not small.cut and not conn.closed
            with anyio.fail_after(10):
                _, big, after = await run_batch(conn, OVER_A_MEGABYTE, max_bytes=1_000_000)
            assert big.cut and len(big.rows) < 20 and after.aborted  # (then drained, or closed past DRAIN_MAX_BYTES)
    if (psycopg.conninfo.conninfo_to_dict(pg_url).get("host") or "").startswith("/"):
        async with await psycopg.AsyncConnection.connect(pg_url) as unix:
            assert not _Meter(unix.pgconn.socket).exact  # a Unix socket: counted around each read instead
