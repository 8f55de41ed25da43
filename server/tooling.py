"""One adapter for every tool: a tools/<tool>/tool.py ``TOOL`` registered on the MCPServer, public SDK API only.

For each :class:`~schema_architect.tools.schema.call.ToolSpec` it builds the function the SDK registers
(``mcp.add_tool``): the tool's own parameters as declared (so its argument model and input schema come
from the tool's signature), a ``Context``, ``detail`` and ``cursor`` where the tool takes them, and, for a
tool that asks the person first, a ``Resolve`` parameter that puts the tool's question (era-portable
elicitation). The return annotation ``Annotated[CallToolResult, Published]`` publishes the result's small
schema (server/results.py) and has the SDK check every result is an object. The body makes a
:class:`~.context.Call`, runs the tool, and answers as server/results.py says: compact JSON once, paged
by table when large, with what the embedded database holds when the call touched it.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, get_type_hints

from mcp.server.mcpserver import (
    AcceptedElicitation,
    CancelledElicitation,
    Context,
    Elicit,
    ElicitationResult,
    MCPServer,
    Resolve,
)
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from ..tools.schema.call import NOT_ARGUMENTS, Hints, ToolSpec
from . import results
from .context import AppContext, Call, agent_errors, embedded_note
from .results import CURSOR_DESCRIPTION, DETAIL_DESCRIPTION, CursorError, Detail
from .settings import Settings

DetailArg = Annotated[Detail, Field(description=DETAIL_DESCRIPTION)]
CursorArg = Annotated[str | None, Field(description=CURSOR_DESCRIPTION)]

#: Like every nested object in the published schemas, typed only (descriptions live in docs/tools/).
EMBEDDED_SCHEMA = {"type": "object"}
EMBEDDED_DESCRIPTION = ("Only from the embedded database: whether it holds the spec's schema (else a finding "
                        "with the fix), and whether it holds seeded rows")

#: The parameter that receives the person's answer to a tool's question (never an argument of the agent's).
ANSWER = "answer"


def register_tool(mcp: MCPServer, spec: ToolSpec, settings: Settings) -> None:
    """Register ``spec`` on ``mcp`` as the agent sees it: the tool's arguments, title, hints, description,
    and its published result schema."""
    handler = _handler(spec)
    mcp.add_tool(handler, name=spec.name, title=spec.title, description=inspect.cleandoc(spec.fn.__doc__ or ""),
                 annotations=_annotations(spec.hints_for(settings)))


def published_schema(spec: ToolSpec) -> dict[str, Any]:
    """The result's schema as tools/list gives it (server/results.py: top-level fields and their types)."""
    schema = results.output_schema(spec.result, spec.shape)
    if spec.touches_database:
        schema["properties"]["embedded"] = EMBEDDED_SCHEMA
    return schema


def _published(spec: ToolSpec) -> type[BaseModel]:
    """A model whose JSON schema is :func:`published_schema`: what the SDK publishes and checks results
    against (compacted results leave fields out, so only the object itself is required)."""
    schema = published_schema(spec)

    class Published(BaseModel):
        model_config = ConfigDict(extra="allow")

        @classmethod
        def __get_pydantic_json_schema__(cls, core_schema, handler) -> dict[str, Any]:
            return schema

    Published.__name__ = Published.__qualname__ = f"{spec.result.__name__}Published"
    return Published


def _annotations(hints: Hints) -> ToolAnnotations:
    return ToolAnnotations(read_only_hint=hints.read_only, destructive_hint=hints.destructive,
                           idempotent_hint=hints.idempotent, open_world_hint=hints.open_world)


