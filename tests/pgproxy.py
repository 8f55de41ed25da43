"""A PostgreSQL proxy on loopback that puts a distance between a client and the server, and counts the
round trips the client makes (tests/test_round_trip_counts.py, bench/bench_distance.py).

Each direction is delayed by ``delay_s`` (10 ms each way is a 20 ms round trip, as from a laptop to a
Neon region nearby): bytes read on one side are written to the other ``delay_s`` later, in order, so
the delay is latency, not bandwidth.

What the client sends is parsed lightly (the frontend protocol: a type byte and a length; the startup
packets without a type byte) and counted per connection:

* ``round_trips``: the client's turns. A turn is a write by the client carrying a message the server
  answers (Sync, Query, a startup or password message) after the server has written something to it
  since the client's previous turn (or the connection's first). Statements pipelined in one write, or in
  several writes made without waiting, count once; a statement sent after reading the answer to the
  previous one counts again. Faithful when the delay is larger than the time the client takes to write
  a batch (any delay of a millisecond or more).
* ``syncs`` and ``queries``: Sync ('S') and simple Query ('Q') messages; ``executes``: Execute ('E').
* ``writes``: reads the proxy made from the client (about the client's flushes).
* ``connections``: connections opened through the proxy.

The server can be a TCP address or a Unix socket path (the embedded server's ``.s.PGSQL.<port>``).
"""

from __future__ import annotations

import asyncio
import struct
import time
from dataclasses import dataclass, fields

#: Messages the server answers: a client that sends one of these then waits is making a round trip.
_ANSWERED = {ord("S"), ord("Q"), ord("p"), ord("F")}
_SSL_REQUEST, _GSS_REQUEST, _CANCEL = 80877103, 80877104, 80877102
_SPIN_S = 0.0015


@dataclass
class Counts:
    round_trips: int = 0
    syncs: int = 0
    queries: int = 0
    executes: int = 0
    writes: int = 0
    connections: int = 0

    def __sub__(self, other: Counts) -> Counts:
        return Counts(**{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)})

    def copy(self) -> Counts:
        return Counts(**{f.name: getattr(self, f.name) for f in fields(self)})


class _FrontendParser:
    """Splits the client's byte stream into messages; says whether a chunk holds one the server answers."""

    def __init__(self, counts: Counts) -> None:
        self.buf = bytearray()
        self.startup = True  # before the StartupMessage: packets have no type byte
        self.counts = counts

    def feed(self, data: bytes) -> bool:
        self.buf += data
        answered = False
        while True:
            if self.startup:
                if len(self.buf) < 8:
                    return answered
                length, code = struct.unpack_from("!ii", self.buf)
                if len(self.buf) < length:
                    return answered
                del self.buf[:length]
                answered = True  # SSLRequest, GSSENCRequest, StartupMessage: all answered
                if code not in (_SSL_REQUEST, _GSS_REQUEST, _CANCEL):
                    self.startup = False
                continue
            if len(self.buf) < 5:
                return answered
            kind = self.buf[0]
            (length,) = struct.unpack_from("!i", self.buf, 1)
            if len(self.buf) < 1 + length:
                return answered
            del self.buf[:1 + length]
            if kind == ord("S"):
                self.counts.syncs += 1
            elif kind == ord("Q"):
                self.counts.queries += 1
            elif kind == ord("E"):
                self.counts.executes += 1
            answered = answered or kind in _ANSWERED


