"""No placeholder is lost between a role's prompt (prompts/) and its subagent (agents/).

The subagents are written by hand from the prompts. A shell once ate ``$1`` and ``$2`` from three of them
(an unquoted heredoc): "`params` for , ," reached users. Every ``$N`` a prompt mentions must be in its
agent too, and no agent may hold the marks a stripped placeholder leaves.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROLES = sorted(p.stem for p in (REPO / "agents").glob("*.md"))
PLACEHOLDER = re.compile(r"\$\d+")
# What is left where a placeholder was: "for , ,", "(SQL,  for", "(, $2)".
STRIPPED = re.compile(r"(?<=\S) ,|,  (?=\S)|\(\s*,|\bfor ,")


def body(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return text.split("\n---\n", 1)[1] if text.startswith("---\n") else text


def test_every_role_has_a_prompt_and_an_agent() -> None:
    assert sorted(p.stem for p in (REPO / "prompts").glob("*.md")) == ROLES and len(ROLES) == 5


@pytest.mark.parametrize("role", ROLES)
def test_the_agent_keeps_every_placeholder_of_its_prompt(role: str) -> None:
    prompt = set(PLACEHOLDER.findall(body(REPO / "prompts" / f"{role}.md")))
    agent_text = body(REPO / "agents" / f"{role}.md")
    missing = prompt - set(PLACEHOLDER.findall(agent_text))
    assert not missing, f"agents/{role}.md lost {sorted(missing)}, which prompts/{role}.md mentions"
    bad = [(n, line) for n, line in enumerate(agent_text.splitlines(), 1) if STRIPPED.search(line)]
    assert not bad, f"agents/{role}.md looks like a placeholder was stripped: {bad}"
