"""Type spellings people write, mapped to the canonical PostgreSQL name the catalog would show.

>>> normalize_type("VARCHAR(200)")
NormalType(type='varchar(200)', identity=None)
>>> normalize_type("SERIAL")
NormalType(type='integer', identity='serial')
>>> normalize_type("TIMESTAMP WITH TIME ZONE").type
'timestamptz'
>>> normalize_type("str").type
'varchar'
>>> normalize_type("STRING (200)").type
'varchar(200)'
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ..schema.model import Identity


class UnknownType(ValueError):
    """The spelling is not a type we can map to PostgreSQL."""


class NormalType(NamedTuple):
    type: str
    identity: Identity | None = None


# Bare spellings (lower case, whitespace collapsed) -> canonical PostgreSQL type.
_ALIASES: dict[str, str] = {
    "text": "text", "string": "varchar", "str": "varchar", "varchar": "varchar",
    "character varying": "varchar", "autostring": "varchar", "citext": "citext",
    "char": "char(1)", "character": "char(1)", "bpchar": "char(1)",
    "int": "integer", "integer": "integer", "int4": "integer", "positive integer": "integer",
    "bigint": "bigint", "int8": "bigint", "smallint": "smallint", "int2": "smallint",
    "bool": "boolean", "boolean": "boolean",
    "uuid": "uuid", "uuid.uuid": "uuid", "guid": "uuid",
    "timestamptz": "timestamptz", "timestamp with time zone": "timestamptz",
    "timestamp with tz": "timestamptz", "timestamp(tz)": "timestamptz", "utcdatetime": "timestamptz",
    "datetime": "timestamptz", "datetime.datetime": "timestamptz",
    "timestamp": "timestamp", "timestamp without time zone": "timestamp", "naivedatetime": "timestamp",
    "date": "date", "datetime.date": "date", "time": "time", "time without time zone": "time",
    "timetz": "timetz", "time with time zone": "timetz", "interval": "interval",
    "json": "json", "jsonb": "jsonb", "dict": "jsonb",
    "float": "double precision", "double": "double precision", "double precision": "double precision",
    "float8": "double precision", "real": "real", "float4": "real",
    "decimal": "numeric", "numeric": "numeric", "money": "money",
    "bytea": "bytea", "bytes": "bytea", "blob": "bytea", "largebinary": "bytea", "binary": "bytea",
    "inet": "inet", "cidr": "cidr", "tsvector": "tsvector", "vector": "vector",
}

_SERIALS: dict[str, NormalType] = {
    "serial": NormalType("integer", "serial"), "serial4": NormalType("integer", "serial"),
    "bigserial": NormalType("bigint", "bigserial"), "serial8": NormalType("bigint", "bigserial"),
    "smallserial": NormalType("smallint", "smallserial"), "serial2": NormalType("smallint", "smallserial"),
}

_LENGTH_TYPES = {"varchar": "varchar", "character varying": "varchar", "string": "varchar",
                 "str": "varchar", "char": "char", "character": "char", "bpchar": "char"}
_PRECISION_TYPES = {"numeric": "numeric", "decimal": "numeric"}

_PARAMS = re.compile(r"^(?P<base>[a-z][a-z0-9_. ]*?)\s*\(\s*(?P<args>[0-9 ,]+)\s*\)\s*(?P<rest>.*)$")
_IDENTITY = re.compile(r"\s+generated\s+(always|by default)\s+as\s+identity.*$")


def normalize_type(spelling: str) -> NormalType:
    """Map one type spelling (SQL, Python, prose-ish) to its canonical PostgreSQL form."""
    raw = " ".join(spelling.strip().strip("`*").split()).lower()
    if not raw:
        raise UnknownType("empty type")
    identity: Identity | None = None
    if m := _IDENTITY.search(raw):
        identity = "identity always" if m.group(1) == "always" else "identity by default"
        raw = raw[: m.start()]
    # "timestamp(6) with time zone" style precision is dropped; arrays keep their suffix.
    array = ""
    while raw.endswith("[]"):
        array += "[]"
        raw = raw[:-2].strip()
    raw = re.sub(r"^timestamp\s*\(\s*\d+\s*\)", "timestamp", raw)
    if raw in _SERIALS and not array:
        return _SERIALS[raw]
    if m := _PARAMS.match(raw):
        base, args, rest = m.group("base").strip(), m.group("args"), m.group("rest").strip()
        numbers = [a.strip() for a in args.split(",") if a.strip()]
        if rest:
            raise UnknownType(f"cannot read the type {spelling!r}")
        if base in _LENGTH_TYPES and len(numbers) == 1:
            return NormalType(f"{_LENGTH_TYPES[base]}({numbers[0]}){array}", identity)
        if base in _PRECISION_TYPES and 1 <= len(numbers) <= 2:
            return NormalType(f"numeric({','.join(numbers)}){array}", identity)
        if base in ("float",) and len(numbers) == 1:
            return NormalType(("real" if int(numbers[0]) <= 24 else "double precision") + array, identity)
        if base in ("time", "timestamp", "timestamptz", "interval") and len(numbers) == 1:
            return NormalType(_ALIASES[base] + array, identity)
        raise UnknownType(f"cannot read the type {spelling!r}")
    # "varchar 255" (no parentheses)
    if m := re.match(r"^(varchar|string|character varying)\s+(\d+)$", raw):
        return NormalType(f"varchar({m.group(2)}){array}", identity)
    if raw in _ALIASES:
        return NormalType(_ALIASES[raw] + array, identity)
    if raw.startswith(("list[", "typing.list[")):
        return NormalType("jsonb", identity)
    raise UnknownType(f"unknown type {spelling!r}")


def try_normalize_type(spelling: str) -> NormalType | None:
    try:
        return normalize_type(spelling)
    except UnknownType:
        return None


def varchar_length(pg_type: str) -> int | None:
    """``varchar(200)`` -> 200; anything else -> None."""
    m = re.fullmatch(r"varchar\((\d+)\)", pg_type)
    return int(m.group(1)) if m else None


# PostgreSQL's format_type() output -> our canonical spelling (catalog side).
_FORMAT_TYPE = {
    "character varying": "varchar", "timestamp with time zone": "timestamptz",
    "timestamp without time zone": "timestamp", "time without time zone": "time",
    "time with time zone": "timetz", "character": "char", "bit varying": "varbit",
}


def from_format_type(text: str) -> str:
    """Canonical form of a ``format_type(atttypid, atttypmod)`` result."""
    array = ""
    while text.endswith("[]"):
        array += "[]"
        text = text[:-2]
    if m := re.fullmatch(r"(character varying|character|numeric|bit varying|bit)\((.+)\)", text):
        base = _FORMAT_TYPE.get(m.group(1), m.group(1))
        return f"{base}({m.group(2).replace(' ', '')}){array}"
    if m := re.fullmatch(r"(timestamp|time)\(\d+\) (with|without) time zone", text):
        text = f"{m.group(1)} {m.group(2)} time zone"
    return _FORMAT_TYPE.get(text, text) + array
