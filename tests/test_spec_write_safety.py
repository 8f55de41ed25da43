"""A spec write changes only its own section (issue 34).

- The reader decides what a table section is, for "does it exist" and for "what to replace" alike: a
  prose heading that happens to name the table is never replaced; a table nested in the replaced section
  is kept; a table defined without a section of its own is refused by name.
- Every byte outside the section stays: byte-order mark, CRLF line ends, trailing newline. Checked over
  every spec of the shared corpus, for every table, with and without replace.
- Read, compare and write happen under a lock: of two writers holding the same hash, exactly one wins.
"""

from __future__ import annotations

import multiprocessing
import re
from pathlib import Path

import pytest
from mcp import Client
from mcp.types import ElicitResult

from schema_architect.server.app import create_server
from schema_architect.server.settings import Settings
from schema_architect.tools.schema.model import Column, Table
from schema_architect.tools.spec.file import SpecFileError, content_hash, write_spec_atomically
from schema_architect.tools.spec.reader import parse_spec

from conftest import SHARED, require, shared_missing

CORPUS = SHARED / "corpus"
BOM = b"\xef\xbb\xbf"

USERS_AND_TASKS = """\
# Schema

## Table: users (managed by Better Auth)

| Column | Type | Constraints | Description |
|---|---|---|---|
| id | text | PRIMARY KEY | Better Auth user id |

## Table: tasks

| Column | Type | Constraints | Description |
|---|---|---|---|
| id | serial | PRIMARY KEY | Task id |
| user_id | text | NOT NULL | Owner |

### Relationships

- user_id → users.id ON DELETE CASCADE
"""

ARCHIVE_PROSE = """
## Archive

Finished projects move here after 90 days; nobody edits them.

### Retention

Archived rows are kept for seven years for the auditors, then purged by a nightly job.
"""

NESTED = USERS_AND_TASKS + """
## Table: projects

A user's projects.

| Column | Type | Constraints | Description |
|---|---|---|---|
| id | serial | PRIMARY KEY | Project id |
| user_id | text | NOT NULL | Owner |
| title | varchar(100) | NOT NULL | Title |

### Table: project_members

Who works on a project.

| Column | Type | Constraints | Description |
|---|---|---|---|
| project_id | integer | PRIMARY KEY | The project |
| member | text | PRIMARY KEY | A member's email |

### Notes

- Projects are never shared between users.

## Table: labels

| Column | Type | Constraints | Description |
|---|---|---|---|
| id | serial | PRIMARY KEY | Label id |
| name | text | NOT NULL | Label text |
"""

ARCHIVE = {"name": "archive", "purpose": "Projects a user has archived.",
           "columns": [{"name": "title", "type": "varchar(100)", "required": True}]}
PROJECTS = {"name": "projects", "purpose": "A user's projects, renamed.",
            "columns": [{"name": "title", "type": "varchar(200)", "required": True}]}


def crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


def make_project(tmp_path: Path, data: bytes) -> Path:
    spec = tmp_path / "specs" / "database" / "schema.md"
    spec.parent.mkdir(parents=True)
    spec.write_bytes(data)
    return tmp_path


async def propose(project: Path, arguments: dict, database_url: str | None = None, **client_options):
    settings = Settings(project=project, database_url=database_url, embedded=False)
    async with Client(create_server(settings), **client_options) as client:
        return await client.call_tool("propose_table", arguments)


# --- through MCP ------------------------------------------------------------------------------------

@pytest.mark.anyio
async def test_a_new_table_never_replaces_prose_that_shares_its_name(tmp_path: Path, pg_url: str) -> None:
    original = BOM + crlf(USERS_AND_TASKS + ARCHIVE_PROSE).encode()
    project = make_project(tmp_path, original)
    spec = project / "specs/database/schema.md"
    result = await propose(project, {**ARCHIVE, "apply": True, "expected_spec_hash": content_hash(original),
                                     "detail": "full"}, database_url=pg_url)
    assert not result.is_error, result.content
    assert result.structured_content["dry_run"]["ok"] is True  # proven on the real database, then written
    written = spec.read_bytes()
    assert written.startswith(original), "bytes before the new section changed (prose, BOM or line ends)"
    added = written[len(original):].decode()
    assert added.lstrip("\r\n").startswith("## Table: archive\r\n")
    assert "\n" not in added.replace("\r\n", ""), "the new section must use the spec's CRLF line ends"
    assert result.structured_content["spec_hash"] == content_hash(written)
    tables = [t.name for t in parse_spec(written.decode("utf-8-sig")).schema.tables]
    assert tables == ["users", "tasks", "archive"]


