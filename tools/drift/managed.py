"""Whether a table group is Better Auth's (referenced: compared only for what our tables depend on) or
the project's own (compared in full).

Decided from evidence, never from the name alone (a project may call its own table ``users``), in
this order; the first that applies decides and is reported:

1. the spec says Better Auth manages the table (its heading or description, a quote or note
   under it, or a line of prose that names it next to Better Auth)              -> managed
2. the database (or the spec) has Better Auth's own column set for the table, camelCase or
   snake_case (``emailVerified``/``email_verified`` and ``image`` for user...)    -> managed
3. the models define the table beyond a stub (a column Better Auth's table lacks) -> compared
4. our tables' owner column references it and the models (and the spec, if it lists it) have
   only a stub of it: its key, or some of Better Auth's own columns              -> managed
5. the spec mentions Better Auth and the table has one of its names             -> managed
6. otherwise (a Better Auth name, nothing else)                                 -> compared

A stub in the models never makes a table ours: projects keep ``class User`` with just ``id`` so that
their foreign keys resolve.
"""

from __future__ import annotations

import re

from ..schema.model import BETTER_AUTH_TABLES, Table

#: Columns only Better Auth's tables have (compared without case and underscores): all of ``required``
#: and ``enough`` of ``typical``. A project's own ``sessions`` may have a token, not also an ipAddress.
SIGNATURES: dict[str, tuple[frozenset[str], frozenset[str], int]] = {
    "user": (frozenset({"emailverified", "image"}), frozenset(), 0),
    "session": (frozenset(), frozenset({"token", "expiresat", "ipaddress", "useragent"}), 3),
    "account": (frozenset({"accountid", "providerid"}), frozenset(), 0),
    "verification": (frozenset({"identifier", "value", "expiresat"}), frozenset(), 0),
    "jwks": (frozenset({"publickey", "privatekey"}), frozenset(), 0),
}

#: Every column Better Auth (core and its common plugins) puts in each table: what a stub may have.
KNOWN_COLUMNS: dict[str, frozenset[str]] = {
    "user": frozenset({"id", "name", "email", "emailverified", "image", "createdat", "updatedat", "role",
                       "banned", "banreason", "banexpires", "twofactorenabled", "username", "displayusername",
                       "isanonymous", "phonenumber", "phonenumberverified"}),
    "session": frozenset({"id", "expiresat", "token", "createdat", "updatedat", "ipaddress", "useragent",
                          "userid", "impersonatedby", "activeorganizationid"}),
    "account": frozenset({"id", "accountid", "providerid", "userid", "accesstoken", "refreshtoken", "idtoken",
                          "accesstokenexpiresat", "refreshtokenexpiresat", "scope", "password", "createdat",
                          "updatedat"}),
    "verification": frozenset({"id", "identifier", "value", "expiresat", "createdat", "updatedat"}),
    "jwks": frozenset({"id", "publickey", "privatekey", "createdat", "expiresat"}),
}


def norm(name: str) -> str:
    """A column name as Better Auth's field: ``email_verified`` and ``emailVerified`` are one field."""
    return re.sub(r"_", "", name.lower())


def kind_of(name: str) -> str | None:
    """Which Better Auth table a name spells (``users`` -> user, ``verification_tokens`` -> verification)."""
    if name not in BETTER_AUTH_TABLES:
        return None
    base = name.removesuffix("_tokens").removesuffix("s")
    return base if base in SIGNATURES else name


def _signature(t: Table) -> list[str]:
    """Better Auth's own columns the table has (as the side spells them), when they are enough evidence."""
    kind = kind_of(t.name)
    if kind not in SIGNATURES:
        return []
    required, typical, enough = SIGNATURES[kind]
    have = {norm(c.name): c.name for c in t.columns}
    if not required <= set(have) or len(typical & set(have)) < enough:
        return []
    return [have[n] for n in sorted(required | (typical & set(have)))]


def beyond_stub(t: Table) -> list[str]:
    """The columns that make ``t`` more than a stub of Better Auth's table (empty: a stub): for a Better
    Auth name, columns Better Auth's table does not have; for another name, anything but its key."""
    known = KNOWN_COLUMNS.get(kind_of(t.name) or "", frozenset())
    key = set(t.primary_key) or {"id"}
    return [c.name for c in t.columns if c.name not in key and norm(c.name) not in known]


