"""stdio without worker threads: the SDK's framing over the event loop's own pipe transports.

The SDK's ``stdio_server()`` reads stdin and writes stdout through ``anyio.wrap_file``, which hands
every line read and every write and flush to a worker thread: three thread hops per tool call, about
a third of a bare call's time over stdio (bench/bench_scoped_query.py measures both). Here the same
SDK loop gets stdin and stdout as asyncio pipe transports, read and written on the event loop, and
without the SDK transport's relay tasks either: the loop reads each message where it asks for one
(``_Messages``) and a reply is written where it is sent (``_Replies``), two task hops fewer per call
(0.10-0.16 ms at a 20 ms RTT, bench/figures.md).

As the SDK does, fd 0 is pointed at the null device and fd 1 at stderr while serving, so a print or
a child process cannot write into the protocol stream; the wire is served from private duplicates.
When stdin or stdout is not a pipe or socket (a terminal, a regular file), the SDK's own transport
runs instead.

SIGTERM and SIGINT end the session as stdin's end does: calls in flight are cancelled (their queries
cancelled in PostgreSQL, tools/database/pipeline.py), the server's lifespan closes the pool and stops
the embedded PostgreSQL, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import threading
from contextlib import asynccontextmanager, suppress

import anyio
from mcp.shared.message import SessionMessage
from mcp_types import jsonrpc_message_adapter

#: The longest line (one JSON-RPC message) read from stdin; a longer one ends the session.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class _Messages:
    """stdin as the SDK's ``ReadStream``: each line one JSON-RPC message, or the error that parsing it
    raised (as the SDK's own stdin reader passes it on). Read where the server's loop asks for it: no
    task and no memory stream between the pipe and the server."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    async def receive(self) -> SessionMessage | Exception:
        line = await self._reader.readline()
        if not line:
            raise anyio.EndOfStream
        try:
            return SessionMessage(jsonrpc_message_adapter.validate_json(line.decode("utf-8", errors="replace"),
                                                                        by_name=False))
        except Exception as exc:  # noqa: BLE001 - the SDK's loop answers it, as over its own transport
            return exc

    def __aiter__(self) -> _Messages:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        """The pipe is closed by :func:`_claimed_stdio`."""

    async def __aenter__(self) -> _Messages:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class _Replies:
    """stdout as the SDK's ``WriteStream``: each message serialized and written whole where it is sent
    (one message never interleaves with another), no writer task between; ``send`` waits only while
    the client reads slower than the server writes."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._closed = False

    async def send(self, message: SessionMessage) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        self._writer.write(message.message.model_dump_json(by_alias=True, exclude_unset=True).encode() + b"\n")
        await self._writer.drain()

    async def aclose(self) -> None:
        self._closed = True  # the pipe itself is closed by _claimed_stdio

    async def __aenter__(self) -> _Replies:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _pipes() -> bool:
    """stdin and stdout are pipes or sockets (as an MCP client spawns us), and stdout is not stderr.

    The pipe transports put their file descriptions in non-blocking mode; a terminal's is usually
    shared by stdin, stdout and stderr, where that would reach everything else writing to stderr.
    """
    if os.name != "posix":
        return False
    try:
        modes = [os.fstat(fd) for fd in (0, 1, 2)]
    except OSError:
        return False
    out, err = modes[1], modes[2]
    return (all(stat.S_ISFIFO(m.st_mode) or stat.S_ISSOCK(m.st_mode) for m in modes[:2])
            and (out.st_dev, out.st_ino) != (err.st_dev, err.st_ino))


@asynccontextmanager
async def _claimed_stdio():
    """(stdin's messages, stdout's replies) on private duplicates of fd 0 and 1; both restored on exit."""
    wire_in, wire_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_MESSAGE_BYTES)
    transports: list[asyncio.BaseTransport] = []
    try:
        read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(os.dup(wire_in), "rb", buffering=0))
        transports.append(read_transport)
        write_transport, protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, os.fdopen(os.dup(wire_out), "wb", buffering=0))
        transports.append(write_transport)
        yield _Messages(reader), _Replies(asyncio.StreamWriter(write_transport, protocol, None, loop))
    finally:
        for transport in reversed(transports):
            with suppress(Exception):
                transport.close()
        for fd, wire in ((0, wire_in), (1, wire_out)):
            with suppress(OSError):
                os.set_blocking(wire, True)  # the transports made the shared description non-blocking
                os.dup2(wire, fd)
            os.close(wire)


async def serve_stdio(server) -> None:
    """Serve ``server`` (an MCPServer) over this process's stdin and stdout until stdin ends or the
    process gets SIGTERM or SIGINT."""
    async with anyio.create_task_group() as tg:
        if threading.current_thread() is threading.main_thread():
            await tg.start(_stop_on_signal, tg.cancel_scope)
        await _serve_stdio(server)
        tg.cancel_scope.cancel()


async def _stop_on_signal(scope: anyio.CancelScope, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        task_status.started()
        async for _ in signals:
            scope.cancel()
            return


def lowlevel_server(server):
    """The SDK's low-level ``Server`` that ``MCPServer.run_stdio_async`` runs, or None.

    The one private SDK name the server uses: ``MCPServer`` has no public accessor for it, and
    ``run_stdio_async`` takes no streams. tests/test_stdio.py fails loudly when an SDK release renames it
    or changes what it offers (then this falls back to the SDK's own stdio transport)."""
    lowlevel = getattr(server, "_lowlevel_server", None)
    runs = all(callable(getattr(lowlevel, name, None)) for name in ("run", "create_initialization_options"))
    return lowlevel if runs else None


async def _serve_stdio(server) -> None:
    lowlevel = lowlevel_server(server)
    if lowlevel is None or not _pipes():
        await server.run_stdio_async()
        return
    async with _claimed_stdio() as (messages, replies):
        await lowlevel.run(messages, replies, lowlevel.create_initialization_options())