@pytest.mark.anyio
async def test_a_confirmed_replace_keeps_the_table_nested_in_the_section(tmp_path: Path) -> None:
    original = NESTED.encode()
    project = make_project(tmp_path, original)
    spec = project / "specs/database/schema.md"
    assert [t.name for t in parse_spec(NESTED).schema.tables] == ["users", "tasks", "projects", "project_members",
                                                                   "labels"]
    questions: list[str] = []

    async def yes(context, params):
        questions.append(params.message)
        return ElicitResult(action="accept", content={"confirm": True})

    result = await propose(project, {**PROJECTS, "apply": True, "replace": True,
                                     "expected_spec_hash": content_hash(original)}, elicitation_callback=yes)
    assert not result.is_error, result.content
    [question] = questions
    # the question lists what goes, and says what stays
    assert "'## Table: projects'" in question and "'### Notes'" in question
    assert "project_members" in question and "Kept" in question
    written = spec.read_text()
    assert [t.name for t in parse_spec(written).schema.tables] == ["users", "tasks", "projects", "project_members",
                                                                   "labels"]
    start, end = NESTED.index("## Table: projects"), NESTED.index("## Table: labels")
    assert written.startswith(NESTED[:start]) and written.endswith(NESTED[end:])
    nested = NESTED[NESTED.index("### Table: project_members"):NESTED.index("### Notes")]
    assert nested in written  # kept byte for byte
    assert "never shared" not in written  # the projects section's own notes went, as the question said
    assert parse_spec(written).schema.table("projects").column("title").type == "varchar(200)"


@pytest.mark.anyio
async def test_a_table_without_a_section_of_its_own_is_refused_by_name(tmp_path: Path) -> None:
    text = USERS_AND_TASKS + "\n## SQL\n\n```sql\nCREATE TABLE archive (id serial PRIMARY KEY, title text);\n```\n"
    project = make_project(tmp_path, text.encode())
    result = await propose(project, {**ARCHIVE, "apply": True, "replace": True, "confirm_breaking": True,
                                     "expected_spec_hash": content_hash(text.encode())})
    assert result.is_error
    message = result.content[0].text
    line = text.splitlines().index("CREATE TABLE archive (id serial PRIMARY KEY, title text);") + 1
    assert "archive" in message and f"line {line}" in message and "not under a heading of its own" in message
    assert (project / "specs/database/schema.md").read_text() == text


# --- the lock ------------------------------------------------------------------------------------

def _racer(path: str, expected: str, text: str, barrier, outcomes) -> None:
    barrier.wait()
    try:
        write_spec_atomically(Path(path), text, expected)
        outcomes.put("ok")
    except SpecFileError as exc:
        outcomes.put("refused" if "changed since you read it" in str(exc) else f"other: {exc}")


