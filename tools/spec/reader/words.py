"""The vocabulary people use in spec cells and bullets, read into column facts.

``read_constraints("NOT NULL, DEFAULT now(), FK → users.id ON DELETE CASCADE")`` gives a
:class:`Facts` with nullable False, default ``now()`` and a foreign key; the same words written in a
bullet, a notes cell or a plain-text code block give the same facts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise

from ...database.types import NormalType, try_normalize_type
from ...schema.model import FkAction, Identity

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_IDENT_RE = re.compile(rf"^{IDENT}$")

FK_ACTIONS: dict[str, FkAction] = {"cascade": "CASCADE", "set null": "SET NULL", "set default": "SET DEFAULT",
                                   "restrict": "RESTRICT", "no action": "NO ACTION"}


@dataclass
class Facts:
    """What one piece of text says about a column. ``None`` means "not said"."""

    nullable: bool | None = None
    primary_key: bool | None = None
    unique: bool | None = None
    default: str | None = None
    identity: Identity | None = None  # "serial" / "identity always" / "identity by default"
    fk_said: bool = False
    fk_target: tuple[str | None, str, str] | None = None  # (schema, table, column)
    on_delete: FkAction | None = None
    on_update: FkAction | None = None
    checks: list[tuple[str | None, str]] = field(default_factory=list)  # (name, expression)
    allowed_values: list[str] | None = None
    indexed: bool = False
    max_length: int | None = None


def clean(text: str) -> str:
    """Cell text without markdown emphasis or code backticks."""
    return re.sub(r"\*\*|__|`", "", text).strip()


def is_identifier(text: str) -> bool:
    return bool(_IDENT_RE.match(text))


def _scan(text: str, start: int = 0) -> Iterator[tuple[int, str, int]]:
    """The one scanner of parenthesised, quoted text: (index, character, depth) for every character
    outside quotes, depth counted after it ('(' opens, ')' closes, never below 0)."""
    depth, quote = 0, None
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(depth - 1, 0)
        yield i, ch, depth


def balanced_paren(text: str, start: int) -> int | None:
    """Index just past the parenthesis group opening at ``text[start] == '('`` (quotes respected)."""
    for i, ch, depth in _scan(text, start):
        if ch == ")" and depth == 0:
            return i + 1
    return None


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside parentheses and quotes."""
    cuts = [i for i, ch, depth in _scan(text) if ch == sep and depth == 0]
    bounds = zip([-1, *cuts], [*cuts, len(text)], strict=True)
    return [part for a, b in bounds if (part := text[a + 1:b].strip())]


# ---------------------------------------------------------------- types


def read_type(text: str) -> NormalType | None:
    """A type spelling such as ``VARCHAR(200)``, ``Text``, ``SERIAL (auto-increment)``, ``Integer``."""
    spelled = clean(text).strip(" .;:")
    if not spelled:
        return None
    if found := try_normalize_type(spelled):
        return found
    # "String (VARCHAR)", "SERIAL (auto-increment)", "Integer (Auto-incrementing)"
    head = re.split(r"\s*\((?![\d ,]+\))", spelled, maxsplit=1)[0]
    if head != spelled and (found := try_normalize_type(head)):
        return found
    return None


def type_alternatives(text: str) -> list[str]:
    """``UUID or VARCHAR`` / ``UUID/string`` -> the alternatives, in order."""
    return [p for p in re.split(r"\s*/\s*|\s+or\s+", clean(text), flags=re.I) if p]


def leading_type(text: str) -> tuple[NormalType | None, str, str]:
    """The longest run of leading words that is a type; returns (type, its spelling, the rest)."""
    words = text.split()
    # Keep a parenthesised length with its word: "VARCHAR (255)" / "STRING (200)".
    for count in range(min(len(words), 5), 0, -1):
        spelled = " ".join(words[:count])
        rest = " ".join(words[count:])
        if m := re.match(r"^\(\s*\d+(\s*,\s*\d+)?\s*\)", rest):
            if found := try_normalize_type(spelled + m.group(0)):
                return found, spelled + m.group(0), rest[m.end():].strip()
        found = try_normalize_type(spelled.rstrip(",;:"))
        if found:
            return found, spelled.rstrip(",;:"), rest
    return None, "", text


# ---------------------------------------------------------------- defaults and expressions


