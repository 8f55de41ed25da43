"""Column comparators: presence and renames, type, nullability, default, identity, value sets."""

from __future__ import annotations

from collections.abc import Iterator

from ..database.ddl import (
    canon_type,
    column_sql,
    fk_sql,
    ident,
    identity,
    in_list_sql,
    literal,
    nullable,
    type_sql,
)
from ..database.expressions import norm_default, value_set_of
from ..schema.model import Check, Column, Table, location_of
from .core import (
    REWRITE_NOTE,
    Aspect,
    ColumnGroup,
    Ctx,
    TableGroup,
    alembic_autocommit,
    base_type,
    column_comparator,
    compare_aspect,
    first_differing,
    known,
    make_drift,
    side_fix,
    spec_alt,
    type_length,
)
from .model import Drift, DriftKind, Fix, SideValue
from .render import enum_class, model_field, sa_type, spec_row


@column_comparator
def compare_column_presence(ctx: Ctx, tg: TableGroup, cg: ColumnGroup) -> Iterator[Drift]:
    obj = f"{tg.key}.{cg.key}"
    lead = cg.lead
    absent = [s for s in tg.tables if s not in cg.cols]
    shown = {s: SideValue(value=(f"{cg.cols[s].name} {canon_type(cg.cols[s].type)}" if s in cg.cols else None),
                          location=location_of(cg.cols.get(s), tg.tables[s])) for s in tg.tables}
    c, t = cg.cols[lead], tg.tables[lead]
    if cg.renamed:
        a = Aspect(obj, "possible-rename", lead, shown, list(cg.renamed))

        def rfixes(side: str) -> list[Fix]:
            old = cg.renamed[side]
            tname = tg.tables[side].name
            out = side_fix(side, f"If {old} was renamed: rename it to {c.name}.",
                           model=model_field(t, c) + f"  # was: {old}",
                           sql=f"ALTER TABLE {ident(tname)} RENAME COLUMN {ident(old)} TO {ident(c.name)};",
                           alembic=f"op.alter_column({tname!r}, {old!r}, new_column_name={c.name!r})",
                           locks="RENAME COLUMN is a catalog change (brief ACCESS EXCLUSIVE lock).")
            out += side_fix(side, f"If they are different columns: add {c.name} and drop {old}.",
                            model=f"{model_field(t, c)}\n# and delete the field {old}",
                            sql=(f"ALTER TABLE {ident(tname)} ADD COLUMN "
                                 f"{column_sql(t, c.model_copy(update={'nullable': True}))};\n"
                                 f"ALTER TABLE {ident(tname)} DROP COLUMN {ident(old)};"),
                            alembic=(f"op.add_column({tname!r}, sa.Column({c.name!r}, {sa_type(c)}, nullable=True))\n"
                                     f"op.drop_column({tname!r}, {old!r})"),
                            locks=f"DROP COLUMN {old} loses its data; backfill {c.name} first.")
            return out
        first = a.differing[0]
        yield make_drift(ctx, a, "breaking", "the column name", rfixes,
                         spec_alt(f"Or name the column {cg.renamed[first]} in the spec.",
                                  spec_row(tg.tables[first], cg.cols[first])),
                         hint=f" Possibly renamed ({' / '.join(sorted({c.name, *cg.renamed.values()}))}, same type).")
    if not absent:
        return
    if lead == tg.lead:
        a = Aspect(obj, "missing-column", lead, shown, absent)
        owner = " It is the owner column: rows cannot be scoped to a user." if c.name == ctx.owner_column else ""

        def fixes(side: str) -> list[Fix]:
            tname = tg.tables[side].name
            needs_backfill = not nullable(t, c) and not c.default and identity(c) is None
            if needs_backfill:  # a NOT NULL column without default cannot be added to a table with rows
                sql = (f"ALTER TABLE {ident(tname)} ADD COLUMN "
                       f"{column_sql(t, c.model_copy(update={'nullable': True}))};\n"
                       f"-- backfill: UPDATE {ident(tname)} SET {ident(c.name)} = ... WHERE {ident(c.name)} IS NULL;\n"
                       f"ALTER TABLE {ident(tname)} ALTER COLUMN {ident(c.name)} SET NOT NULL;")
                locks = "ADD COLUMN is a catalog change; SET NOT NULL scans the table under ACCESS EXCLUSIVE."
            else:
                sql = f"ALTER TABLE {ident(tname)} ADD COLUMN {column_sql(t, c)};"
                locks = "ADD COLUMN with a constant (or no) default is a catalog change: no rewrite."
            fk = next((f for f in t.foreign_keys if f.columns == [c.name]), None)
            if fk:
                name = f"{tname}_{c.name}_fkey"
                sql += (f"\nALTER TABLE {ident(tname)} ADD CONSTRAINT {ident(name)} {fk_sql(fk)} NOT VALID;"
                        f"\nALTER TABLE {ident(tname)} VALIDATE CONSTRAINT {ident(name)};")
            return side_fix(side, f"Add the column {c.name}.", model=model_field(t, c), sql=sql,
                            alembic=f"op.add_column({tname!r}, sa.Column({c.name!r}, {sa_type(c)}, "
                                    f"nullable={nullable(t, c) or needs_backfill}))",
                            locks=locks)
        yield make_drift(ctx, a, "breaking", "the column's existence", fixes, hint=owner)
        return
    present = list(cg.cols)
    a = Aspect(obj, "extra-column", tg.lead, shown, present)

    def severity(side: str) -> str:
        if side == "models" and "database" in absent:
            return "breaking"  # the app reads and writes a column the database does not have
        return "data-loss-risk" if side == "database" else "degraded"

    def xfixes(side: str) -> list[Fix]:
        tname = tg.tables[side].name
        return side_fix(side, f"Drop the column {cg.cols[side].name} (or add it to the {ctx.reference}).",
                        model=f"# delete the field: {model_field(tg.tables[side], cg.cols[side])}",
                        sql=f"ALTER TABLE {ident(tname)} DROP COLUMN {ident(cg.cols[side].name)};",
                        alembic=f"op.drop_column({tname!r}, {cg.cols[side].name!r})",
                        locks="DROP COLUMN is a catalog change, but its data is gone for good.")
    yield make_drift(ctx, a, severity, "the column's existence", xfixes,
                     spec_alt(f"Or document the column {c.name} in the spec.", spec_row(t, c)))


