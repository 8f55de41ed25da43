"""One error tree: every condition an agent can act on, with one name, one rule id, one message shape
and one behaviour in every tool.

::

    AgentError                      the caller can fix it; the message says what, what was given, how
      +-- ArgumentError             argument-unknown, argument-invalid (server/app.py checks arguments)
      +-- SpecUnreadable            spec-unreadable (tools/spec/file.py's SpecFileError is one)
      +-- PathOutsideProject        path-outside-project (tools/schema/paths.py's ProjectPathError)
      +-- UnknownTable              unknown-table
      +-- DatabaseUnavailable       database-unavailable (none configured, or it cannot be reached)
      +-- CursorInvalid             cursor-invalid (server/results.py's CursorError)
      +-- SpecChanged               spec-changed (a write guarded by a content hash that no longer holds)
      +-- QueryRefused (sqlsafe)    the sql-* ids of docs/findings.md (tools/sqlsafe/errors.py)
      ...                           and the errors of one tool each (ONE_TOOL below)

A message reads: ``[rule-id] What was wrong. Given: what the caller passed. How to fix it.`` (the rule id
first, so an agent or a person can look it up in docs/errors.md). :data:`CONDITIONS` says, for each
condition, what every tool does when it arises: fail (``error``), do the part it can without the side it
lacks and say what it skipped (``partial``), carry on as if nothing happened (``unaffected``), or it cannot
arise there (``-``). docs/errors.md is generated from it, and tests/test_errors.py calls every tool through
MCP once per cell.

This module is layer 0: every layer may raise these, and the server (which imports tools/, never the other
way round) maps them to the agent's error text in one place.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

TOOLS = ("read_schema_spec", "propose_table", "diff_models_vs_spec", "explain_indexes", "run_scoped_query")


class AgentError(Exception):
    """A problem the caller can fix. ``str()`` is the problem alone; :meth:`for_agent` the whole message."""

    rule: str = "agent-error"

    def __init__(self, problem: str, *, given: str | None = None, fix: str | None = None,
                 rule_id: str | None = None) -> None:
        self.problem, self.given, self.fix = problem.strip(), given, fix
        if rule_id is not None:
            self.rule = rule_id
        super().__init__(self.problem)

    def for_agent(self) -> str:
        """``[rule] problem Given: given. fix`` on one line."""
        parts = [f"[{self.rule}] {_sentence(self.problem)}"]
        if self.given:
            parts.append(f"Given: {self.given.rstrip('.')}.")
        if self.fix:
            parts.append(_sentence(self.fix))
        return " ".join(parts)


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?" else text + "."


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The valid name closest to a mistyped one (difflib), or None when none is close."""
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


class ArgumentError(AgentError):
    rule = "argument-invalid"


class UnknownArgument(ArgumentError):
    rule = "argument-unknown"


class SpecUnreadable(AgentError, ValueError):
    rule = "spec-unreadable"


class PathOutsideProject(AgentError, ValueError):
    rule = "path-outside-project"


class UnknownTable(AgentError, ValueError):
    rule = "unknown-table"


class DatabaseUnavailable(AgentError, RuntimeError):
    """No database could be reached or none is configured; the message says what to do."""

    rule = "database-unavailable"


class CursorInvalid(AgentError, ValueError):
    rule = "cursor-invalid"


class SpecChanged(SpecUnreadable):
    rule = "stale-content-hash"


# What each tool does under each condition. "partial" cells say what is done and what is skipped.
E, U, NA = "error", "unaffected", "-"

CONDITIONS: dict[str, dict[str, str]] = {
    "argument-unknown": dict.fromkeys(TOOLS, "error: names the closest valid argument"),
    "argument-invalid": dict.fromkeys(TOOLS, "error: one line, the argument, what was given, what is expected"),
    "spec-unreadable": {
        "read_schema_spec": E,
        "propose_table": "partial: designs against an empty spec (apply creates the file); a note names the path",
        "diff_models_vs_spec": "partial: compares the models and the database (a spec-unreadable finding); "
                               "error with fewer than two sides",
        "explain_indexes": "partial: explains the database's indexes (a note); error without a database",
        "run_scoped_query": "error on the embedded database (it is built from the spec), which is not started; "
                            "unaffected with DATABASE_URL",
    },
    "path-outside-project": {
        "read_schema_spec": E, "propose_table": NA, "diff_models_vs_spec": E, "explain_indexes": NA,
        "run_scoped_query": NA,
    },
    "unknown-table": {
        "read_schema_spec": E, "propose_table": E, "diff_models_vs_spec": E, "explain_indexes": E,
        "run_scoped_query": NA,
    },
    "database-unavailable": {
        "read_schema_spec": U,
        "propose_table": "partial: the design without the dry run (a note says why)",
        "diff_models_vs_spec": "partial: compares the spec and the models (a database-unavailable finding)",
        "explain_indexes": "partial: the spec alone when source is left out (a note says why); error when "
                           "source asks for the database",
        "run_scoped_query": E,
    },
    "sql-*": {
        "read_schema_spec": NA, "propose_table": NA, "diff_models_vs_spec": NA, "explain_indexes": E,
        "run_scoped_query": E,
    },
    "cursor-invalid": {
        "read_schema_spec": E, "propose_table": NA, "diff_models_vs_spec": E, "explain_indexes": E,
        "run_scoped_query": NA,
    },
    "stale-content-hash": {
        "read_schema_spec": NA, "propose_table": E, "diff_models_vs_spec": NA, "explain_indexes": NA,
        "run_scoped_query": NA,
    },
}

