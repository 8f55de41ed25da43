"""Naming helpers shared by every layer that turns table names into words, classes or columns."""

from __future__ import annotations


def singular(word: str) -> str:
    """tasks -> task, categories -> category, boxes -> box; a word that is not plural stays as it is."""
    if word.endswith("ies") and len(word) > 3:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 1:
        return word[:-1]
    return word