def _alter(tg: TableGroup, side: str, cg: ColumnGroup) -> tuple[str, str]:
    return tg.tables[side].name, cg.cols[side].name


def _column_spec_alt(tg: TableGroup, cg: ColumnGroup, a: Aspect, what: str) -> Fix | None:
    s = first_differing(a)
    return spec_alt(f"Or accept what the {s} say{'s' if s == 'database' else ''} ({what}) in the spec.",
                    spec_row(tg.tables[s], cg.cols[s]))


def _type_kind(a: str, b: str) -> DriftKind:
    ba, bb = base_type(a), base_type(b)
    if {ba, bb} == {"timestamp", "timestamptz"}:
        return "timestamp-timezone"
    if ba == bb or ({ba, bb} == {"text", "varchar"} and (type_length(a) or type_length(b))):
        return "column-length"
    return "column-type"


def _length(t: str) -> float:
    """A varchar/char length (or numeric precision) for ordering; unbounded is infinite."""
    arg = type_length(t)
    return float(arg.split(",")[0]) if arg else float("inf")


def rewrites(have: str, want: str, using: str = "") -> bool:
    """Whether ``ALTER COLUMN ... TYPE want`` (from ``have``) rewrites the table and its indexes.

    PostgreSQL skips the rewrite only for a binary-coercible change that cannot reject a value (measured
    on PostgreSQL 18, by the table's relfilenode): text <-> unbounded varchar, dropping or widening a
    varchar length, dropping or widening a numeric precision at the same scale. Anything else, and any
    USING expression, rewrites it under the ACCESS EXCLUSIVE lock."""
    have, want = canon_type(have), canon_type(want)
    if have == want:
        return False
    if using:
        return True
    bh, bw = base_type(have), base_type(want)
    if {bh, bw} <= {"text", "varchar"}:
        return type_length(want) is not None and (bh == "text" or _length(have) > _length(want))
    if bh == bw == "numeric":
        have_length, want_length = type_length(have), type_length(want)
        if want_length is None:
            return False
        if have_length is None:
            return True
        (hp, _, hs), (wp, _, ws) = have_length.partition(","), want_length.partition(",")
        return (hs or "0") != (ws or "0") or int(wp) < int(hp)
    return True