def normalize_default(text: str) -> str | None:
    """``NOW()`` / ``CURRENT_TIMESTAMP`` -> ``now()``; ``FALSE`` -> ``false``; ``"open"`` -> ``'open'``.
    Words that are not a database default (``auto``, ``Current UTC``) give None."""
    value = clean(text).strip().rstrip(",;.")
    low = value.lower()
    if not value or low in {"-", "none", "n/a", "auto", "—", "null"}:
        return None  # DEFAULT NULL is no default at all
    if low in {"now", "now()", "current_timestamp", "current timestamp", "current_timestamp()",
               "current time"}:
        return "now()"
    if low in {"true", "false"}:
        return low
    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        return value
    if re.fullmatch(r"'(?:[^']|'')*'", value):
        return value
    if m := re.fullmatch(r'"([^"]*)"', value):
        return "'" + m.group(1).replace("'", "''") + "'"
    if re.fullmatch(rf"{IDENT}(\.{IDENT})?\(.*\)", value, flags=re.S) or low in {"current_date"}:
        name, _, args = value.partition("(")
        if name.lower() in {"now", "gen_random_uuid", "uuid_generate_v4", "current_timestamp"}:
            name = name.lower()
        return normalize_expression(f"{name}({args}") or f"{name}({args}"
    return None


def normalize_expression(text: str) -> str | None:
    """An SQL expression as PostgreSQL's own parser prints it (None when it does not parse)."""
    from pglast import ast, parse_sql
    from pglast.stream import RawStream

    try:
        statement = parse_sql(f"SELECT 1 WHERE {text}")[0].stmt
        if not isinstance(statement, ast.SelectStmt) or statement.whereClause is None:
            return None
        return _lower_literals(RawStream()(statement.whereClause))
    except Exception:  # any parse or printer failure: the caller keeps the original text
        return None


def print_node(node) -> str:
    from pglast.stream import RawStream

    return _lower_literals(RawStream()(node))


def _lower_literals(text: str) -> str:
    # pglast prints TRUE/FALSE/NULL in capitals; the catalog and our specs write them in lower case.
    # (IS [NOT] NULL is an operator and keeps its capitals.)
    return re.sub(r"(?<!IS )(?<!NOT )\b(TRUE|FALSE|NULL)\b(?=(?:[^']*'[^']*')*[^']*$)",
                  lambda m: m.group(1).lower(), text)


def expression_columns(expression: str) -> list[str]:
    """Column names an SQL expression refers to (in order, no repeats)."""
    from pglast import parse_sql
    from pglast.visitors import Visitor

    names: list[str] = []

    class Columns(Visitor):
        def visit_ColumnRef(self, ancestors, node):  # noqa: N802 (pglast's naming)
            last = node.fields[-1]
            name = getattr(last, "sval", None)
            if name and name not in names:
                names.append(name)

    try:
        Columns()(parse_sql(f"SELECT 1 WHERE {expression}"))
    except Exception:
        return []
    return names


def in_list_values(expression: str) -> list[str] | None:
    """``priority IN ('low', 'medium')`` / ``role = ANY (ARRAY['a', 'b'])`` -> the values."""
    m = re.fullmatch(rf"\(?\s*{IDENT}\s+IN\s*\((.*)\)\s*\)?", expression.strip(), flags=re.I | re.S)
    m = m or re.fullmatch(rf"{IDENT}\s*=\s*ANY\s*\(\s*ARRAY\s*\[(.*)\]\s*\)", expression.strip(), re.I | re.S)
    if not m:
        return None
    items = split_top_level(m.group(1))
    values = []
    for item in items:
        item = re.sub(r"::\w+(\(\d+\))?$", "", item.strip())
        if not re.fullmatch(r"'(?:[^']|'')*'", item):
            return None
        values.append(item[1:-1].replace("''", "'"))
    return values or None


# ---------------------------------------------------------------- free text


_FK_WORDS = re.compile(r"\bFK\b|foreign[\s_-]*key|\breferences?\b|→|->|\bref\b", re.I)
_TARGET_DOTTED = re.compile(rf"({IDENT})\.({IDENT})(?:\.({IDENT}))?")
_TARGET_CALL = re.compile(rf"({IDENT})(?:\.({IDENT})(?=\())?\s*\(\s*({IDENT})\s*\)")  # not "users.id (cascade)"
_TARGET_TABLE_WORD = re.compile(rf"\b(?:to|references?|→|->)\s+(?:the\s+)?({IDENT})\s+table\b", re.I)
# "Foreign Key to Users", "references tasks": a bare table name ending the phrase (its id is meant).
_TARGET_BARE_WORD = re.compile(rf"(?:\b(?:foreign[\s_-]*key|fk)\s+to|\breferences?)\s+(?:the\s+)?(?!(?:true|false|null|"
                               rf"current_timestamp|now)\b)({IDENT})\s*(?=$|[,;.)]|\s+on\b)", re.I)
