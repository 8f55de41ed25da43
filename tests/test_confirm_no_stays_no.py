"""A person's "no" stays no (issue 34): where the client can ask, the server asks and the agent's
confirm_breaking is no substitute; a decline or cancel is remembered for that change and refused on
retry, from any client; confirm_breaking counts only where the client cannot ask.

Through MCP, with real clients: one whose elicitation callback accepts, declines or cancels (in both
protocol eras), and one without elicitation.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client
from mcp.types import ElicitResult

from schema_architect.server.app import create_server
from schema_architect.server.settings import Settings
from schema_architect.tools.spec.file import content_hash

from conftest import REPO

pytestmark = pytest.mark.anyio

REFERENCE = (REPO / "specs" / "database" / "schema.md").read_text()

TAGS = {
    "name": "tags",
    "purpose": "Labels a user can attach to tasks.",
    "columns": [{"name": "name", "type": "string", "required": True, "max_length": 50},
                {"name": "color", "type": "str", "allowed_values": ["red", "green", "blue"]}],
}


def make_project(tmp_path: Path, text: str = REFERENCE) -> Path:
    spec = tmp_path / "specs" / "database" / "schema.md"
    spec.parent.mkdir(parents=True)
    spec.write_text(text)
    return tmp_path


def replace_call(project: Path, **extra) -> dict:
    spec = project / "specs/database/schema.md"
    return {**TAGS, "apply": True, "replace": True, "expected_spec_hash": content_hash(spec.read_bytes()), **extra}


class Person:
    """An elicitation callback that answers as told and records each question."""

    def __init__(self, action: str, confirm: bool = True) -> None:
        self.action, self.confirm, self.questions = action, confirm, []

    async def __call__(self, context, params) -> ElicitResult:
        self.questions.append(params.message)
        if self.action == "accept":
            return ElicitResult(action="accept", content={"confirm": self.confirm})
        return ElicitResult(action=self.action)


async def call(server, arguments: dict, **client_options):
    async with Client(server, **client_options) as client:
        return await client.call_tool("propose_table", arguments)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_server_asks_even_when_the_agent_says_confirmed(tmp_path: Path, mode: str) -> None:
    project = make_project(tmp_path)
    spec = project / "specs/database/schema.md"
    person = Person("decline")
    server = create_server(Settings(project=project, embedded=False))
    result = await call(server, replace_call(project, confirm_breaking=True), elicitation_callback=person, mode=mode)
    assert len(person.questions) == 1, "the person was not asked: the agent's confirm_breaking stood in for them"
    assert result.is_error and "declined" in result.content[0].text
    assert spec.read_text() == REFERENCE


@pytest.mark.parametrize("action", ["decline", "cancel", "accept-unchecked"])
async def test_a_no_is_remembered_and_refused_on_retry_from_any_client(tmp_path: Path, action: str) -> None:
    project = make_project(tmp_path)
    spec = project / "specs/database/schema.md"
    server = create_server(Settings(project=project, embedded=False))
    person = Person("accept", confirm=False) if action == "accept-unchecked" else Person(action)

    first = await call(server, replace_call(project), elicitation_callback=person)
    assert first.is_error and len(person.questions) == 1
    refusal = first.content[0].text
    assert "confirm_breaking" not in refusal, "after a no, the refusal must not show the agent a way around it"

    # the same change again, now "confirmed" by the agent, from the same kind of client: not asked again
    again = await call(server, replace_call(project, confirm_breaking=True), elicitation_callback=person)
    assert again.is_error and len(person.questions) == 1
    assert "already" in again.content[0].text and "confirm_breaking" not in again.content[0].text

    # ... and from a client that cannot ask, where confirm_breaking would otherwise count
    blind = await call(server, replace_call(project, confirm_breaking=True))
    assert blind.is_error and "already" in blind.content[0].text
    assert spec.read_text() == REFERENCE

    # a different proposal for the same table is a different change: the person is asked about it
    changed = await call(server, replace_call(project, purpose="Coloured labels for tasks."),
                         elicitation_callback=Person("accept"))
    assert not changed.is_error, changed.content
    assert "Coloured labels for tasks." in spec.read_text()


async def test_a_yes_writes_and_the_question_says_what_is_removed(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    spec = project / "specs/database/schema.md"
    person = Person("accept")
    result = await call(create_server(Settings(project=project, embedded=False)), replace_call(project),
                        elicitation_callback=person)
    assert not result.is_error, result.content
    assert result.structured_content["applied"] is True
    [question] = person.questions
    assert "'tags'" in question and "breaking" in question
    assert "'## Table: tags'" in question and "'### Indexes'" in question  # what the write removes, by name
    assert "| color |" in spec.read_text()


async def test_confirm_breaking_counts_only_where_the_client_cannot_ask(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    spec = project / "specs/database/schema.md"
    server = create_server(Settings(project=project, embedded=False))
    refused = await call(server, replace_call(project))
    text = refused.content[0].text
    assert refused.is_error and "cannot ask the user" in text and "confirm_breaking=true" in text
    assert "'## Table: tags'" in text  # the agent can tell the person exactly what goes
    assert spec.read_text() == REFERENCE
    forced = await call(server, replace_call(project, confirm_breaking=True))
    assert not forced.is_error, forced.content
    assert "| color |" in spec.read_text()


async def test_nobody_is_asked_about_a_write_that_will_be_refused(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    person = Person("accept")
    stale = await call(create_server(Settings(project=project, embedded=False)),
                       replace_call(project, expected_spec_hash=content_hash(b"older")), elicitation_callback=person)
    assert stale.is_error and "changed since you read it" in stale.content[0].text
    assert person.questions == []


def test_declined_changes_are_forgotten_after_a_while() -> None:
    from schema_architect.tools.propose_table import DeclinedChanges

    memory = DeclinedChanges(ttl_s=0.05)
    key = DeclinedChanges.key("tags", {"purpose": "x"})
    assert key != DeclinedChanges.key("tags", {"purpose": "y"})
    memory.remember(key, "declined")
    assert memory.answer(key) == "declined"
    import time

    time.sleep(0.06)
    assert memory.answer(key) is None