NO_REWRITE_NOTE = ("A catalog change, no rewrite: the new type is binary-coercible and rejects no value (a brief "
                   "ACCESS EXCLUSIVE lock; the indexes are kept).")


@column_comparator
def compare_column_type(ctx: Ctx, tg: TableGroup, cg: ColumnGroup) -> Iterator[Drift]:
    obj = f"{tg.key}.{cg.key}"
    cols, silent = known(ctx, obj, "type", cg.cols, lambda c: c, lambda c: canon_type(c.type),
                         lambda c: canon_type(c.type))
    a = compare_aspect(obj, "column-type", cols, lambda c: canon_type(c.type), lambda c: canon_type(c.type))
    if not a:
        return
    a.silent = silent
    lead_c, lead_t = cg.cols[a.lead], tg.tables[a.lead]
    want = canon_type(lead_c.type)
    kinds = {s: _type_kind(want, canon_type(cg.cols[s].type)) for s in a.differing}
    a.kind = worst_kind = sorted(kinds.values(), key=["column-type", "timestamp-timezone", "column-length"].index)[0]
    enumish = any(ctx.is_enum(c.type) for c in cg.cols.values())

    def severity(side: str) -> str:
        have = canon_type(cg.cols[side].type)
        kind = kinds[side]
        if kind == "timestamp-timezone":
            return "data-loss-risk"
        if kind == "column-length":
            if _length(have) < _length(want):  # values the reference allows are rejected here
                return "breaking" if side == "database" else "degraded"
            return "data-loss-risk"  # the fix narrows the column
        if {base_type(have), base_type(want)} == {"text", "varchar"}:
            # same storage and behaviour in PostgreSQL; never cosmetic if the fix would rewrite the table
            return "degraded" if side == "database" and rewrites(have, want) else "cosmetic"
        if enumish and ({base_type(have), base_type(want)} & {"text", "varchar"}):
            return "degraded"  # a fixed value set as native enum vs text + CHECK
        return "breaking"

    def fixes(side: str) -> list[Fix]:
        tname, cname = _alter(tg, side, cg)
        have = canon_type(cg.cols[side].type)
        gen = identity(lead_c)
        if side == "database" and kinds[side] == "column-type" and gen and identity(cg.cols[side]) != gen:
            return _retype_generated(ctx, side, tg.tables[side], cg.cols[side], lead_c, want)
        ck = _enum_value_check(ctx, side, tg, cg)
        using = ""
        if kinds[side] == "timestamp-timezone":
            using = f" USING {ident(cname)} AT TIME ZONE 'UTC'"  # state the zone the naive values are in
        elif kinds[side] == "column-type" and not {base_type(have), base_type(want)} <= {"text", "varchar"}:
            using = f" USING {ident(cname)}::{type_sql(lead_c.model_copy(update={'identity': None}))}"
        target = type_sql(lead_c.model_copy(update={"identity": None}))
        check = ""
        if kinds[side] == "column-length" and _length(want) < _length(have) and base_type(want) in ("varchar", "char"):
            check = (f"-- check first: SELECT count(*) FROM {ident(tname)} WHERE length({ident(cname)}) > "
                     f"{int(_length(want))};\n")
        locks = NO_REWRITE_NOTE if not rewrites(have, want, using) else REWRITE_NOTE
        if kinds[side] == "timestamp-timezone":
            locks += " The values are reinterpreted in the zone given by USING: check it is UTC."
        model = model_field(lead_t, lead_c)
        sql = f"{check}ALTER TABLE {ident(tname)} ALTER COLUMN {ident(cname)} TYPE {target}{using};"
        alembic = (f"op.alter_column({tname!r}, {cname!r}, type_={sa_type(lead_c)}"
                   + (f", postgresql_using={using[7:]!r}" if using else "") + ")")
        action = f"Make {cname} {want} (it is {have} here)."
        if ck is not None:  # the enum type enforced the value set: the CHECK must take over
            assert ck.name is not None  # _enum_value_check names it
            action = f"Make {cname} {want} (it is the enum {have} here) and restrict it with the CHECK {ck.name}."
            model += ("\n# and add to the class's __table_args__ (the enum enforced these values):\n"
                      f"__table_args__ = (CheckConstraint({ck.expression!r}, name={ck.name!r}),)")
            sql += (f"\nALTER TABLE {ident(tname)} ADD CONSTRAINT {ident(ck.name)} CHECK ({ck.expression}) NOT VALID;"
                    f"\nALTER TABLE {ident(tname)} VALIDATE CONSTRAINT {ident(ck.name)};"
                    f"\n-- then, once no column uses it: DROP TYPE {ident(have)};")
            alembic += (f"\nop.create_check_constraint({ck.name!r}, {tname!r}, {ck.expression!r}, "
                        "postgresql_not_valid=True)"
                        f"\nop.execute({f'ALTER TABLE {ident(tname)} VALIDATE CONSTRAINT {ident(ck.name)}'!r})")
            locks += " The CHECK is added NOT VALID (no scan), then VALIDATE scans without blocking writes."
        return side_fix(side, action, model=model, sql=sql, alembic=alembic, locks=locks)
    what = {"column-length": "the length", "timestamp-timezone": "the time zone",
            "column-type": "the type"}[worst_kind]
    hint = ""
    if worst_kind == "timestamp-timezone":
        hint = " SQLModel >= 0.0.45 maps datetime to timestamptz; timestamp stores naive values."
    elif worst_kind == "column-type" and all(severity(s) == "cosmetic" for s in a.differing):
        hint = " text and unbounded varchar behave the same in PostgreSQL; bare str maps to varchar."
    yield make_drift(ctx, a, severity, what, fixes, _column_spec_alt(tg, cg, a, "type"), hint=hint)


