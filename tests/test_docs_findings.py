"""docs/findings.md documents every finding id and drift kind the code can emit, and nothing else.

The ids are the ``FindingId`` Literal of tools/schema/findings.py (``Finding.rule`` takes nothing else,
so an id the code emits is one of them) and the ``DriftKind`` Literal. The lint rules (``RuleId``) are
left out: docs/rules.md covers them (tests/test_docs_rules.py).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import get_args

import pytest
from pydantic import ValidationError

from schema_architect.tools.drift import DriftKind
from schema_architect.tools.schema.findings import FINDING_IDS, Finding, RuleId

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "findings.md"
SOURCES = ("tools", "server")
DEFINED_IN = REPO / "tools" / "schema" / "findings.py"

KEBAB = re.compile(r"[a-z]+(-[a-z]+)*")
# A string literal that looks like one of these families' ids must be an id Finding.rule takes.
FAMILY_LITERAL = re.compile(r"(spec|models|sql)-[a-z]+(-[a-z]+)*")
ANCHOR = re.compile(r"^### (\S+) \{#([a-z0-9-]+)\}$", re.MULTILINE)


def source_strings() -> set[str]:
    """Every string constant in tools/ and server/, the Literal's own module left out."""
    found: set[str] = set()
    for folder in SOURCES:
        for path in (REPO / folder).rglob("*.py"):
            if path != DEFINED_IN:
                found |= {node.value for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                          if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    return found


def emitted_ids() -> set[str]:
    """Every finding id and drift kind the code can emit, lint rule ids excluded."""
    return (FINDING_IDS - set(get_args(RuleId))) | set(get_args(DriftKind))


def documented_ids() -> list[str]:
    return [anchor for _, anchor in ANCHOR.findall(DOC.read_text(encoding="utf-8"))]


def test_finding_takes_only_the_ids_of_the_literal() -> None:
    with pytest.raises(ValidationError, match="rule"):
        Finding(rule="sql-not-an-id", severity="error", message="x")
    bad = sorted(i for i in FINDING_IDS if not KEBAB.fullmatch(i))
    assert not bad, f"rule ids that are not kebab-case: {bad}"


def test_every_id_of_the_literal_is_used_and_every_id_like_string_is_in_it() -> None:
    strings = source_strings()
    unused = sorted(FINDING_IDS - strings)
    assert not unused, f"FindingId lists ids no code in tools/ or server/ names any more: {unused}"
    unknown = sorted(s for s in strings if FAMILY_LITERAL.fullmatch(s) and s not in FINDING_IDS)
    assert not unknown, f"strings that look like finding ids but are not in FindingId: {unknown}"


def test_every_emitted_id_is_documented_and_no_stale_ids() -> None:
    emitted, documented = emitted_ids(), set(documented_ids())
    missing, stale = sorted(emitted - documented), sorted(documented - emitted)
    assert not missing and not stale, (
        f"docs/findings.md is out of date.\n  missing (add a '### id {{#id}}' section): {missing}\n"
        f"  stale (the code no longer emits them): {stale}")


def test_findings_doc_headings_are_unique_and_match_anchors() -> None:
    headings = ANCHOR.findall(DOC.read_text(encoding="utf-8"))
    assert [h for h, a in headings if h != a] == [], "each '### id {#id}' heading names its own anchor"
    anchors = [a for _, a in headings]
    duplicates = sorted({a for a in anchors if anchors.count(a) > 1})
    assert not duplicates, f"ids documented more than once: {duplicates}"
    overlap = sorted(set(anchors) & set(get_args(RuleId)))
    assert not overlap, f"lint rule ids belong in docs/rules.md, not docs/findings.md: {overlap}"