#: Errors that arise in one tool only (or outside tools), by rule id: what they mean.
ONE_TOOL: dict[str, tuple[str, str]] = {
    "proposal-invalid": ("propose_table", "The request cannot become a valid table (a name, a column, a "
                         "reference); the message says what to change."),
    "change-declined": ("propose_table", "The user declined (or cancelled) replacing a table's section; the "
                        "answer stands for that proposal. Ask the user what they want instead."),
    "confirmation-required": ("propose_table", "Replacing a section is a breaking change and the user has "
                              "not confirmed it."),
    "query-invalid": ("explain_indexes", "A query passed in `queries` cannot be explained (it reads no "
                      "table, or cannot be planned on this database)."),
    "identity-required": ("run_scoped_query", "Identity binding is on and the request carries no verified "
                          "token."),
    "identity-mismatch": ("run_scoped_query", "`user_id` names someone other than the verified token's user."),
    "identity-spec-only": ("explain_indexes", "With identity binding on, `source` may not ask for the "
                           "database (its evidence is made of every user's rows)."),
    "role-refused": ("run_scoped_query", "The role queries run as owns the user tables or bypasses row "
                     "security, and `refuse_owner_role` is set."),
    "prompt-unknown": ("prompts/get", "No prompt has that name; the message names the closest one."),
}


def rule_ids() -> list[str]:
    """Every rule id an error can carry (the sql-* ids are listed in docs/findings.md)."""
    return [*(r for r in CONDITIONS if r != "sql-*"), *ONE_TOOL]


def unknown_tables(missing: list[str], known: Iterable[str], where: str, argument: str, given: object,
                   hint: str = "") -> UnknownTable:
    """The one shape of an unknown-table error: which names, where they were looked for, the closest."""
    names = sorted(set(known))
    near = [f"{m!r} -> {c!r}" for m in missing if (c := closest(m, names))]
    listing = ", ".join(names) or "none"
    return UnknownTable(
        f"No table {', '.join(repr(m) for m in missing)} in {where}.{(' ' + hint) if hint else ''}",
        given=f"{argument}={given!r}",
        fix=(f"Did you mean {', '.join(near)}? " if near else "")
        + f"Tables: {listing}. Pass names from that list"
        + (f", or omit `{argument}` for all of them." if argument in ("table", "tables") else "."))


_CONDITION_TEXT = {
    "argument-unknown": "An argument the tool does not take (a typo: `tabels`). Never ignored: the error names "
                        "the closest valid argument and lists them all.",
    "argument-invalid": "An argument of the wrong type or out of range (`tables: \"tasks\"` for a list). One "
                        "line: the argument, what was given, what is expected.",
    "spec-unreadable": "No spec file at the path (relative to the project root, which the message names), or "
                       "a file that is not a usable spec (a folder, binary, not UTF-8, over 2 MB). The message "
                       "names the tool's own argument for the path (`path`, `spec`).",
    "path-outside-project": "A path argument resolves (symlinks followed) outside the project root.",
    "unknown-table": "A table named in `tables`, `table` or `references` is in none of the sides read; the "
                     "message names the closest table and lists them all.",
    "database-unavailable": "No database to use: none is configured (DATABASE_URL unset and the embedded "
                            "PostgreSQL off), or it cannot be reached within the connect timeout.",
    "sql-*": "A query refused by the checker, or stopped by the database: the `sql-*` ids of "
             "[findings.md](findings.md#sql-refusals). The message quotes the query's keywords and plain "
             "names (`near \"SELEC\"`), never its string literals, comments or quoted names.",
    "cursor-invalid": "A `cursor` this server did not give, past the end, or cut from tables that have "
                      "changed since.",
    "stale-content-hash": "A write whose `expected_spec_hash` is no longer the spec's content hash.",
}


def render_errors_doc() -> str:
    """docs/errors.md, generated from :data:`CONDITIONS` and :data:`ONE_TOOL`."""
    lines = [
        "# Errors",
        "",
        "<!-- Generated from tools/schema/errors.py: SCHEMA_ARCHITECT_WRITE_DOCS=1 pytest tests/test_errors.py -->",
        "",
        "Every error an agent can act on has one rule id and one shape, in every tool:",
        "",
        "```",
        "Error executing tool <tool>: [rule-id] What was wrong. Given: what was passed. How to fix it.",
        "```",
        "",
        "A tool that can do part of its work without a side (the database, the spec) does that part and says "
        "what it skipped, with the same rule id: as a finding (`diff_models_vs_spec`), a note "
        "(`explain_indexes`) or in the message (`propose_table`). Findings that are not errors are listed in "
        "[findings.md](findings.md); lint rules in [rules.md](rules.md).",
        "",
        "## Conditions and tools",
        "",
        "What each tool does: `error` fails the call; `partial` does what it can and says what it skipped; "
        "`unaffected` carries on; `-` cannot arise there. tests/test_errors.py calls each tool through MCP "
        "once per cell.",
        "",
        "| condition | " + " | ".join(TOOLS) + " |",
        "|---|" + "---|" * len(TOOLS),
    ]
    for rule, cells in CONDITIONS.items():
        lines.append(f"| [`{rule}`](#{rule.replace('*', '')}) | "
                     + " | ".join(cells[t].replace("|", "/") for t in TOOLS) + " |")
    lines += ["", "## The conditions", ""]
    for rule in CONDITIONS:
        lines += [f"### {rule} {{#{rule.replace('*', '')}}}", "", _CONDITION_TEXT[rule], ""]
    lines += ["## Errors of one tool", "", "| rule | where | meaning |", "|---|---|---|"]
    for rule, (where, meaning) in ONE_TOOL.items():
        lines.append(f"| `{rule}` | {where} | {meaning} |")
    return "\n".join(lines) + "\n"
