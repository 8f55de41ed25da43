"""The canonical writer: round trip through the reader, upsert of one section, the reference spec."""

from __future__ import annotations

import string

import psycopg
from hypothesis import HealthCheck, given, settings, strategies as st

from schema_architect.tools.schema.model import (
    Check,
    Column,
    ForeignKey,
    Index,
    IndexColumn,
    QueryPattern,
    Schema,
    Table,
)
from schema_architect.tools.spec.reader import parse_spec
from schema_architect.tools.spec.writer import render_spec, render_table_section, upsert_table_section

from conftest import REPO

REFERENCE = REPO / "specs" / "database" / "schema.md"
TYPES = ["text", "varchar(200)", "varchar(20)", "integer", "bigint", "boolean", "timestamptz", "timestamp",
         "date", "uuid", "jsonb", "numeric(10,2)", "double precision", "text[]"]
DEFAULTS = {"text": ["''", "'medium'"], "integer": ["0"], "boolean": ["false", "true"],
            "timestamptz": ["now()"], "uuid": ["gen_random_uuid()"]}
WORD = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=8)
IDENTIFIER = st.builds(lambda a, b: f"{a}_{b}", WORD, WORD)
# Awkward but single-line prose: pipes, backticks, quotes, arrows, backslashes.
PROSE = st.text(alphabet=string.ascii_letters + " |`'\"→-_.,;:()\\", min_size=1, max_size=30).map(
    lambda s: " ".join(s.split())).filter(lambda s: s and s[0] not in "-|>#`*(:" and not s.endswith(":"))


def strip_locations(value):
    if isinstance(value, dict):
        # ``unstated`` records what the written spec leaves to SQL's reading of silence (issue 14)
        return {k: strip_locations(v) for k, v in value.items() if k not in ("location", "unstated")}
    if isinstance(value, list):
        return [strip_locations(v) for v in value]
    return value


@st.composite
def columns(draw, name):
    pg_type = draw(st.sampled_from(TYPES))
    column = Column(name=name, type=pg_type, nullable=draw(st.booleans()),
                    unique=draw(st.booleans()), description=draw(st.none() | PROSE))
    if pg_type in DEFAULTS and draw(st.booleans()):
        column.default = draw(st.sampled_from(DEFAULTS[pg_type]))
    return column


@st.composite
def tables(draw, name, earlier):
    names = draw(st.lists(IDENTIFIER, min_size=1, max_size=5, unique=True).filter(lambda n: "id" not in n))
    cols = [Column(name="id", type="integer", identity=draw(st.sampled_from(["serial", None])),
                   nullable=False, primary_key=True)] + [draw(columns(n)) for n in names]
    table = Table(name=name, columns=cols, primary_key=["id"], description=draw(st.none() | PROSE))
    if draw(st.booleans()):
        target = cols[1]
        values = draw(st.lists(WORD, min_size=2, max_size=3, unique=True))
        target.type, target.allowed_values, target.default = "varchar(20)", values, None
        quoted = ", ".join(f"'{v}'" for v in values)
        table.checks.append(Check(name=draw(st.none() | st.just(f"ck_{name}_{target.name}")),
                                  expression=f"{target.name} IN ({quoted})", columns=[target.name]))
    if earlier and draw(st.booleans()):
        fk_column = Column(name="parent_id", type="integer", nullable=False)
        table.columns.append(fk_column)
        table.foreign_keys.append(ForeignKey(columns=["parent_id"], ref_table=draw(st.sampled_from(earlier)),
                                             on_delete=draw(st.sampled_from([None, "CASCADE", "SET NULL"]))))
    for i in range(draw(st.integers(0, 2))):
        picked = draw(st.lists(st.sampled_from([c.name for c in table.columns]), min_size=1, max_size=2,
                               unique=True))
        table.indexes.append(Index(
            name=f"idx_{name}_{i}", unique=draw(st.booleans()),
            columns=[IndexColumn(name=c, descending=draw(st.booleans())) for c in picked],
            where=draw(st.sampled_from([None, f"{picked[0]} IS NOT NULL"])), reason=draw(st.none() | PROSE)))
    if draw(st.booleans()):
        table.query_patterns.append(QueryPattern(description=draw(PROSE.filter(lambda s: "`" not in s)),
                                                 sql=f"SELECT * FROM {name} WHERE id = $1"))
    if draw(st.booleans()):
        table.notes.append(draw(PROSE))
    return table


@st.composite
def schemas(draw):
    names = draw(st.lists(IDENTIFIER, min_size=1, max_size=3, unique=True))
    made: list[Table] = []
    for name in names:
        made.append(draw(tables(name, [t.name for t in made])))
    return Schema(tables=made)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schemas())
def test_round_trip_through_the_reader(schema):
    text = render_spec(schema)
    parsed = parse_spec(text)
    assert parsed.warnings == [] and parsed.conflicts == [], text
    got = parsed.schema.model_copy(update={"source": None})
    assert strip_locations(got.model_dump()) == strip_locations(schema.model_dump()), text


def test_round_trip_of_the_reference_spec_is_stable():
    parsed = parse_spec(REFERENCE.read_text())
    assert render_spec(parse_spec(render_spec(parsed.schema)).schema) == render_spec(parsed.schema)


SPEC = """\
# My spec\r
\r
Intro with odd  spacing.\r
\r
## Table: tasks\r
\r
| Column | Type | Constraints | Description |\r
|---|---|---|---|\r
| id | serial | PRIMARY KEY | old |\r
\r
### Indexes\r
\r
- tasks.id (old)\r
\r
## Other notes\r
\r
```sql\r
-- ## Table: tasks inside code is not a heading\r
```\r
"""


