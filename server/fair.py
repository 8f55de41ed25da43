"""Fair use of the pool: who gets the next database connection, and who is told the server is busy.

Every database call takes a slot of the pool (``pool_max_size`` slots) for as long as it holds its
connection. Left to first come, first served, a few slow callers hold every slot: with ten callers
whose queries run into the 5 s statement timeout and a pool of five, everyone else waits seconds for
a 5 ms query (issue 35). Three rules keep the others' latency:

1. **A bound per caller.** A caller (an HTTP session; with verified JWTs, the token's user across all
   of their sessions; over stdio, nobody: the one client owns the server) holds at most
   ``caller_max_calls`` connections at once. A call over that waits its turn, and a caller that already
   has that many calls waiting is answered "busy" at once (:class:`Busy`), not queued without end.
2. **Quick callers keep a reserve.** A caller whose recent calls held their connection for
   ``slow_call_s`` or longer (a moving average of its last calls) is *slow*, and only callers that have
   shown they are quick take the last ``pool_quick_reserve`` free connections (slow ones never; a caller
   without a finished call yet, such as a client that opens a new connection for every call and leaves,
   only when it is not the last reserve): however many slow callers there are, quick calls always find a
   connection within about one quick call's time.
3. **The queue is fair.** When a connection frees up it goes to the waiting caller holding the fewest,
   quick callers before slow ones, then first come first served.

A caller's record (its average, what it holds and awaits) is dropped once it has been idle for
``FORGET_AFTER_S``: sessions come and go, and the table must not grow with them.
"""

from __future__ import annotations

import contextvars
import itertools
import time
from collections.abc import Hashable
from dataclasses import dataclass, field

import anyio

#: Who is calling, as the transport knows it (server/http.py sets it per request; None over stdio).
CALLER: contextvars.ContextVar[Hashable | None] = contextvars.ContextVar("schema_architect_caller", default=None)
#: A caller's record is forgotten after this long without a call.
FORGET_AFTER_S = 600.0
#: Weight of the newest call in a caller's moving average of hold times.
_NEWEST_WEIGHT = 0.5


class Busy(Exception):
    """This caller has as many database calls running and waiting as it may; the message says so."""


@dataclass
class _Record:
    holding: int = 0
    waiting: int = 0
    hold_avg: float | None = None
    last_seen: float = field(default_factory=time.monotonic)


@dataclass(eq=False)
class Ticket:
    """One slot, held by ``caller`` since ``since``."""

    caller: Hashable | None
    since: float = 0.0
    granted: bool = False
    event: anyio.Event = field(default_factory=anyio.Event)
    order: int = 0