def _enum_value_check(ctx: Ctx, side: str, tg: TableGroup, cg: ColumnGroup) -> Check | None:
    """The CHECK a side's column needs when its type changes from an enum to the reference's plain type.

    An enum whose labels are the reference's value set is not a value-set drift (compare_value_set finds
    the same set), so the type fix is the only one that sees the enum go: it must bring the CHECK, named
    and spelled as the reference has it."""
    lead_t, lead_c = tg.tables[cg.lead], cg.cols[cg.lead]
    side_t, side_c = tg.tables[side], cg.cols[side]
    if ctx.is_enum(lead_c.type) or not ctx.is_enum(side_c.type):
        return None
    if any((vs := value_set_of(ck.expression)) and vs[0] == side_c.name for ck in side_t.checks):
        return None  # the side checks the values already
    tname = side_t.name
    ck = next((ck for ck in lead_t.checks if (vs := value_set_of(ck.expression)) and vs[0] == lead_c.name), None)
    if ck is not None:
        return Check(name=ck.name or f"{tname}_{lead_c.name}_check", expression=ck.expression, columns=[lead_c.name])
    if lead_c.allowed_values:
        return Check(name=f"{tname}_{lead_c.name}_check", expression=in_list_sql(lead_c.name, lead_c.allowed_values),
                     columns=[lead_c.name])
    return None


#: Types PostgreSQL casts to an integer with ``USING col::integer`` (text only when it holds digits).
_CASTS_TO_INTEGER = {"smallint", "integer", "bigint", "numeric", "real", "double precision", "text", "varchar",
                     "char", "citext"}


