"""Index comparators: missing and extra indexes, and each aspect of a matched pair."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

from ..database.ddl import (
    create_index_sql,
    ident,
    index_columns_sql,
    index_name,
    pk_columns,
)
from ..database.expressions import norm_expr
from ..schema.model import Index, Table, location_of
from .constraints import plain_unique, unique_sets
from .core import (
    CONCURRENT_NOTE,
    Aspect,
    Ctx,
    TableGroup,
    alembic_autocommit,
    make_drift,
    side_fix,
    spec_alt,
    table_comparator,
)
from .model import Drift, DriftKind, Fix, SideValue
from .render import field_index, model_field, model_index, spec_index


def _index_key(i: Index) -> tuple:
    cols = tuple((norm_expr(c.name) if c.is_expression else c.name, c.descending,
                  c.descending if c.nulls_first is None else c.nulls_first) for c in i.columns)
    return cols, i.unique, (i.method or "btree").lower(), norm_expr(i.where), tuple(i.include)


def _relevant_indexes(t: Table) -> list[Index]:
    """Indexes compared as indexes: not the PK's, not plain unique ones (compare_unique covers those)."""
    pk = pk_columns(t)
    return [i for i in t.indexes if not i.primary and not plain_unique(i)
            and not (i.column_names == pk and not i.where and not any(c.descending for c in i.columns))]


def _index_aspects(a: Index, b: Index) -> list[DriftKind]:
    ka, kb = _index_key(a), _index_key(b)
    out: list[DriftKind] = []
    if {c[0] for c in ka[0]} != {c[0] for c in kb[0]}:
        out.append("index-columns")
    elif ka[0] != kb[0]:
        out.append("index-order")
    kind: DriftKind
    for n, kind in ((1, "index-unique"), (2, "index-method"), (3, "index-predicate"), (4, "index-include")):
        if ka[n] != kb[n]:
            out.append(kind)
    return out


def _index_text(t: Table, i: Index) -> str:
    return create_index_sql(t, i).removesuffix(";")


@table_comparator
def compare_indexes(ctx: Ctx, tg: TableGroup) -> Iterator[Drift]:
    lead = tg.lead
    lead_t = tg.tables[lead]
    ref = _relevant_indexes(lead_t)
    for side in list(tg.tables)[1:]:
        t = tg.tables[side]
        rest = _relevant_indexes(t)
        pairs: list[tuple[Index, Index]] = []
        unmatched: list[Index] = []
        for how in ("structure", "name", "columns"):
            for i in (ref if how == "structure" else list(unmatched)):
                match = next((j for j in rest if (
                    _index_key(j) == _index_key(i) if how == "structure"
                    else (i.name and j.name == i.name) if how == "name"
                    else sorted(j.column_names) == sorted(i.column_names))), None)
                if match is not None:
                    rest.remove(match)
                    pairs.append((i, match))
                    if how != "structure":
                        unmatched.remove(i)
                elif how == "structure":
                    unmatched.append(i)
        for i, j in pairs:
            yield from _index_pair_drift(ctx, tg, side, i, j)
        side_uniques = unique_sets(t)
        for i in unmatched:
            if frozenset(i.column_names) in side_uniques and not i.where and not i.unique:
                continue  # a unique constraint's index serves the same lookups
            obj = f"{tg.key}.{index_name(lead_t, i)}"
            shown = {lead: SideValue(value=_index_text(lead_t, i), location=i.location),
                     side: SideValue(value=None, location=location_of(t))}
            a = Aspect(obj, "index-missing", lead, shown, [side])
            idx = i.model_copy(update={"name": index_name(lead_t, i)})
            yield make_drift(ctx, a, "degraded", "the index", partial(_create_index_fix, lead_t=lead_t, t=t, idx=idx),
                             hint=f" It serves: {i.reason}." if i.reason else "")
        for j in rest:
            obj = f"{tg.key}.{index_name(t, j)}"
            shown = {lead: SideValue(value=None, location=location_of(lead_t)),
                     side: SideValue(value=_index_text(t, j), location=j.location)}
            a = Aspect(obj, "index-extra", lead, shown, [side])
            name = index_name(t, j)
            yield make_drift(ctx, a, "degraded", "the index", partial(_drop_index_fix, name=name, t=t, lead=lead),
                             spec_alt("Or document the index in the spec.", spec_index(t, j)))


