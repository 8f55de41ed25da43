"""The propose_table tool as an agent calls it, and its policy: replacing an existing table's section is
a breaking change that needs the person's yes, asked where the client can, and a no stands."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import anyio
from pydantic import Field

from ..schema.call import Hints, Question, ToolCall, ToolSpec
from ..schema.errors import AgentError
from ..schema.shape import Shape
from . import ConfirmBreaking, DeclinedChanges, ProposeTableResult, propose_table as propose, replace_plan
from .design import ProposedColumn

#: What identifies a proposed change (the declined-changes memory keys on these arguments' values).
CHANGE_ARGUMENTS = ("purpose", "columns", "user_owned", "references", "query_patterns")


@dataclass
class NotAsked:
    """Why nobody was asked before the call, and the remembered answer if any."""

    reason: Literal["not-breaking", "cannot-ask", "declined-before", "stale-spec"]
    answer: str | None = None


async def propose_table(
    call: ToolCall,
    answer: Any,
    name: Annotated[str, Field(description="Table name, lower-case snake_case, e.g. tags")],
    purpose: Annotated[str, Field(description="What the table holds, in one or two sentences")],
    columns: Annotated[list[ProposedColumn], Field(
        description="Its own columns (id, user_id, timestamps are added)")] = [],  # noqa: B006 (pydantic copies defaults)
    user_owned: Annotated[bool, Field(description="Rows belong to one user (adds user_id)")] = True,
    references: Annotated[list[str] | None, Field(
        description="Tables it points at, e.g. ['tasks'] adds task_id; two and no columns: a link table")] = None,
    query_patterns: Annotated[list[str] | None, Field(
        description="How the app reads it, in words or SQL; indexes come from these")] = None,
    apply: Annotated[bool, Field(description="Write the section into the spec")] = False,
    expected_spec_hash: Annotated[str | None, Field(
        description="With apply: read_schema_spec's content_hash; refused if the spec changed")] = None,
    replace: Annotated[bool, Field(description="Replace an existing table's section (breaking)")] = False,
    confirm_breaking: Annotated[bool, Field(
        description="Only where the client cannot ask: the user said yes in the conversation. Never "
        "overrides a no")] = False,
) -> ProposeTableResult:
    """Design a table by the house conventions (id, owner user_id, timestamps, lengths, CHECKs, indexes
    from query patterns; each rule says what it added) and prove it: DDL run and rolled back, SQLModel
    code imported and diffed. Returns spec section, code, DDL, lint, migration note. apply=true writes
    the section if the spec still has expected_spec_hash; nothing outside that section changes.
    replace=true needs the user's yes: the server asks them where the client can, and a no stands.
    """
    settings, db = call.settings, call.direct_db
    change = {"purpose": purpose, "columns": columns, "user_owned": user_owned, "references": references,
              "query_patterns": query_patterns}
    confirmed = replace_confirmed(call, name, change, answer, confirm_breaking)
    skipped = await call.database_skipped(db)
    return await propose(
        project=settings.project, spec_path=settings.spec_path, name=name, purpose=purpose, columns=columns,
        user_owned=user_owned, references=references, query_patterns=query_patterns, apply=apply,
        expected_spec_hash=expected_spec_hash, replace=replace, confirmed=confirmed, can_ask=call.can_ask(),
        owner_column=settings.owner_column, models_timeout=settings.models_timeout_s,
        database=db.run_read_only if skipped is None else None,
        database_name=db.describe, no_database=skipped.for_agent() if skipped else None,
    )


def change_key(name: str, arguments: dict) -> str:
    """The proposed change's identity: the table and the arguments that make its section."""
    content = {k: v for k, v in arguments.items() if k in CHANGE_ARGUMENTS}
    content["columns"] = [ProposedColumn.model_validate(c).model_dump() for c in content.get("columns") or []]
    return DeclinedChanges.key(name, content)


async def ask_before_replacing(
    call: ToolCall, name: str, replace: bool = False, apply: bool = False, expected_spec_hash: str | None = None,
    purpose: str = "", columns: list[ProposedColumn] = [],  # noqa: B006
    user_owned: bool = True, references: list[str] | None = None, query_patterns: list[str] | None = None,
) -> str | NotAsked:
    """The question for the person before a proposal replaces an existing table's section (a breaking
    change), or why nobody is asked.

    Where the client can ask, the person decides: the agent's confirm_breaking is no substitute. A no
    (or a cancel) is remembered for this change, so a retry is refused without asking again."""
    if not (replace and apply):
        return NotAsked("not-breaking")
    key = change_key(name, {"purpose": purpose, "columns": columns, "user_owned": user_owned,
                            "references": references, "query_patterns": query_patterns})
    if said := call.kept(DeclinedChanges).answer(key):
        return NotAsked("declined-before", said)
    settings = call.settings
    found = await anyio.to_thread.run_sync(replace_plan, settings.project, settings.spec_path, name)
    if found is None:
        return NotAsked("not-breaking")  # nothing to replace (or the write is refused anyway)
    plan, digest = found
    if expected_spec_hash != digest:
        return NotAsked("stale-spec")  # the write will be refused: do not ask about another version
    if not call.can_ask():
        return NotAsked("cannot-ask")
    return (f"Replace the spec section of table {plan.table!r}? This is a breaking change: code and "
            f"migrations that follow the old section will need changes. {plan.describe()}")


def replace_confirmed(call: ToolCall, name: str, arguments: dict, answer: Any, confirm_breaking: bool) -> bool:
    """Whether the replace is confirmed, from the person's answer; a no is remembered and refused here.
    confirm_breaking counts only where the client could not be asked."""
    key = change_key(name, arguments)
    if isinstance(answer, NotAsked):
        if answer.reason == "declined-before":
            raise AgentError(
                f"Not written: the user already {answer.answer} replacing the section of {name} with this "
                "proposal, and that answer stands.", fix="Do not retry it; ask the user what they want instead.",
                rule_id="change-declined")
        return answer.reason == "cannot-ask" and confirm_breaking
    if isinstance(answer, ConfirmBreaking) and answer.confirm:
        return True
    said = "cancelled" if answer == "cancelled" else "declined"
    call.kept(DeclinedChanges).remember(key, said)
    raise AgentError(
        f"Not written: the user {said} replacing the section of {name}. The spec is unchanged, and this "
        "answer stands for this proposal.", fix="Do not retry it. Ask the user what they want instead.",
        rule_id="change-declined")


TOOL = ToolSpec(
    propose_table, title="Propose a table", hints=Hints(read_only=False, destructive=True, idempotent=False),
    result=ProposeTableResult, touches_database=True, shape=Shape(summary_omits={"table": None}),
    question=Question(ConfirmBreaking, ask_before_replacing),
)