def _retype_generated(ctx: Ctx, side: str, t: Table, c: Column, lead_c: Column, want: str) -> list[Fix]:
    """A column the reference generates (serial or identity) has another type in the database, e.g. a uuid
    or varchar id where the spec says ``id serial``: change the type AND make the database generate it.

    Castable types (varchar of digits, bigint, ...) are converted in place with ``USING id::integer``. A uuid
    has no cast to integer: every row gets a new number, computed into a new column and swapped in with
    ``ALTER COLUMN id TYPE integer USING id_new`` (the column keeps its position, primary key and name)."""
    tname, cname = t.name, c.name
    gen = identity(lead_c)
    assert gen is not None  # called for a generated column only
    have = canon_type(c.type)
    target = type_sql(lead_c.model_copy(update={"identity": None}))
    base = base_type(target)
    seq = f"{tname}_{cname}_seq"
    tbl, col = ident(tname), ident(cname)
    alter = f"ALTER TABLE {tbl} ALTER COLUMN {col}"
    refs = sorted(f"{o.name}.{o_col}" for o in ctx.schemas[side].tables for fk in o.foreign_keys
                  if fk.ref_table == tname and cname in fk.ref_columns
                  for o_col, r_col in zip(fk.columns, fk.ref_columns, strict=False) if r_col == cname)
    castable = base_type(have) in _CASTS_TO_INTEGER and base in ("smallint", "integer", "bigint")
    head: list[str] = []
    steps: list[str] = []
    if not castable:
        head += [f"-- BREAKING, DATA-LOSS RISK: {have} cannot be cast to {target}. Every row gets a NEW id; the old "
                 f"{have} ids are discarded.",
                 "-- Whatever stored them breaks: referencing columns, URLs, caches, other services."]
    if refs:
        head.append(f"-- Foreign keys reference {tname}.{cname}: {', '.join(refs)}. Migrate them in the same "
                    "transaction (the ALTER below fails while they exist): drop each FK, add an integer column, "
                    + (f"UPDATE it from {tname}.{cname}_new joined on the old id (before {cname}_new is dropped), "
                       if not castable else "convert it the same way, ")
                    + "then swap it in and re-add the FK.")
    else:
        head.append(f"-- No foreign key in this database references {tname}.{cname}; if another database or "
                    "service stores these ids, migrate it too.")
    if c.default:
        steps.append(f"{alter} DROP DEFAULT;")  # the old default (gen_random_uuid(), ...) has no integer cast
    if castable:
        if base_type(have) in ("text", "varchar", "char", "citext"):
            head += [f"-- check first (must be 0): SELECT count(*) FROM {tbl} WHERE {col} !~ '^[0-9]+$';",
                     "-- if it is not, the ids are not numbers: renumber every row as for a uuid id (a new column "
                     "filled from the sequence, swapped in with USING), which discards the old ids."]
        steps.append(f"{alter} TYPE {target} USING {col}::{target};")
    elif gen == "serial":
        steps += [f"CREATE SEQUENCE IF NOT EXISTS {ident(seq)} AS {base};",
                  f"ALTER TABLE {tbl} ADD COLUMN {ident(cname + '_new')} {target} NOT NULL "
                  f"DEFAULT nextval({literal(seq)});",
                  f"{alter} TYPE {target} USING {ident(cname + '_new')};",
                  f"ALTER TABLE {tbl} DROP COLUMN {ident(cname + '_new')};"]
    else:
        steps += [f"ALTER TABLE {tbl} ADD COLUMN {ident(cname + '_new')} {target} GENERATED BY DEFAULT AS IDENTITY;",
                  f"{alter} TYPE {target} USING {ident(cname + '_new')};",
                  f"ALTER TABLE {tbl} DROP COLUMN {ident(cname + '_new')};"]
    if gen == "serial":
        steps += ([f"CREATE SEQUENCE IF NOT EXISTS {ident(seq)} AS {base} OWNED BY {tbl}.{col};"] if castable
                  else [f"ALTER SEQUENCE {ident(seq)} OWNED BY {tbl}.{col};"])
        steps += [f"{alter} SET DEFAULT nextval({literal(seq)});",
                  f"SELECT setval({literal(seq)}, coalesce(max({col}), 0) + 1, false) FROM {tbl};"]
    else:
        steps += [f"{alter} ADD GENERATED {gen.split(' ', 1)[1].upper()} AS IDENTITY;",
                  f"SELECT setval(pg_get_serial_sequence({literal(tbl)}, {literal(cname)}), "
                  f"coalesce(max({col}), 0) + 1, false) FROM {tbl};"]
    if castable:
        action = (f"Make {cname} {want} {gen} (it is {have} here, not generated): cast the ids in place and let "
                  "the database generate the next ones.")
        generator = "sequence" if gen == "serial" else "identity"
        locks = (REWRITE_NOTE + f" The cast fails on a value that is not an integer. The {generator} and its setval "
                 f"past max({cname}) are catalog changes. Run it in one transaction, and deploy models that no longer "
                 f"write {cname} themselves.")
    else:
        action = (f"Make {cname} {want} {gen} (it is {have} here): {have} has no cast, so every row is renumbered "
                  "and the old ids are lost.")
        locks = (f"Breaking and data-loss risk: the old {have} ids are replaced, so deploy the integer-id models at "
                 f"the same moment. Run it in one transaction: ADD COLUMN with a volatile default and ALTER COLUMN "
                 f"TYPE each rewrite the table (and its indexes, the primary key's included) under ACCESS "
                 f"EXCLUSIVE, so reads and writes wait until commit: plan downtime for a large table. "
                 f"Rows are numbered in no particular order.")
    if refs:
        locks += f" Referencing FKs ({', '.join(refs)}) must be migrated in the same transaction."
    return side_fix(side, action, sql="\n".join(head + steps),
                    alembic="\n".join(f"op.execute({s.rstrip(';')!r})" for s in steps), locks=locks)


