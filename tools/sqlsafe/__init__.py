"""Checking and scoping an agent's SQL so it reads only the caller's data.

``checker`` (parse + static checks), ``functions`` (the allowlist), ``classify`` (which relations
hold user data, from the catalog), ``rewriter`` (filter every user table to the caller, with an
LRU of rewrites), ``redact`` (no free text in anything said back).
"""

from .checker import CheckedQuery, check_sql
from .classify import ClassificationCache, Relation, UserDataMap, load_map
from .errors import QueryFailed, QueryRefused
from .rewriter import Prepared, Rewritten, UnknownRelation, prepare, rewrite

__all__ = [
    "CheckedQuery",
    "ClassificationCache",
    "QueryFailed",
    "Prepared",
    "QueryRefused",
    "Relation",
    "Rewritten",
    "UnknownRelation",
    "UserDataMap",
    "check_sql",
    "load_map",
    "prepare",
    "rewrite",
]