def test_two_writers_with_the_same_hash_exactly_one_wins(tmp_path: Path) -> None:
    spec = tmp_path / "schema.md"
    context = multiprocessing.get_context("fork")
    for trial in range(40):
        spec.write_text(f"# v{trial}\n")
        expected = content_hash(spec.read_bytes())
        barrier, outcomes = context.Barrier(2), context.Queue()
        racers = [context.Process(target=_racer, args=(str(spec), expected, f"# from {who}\n", barrier, outcomes))
                  for who in ("a", "b")]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(30)
        results = sorted(outcomes.get(timeout=5) for _ in racers)
        assert results == ["ok", "refused"], f"trial {trial}: {results}"
        assert spec.read_text() in ("# from a\n", "# from b\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["schema.md"]  # no lock or temp file left


def test_two_threads_updating_with_the_same_hash_exactly_one_wins(tmp_path: Path) -> None:
    """Read, compare and write as propose_table does them (update_spec), raced by threads."""
    import threading
    import time

    from schema_architect.tools.spec.file import update_spec

    spec = tmp_path / "schema.md"
    spec.write_bytes(BOM + b"# Spec\r\n")
    expected = content_hash(spec.read_bytes())
    barrier, outcomes = threading.Barrier(2), []

    def writer(who: str) -> None:
        def change(text: str) -> str:
            time.sleep(0.05)  # a slow writer: the other must wait for the lock, then see the new hash
            return text + f"## Table: {who}\r\n"
        barrier.wait()
        try:
            update_spec(spec, expected, change)
            outcomes.append("ok")
        except SpecFileError as exc:
            outcomes.append("refused" if "changed since you read it" in str(exc) else str(exc))

    threads = [threading.Thread(target=writer, args=(who,)) for who in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(outcomes) == ["ok", "refused"]
    written = spec.read_bytes()
    assert written.startswith(BOM + b"# Spec\r\n") and written.count(b"## Table:") == 1


# --- every spec of the corpus ---------------------------------------------------------------------

def corpus_specs() -> list[Path]:
    require(shared_missing("corpus"))
    return sorted(CORPUS.rglob("*.md"))


def corpus_cases() -> list[tuple[str, str]]:
    if not CORPUS.is_dir():
        return [("missing", "")]
    return [(str(p.relative_to(CORPUS)), "") for p in sorted(CORPUS.rglob("*.md"))]


def proposal_for(table: Table) -> Table:
    """A different table under the same name: what a replace would write."""
    return Table(name=table.name, description="Replaced by a proposal.", primary_key=["id"],
                 columns=[Column(name="id", type="integer", identity="serial", nullable=False, primary_key=True),
                          Column(name="proposed_note", type="text")])


@pytest.mark.parametrize("relative", [c[0] for c in corpus_cases()])
def test_corpus_writes_change_nothing_outside_the_section(relative: str) -> None:
    from schema_architect.tools.spec.sections import SpecWriteError
    from schema_architect.tools.spec.writer import write_table_section

    corpus_specs()  # skip (or fail in CI) when the corpus is missing
    raw = (CORPUS / relative).read_bytes()
    text = raw.decode("utf-8-sig")
    # the spec as written, and the same spec with CRLF line ends and no final newline
    for variant in (text, crlf(text).rstrip("\r\n")):
        tables = parse_spec(variant).schema.tables
        for table in tables:
            with pytest.raises(SpecWriteError, match="already defines table"):
                write_table_section(variant, proposal_for(table), replace=False)
            try:
                out, plan = write_table_section(variant, proposal_for(table), replace=True)
            except SpecWriteError as exc:
                assert table.name in str(exc) and "." in str(exc)  # refused, saying why
                continue
            before, after = variant[:plan.start], variant[plan.end:]
            assert out.startswith(before) and out.endswith(after), (relative, table.name)
            middle = out[len(before):len(out) - len(after)]
            for _, start, stop, _ in plan.kept:
                assert variant[start:stop] in middle, (relative, table.name, "nested section not kept")
            reread = {t.name for t in parse_spec(out).schema.tables}
            assert reread == {t.name for t in tables}, (relative, table.name)
            if "\r\n" in variant:
                assert not re.search(r"(?<!\r)\n", middle), (relative, table.name, "LF in a CRLF spec")
        new = proposal_for(Table(name="zz_proposed"))
        out, plan = write_table_section(variant, new, replace=False)
        assert plan.start is None and out.startswith(variant), relative
        assert {t.name for t in parse_spec(out).schema.tables} == {t.name for t in tables} | {"zz_proposed"}


def test_corpus_write_through_the_file_keeps_the_byte_order_mark(tmp_path: Path) -> None:
    from schema_architect.tools.spec.file import update_spec
    from schema_architect.tools.spec.writer import write_table_section

    specs = corpus_specs()
    for number, path in enumerate(specs):
        text = path.read_bytes().decode("utf-8-sig")
        tables = parse_spec(text).schema.tables
        if not tables:
            continue
        target = tmp_path / f"{number}.md"
        original = BOM + crlf(text).encode()
        target.write_bytes(original)
        new = proposal_for(Table(name="zz_proposed"))
        update_spec(target, content_hash(original), lambda t, new=new: write_table_section(t, new, replace=False)[0])
        assert target.read_bytes().startswith(original), path