@column_comparator
def compare_nullability(ctx: Ctx, tg: TableGroup, cg: ColumnGroup) -> Iterator[Drift]:
    obj = f"{tg.key}.{cg.key}"
    items = {s: (tg.tables[s], c) for s, c in cg.cols.items()}
    items, silent = known(ctx, obj, "nullability", items, lambda tc: tc[1], lambda tc: nullable(*tc),
                          lambda tc: "NULL" if nullable(*tc) else "NOT NULL")
    a = compare_aspect(obj, "nullability", items, lambda tc: nullable(*tc),
                 lambda tc: "NULL" if nullable(*tc) else "NOT NULL")
    if not a:
        return
    a.silent = silent
    for s in a.shown:
        a.shown[s].location = location_of(cg.cols[s])
    want_null = nullable(tg.tables[a.lead], cg.cols[a.lead])
    lead_t, lead_c = tg.tables[a.lead], cg.cols[a.lead]

    def severity(side: str) -> str:
        if want_null:
            return "breaking"  # NOT NULL here rejects rows the reference allows
        return "breaking" if cg.key == ctx.owner_column else "degraded"

    def fixes(side: str) -> list[Fix]:
        tname, cname = _alter(tg, side, cg)
        if want_null:
            return side_fix(side, f"Allow NULL in {cname}.", model=model_field(lead_t, lead_c),
                            sql=f"ALTER TABLE {ident(tname)} ALTER COLUMN {ident(cname)} DROP NOT NULL;",
                            alembic=f"op.alter_column({tname!r}, {cname!r}, nullable=True)",
                            locks="DROP NOT NULL is a catalog change.")
        ck = f"{tname}_{cname}_not_null"
        add_check = (f"ALTER TABLE {ident(tname)} ADD CONSTRAINT {ident(ck)} "
                     f"CHECK ({ident(cname)} IS NOT NULL) NOT VALID")
        sql = (f"-- check first: SELECT count(*) FROM {ident(tname)} WHERE {ident(cname)} IS NULL;\n"
               f"{add_check};\n"
               f"ALTER TABLE {ident(tname)} VALIDATE CONSTRAINT {ident(ck)};\n"
               f"ALTER TABLE {ident(tname)} ALTER COLUMN {ident(cname)} SET NOT NULL;\n"
               f"ALTER TABLE {ident(tname)} DROP CONSTRAINT {ident(ck)};")
        return side_fix(side, f"Make {cname} NOT NULL.", model=model_field(lead_t, lead_c), sql=sql,
                        alembic=(f"op.execute({add_check!r})\n"
                                 f"op.execute({f'ALTER TABLE {ident(tname)} VALIDATE CONSTRAINT {ident(ck)}'!r})\n"
                                 f"op.alter_column({tname!r}, {cname!r}, nullable=False)\n"
                                 f"op.drop_constraint({ck!r}, {tname!r}, type_='check')"),
                        locks=("SET NOT NULL scans the whole table under ACCESS EXCLUSIVE unless a validated "
                               "CHECK (col IS NOT NULL) proves it; the NOT VALID + VALIDATE steps make that "
                               "scan without blocking writes. Fails if NULLs exist: backfill them first."))
    yield make_drift(ctx, a, severity, "nullability", fixes, _column_spec_alt(tg, cg, a, "nullability"))