def test_upsert_replaces_only_that_section():
    new = Table(name="tasks", columns=[Column(name="id", type="integer", identity="serial", nullable=False,
                                              primary_key=True, description="new")], primary_key=["id"])
    out = upsert_table_section(SPEC, new)
    before, _, rest = SPEC.partition("## Table: tasks")
    assert out.startswith(before)
    assert out.endswith(SPEC[SPEC.index("## Other notes"):])
    middle = out[len(before):len(out) - len(SPEC) + SPEC.index("## Other notes")]
    assert middle == render_table_section(new).replace("\n", "\r\n") + "\r\n"
    [tasks] = parse_spec(out).schema.tables
    assert tasks.columns[0].description == "new"


def test_upsert_appends_a_new_table_and_keeps_every_byte():
    new = Table(name="tags", columns=[Column(name="id", type="integer", nullable=False, primary_key=True)],
                primary_key=["id"])
    text = "# Spec\n\n## Table: tasks\n\n| Column | Type |\n|---|---|\n| id | serial |\n"
    out = upsert_table_section(text, new)
    assert out.startswith(text) and out == text + "\n" + render_table_section(new)
    assert [t.name for t in parse_spec(out).schema.tables] == ["tasks", "tags"]
    assert upsert_table_section("", new) == render_table_section(new)


def test_reference_spec_is_clean_complete_and_conventional():
    parsed = parse_spec(REFERENCE.read_text())
    assert parsed.warnings == [] and parsed.conflicts == []
    schema = parsed.schema
    assert [t.name for t in schema.tables] == ["users", "tasks", "tags", "task_tags", "conversations", "messages"]
    assert schema.table("users").managed_by == "better-auth"
    assert schema.table("users").column("id").type == "text"
    for table in schema.tables[1:]:
        assert {"created_at", "updated_at"} <= {c.name for c in table.columns}, table.name
        for name in ("created_at", "updated_at"):
            column = table.column(name)
            assert (column.type, column.nullable, column.default) == ("timestamptz", False, "now()")
        assert all(index.reason for index in table.indexes), table.name
        assert table.query_patterns, table.name
        for fk in table.foreign_keys:
            assert fk.on_delete == "CASCADE"
            # every FK column leads some index (or the primary key)
            leads = {i.columns[0].name for i in table.indexes} | {table.primary_key[0]}
            assert fk.columns[0] in leads, (table.name, fk.columns)
        if table.column("user_id"):
            assert table.column("user_id").nullable is False and table.column("user_id").type == "text"
            assert any(fk.columns == ["user_id"] and fk.ref_table == "users" for fk in table.foreign_keys)
        for column in table.columns:
            assert column.type != "varchar", (table.name, column.name)
    tasks = schema.table("tasks")
    assert tasks.column("priority").allowed_values == ["low", "medium", "high"]
    assert schema.table("messages").column("role").allowed_values == ["user", "assistant", "tool"]
    assert schema.table("task_tags").primary_key == ["task_id", "tag_id"]
    assert [u.column_names for u in schema.table("tags").indexes if u.unique] == [["user_id", "name"]]
    # no index is a leftmost prefix of another index of the same table
    for table in schema.tables:
        shapes = [[(c.name, c.descending) for c in i.columns] for i in table.indexes]
        for a in shapes:
            assert not any(a != b and b[: len(a)] == a for b in shapes), table.name


def _ddl(schema: Schema) -> str:
    """Plain DDL written from the parsed reference spec, only to prove it is valid PostgreSQL."""
    statements = []
    for table in schema.tables:
        parts = []
        for c in table.columns:
            spelled = c.identity if c.identity in ("serial", "bigserial") else c.type
            text = f"{c.name} {spelled}" + ("" if c.nullable else " NOT NULL")
            text += " UNIQUE" if c.unique else ""
            text += f" DEFAULT {c.default}" if c.default else ""
            parts.append(text)
        parts.append(f"PRIMARY KEY ({', '.join(table.primary_key)})")
        parts += [f"CHECK ({ch.expression})" for ch in table.checks]
        parts += [f"FOREIGN KEY ({', '.join(fk.columns)}) REFERENCES {fk.ref_table} ({', '.join(fk.ref_columns)})"
                  f" ON DELETE {fk.on_delete}" for fk in table.foreign_keys]
        statements.append(f"CREATE TABLE {table.name} ({', '.join(parts)})")
        for index in table.indexes:
            cols = ", ".join(c.name + (" DESC" if c.descending else "") for c in index.columns)
            statements.append(f"CREATE {'UNIQUE ' if index.unique else ''}INDEX {index.name} ON {table.name} "
                              f"USING {index.method} ({cols})")
    return ";\n".join(statements)


def test_reference_spec_is_valid_postgresql(pg_url):
    schema = parse_spec(REFERENCE.read_text()).schema
    with psycopg.connect(pg_url) as conn:
        conn.execute(_ddl(schema))
        count = conn.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' "
                             "AND indexname LIKE 'idx_%' OR indexname LIKE 'uq_%'").fetchone()[0]
        for table in schema.tables:
            for pattern in table.query_patterns:
                conn.execute("EXPLAIN " + pattern.sql.replace("$1", "'1'").replace("$2", "'1'"))
        conn.rollback()
    assert count == sum(len(t.indexes) for t in schema.tables)
