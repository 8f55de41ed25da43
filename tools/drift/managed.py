"""Whether a table group is Better Auth's (referenced, never compared) or the project's own.

Decided from evidence, never from the name alone (a project may call its own table ``users``), in
this order; the first that applies decides and is reported:

1. the spec says Better Auth manages the table (its heading or description)  -> managed
2. the models define the table themselves                                     -> compared
3. a side's table has Better Auth's own columns (``emailVerified``...)        -> managed
4. the spec mentions Better Auth and the table has one of its names           -> managed
5. otherwise (a Better Auth name, nothing else)                               -> compared
"""

from __future__ import annotations

import re

from ..schema.model import BETTER_AUTH_TABLES, Table

#: Columns only Better Auth's tables have (compared without case and underscores), and how many of
#: them make the evidence: a project's own ``sessions`` may have a token, not also an ipAddress.
SIGNATURES: dict[str, tuple[frozenset[str], int]] = {
    "user": (frozenset({"emailverified"}), 1),
    "session": (frozenset({"token", "expiresat", "ipaddress", "useragent"}), 3),
    "account": (frozenset({"accountid", "providerid", "accesstoken", "refreshtoken", "idtoken",
                           "accesstokenexpiresat"}), 2),
    "verification": (frozenset({"identifier", "value", "expiresat"}), 3),
    "jwks": (frozenset({"publickey", "privatekey"}), 2),
}


def _kind(name: str) -> str | None:
    """Which Better Auth table a name spells (``users`` -> user, ``verification_tokens`` -> verification)."""
    if name not in BETTER_AUTH_TABLES:
        return None
    base = name.removesuffix("_tokens").removesuffix("s")
    return base if base in SIGNATURES else name


def _signature(t: Table) -> list[str]:
    """Better Auth's own columns the table has (as the side spells them), when they are enough evidence."""
    kind = _kind(t.name)
    if kind not in SIGNATURES:
        return []
    wanted, enough = SIGNATURES[kind]
    found = [c.name for c in t.columns if re.sub(r"_", "", c.name.lower()) in wanted]
    return found if len(found) >= enough else []


def better_auth_decision(tables: dict[str, Table], spec_mention: str | None) -> tuple[bool, str] | None:
    """(managed, why) for a group of same-table spellings (side -> table); None when nothing suggests
    Better Auth (no Better Auth name, no marking). ``spec_mention`` is where the spec names Better Auth."""
    names = sorted({t.name for t in tables.values()})
    spec = tables.get("spec")
    if spec is not None and spec.managed_by == "better-auth":
        where = f" ({spec.location})" if spec.location else ""
        return True, f"the spec says Better Auth manages it{where}"
    if not any(_kind(n) for n in names):
        return None
    if "models" in tables:
        model = tables["models"]
        where = f" ({model.location})" if model.location else ""
        return False, f"compared: the models define {model.name} themselves{where}"
    for side, t in tables.items():
        if cols := _signature(t):
            return True, f"the {side}'s {t.name} has Better Auth's columns ({', '.join(cols)})"
    if spec_mention:
        return True, f"the spec mentions Better Auth ({spec_mention}) and the table is named {names[0]}"
    return False, f"compared: only the name {names[0]} suggests Better Auth (the spec never mentions it)"
