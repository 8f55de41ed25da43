"""A migration step in Alembic's own operations, for the revision migration.py writes.

    the step's SQL ─ parsed (pglast) ─ an op.* call when one says exactly the same statement
                                     ─ op.execute(sa.text(sql)) otherwise

"Exactly the same" is checked by tests/test_alembic_revision.py: what Alembic emits offline for each call
parses to our statement (or, for CREATE TABLE, builds the same catalog). Anything this module does not
recognise in full (a USING clause, an expression index, an enum-typed column, a DO block that guards an
ADD CONSTRAINT ... NOT VALID) stays plain SQL in ``op.execute``: a reviewer reads fewer ``op.*`` calls, never
a different statement.
"""

from __future__ import annotations

#: PostgreSQL type name -> the SQLAlchemy type Alembic renders back as that type (lengths and precision
#: only for _SIZED). Serial types are integers that the table's one-column primary key makes SERIAL.
_TYPES = {
    "text": "sa.Text", "varchar": "sa.String", "bpchar": "sa.CHAR", "int4": "sa.Integer", "int8": "sa.BigInteger",
    "int2": "sa.SmallInteger", "serial": "sa.Integer", "serial4": "sa.Integer", "bigserial": "sa.BigInteger",
    "serial8": "sa.BigInteger", "smallserial": "sa.SmallInteger", "serial2": "sa.SmallInteger",
    "bool": "sa.Boolean", "date": "sa.Date", "float8": "sa.Double", "float4": "sa.REAL", "uuid": "sa.Uuid",
    "jsonb": "postgresql.JSONB", "json": "sa.JSON", "bytea": "sa.LargeBinary", "interval": "sa.Interval",
    "numeric": "sa.Numeric",
}
_DATETIMES = {"timestamptz": "sa.DateTime", "timestamp": "sa.DateTime", "timetz": "sa.Time", "time": "sa.Time"}
_SIZED = {"varchar", "bpchar", "numeric"}
_SERIAL = {"serial", "serial4", "bigserial", "serial8", "smallserial", "serial2"}
_ON_ACTION = {"a": None, "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


class _NotExact(Exception):
    """The statement has a part no op.* argument says: keep it as SQL."""


def _set(flag: str) -> bool:
    return flag not in ("", "\x00")  # pglast gives an unset char field as NUL


def _deparse(node) -> str:
    from pglast.stream import RawStream

    return RawStream()(node)


def _plain(relation) -> str:
    if relation is None or relation.schemaname or relation.relpersistence != "p":
        raise _NotExact
    return relation.relname


def _type(type_name) -> tuple[str, bool]:
    """The SQLAlchemy type for a column's TypeName, and whether it is a serial type."""
    if type_name.setof or type_name.pct_type or type_name.arrayBounds:
        raise _NotExact
    names = [n.sval for n in type_name.names]
    if names[0] == "pg_catalog":
        names = names[1:]
    if len(names) != 1:
        raise _NotExact
    name = names[0]
    mods = []
    for mod in type_name.typmods or ():
        value = getattr(mod, "val", None)
        if value is None or not hasattr(value, "ival"):
            raise _NotExact
        mods.append(str(value.ival))
    if name in _DATETIMES and not mods:
        return _DATETIMES[name] + ("(timezone=True)" if name.endswith("tz") else "()"), False
    if name not in _TYPES or (mods and name not in _SIZED):
        raise _NotExact
    return f"{_TYPES[name]}({', '.join(mods)})", name in _SERIAL


def _column(col, primary_key: bool = False, sole_key: bool = False) -> str:
    """``sa.Column(...)`` for a ColumnDef; ``primary_key`` when a table-level key names it, ``sole_key``
    when the key has one column (SQLAlchemy makes that one SERIAL unless told not to)."""
    from pglast.enums import ConstrType as C

    if _set(col.identity) or _set(col.generated) or col.collClause:
        raise _NotExact
    sa_type, serial = _type(col.typeName)
    args = [repr(col.colname), sa_type]
    nullable = None
    for c in col.constraints or ():
        if c.contype == C.CONSTR_NOTNULL:
            nullable = False
        elif c.contype == C.CONSTR_NULL:
            nullable = True
        elif c.contype == C.CONSTR_DEFAULT:
            args.append(f"server_default=sa.text({_deparse(c.raw_expr)!r})")
        elif c.contype == C.CONSTR_PRIMARY and not c.conname and not c.options:
            primary_key = True
        else:
            raise _NotExact  # REFERENCES, UNIQUE or CHECK on the column: not the forms we write
    if primary_key:
        args.append("primary_key=True")
    if serial != (primary_key and sole_key):
        if serial:
            raise _NotExact  # a serial outside a one-column key: SQLAlchemy would not make it SERIAL
        if primary_key and sole_key and sa_type in ("sa.Integer()", "sa.BigInteger()", "sa.SmallInteger()"):
            args.append("autoincrement=False")  # a plain integer key: not SERIAL
    if nullable is False and not primary_key:
        args.append("nullable=False")
    return f"sa.Column({', '.join(args)})"


def _names(strings) -> list[str]:
    return [s.sval for s in strings or ()]


def _constraint(c) -> str:
    from pglast.enums import ConstrType as C

    if c.deferrable or c.initdeferred or c.skip_validation or c.options or c.indexname:
        raise _NotExact
    name = f", name={c.conname!r}" if c.conname else ""
    if c.contype == C.CONSTR_PRIMARY and not c.including:
        return f"sa.PrimaryKeyConstraint({', '.join(map(repr, _names(c.keys)))}{name})"
    if c.contype == C.CONSTR_UNIQUE and not c.including and not c.nulls_not_distinct:
        return f"sa.UniqueConstraint({', '.join(map(repr, _names(c.keys)))}{name})"
    if c.contype == C.CONSTR_CHECK and not c.is_no_inherit:
        return f"sa.CheckConstraint({_deparse(c.raw_expr)!r}{name})"
    simple_match = c.fk_matchtype in ("s", "\x00") and not getattr(c, "fk_del_set_cols", None)
    if c.contype == C.CONSTR_FOREIGN and c.pk_attrs and simple_match:
        target = _plain(c.pktable)
        refs = [f"{target}.{col}" for col in _names(c.pk_attrs)]
        actions = ""
        for kw, code in (("ondelete", c.fk_del_action), ("onupdate", c.fk_upd_action)):
            if _ON_ACTION.get(code):
                actions += f", {kw}={_ON_ACTION[code]!r}"
        return f"sa.ForeignKeyConstraint({_names(c.fk_attrs)!r}, {refs!r}{name}{actions})"
    raise _NotExact


def _create_table(node) -> str:
    from pglast.enums import ConstrType as C

    if (not node.if_not_exists or node.inhRelations or node.partspec or node.partbound or node.ofTypename
            or node.options or node.tablespacename or node.accessMethod or node.oncommit):
        raise _NotExact
    table = _plain(node.relation)
    elements = node.tableElts or ()
    columns = [e for e in elements if type(e).__name__ == "ColumnDef"]
    constraints = [e for e in elements if type(e).__name__ == "Constraint"]
    if len(columns) + len(constraints) != len(elements):
        raise _NotExact  # LIKE
    keys = [c for c in constraints if c.contype == C.CONSTR_PRIMARY]
    if any(k.conname for k in keys):
        raise _NotExact  # a named key: primary_key=True on the columns would not keep its name
    table_key = _names(keys[0].keys) if keys else []
    column_keys = [c.colname for c in columns if any(k.contype == C.CONSTR_PRIMARY for k in c.constraints or ())]
    key = table_key or column_keys
    args = [repr(table)]
    args += [_column(col, primary_key=col.colname in table_key, sole_key=len(key) == 1) for col in columns]
    # the unnamed key is said by primary_key=True on its columns; PostgreSQL names it <table>_pkey either way
    args += [_constraint(c) for c in constraints if c.contype != C.CONSTR_PRIMARY]
    return "op.create_table(\n" + "".join(f"    {a},\n" for a in args) + "    if_not_exists=True,\n)"


def _index(node) -> str:
    if (not node.if_not_exists or not node.idxname or node.indexIncludingParams or node.options
            or node.tableSpace or node.nulls_not_distinct or node.excludeOpNames):
        raise _NotExact
    columns = []
    for elem in node.indexParams:
        if (elem.expr is not None or elem.collation or elem.opclass or elem.opclassopts
                or elem.ordering != 0 or elem.nulls_ordering != 0):
            raise _NotExact  # DESC, NULLS FIRST, an expression, an operator class: keep the SQL
        columns.append(elem.name)
    args = [repr(node.idxname), repr(_plain(node.relation)), repr(columns)]
    if node.unique:
        args.append("unique=True")
    if node.accessMethod != "btree":
        args.append(f"postgresql_using={node.accessMethod!r}")
    if node.whereClause is not None:
        args.append(f"postgresql_where=sa.text({_deparse(node.whereClause)!r})")
    if node.concurrent:
        args.append("postgresql_concurrently=True")
    return f"op.create_index({', '.join(args)}, if_not_exists=True)"


def _drop(node) -> str:
    from pglast.enums import DropBehavior, ObjectType as O

    if not node.missing_ok or node.behavior != DropBehavior.DROP_RESTRICT or len(node.objects) != 1:
        raise _NotExact
    names = _names(node.objects[0])
    if len(names) != 1:
        raise _NotExact
    if node.removeType == O.OBJECT_INDEX:
        concurrently = ", postgresql_concurrently=True" if node.concurrent else ""
        return f"op.drop_index({names[0]!r}{concurrently}, if_exists=True)"
    if node.removeType == O.OBJECT_TABLE:
        return f"op.drop_table({names[0]!r}, if_exists=True)"
    raise _NotExact


def _alter_table(node) -> str:
    from pglast.enums import AlterTableType as A, DropBehavior

    if len(node.cmds) != 1 or node.missing_ok:
        raise _NotExact
    table, cmd = repr(_plain(node.relation)), node.cmds[0]
    sub = cmd.subtype
    if sub == A.AT_AddColumn and cmd.missing_ok:
        return f"op.add_column({table}, {_column(cmd.def_)}, if_not_exists=True)"
    if cmd.behavior != DropBehavior.DROP_RESTRICT:
        raise _NotExact
    if sub == A.AT_DropColumn and cmd.missing_ok:
        return f"op.drop_column({table}, {cmd.name!r}, if_exists=True)"
    if sub == A.AT_DropConstraint and cmd.missing_ok:
        return f"op.drop_constraint({cmd.name!r}, {table}, if_exists=True)"
    if sub == A.AT_ColumnDefault:
        default = "None" if cmd.def_ is None else f"sa.text({_deparse(cmd.def_)!r})"
        return f"op.alter_column({table}, {cmd.name!r}, server_default={default})"
    if sub in (A.AT_DropNotNull, A.AT_SetNotNull):
        return f"op.alter_column({table}, {cmd.name!r}, nullable={sub == A.AT_DropNotNull})"
    if sub == A.AT_AlterColumnType and cmd.def_.raw_default is None and cmd.def_.collClause is None:
        sa_type, serial = _type(cmd.def_.typeName)
        if serial:
            raise _NotExact
        return f"op.alter_column({table}, {cmd.name!r}, type_={sa_type})"
    raise _NotExact


_RENDERERS = {"CreateStmt": _create_table, "IndexStmt": _index, "DropStmt": _drop, "AlterTableStmt": _alter_table}


def op_call(sql: str) -> str:
    """One statement as an Alembic operation: Alembic's own where it says exactly this statement, else
    ``op.execute`` with the SQL."""
    import pglast

    try:
        [raw] = pglast.parse_sql(sql)
        render = _RENDERERS.get(type(raw.stmt).__name__)
        if render is not None:
            return render(raw.stmt)
    except (_NotExact, ValueError, AttributeError, pglast.parser.ParseError):
        pass  # a node shape not foreseen reads as "not exact": the SQL itself is always right
    return f"op.execute(sa.text({sql!r}))"