_ON_DELETE = re.compile(r"on\s+delete\s*:?\s*(cascade|set\s+null|set\s+default|restrict|no\s+action)", re.I)
_ON_UPDATE = re.compile(r"on\s+update\s*:?\s*(cascade|set\s+null|set\s+default|restrict|no\s+action)", re.I)
_CASCADE_WORDS = re.compile(r"cascade[\s-]*delete|delete[\s:]*cascade|cascade:\s*delete|with\s+cascade", re.I)
# "CASCADE on delete", "SET NULL on delete": the action first
_ACTION_ON = re.compile(r"\b(cascade|set\s+null|set\s+default|restrict|no\s+action)\s+on\s+(delete|update)\b", re.I)
_DEFAULT = re.compile(
    r"\bdefault(?:s)?(?:\s+value)?\s*(?:[:=]|\bis\b|\bto\b)?\s*"
    r"(" + IDENT + r"(?:\.\w+)?\s*\((?:[^()]|\([^()]*\))*\)|'(?:[^']|'')*'|\"[^\"]*\"|-?\d+(?:\.\d+)?|"
    r"current[_ ]timestamp|current_date|now|true|false|null)",
    re.I,
)
_NOT_NULL = re.compile(r"\bnot[\s_-]*null(?:able)?\b|\brequired\b|\bnon[\s-]*null(?:able)?\b|\bmandatory\b", re.I)
_NULLABLE = re.compile(r"\bnull(?:able)?\b|\boptional\b", re.I)
_PRIMARY = re.compile(r"\bprimary[\s_-]*(?:key|identifier)\b|\bPK\b|\(pk\)", re.I)
_UNIQUE = re.compile(r"\bunique\b(?!\s+(?:identifier|id\b|key\b|id,|id\)))", re.I)
_INDEXED = re.compile(r"\bindex(?:ed)?\b", re.I)
_SERIAL = re.compile(r"\bserial\b|auto[\s_-]*increment(?:ing|ed)?\b|\bautoincrement\b|\bauto[\s_-]*generated\b", re.I)
_IDENTITY = re.compile(r"generated\s+(always|by\s+default)\s+as\s+identity", re.I)
_CHECK = re.compile(r"(?:\bconstraint\s+(" + IDENT + r")\s+)?\bcheck\s*\(", re.I)
_MAX_LEN = re.compile(
    r"\bmax(?:imum)?[\s_-]*(?:length|len|chars?)?\s*(?:of|:|=)?\s*(\d+)|\b\d+\s*[-–]\s*(\d+)\s*(?:chars?|characters)\b"
    r"|\blength\s*\(\s*\d+\s*[-–]\s*(\d+)\s*\)|\bup\s+to\s+(\d+)\s*(?:chars?|characters)\b",
    re.I,
)
_QUOTED = r"'([^']*)'|\"([^\"]*)\""
_ENUM_CUE = re.compile(r"\benum\b|\bone\s+of\b|\ballowed(?:\s+values)?\b|\bvalues?\s*:|\bIN\s*\(", re.I)


def read_fk_target(text: str, bare_word: bool = True) -> tuple[str | None, str, str] | None:
    """``users.id`` / ``users(id)`` / ``auth.users.id`` / ``the users table`` after a FK word; with
    ``bare_word``, also a table name ending the phrase (``Foreign Key to Users``)."""
    m = _FK_WORDS.search(text)
    if not m:
        return None
    after = text[m.end():]
    candidates = []
    if d := _TARGET_CALL.search(after):
        table, col = (d.group(2), d.group(3)) if d.group(2) else (d.group(1), d.group(3))
        schema = d.group(1) if d.group(2) else None
        candidates.append((d.start(), (schema, table, col)))
    if d := _TARGET_DOTTED.search(after):
        if d.group(3):
            candidates.append((d.start(), (d.group(1), d.group(2), d.group(3))))
        else:
            candidates.append((d.start(), (None, d.group(1), d.group(2))))
    if d := _TARGET_TABLE_WORD.search(text[m.start():]):
        candidates.append((d.start() + 10_000, (None, d.group(1), "id")))
    if not candidates and bare_word and (d := _TARGET_BARE_WORD.search(text[m.start():])):
        candidates.append((d.start(), (None, d.group(1), "id")))
    if not candidates:
        return None
    schema, table, col = min(candidates, key=lambda c: c[0])[1]
    return (schema.lower() if schema else None), table.lower(), col.lower()