class FairGate:
    """``size`` slots shared by callers under the rules of the module docstring."""

    def __init__(self, size: int, *, per_caller: int = 2, quick_reserve: int = 1, slow_s: float = 1.0) -> None:
        self.size = size
        self.per_caller = max(1, per_caller)
        self.quick_reserve = max(0, min(quick_reserve, size - 1))
        self.slow_s = slow_s
        self.in_use = 0
        self._records: dict[Hashable | None, _Record] = {}
        self._waiters: list[Ticket] = []
        self._order = itertools.count()
        self._last_prune = time.monotonic()

    # --- what the pool calls ----------------------------------------------------------------------

    def try_acquire(self, caller: Hashable | None) -> Ticket | None:
        """A slot now, or None (nothing awaited)."""
        record = self._record(caller)
        if self._waiters or not self._admissible(caller, record):
            return None
        return self._grant(Ticket(caller), record)

    async def acquire(self, caller: Hashable | None, timeout: float) -> Ticket | None:
        """A slot; None if none came within ``timeout``. Raises :class:`Busy` when the caller already has
        ``per_caller`` calls waiting."""
        if (ticket := self.try_acquire(caller)) is not None:
            return ticket
        record = self._record(caller)
        if caller is not None and record.waiting >= self.per_caller:
            raise Busy(f"this caller already has {record.holding} database calls running and {record.waiting} "
                       "waiting")
        ticket = Ticket(caller, order=next(self._order))
        self._waiters.append(ticket)
        record.waiting += 1
        self._dispatch()  # slots may be free that the callers ahead of us may not take
        try:
            if not ticket.granted:
                with anyio.move_on_after(timeout):
                    await ticket.event.wait()
        except BaseException:
            if ticket.granted:  # granted just as we were cancelled: give it back
                self.release(ticket)
            raise
        finally:
            if not ticket.granted and ticket in self._waiters:
                self._waiters.remove(ticket)
                record.waiting -= 1
                self._dispatch()  # our place in the queue may have held someone eligible back
        return ticket if ticket.granted else None

    def release(self, ticket: Ticket) -> None:
        """Give the slot back; the next fair waiter gets it. Never raises."""
        if not ticket.granted:
            return
        ticket.granted = False
        now = time.monotonic()
        record = self._record(ticket.caller)
        record.holding -= 1
        held = now - ticket.since
        record.hold_avg = held if record.hold_avg is None else (
            _NEWEST_WEIGHT * held + (1 - _NEWEST_WEIGHT) * record.hold_avg)
        record.last_seen = now
        self.in_use -= 1
        self._dispatch()
        if now - self._last_prune > 60:
            self._prune(now)

    def is_slow(self, caller: Hashable | None) -> bool:
        record = self._records.get(caller)
        return record is not None and record.hold_avg is not None and record.hold_avg >= self.slow_s

    def is_quick(self, caller: Hashable | None) -> bool:
        """Its recent calls were quick (a caller with no finished call has shown nothing yet)."""
        record = self._records.get(caller)
        return record is not None and record.hold_avg is not None and record.hold_avg < self.slow_s

    def stats(self) -> dict:
        """What the gate holds now (for tests and the soak bench)."""
        return {"in_use": self.in_use, "waiting": len(self._waiters), "callers": len(self._records),
                "slow_callers": sum(1 for c in self._records if self.is_slow(c))}

    # --- the rules --------------------------------------------------------------------------------

    def _record(self, caller: Hashable | None) -> _Record:
        record = self._records.get(caller)
        if record is None:
            record = self._records[caller] = _Record()
        return record

    def _admissible(self, caller: Hashable | None, record: _Record) -> bool:
        free = self.size - self.in_use
        if free <= 0:
            return False
        if caller is not None and record.holding >= self.per_caller:
            return False
        return free > self.quick_reserve or self.is_quick(caller)

    def _grant(self, ticket: Ticket, record: _Record) -> Ticket:
        ticket.granted = True
        ticket.since = time.monotonic()
        record.holding += 1
        record.last_seen = ticket.since
        self.in_use += 1
        return ticket

    def _dispatch(self) -> None:
        """Hand free slots to waiters, fairest first."""
        while self._waiters and self.in_use < self.size:
            ranked = sorted(self._waiters, key=lambda t: (self._records[t.caller].holding, self.is_slow(t.caller),
                                                          t.order))
            chosen = next((t for t in ranked if self._admissible(t.caller, self._records[t.caller])), None)
            if chosen is None:
                return
            self._waiters.remove(chosen)
            record = self._records[chosen.caller]
            record.waiting -= 1
            self._grant(chosen, record)
            chosen.event.set()

    def _prune(self, now: float) -> None:
        self._last_prune = now
        for caller in [c for c, r in self._records.items()
                       if not r.holding and not r.waiting and now - r.last_seen > FORGET_AFTER_S]:
            del self._records[caller]


def current_caller(verified_users: bool) -> Hashable | None:
    """Who is calling: the verified token's user when identity binding is on, else what the transport
    said (the HTTP session, or the TCP connection of a request without one), None over stdio."""
    if verified_users:
        from mcp.server.auth.middleware.auth_context import get_access_token

        token = get_access_token()
        if token is not None and token.subject:
            return ("user", token.subject)
    return CALLER.get()
