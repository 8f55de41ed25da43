"""docs/rules.md is generated from the rule docstrings and lists every rule id, in order."""

from __future__ import annotations

import re
from typing import get_args

from schema_architect.tools.spec.lint import DOCS_PATH, RuleId, render_rules_doc

REGENERATE = "regenerate it with: python -m schema_architect.tools.spec.lint --write-docs"


def test_docs_rules_md_is_up_to_date() -> None:
    assert DOCS_PATH.exists(), f"{DOCS_PATH} is missing; {REGENERATE}"
    assert DOCS_PATH.read_text(encoding="utf-8") == render_rules_doc(), (
        f"docs/rules.md differs from the rule docstrings in tools/spec/lint/; {REGENERATE}"
    )


def test_rule_ids_equal_docs_anchors_in_order() -> None:
    anchors = re.findall(r"^## .* \{#([a-z0-9-]+)\}$", DOCS_PATH.read_text(encoding="utf-8"), re.MULTILINE)
    assert anchors == list(get_args(RuleId)), f"RuleId and the {{#id}} anchors differ; {REGENERATE}"


def test_rule_ids_are_kebab_case() -> None:
    assert all(re.fullmatch(r"[a-z]+(-[a-z]+)*", rule_id) for rule_id in get_args(RuleId))
