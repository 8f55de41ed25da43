"""The house conventions as lint rules over a :class:`~.schema.Schema`.

Each rule is one small function that takes a :class:`LintContext` and yields `Hit` tuples;
:func:`lint_schema` turns them into `Finding` objects carrying the rule's id and severity.
A rule's docstring is its documentation: the first paragraph is the one-line rationale, then any
notes, then `Bad:` and `Good:` blocks (indented SQL) and a `Fix:` paragraph.
:func:`render_rules_doc` turns them into `docs/rules.md`; regenerate it with::

    python -m schema_architect.tools.spec.lint --write-docs

Better Auth tables (`managed_by="better-auth"`) and the users table itself are exempt from every
rule: we reference them, we never create or alter them.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import textwrap

from ...schema.findings import SEVERITY_RANK, Finding
from ...schema.model import Schema, Table
from .columns import (
    allowed_values_not_enforced,
    missing_primary_key,
    prose_length_not_enforced,
    reserved_word_name,
    timestamp_default_missing,
    timestamp_without_time_zone,
    timestamps_missing,
    updated_at_trigger,
    varchar_without_length,
)

# Shared with explain_indexes and the tests.
from .core import (  # noqa: F401
    DOCS_PATH,
    INDEX_RULE_IDS,
    IndexShape,
    LintContext,
    Rule,
    RuleId,
    covers_columns,
    index_shapes,
    norm_where,
)
from .indexes import (
    boolean_index,
    duplicate_index,
    fk_not_indexed,
    fk_on_delete_missing,
    index_without_reason,
    redundant_index,
)
from .ownership import (
    owner_column_missing,
    owner_column_nullable,
    owner_fk_missing,
    owner_fk_on_delete,
    owner_not_indexed,
    owner_type_mismatch,
    table_ownership_unclear,
)

RULES: tuple[Rule, ...] = (
    owner_column_missing,
    table_ownership_unclear,
    owner_column_nullable,
    owner_fk_missing,
    owner_fk_on_delete,
    owner_type_mismatch,
    owner_not_indexed,
    missing_primary_key,
    timestamps_missing,
    timestamp_without_time_zone,
    timestamp_default_missing,
    updated_at_trigger,
    varchar_without_length,
    prose_length_not_enforced,
    allowed_values_not_enforced,
    reserved_word_name,
    fk_on_delete_missing,
    fk_not_indexed,
    boolean_index,
    redundant_index,
    duplicate_index,
    index_without_reason,
)


# ---------------------------------------------------------------------------------------------------
# Running the rules


def find_users_table(schema: Schema, owner_column: str, users_table: str | None) -> tuple[str, str]:
    """The users table's name and id type: given, else a users/user table, else the owner FKs' target."""
    targets = [fk for t in schema.tables for fk in t.foreign_keys if fk.columns == [owner_column]]
    if users_table is None:
        named = [t.name for t in schema.tables if t.name in ("users", "user")]
        aimed = sorted({fk.ref_table for fk in targets})
        # Prefer a users/user table that the owner FKs point at, then any users/user table.
        users_table = next((n for n in named if n in aimed), None) or (named[0] if named else None)
        users_table = users_table or (aimed[0] if aimed else "users")
    ref_col = next((fk.ref_columns[0] for fk in targets if fk.ref_table == users_table), "id")
    table = schema.table(users_table)
    col = table.column(ref_col) if table else None
    return users_table, col.type if col else "text"


def _owned(tables: list[Table], ctx: LintContext) -> dict[str, str]:
    """Which tables are user-owned, and how: the owner column, a direct FK to users, or an FK chain."""
    owned: dict[str, str] = {}
    for t in tables:
        if t.column(ctx.owner_column) is not None:
            owned[t.qualified_name] = f"it has {ctx.owner_column}"
        elif fk := next((fk for fk in t.foreign_keys if ctx.is_users_ref(fk)), None):
            owned[t.qualified_name] = f"{', '.join(fk.columns)} references {ctx.users_table}"
    by_name = {t.name: t for t in tables}
    changed = True
    while changed:  # follow FK chains to a fixed point
        changed = False
        for t in tables:
            if t.qualified_name in owned:
                continue
            for fk in t.foreign_keys:
                parent = by_name.get(fk.ref_table)
                if parent is not None and parent.qualified_name in owned:
                    owned[t.qualified_name] = f"through {fk.ref_table}"
                    changed = True
                    break
    return owned


def lint_schema(schema: Schema, *, owner_column: str = "user_id", users_table: str | None = None) -> list[Finding]:
    """Check a schema against the house conventions; findings sorted by severity, object, rule."""
    users_name, users_id_type = find_users_table(schema, owner_column, users_table)
    ctx = LintContext(schema, owner_column, users_name, users_id_type)
    ctx.tables = [t for t in schema.tables if t.managed_by != "better-auth" and t.name != users_name]
    ctx.owned = _owned(ctx.tables, ctx)
    order = {r.id: i for i, r in enumerate(RULES)}  # type: ignore[attr-defined]
    findings = [
        Finding(rule=r.id, severity=r.severity, message=h.message, object=h.object,  # type: ignore[attr-defined]
                location=h.location, fix=h.fix)
        for r in RULES for h in r(ctx)
    ]
    return sorted(findings, key=lambda f: (SEVERITY_RANK[f.severity], f.object or "", order[f.rule], f.message))


# ---------------------------------------------------------------------------------------------------
# docs/rules.md


def _doc_sections(fn: Rule) -> tuple[str, list[str], str, str, str]:
    """Split a rule docstring into rationale, notes, bad, good and fix."""
    doc = inspect.cleandoc(fn.__doc__ or "")
    head, _, rest = doc.partition("\nBad:\n")
    bad, _, rest = rest.partition("\nGood:\n")
    good, _, fix = rest.partition("\nFix:")
    paragraphs = [p.strip() for p in head.split("\n\n") if p.strip()]
    return (" ".join(paragraphs[0].split()), [" ".join(p.split()) for p in paragraphs[1:]],
            textwrap.dedent(bad).strip("\n"), textwrap.dedent(good).strip("\n"), " ".join(fix.split()))


def render_rules_doc() -> str:
    """The text of docs/rules.md, generated from the rule docstrings."""
    out = [
        "# Lint rules",
        "",
        "<!-- Generated from the rule docstrings in tools/spec/lint/; do not edit by hand.",
        "     Regenerate: python -m schema_architect.tools.spec.lint --write-docs -->",
        "",
        "`lint_schema` checks a schema (read from a spec, the models or the live database) against the",
        "house conventions. Better Auth tables and the users table are exempt: we reference them only.",
        "",
        "| rule | severity |",
        "|---|---|",
        *[f"| [`{r.id}`](#{r.id}) | {r.severity} |" for r in RULES],  # type: ignore[attr-defined]
    ]
    for r in RULES:
        rationale, notes, bad, good, fix = _doc_sections(r)
        rid, severity = r.id, r.severity  # type: ignore[attr-defined]
        out += ["", f"## {rid} {{#{rid}}}", "", f"**Severity:** {severity}", "", rationale]
        for note in notes:
            out += ["", note]
        out += ["", "Bad:", "", "```sql", bad, "```", "", "Good:", "", "```sql", good, "```", "",
                f"**Fix:** {fix}"]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schema_architect.tools.spec.lint")
    parser.add_argument("--write-docs", action="store_true", help=f"write {DOCS_PATH}")
    parser.add_argument("--check-docs", action="store_true", help="exit 1 if docs/rules.md is stale")
    args = parser.parse_args(argv)
    text = render_rules_doc()
    if args.write_docs:
        DOCS_PATH.write_text(text, encoding="utf-8")
        return 0
    if args.check_docs:
        current = DOCS_PATH.read_text(encoding="utf-8") if DOCS_PATH.exists() else ""
        return 0 if current == text else 1
    sys.stdout.write(text)
    return 0

