"""mermaid_er: exact output for a small schema, cardinalities, escaping and order."""

from __future__ import annotations

import re

from schema_architect.tools.schema.model import Column, ForeignKey, Index, IndexColumn, Schema, Table, UniqueConstraint
from schema_architect.tools.spec.erd import mermaid_er


def small() -> Schema:
    return Schema(tables=[
        Table(name="tasks", primary_key=["id"], columns=[
            Column(name="id", type="integer", nullable=False, identity="serial"),
            Column(name="user_id", type="text", nullable=False),
            Column(name="title", type="varchar(200)", nullable=False),
            Column(name="parent_id", type="integer"),
            Column(name="created_at", type="timestamptz", nullable=False, default="now()"),
        ], foreign_keys=[
            ForeignKey(columns=["user_id"], ref_table="users", on_delete="CASCADE"),
            ForeignKey(columns=["parent_id"], ref_table="tasks", on_delete="SET NULL"),
        ]),
        Table(name="profiles", primary_key=["id"], columns=[
            Column(name="id", type="integer", nullable=False),
            Column(name="user_id", type="text", nullable=False, unique=True),
            Column(name="bio", type="text"),
        ], foreign_keys=[ForeignKey(columns=["user_id"], ref_table="users", on_delete="CASCADE")]),
    ])


EXPECTED = '''\
erDiagram
    profiles {
        integer id PK
        text user_id FK, UK
        text bio
    }
    tasks {
        integer id PK
        text user_id FK
        varchar_200 title
        integer parent_id FK
        timestamptz created_at
    }
    users["users (Better Auth)"] {
        text id PK
    }
    users ||--o| profiles : "user_id"
    tasks |o--o{ tasks : "parent_id"
    users ||--o{ tasks : "user_id"
'''


def test_small_schema_exact() -> None:
    assert mermaid_er(small()) == EXPECTED


def test_order_does_not_depend_on_input_order() -> None:
    s = small()
    s.tables.reverse()
    s.tables[1].foreign_keys.reverse()
    assert mermaid_er(s) == EXPECTED


def test_better_auth_table_in_the_schema_is_drawn_with_its_columns() -> None:
    s = small()
    s.tables.append(Table(name="users", managed_by="better-auth", primary_key=["id"], columns=[
        Column(name="id", type="text", nullable=False), Column(name="email", type="text", nullable=False,
                                                               unique=True)]))
    out = mermaid_er(s)
    assert '    users["users (Better Auth)"] {\n        text id PK\n        text email UK\n    }\n' in out
    assert out.count("users[") == 1


def test_odd_names_and_types_are_escaped() -> None:
    s = Schema(tables=[
        Table(name="my table", schema_name="audit", columns=[
            Column(name="Due Date", type="double precision"),
            Column(name="tags", type="text[]"),
            Column(name='we"ird', type="numeric(10,2)"),
            Column(name="2fa", type="public.mood"),
        ]),
        Table(name="100%", columns=[]),
    ])
    out = mermaid_er(s)
    assert out == (
        "erDiagram\n"
        '    _100["100_"]\n'
        '    audit__my_table["audit.my table"] {\n'
        '        double_precision Due_Date "Due Date"\n'
        "        text_array tags\n"
        "        numeric_10_2 we_ird \"we'ird\"\n"
        '        public_mood _2fa "2fa"\n'
        "    }\n"
    )
    # Every attribute line is: a word type, a word name, optional keys, optional quoted comment.
    for line in out.splitlines()[1:]:
        if line.startswith("        "):
            assert re.fullmatch(r' {8}[A-Za-z_]\w* [A-Za-z_]\w*( (PK|FK|UK)(, (PK|FK|UK))*)?( "[^"]*")?', line), line


def test_names_that_collide_after_escaping_stay_distinct() -> None:
    s = Schema(tables=[Table(name="a-b"), Table(name="a_b"), Table(name="a b")])
    heads = mermaid_er(s).splitlines()[1:]
    assert heads == ['    a_b_2["a b"]', '    a_b_3["a-b"]', "    a_b"]


def test_cardinality_from_nullability_and_uniqueness() -> None:
    def rel(nullable: bool, **table_kw: object) -> str:
        child = Table(name="child", columns=[Column(name="id", type="integer", nullable=False),
                                             Column(name="parent_id", type="integer", nullable=nullable)],
                      foreign_keys=[ForeignKey(columns=["parent_id"], ref_table="parent")], **table_kw)
        parent = Table(name="parent", primary_key=["id"], columns=[Column(name="id", type="integer")])
        return mermaid_er(Schema(tables=[child, parent])).splitlines()[-1]

    assert rel(False) == '    parent ||--o{ child : "parent_id"'
    assert rel(True) == '    parent |o--o{ child : "parent_id"'
    unique_index = Index(columns=[IndexColumn(name="parent_id")], unique=True)
    assert rel(False, indexes=[unique_index]) == '    parent ||--o| child : "parent_id"'
    assert rel(True, unique_constraints=[UniqueConstraint(columns=["parent_id"])]) == \
        '    parent |o--o| child : "parent_id"'
    # A partial unique index does not make the link one-to-one.
    partial = Index(columns=[IndexColumn(name="parent_id")], unique=True, where="id > 0")
    assert rel(False, indexes=[partial]) == '    parent ||--o{ child : "parent_id"'


def test_composite_fk_label_and_stub_columns() -> None:
    s = Schema(tables=[Table(name="line", columns=[
        Column(name="order_no", type="integer", nullable=False), Column(name="shop", type="text", nullable=False)],
        foreign_keys=[ForeignKey(columns=["order_no", "shop"], ref_table="orders", ref_columns=["no", "shop"])])])
    out = mermaid_er(s)
    assert "    orders {\n        integer no UK\n        text shop UK\n    }\n" in out
    assert out.endswith('    orders ||--o{ line : "order_no, shop"\n')