def read_constraints(text: str, description: str = "") -> Facts:
    """Facts stated by a constraints cell (``text``); the description only completes a foreign key
    target or a value list the constraints announced, and a length in prose."""
    facts = Facts()
    text = clean(text)
    rest = text
    for check in list(_CHECK.finditer(text)):
        end = balanced_paren(text, check.end() - 1)
        if end is None:
            continue
        inner = text[check.end():end - 1].strip()
        expression = normalize_expression(inner) or inner
        facts.checks.append((check.group(1), expression))
        if values := in_list_values(expression):
            facts.allowed_values = values
        rest = rest.replace(text[check.start():end], " ")
    if m := _IDENTITY.search(rest):
        facts.identity = "identity always" if m.group(1).lower() == "always" else "identity by default"
        rest = rest[: m.start()] + rest[m.end():]
    if m := _DEFAULT.search(rest):
        facts.default = normalize_default(m.group(1))
        rest = rest[: m.start()] + rest[m.end():]
    for pattern, attribute in ((_ON_DELETE, "on_delete"), (_ON_UPDATE, "on_update")):
        if m := pattern.search(rest):
            setattr(facts, attribute, FK_ACTIONS[" ".join(m.group(1).lower().split())])
            rest = rest[: m.start()] + rest[m.end():]
    for action in list(_ACTION_ON.finditer(rest)):
        attribute = f"on_{action.group(2).lower()}"
        if getattr(facts, attribute) is None:
            setattr(facts, attribute, FK_ACTIONS[" ".join(action.group(1).lower().split())])
        rest = rest.replace(action.group(0), " ")
    if facts.on_delete is None and _CASCADE_WORDS.search(rest):
        facts.on_delete = "CASCADE"
    if _FK_WORDS.search(rest):
        facts.fk_said = True
        # a description's "Reference to the user" is prose, not a table name: only dotted or call targets
        facts.fk_target = read_fk_target(rest) or (
            read_fk_target("FK " + description, bare_word=False) if description else None)
        if facts.fk_target is None and description and (m := re.search(rf"\b({IDENT})\.({IDENT})\b", description)):
            facts.fk_target = (None, m.group(1).lower(), m.group(2).lower())
    if _PRIMARY.search(rest):
        facts.primary_key = True
        facts.nullable = False
    if _NOT_NULL.search(rest):
        facts.nullable = False
    elif facts.nullable is None and _NULLABLE.search(rest):
        facts.nullable = True
    if _UNIQUE.search(rest):
        facts.unique = True
    if _INDEXED.search(rest):
        facts.indexed = True
    if _SERIAL.search(rest):
        facts.identity = facts.identity or "serial"
    facts.max_length = read_max_length(text) or read_max_length(description)
    if facts.allowed_values is None:
        facts.allowed_values = read_value_list(text) or read_value_list(description)
    return facts


def read_max_length(text: str) -> int | None:
    if m := _MAX_LEN.search(text or ""):
        return int(next(g for g in m.groups() if g))
    return None


def read_value_list(text: str) -> list[str] | None:
    """``'low' | 'medium' | 'high'``, ``Enum: 'user', 'assistant'``, ``'user' or 'assistant'``."""
    if not text:
        return None
    text = _DEFAULT.sub(" ", text)
    quoted = list(re.finditer(_QUOTED, text))
    if len(quoted) < 2:
        return None
    separators = [text[a.end():b.start()] for a, b in pairwise(quoted)]
    if not all(re.fullmatch(r"\s*(,|\||/|or|,\s*or)\s*", s, flags=re.I) for s in separators):
        return None
    joined_by_pipe_or_or = any(re.fullmatch(r"\s*(\||or)\s*", s, flags=re.I) for s in separators)
    if not (joined_by_pipe_or_or or _ENUM_CUE.search(text[: quoted[0].start()])):
        return None
    return [m.group(1) if m.group(1) is not None else m.group(2) for m in quoted]