class PgProxy:
    """``async with PgProxy(target, delay_s=0.01) as proxy``: listens on 127.0.0.1:``proxy.port``."""

    def __init__(self, target: str | tuple[str, int], *, delay_s: float = 0.0, exact: bool = False) -> None:
        self.target = target
        self.delay_s = delay_s
        #: deliver each chunk at its time to within ~0.1 ms (blocking sleeps): for a proxy in a process of
        #: its own (:class:`ProxyProcess`), whose loop serves nothing else
        self.exact = exact
        self.counts = Counts()
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()

    async def __aenter__(self) -> PgProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def snapshot(self) -> Counts:
        return self.counts.copy()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.counts.connections += 1
        if isinstance(self.target, str):
            server_r, server_w = await asyncio.open_unix_connection(self.target)
        else:
            server_r, server_w = await asyncio.open_connection(*self.target)
        state = {"answered": True}  # the server has written to the client since the client's last turn
        parser = _FrontendParser(self.counts)

        def from_client(data: bytes) -> None:
            self.counts.writes += 1
            if parser.feed(data) and state["answered"]:
                self.counts.round_trips += 1
                state["answered"] = False

        def to_client() -> None:
            state["answered"] = True

        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await asyncio.gather(self._pump(client_r, server_w, from_client, None),
                                 self._pump(server_r, client_w, None, to_client))
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # a side closed, or the proxy is shutting down
        finally:
            self._tasks.discard(task)
            for w in (client_w, server_w):
                w.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, on_read, on_written) -> None:
        """Copy ``reader`` to ``writer``, each chunk ``delay_s`` after it was read, in order."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                wait = due - time.monotonic()
                if wait > _SPIN_S:  # the event loop wakes up to a millisecond late: the rest is slept exactly
                    await asyncio.sleep(wait - _SPIN_S)
                if self.exact and (rest := due - time.monotonic()) > 0:
                    time.sleep(rest)  # blocks this loop for at most _SPIN_S: only in a process of its own
                elif not self.exact and wait > 0:
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                writer.write(data)
                await writer.drain()
                if on_written is not None:
                    on_written()

        delivering = asyncio.ensure_future(deliver())
        try:
            while True:
                data = await reader.read(65536)
                if data and on_read is not None:
                    on_read(data)
                queue.put_nowait((time.monotonic() + self.delay_s, data))
                if not data:
                    break
            await delivering
        finally:
            delivering.cancel()


def unix_target(conninfo: str) -> str | tuple[str, int]:
    """Where a conninfo's server listens: its Unix socket path, or (host, port)."""
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(conninfo)
    host, port = parts.get("host") or "/tmp", int(parts.get("port") or 5432)
    if host.startswith("/"):
        return f"{host}/.s.PGSQL.{port}"
    return host, port


def through(conninfo: str, proxy: PgProxy) -> str:
    """``conninfo`` pointed at the proxy (TCP on loopback, no TLS: the proxy only forwards bytes)."""
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(conninfo)
    user, dbname = parts.get("user", "postgres"), parts.get("dbname", "postgres")
    password = f":{parts['password']}" if parts.get("password") else ""
    return f"postgresql://{user}{password}@127.0.0.1:{proxy.port}/{dbname}?sslmode=disable"


class ProxyProcess:
    """A :class:`PgProxy` in a process of its own (``with ProxyProcess(target, delay_s) as proxy``), so
    its timing depends neither on the caller's event loop nor on its GIL: for benches. ``snapshot()``
    asks it for its counts (a pipe round trip, outside anything timed)."""

    def __init__(self, target: str | tuple[str, int], *, delay_s: float) -> None:
        self.target, self.delay_s, self.port = target, delay_s, 0

    def __enter__(self) -> ProxyProcess:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self._pipe, child = ctx.Pipe()
        self._process = ctx.Process(target=_serve_in_process, args=(self.target, self.delay_s, child), daemon=True)
        self._process.start()
        self.port = self._pipe.recv()
        return self

    def snapshot(self) -> Counts:
        self._pipe.send("counts")
        return Counts(**self._pipe.recv())

    def __exit__(self, *exc) -> None:
        self._pipe.send("stop")
        self._process.join(5)
        if self._process.is_alive():
            self._process.kill()


def _serve_in_process(target, delay_s: float, pipe) -> None:
    async def main() -> None:
        async with PgProxy(target, delay_s=delay_s, exact=True) as proxy:
            pipe.send(proxy.port)
            stop = asyncio.Event()

            def answer() -> None:
                if pipe.recv() == "stop":
                    stop.set()
                else:
                    pipe.send({f.name: getattr(proxy.counts, f.name) for f in fields(proxy.counts)})

            asyncio.get_running_loop().add_reader(pipe.fileno(), answer)
            await stop.wait()

    asyncio.run(main())