# The fixes of compare_indexes: make_drift calls them at once, with the values of the index at hand.
def _create_index_fix(side: str, *, lead_t: Table, t: Table, idx: Index) -> list[Fix]:
    return side_fix(side, f"Create the index {idx.name}.", model=_model_index_line(lead_t, idx),
                    sql=create_index_sql(t, idx, concurrently=True),
                    alembic=alembic_autocommit(_alembic_create_index(t, idx)), locks=CONCURRENT_NOTE)


def _drop_index_fix(side: str, *, name: str, t: Table, lead: str) -> list[Fix]:
    return side_fix(side, f"Drop the index {name} (or add it to the {lead}).",
                    model=f"# remove index=True / the Index({name!r}, ...) declaration",
                    sql=f"DROP INDEX CONCURRENTLY {ident(name)};",
                    alembic=alembic_autocommit(f"op.drop_index({name!r}, table_name={t.name!r}, "
                                               "postgresql_concurrently=True)"),
                    locks=CONCURRENT_NOTE)


def _model_index_line(t: Table, i: Index) -> str:
    col = t.column(i.columns[0].name)
    if col is not None and field_index(t, i, col):
        with_index = t.model_copy(update={"indexes": [*t.indexes, i]})
        return model_field(with_index, col)
    return f"__table_args__ = ({model_index(t, i)},)"


def _alembic_create_index(t: Table, i: Index) -> str:
    cols = [f"sa.text({index_columns_sql(Index(columns=[c]))!r})" if (c.is_expression or c.descending) else repr(c.name)
            for c in i.columns]
    kw = ", unique=True" if i.unique else ""
    kw += f", postgresql_using={i.method!r}" if i.method and i.method != "btree" else ""
    kw += f", postgresql_where=sa.text({i.where!r})" if i.where else ""
    kw += f", postgresql_include={i.include!r}" if i.include else ""
    return f"op.create_index({index_name(t, i)!r}, {t.name!r}, [{', '.join(cols)}]{kw}, postgresql_concurrently=True)"


def _index_pair_drift(ctx: Ctx, tg: TableGroup, side: str, i: Index, j: Index) -> Iterator[Drift]:
    lead = tg.lead
    lead_t, t = tg.tables[lead], tg.tables[side]
    aspects = _index_aspects(i, j)
    obj = f"{tg.key}.{index_name(lead_t, i)}"
    shown = {lead: SideValue(value=_index_text(lead_t, i), location=i.location),
             side: SideValue(value=_index_text(t, j), location=j.location)}
    if not aspects:
        if i.name and j.name and i.name != j.name:
            a = Aspect(obj, "index-name", lead, shown, [side])
            old, wanted = j.name, i.name
            yield make_drift(ctx, a, "cosmetic", "the index name", lambda s: side_fix(
                s, f"Rename the index {old} to {wanted}.", model=_model_index_line(lead_t, i),
                sql=f"ALTER INDEX {ident(old)} RENAME TO {ident(wanted)};",
                alembic=f"op.execute({f'ALTER INDEX {ident(old)} RENAME TO {ident(wanted)}'!r})",
                locks="RENAME is a catalog change."), hint=" Same structure; only the name differs.")
        return
    a = Aspect(obj, aspects[0], lead, shown, [side])
    new_name = index_name(lead_t, i)
    new = i.model_copy(update={"name": new_name})
    old_name = index_name(t, j)
    tmp = new_name + "_new" if new_name == old_name else new_name
    steps = [create_index_sql(t, new.model_copy(update={"name": tmp}), concurrently=True),
             f"DROP INDEX CONCURRENTLY {ident(old_name)};"]
    if tmp != new_name:
        steps.append(f"ALTER INDEX {ident(tmp)} RENAME TO {ident(new_name)};")
    ops = [_alembic_create_index(t, new.model_copy(update={"name": tmp})),
           f"op.drop_index({old_name!r}, table_name={t.name!r}, postgresql_concurrently=True)"]
    rename = f"\nop.execute({f'ALTER INDEX {ident(tmp)} RENAME TO {ident(new_name)}'!r})" if tmp != new_name else ""
    what = ", ".join(k.removeprefix("index-") for k in aspects)
    yield make_drift(ctx, a, "degraded", f"the index ({what})", lambda s: side_fix(
        s, f"Rebuild the index as {_index_text(t, new)}.", model=_model_index_line(lead_t, new),
        sql="\n".join(steps), alembic=alembic_autocommit(*ops) + rename, locks=CONCURRENT_NOTE),
        spec_alt("Or accept this index in the spec.", spec_index(t, j)))


