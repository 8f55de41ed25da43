"""What a tool gets from whoever runs it, and what a tool says about itself: no MCP here.

Each tool's folder has a ``tool.py`` with the tool at module level: an async function whose first
parameter is a :class:`ToolCall` and whose other parameters are the tool's arguments exactly as an agent
passes them (``Annotated`` pydantic ``Field``s), and a :class:`ToolSpec` named ``TOOL`` beside it: title,
hints, the result model and its :class:`~.shape.Shape`. The server (server/tooling.py) implements
``ToolCall`` from the SDK's request context and registers every ``TOOL`` of its list the same way, so a new
tool is its folder and one line there (docs/architecture.md, "Adding a tool").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from .errors import AgentError
from .shape import Shape

T = TypeVar("T")


class ToolSettings(Protocol):
    """The settings tools read (server/settings.py has them all, with their descriptions)."""

    project: Path
    spec_path: str
    models: str | None
    owner_column: str
    shared_tables: list[str]
    sensitive_columns: list[str]
    scoped_role: str | None
    refuse_owner_role: bool
    statement_timeout_ms: int
    models_timeout_s: float
    page_bytes: int
    jwt_jwks_url: str | None
    #: Secrets (pydantic SecretStr) or None: tools only ask whether one is set.
    database_url: Any
    direct_database_url: Any


class DatabaseHandle(Protocol):
    """A configured database, connected on first use (server/db.py's Database)."""

    @property
    def configured(self) -> bool: ...

    @property
    def is_embedded(self) -> bool: ...

    #: Connections handed out so far: a result says what the embedded database holds when it changed.
    touches: int
    #: The embedded database's state (tools/project/scratch.py), None until it was first used.
    embedded_state: Any

    async def run_read_only(self, work: Callable[[Any], Awaitable[T]]) -> T: ...

    def read_only_later(self, work: Callable[[Any], Awaitable[object]]) -> None:
        """Run ``work`` as :meth:`run_read_only` would, in a task of its own, once the call's answer has
        left, on an idle pooled connection (skipped when there is none). A failure is logged, never
        raised; closing the database cancels what still runs."""

    def describe(self) -> str: ...


class ToolCall(Protocol):
    """One call of a tool: the server's settings and databases, the caller, and per-server memory."""

    @property
    def settings(self) -> ToolSettings: ...

    @property
    def db(self) -> DatabaseHandle: ...

    @property
    def direct_db(self) -> DatabaseHandle:
        """For work that holds a session or builds indexes (DIRECT_DATABASE_URL); else the same as db."""

    def kept(self, kind: type[T]) -> T:
        """The server's one instance of ``kind`` (made with no arguments on first use): caches and
        memories that outlive a call and a session, one per server, never a module global."""

    async def database_skipped(self, db: DatabaseHandle, spec_problem: AgentError | None = None) -> AgentError | None:
        """Why ``db`` cannot be used now (none configured; the embedded one without a spec), or None.
        Reads the spec file (in a worker thread) only when the answer is in it."""

    def verified_subject(self) -> str | None:
        """The subject of the request's verified token (identity binding on), or None."""

    def can_ask(self) -> bool:
        """Whether the person behind the client can be asked a question on this connection."""

    async def progress(self, progress: float, total: float | None, message: str) -> None:
        """Report progress to the client, when it asked for it."""


@dataclass(frozen=True)
class Hints:
    """What the tool does to the world, as MCP tool annotations say it."""

    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool = False


READ_ONLY = Hints(read_only=True, destructive=False, idempotent=True)


@dataclass(frozen=True)
class Question:
    """A question put to the person before the tool runs (MCP elicitation), where the client can ask.

    ``ask`` takes a :class:`ToolCall` and tool arguments by name and returns the question's text, or any
    other value to say why nobody is asked. The tool's ``answer`` parameter then receives ``model``'s
    instance (accepted), ``"declined"``, ``"cancelled"``, or that other value."""

    model: type
    ask: Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the server registers it."""

    #: async def tool(call: ToolCall, <arguments>) -> result model instance
    fn: Callable[..., Awaitable[Any]]
    title: str
    #: Fixed, or worked out from the settings (explain_indexes may build indexes on a user's database).
    hints: Hints | Callable[[ToolSettings], Hints]
    result: type
    shape: Shape = field(default_factory=Shape)
    #: Takes ``detail`` (summary or full).
    detail: bool = True
    #: Takes ``cursor`` and pages a large result by table.
    paged: bool = False
    #: May use the embedded database: its result then says what that database holds (``embedded``).
    touches_database: bool = False
    question: Question | None = None

    @property
    def name(self) -> str:
        return self.fn.__name__

    def hints_for(self, settings: ToolSettings) -> Hints:
        return self.hints if isinstance(self.hints, Hints) else self.hints(settings)


#: The parameters of a tool function that are not the agent's arguments.
NOT_ARGUMENTS: Sequence[str] = ("call", "answer")