def _handler(spec: ToolSpec) -> Callable[..., Awaitable[CallToolResult]]:
    """The function the SDK registers for ``spec``; its signature is what the SDK reads."""
    hints = get_type_hints(spec.fn, include_extras=True)
    own = [p.replace(annotation=hints[p.name]) for p in inspect.signature(spec.fn).parameters.values()
           if p.name not in NOT_ARGUMENTS]
    names = [p.name for p in own]
    keyword = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [inspect.Parameter("ctx", keyword, annotation=Context[AppContext])]
    if spec.question is not None:
        # a type built at run time, for the SDK to read: no type checker can follow it
        answer_type = Annotated[ElicitationResult[spec.question.model], Resolve(_resolver(spec))]  # type: ignore[name-defined]
        params.append(inspect.Parameter(ANSWER, keyword, annotation=answer_type))
    params += own
    if spec.detail:
        params.append(inspect.Parameter("detail", keyword, default="summary", annotation=DetailArg))
    if spec.paged:
        params.append(inspect.Parameter("cursor", keyword, default=None, annotation=CursorArg))
    returns = Annotated[CallToolResult, _published(spec)]

    async def handler(ctx: Context[AppContext], **given: Any) -> CallToolResult:
        app = ctx.request_context.lifespan_context
        call = Call(app, ctx)
        arguments = {name: given[name] for name in names}
        if spec.question is not None:
            arguments[ANSWER] = _answer(given[ANSWER])
        return await respond(spec, app, arguments, given.get("detail", "summary"), given.get("cursor"),
                             lambda: spec.fn(call, **arguments))

    handler.__name__ = handler.__qualname__ = spec.name
    handler.__doc__ = spec.fn.__doc__
    handler.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    handler.__annotations__ = {p.name: p.annotation for p in params} | {"return": returns}
    return handler


def _resolver(spec: ToolSpec) -> Callable[..., Awaitable[Any]]:
    """The SDK resolver that puts ``spec``'s question: the tool's ``ask`` with a Call, its text as an Elicit."""
    question = spec.question
    assert question is not None
    hints = get_type_hints(question.ask, include_extras=True)
    own = [p.replace(annotation=hints.get(p.name, Any)) for p in inspect.signature(question.ask).parameters.values()
           if p.name not in NOT_ARGUMENTS]
    returns = Elicit[question.model] | Any  # type: ignore[name-defined]  # built at run time, as above

    async def ask(ctx: Context[AppContext], **given: Any) -> Any:
        asked = await question.ask(Call(ctx.request_context.lifespan_context, ctx), **given)
        return Elicit(asked, question.model) if isinstance(asked, str) else asked

    params = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Context[AppContext]), *own]
    ask.__name__ = ask.__qualname__ = f"{spec.name}_question"
    ask.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    ask.__annotations__ = {p.name: p.annotation for p in params} | {"return": returns}
    return ask


def _answer(outcome: Any) -> Any:
    """The person's answer as a tool reads it: the question's model (accepted), "declined", "cancelled",
    or what the question returned instead of asking."""
    if isinstance(outcome, AcceptedElicitation):
        return outcome.data
    return "cancelled" if isinstance(outcome, CancelledElicitation) else "declined"


async def respond(spec: ToolSpec, app: AppContext, arguments: dict, detail: Detail, cursor: str | None,
                  compute: Callable[[], Awaitable]) -> CallToolResult:
    """The result as the agent receives it: compact, its JSON once (server/results.py), and what the
    embedded database holds when the call touched it. A paged tool answers one page at a time: a cursor's
    page comes from the reading that gave the cursor while it is kept, so following a long result
    computes it once."""
    key = (spec.name, detail, results.dumps(arguments)) if spec.paged else None
    kept = app.snapshots.get(key) if cursor else None
    data, plan = kept or (None, None)
    if data is None:
        touches = app.db.touches
        with agent_errors(app):
            data = results.compact(await compute(), detail, spec.shape)
        if spec.touches_database and (note := embedded_note(app, touches)) is not None:
            data["embedded"] = note
    if not spec.paged:
        return results.tool_result(data)
    budget = app.settings.page_bytes
    try:
        shown, plan = results.page(data, spec.shape, cursor, budget=budget or len(results.dumps(data)) + 1,
                                   plan=plan) if budget or cursor else (data, None)
    except CursorError as exc:
        raise ToolError(exc.for_agent()) from None
    if "next_cursor" in shown.get("page", {}):
        app.snapshots.put(key, data, plan)
    return results.tool_result(shown)