def better_auth_decision(tables: dict[str, Table], *, spec_claim: str | None = None,
                         spec_mention: str | None = None, owner_target: bool = False) -> tuple[bool, str] | None:
    """(managed, why) for a group of same-table spellings (side -> table); None when nothing suggests
    Better Auth. ``spec_claim``: where the spec's text says Better Auth manages this table;
    ``spec_mention``: where the spec names Better Auth at all; ``owner_target``: our tables' owner
    column references this table."""
    names = sorted({t.name for t in tables.values()})
    spec = tables.get("spec")
    if spec is not None and spec.managed_by == "better-auth":
        where = f" ({spec.location})" if spec.location else ""
        return True, f"the spec says Better Auth manages it{where}"
    if spec_claim:
        return True, f"the spec says Better Auth manages it ({spec_claim})"
    for side in ("database", "spec"):
        if side in tables and (cols := _signature(tables[side])):
            return True, f"the {side}'s {tables[side].name} has Better Auth's columns ({', '.join(cols)})"
    if not owner_target and not any(kind_of(n) for n in names):
        return None
    model = tables.get("models")
    if model is not None and (extra := beyond_stub(model)):
        where = f" ({model.location})" if model.location else ""
        return False, (f"compared: the models define {model.name} themselves{where}, beyond a stub of "
                       f"Better Auth's table ({', '.join(extra[:3])})")
    if owner_target and (model is not None or spec is not None) and not (spec is not None and beyond_stub(spec)):
        has = "the models have only a stub of it" if model is not None else "the spec lists only a stub of it"
        return True, f"our tables' owner column references {names[0]} and {has}"
    if not any(kind_of(n) for n in names):
        return None
    if spec_mention:
        return True, f"the spec mentions Better Auth ({spec_mention}) and the table is named {names[0]}"
    return False, f"compared: only the name {names[0]} suggests Better Auth (the spec never mentions it)"


# ---------------------------------------------------------------------------------------------------
# What the spec's text says about Better Auth

_BETTER_AUTH = re.compile(r"better[\s_-]?auth", re.I)
#: Phrases that say a table is Better Auth's (in its section, or next to its name).
_CLAIM = re.compile(r"(?:managed|owned|created|maintained|handled|migrated|provided|generated|defined)\s+"
                    r"(?:and\s+\w+\s+)?by\s+better[\s_-]?auth|better[\s_-]?auth(?:'s)?\s+(?:own\s+)?"
                    r"(?:table|manages|owns|creates|migrates|schema)|reference[sd]?\s+only|only\s+referenced",
                    re.I)
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*)$")
_NAME = re.compile(r'[`"*]*\b([A-Za-z_][A-Za-z0-9_]*)\b[`"*]*')


def _about_the_table(line: str, section: str) -> bool:
    """A claim in a table's section is about the table when it opens the line ("> Managed by Better
    Auth", "Reference only: ...") or names it ("this table", the table's name), not "Passwords are
    managed by Better Auth"."""
    low = re.sub(r"^[\s>*_`\-:]*(?:note|nb|important)?[\s>*_`\-:]*", "", line.lower())
    return bool(_CLAIM.match(low) or _BETTER_AUTH.match(low)
                or re.search(rf"\b(?:this|the)\s+table\b|\b{re.escape(section)}\b", low))


def spec_claims(text: str, file: str, tables: set[str]) -> dict[str, str]:
    """Tables the spec's text says Better Auth manages: table name (lower case) -> ``file:line``.

    Claims are: a heading naming the table and Better Auth; a line in the table's own section (a quote,
    a note, prose) that says "managed by Better Auth", "reference only" or the like about the table; a
    line naming Better Auth's tables with such a phrase; and, under a heading about Better Auth
    (``## Authentication (Better Auth)``), the subheadings and lines naming Better Auth's tables. Code
    blocks are skipped."""
    claims: dict[str, str] = {}
    section: str | None = None
    ba_level = 0  # the level of the heading about Better Auth we are under (0: none)
    known = {t.lower() for t in tables} | set(BETTER_AUTH_TABLES)
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if fenced:
            continue
        mentions = bool(_BETTER_AUTH.search(line))
        heading = _HEADING.match(line)
        if heading:
            level = len(heading.group(1))
            section = next((w for w in (w.lower() for w in _NAME.findall(heading.group(2))) if w in known), None)
            if ba_level and level <= ba_level:
                ba_level = 0
            if mentions and section is None:
                ba_level = level
            found = [section] if section and (mentions or (ba_level and section in BETTER_AUTH_TABLES)) else []
        elif mentions and _CLAIM.search(line):
            found = [w.lower() for w in _NAME.findall(line) if w.lower() in BETTER_AUTH_TABLES] \
                or ([section] if section and _about_the_table(line, section) else [])
        elif ba_level and section is None:
            found = [w.lower() for w in _NAME.findall(line) if w.lower() in BETTER_AUTH_TABLES]
        else:
            found = []
        for name in found:
            claims.setdefault(name, f"{file}:{number}")
    return claims
