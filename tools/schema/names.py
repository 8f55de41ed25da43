"""Naming helpers shared by every layer that turns table names into words, classes or columns, and the
names every layer agrees on."""

from __future__ import annotations

#: The transaction-local setting run_scoped_query binds the caller's id to; the rewriter's filters and
#: the row-security policies of the scoped role (tools/database/role.py) both read it.
CALLER_SETTING = "app.user_id"


def singular(word: str) -> str:
    """tasks -> task, categories -> category, boxes -> box; a word that is not plural stays as it is."""
    if word.endswith("ies") and len(word) > 3:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 1:
        return word[:-1]
    return word


def name_variants(name: str) -> list[str]:
    """The other singular and plural spellings of a table name: task<->tasks, category<->categories,
    box<->boxes (guesses both ways: ``boxes`` gives ``box`` and ``boxe``; callers keep what exists)."""
    out = [name + "s", name + "es"]
    if name.endswith("ies"):
        out.append(name[:-3] + "y")
    if name.endswith("es"):
        out.append(name[:-2])
    if name.endswith("s"):
        out.append(name[:-1])
    if name.endswith("y"):
        out.append(name[:-1] + "ies")
    return out