@column_comparator
def compare_default(ctx: Ctx, tg: TableGroup, cg: ColumnGroup) -> Iterator[Drift]:
    obj = f"{tg.key}.{cg.key}"
    cols, silent = known(ctx, obj, "default", cg.cols, lambda c: c, lambda c: norm_default(c.default),
                         lambda c: c.default if norm_default(c.default) is not None else None)
    a = compare_aspect(obj, "default", cols, lambda c: norm_default(c.default),
                 lambda c: c.default if norm_default(c.default) is not None else None)
    if not a:
        return
    a.silent = silent
    lead_c, lead_t = cg.cols[a.lead], tg.tables[a.lead]
    want = norm_default(lead_c.default)

    def severity(side: str) -> str:
        have = norm_default(cg.cols[side].default)
        if want is not None and have is None:
            return "cosmetic" if side == "models" else "degraded"  # ORM inserts still get a value
        return "cosmetic" if want is None else "degraded"

    def fixes(side: str) -> list[Fix]:
        tname, cname = _alter(tg, side, cg)
        action = (f"Set the database default of {cname} to {lead_c.default}." if want
                  else f"Drop the default of {cname}.")
        sql = (f"ALTER TABLE {ident(tname)} ALTER COLUMN {ident(cname)} "
               + (f"SET DEFAULT {lead_c.default};" if want else "DROP DEFAULT;"))
        return side_fix(side, action, model=model_field(lead_t, lead_c), sql=sql,
                        alembic=f"op.alter_column({tname!r}, {cname!r}, server_default="
                                + (f"sa.text({lead_c.default!r}))" if want else "None)"),
                        locks="Changing a default is a catalog change; existing rows keep their values.")
    python_only = want is not None and "models" in a.differing and norm_default(cg.cols["models"].default) is None
    hint = (" The models declare no server_default, so the default is Python-side only: inserts made "
            "outside the ORM get none." if python_only else "")
    yield make_drift(ctx, a, severity, "the default", fixes, _column_spec_alt(tg, cg, a, "default"), hint=hint)


@column_comparator
def compare_identity(ctx: Ctx, tg: TableGroup, cg: ColumnGroup) -> Iterator[Drift]:
    obj = f"{tg.key}.{cg.key}"
    lead_base = base_type(cg.cols[cg.lead].type)  # a type change (serial -> uuid) is compare_column_type's
    same_type = {s: c for s, c in cg.cols.items() if base_type(c.type) == lead_base}
    a = compare_aspect(obj, "identity", same_type, identity, lambda c: identity(c) or "none")
    if not a:
        return
    lead_c, lead_t = cg.cols[a.lead], tg.tables[a.lead]
    want = identity(lead_c)

    def severity(side: str) -> str:
        have = identity(cg.cols[side])
        if want and not have:
            return "breaking"  # inserts that leave the id to the database fail
        if "identity always" in (want, have):
            return "degraded"  # ALWAYS refuses explicit ids
        return "cosmetic"

    def fixes(side: str) -> list[Fix]:
        tname, cname = _alter(tg, side, cg)
        have = identity(cg.cols[side])
        alter = f"ALTER TABLE {ident(tname)} ALTER COLUMN {ident(cname)}"
        steps = []
        if have == "serial":
            steps.append(f"{alter} DROP DEFAULT;")
        elif have:
            steps.append(f"{alter} DROP IDENTITY;")
        if want == "serial":
            seq = f"{tname}_{cname}_seq"
            steps += [f"CREATE SEQUENCE IF NOT EXISTS {ident(seq)} OWNED BY {ident(tname)}.{ident(cname)};",
                      f"{alter} SET DEFAULT nextval({literal(seq)});",
                      f"SELECT setval({literal(seq)}, coalesce(max({ident(cname)}), 0) + 1, false) "
                      f"FROM {ident(tname)};"]
        elif want:
            steps.append(f"{alter} ADD GENERATED {want.split(' ', 1)[1].upper()} AS IDENTITY;")
        return side_fix(side, f"Make {cname} {want or 'not generated'} (it is {have or 'not generated'} here).",
                        model=model_field(lead_t, lead_c), sql="\n".join(steps),
                        alembic="\n".join(f"op.execute({s.rstrip(';')!r})" for s in steps),
                        locks="Catalog changes; an identity added to a filled table must restart above max(id).")
    yield make_drift(ctx, a, severity, "how values are generated", fixes, _column_spec_alt(tg, cg, a, "identity"))


def value_set(ctx: Ctx, side: str, t: Table, c: Column) -> frozenset[str] | None:
    if c.allowed_values is not None:
        return frozenset(c.allowed_values)
    if (labels := ctx.enum_labels(side, c.type)) is not None:
        return frozenset(labels)
    return next((vs[1] for ck in t.checks if (vs := value_set_of(ck.expression)) and vs[0] == c.name), None)


@column_comparator
def compare_value_set(ctx: Ctx, tg: TableGroup, cg: ColumnGroup) -> Iterator[Drift]:
    types = {canon_type(c.type) for c in cg.cols.values()}
    if len(types) == 1 and ctx.is_enum(next(iter(types))):
        return  # one enum type on every side: compare_enums compares its labels once
    obj = f"{tg.key}.{cg.key}"
    sets = {s: value_set(ctx, s, tg.tables[s], c) for s, c in cg.cols.items()}
    a = compare_aspect(obj, "check", dict(sets), lambda v: v, lambda v: ", ".join(sorted(v)) if v is not None else None)
    if not a:
        return
    for s in a.shown:
        a.shown[s].location = location_of(cg.cols[s])
    enum = any(ctx.is_enum(c.type) for c in cg.cols.values())
    a.kind = "enum-labels" if enum else "check"
    want = sets[a.lead]
    lead_t, lead_c = tg.tables[a.lead], cg.cols[a.lead]

    def severity(side: str) -> str:
        have = sets[side]
        if want is None or have is None:
            return "degraded"  # one side does not constrain the values at all
        return "breaking" if want - have else "degraded"

    def fixes(side: str) -> list[Fix]:
        tname, cname = _alter(tg, side, cg)
        if want is None:
            have = next((c.name for c in tg.tables[side].checks
                         if c.name and (vs := value_set_of(c.expression)) and vs[0] == cname), f"{tname}_{cname}_check")
            return side_fix(side, f"Drop the value restriction on {cname}.", model=model_field(lead_t, lead_c),
                            sql=f"ALTER TABLE {ident(tname)} DROP CONSTRAINT {ident(have)};",
                            alembic=f"op.drop_constraint({have!r}, {tname!r}, type_='check')",
                            locks="Dropping a CHECK is a catalog change.")
        values = sorted(want)
        expr = in_list_sql(cname, values)
        ck = f"{tname}_{cname}_check"
        declared = next((c for c in lead_t.checks if (vs := value_set_of(c.expression)) and vs[0] == lead_c.name),
                        None)
        if declared is not None:  # the reference's own CHECK: its name and its spelling
            ck, expr = declared.name or ck, declared.expression
        enum_type = canon_type(cg.cols[side].type)
        if ctx.is_enum(enum_type) and side == "database":
            sql = "\n".join(f"ALTER TYPE {ident(enum_type)} ADD VALUE IF NOT EXISTS {literal(v)};"
                            for v in values if v not in (sets[side] or ()))
            removed = sorted((sets[side] or frozenset()) - want)
            if removed:
                sql += f"\n-- removing labels {', '.join(removed)} needs a new type and a column recast"
            return side_fix(side, f"Give the enum {enum_type} the labels {', '.join(values)}.", sql=sql or None,
                            alembic=alembic_autocommit(*(f"op.execute({s!r})" for s in sql.splitlines()
                                                         if not s.startswith("--"))),
                            locks="ADD VALUE is a catalog change; the new label cannot be used in the same "
                                  "transaction.")
        model = (f"class {enum_class(cname)}(str, Enum):\n"
                 + "\n".join(f"    {v} = {v!r}" for v in values)
                 + "\n# SQLModel stores member NAMES as enum labels, not the .values"
                 if enum else f"__table_args__ = (CheckConstraint({expr!r}, name={ck!r}),)")
        drop = f"ALTER TABLE {ident(tname)} DROP CONSTRAINT IF EXISTS {ident(ck)};\n" if sets[side] is not None else ""
        return side_fix(side, f"Restrict {cname} to {', '.join(values)}.", model=model,
                        sql=(f"{drop}ALTER TABLE {ident(tname)} ADD CONSTRAINT {ident(ck)} CHECK ({expr}) NOT VALID;\n"
                             f"ALTER TABLE {ident(tname)} VALIDATE CONSTRAINT {ident(ck)};"),
                        alembic=(f"op.create_check_constraint({ck!r}, {tname!r}, {expr!r}, postgresql_not_valid=True)\n"
                                 f"op.execute({f'ALTER TABLE {ident(tname)} VALIDATE CONSTRAINT {ident(ck)}'!r})"),
                        locks="NOT VALID adds the CHECK without a scan; VALIDATE scans without blocking writes "
                              "and fails on rows outside the set.")
    hint = (" SQLModel stores enum member names, not their values." if enum and "models" in a.differing else "")
    yield make_drift(ctx, a, severity, "the allowed values", fixes, _column_spec_alt(tg, cg, a, "value set"), hint=hint)


