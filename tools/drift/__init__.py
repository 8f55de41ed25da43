"""The engine behind ``diff_models_vs_spec``: drift between two or three :class:`Schema` sides.

    sides = {"spec": ..., "models": ..., "database": ...}   (any two or three)
        │ align tables (by name, then singular/plural)   -> table groups
        │ align columns (by name, then possible renames)  -> column groups
        │ run the registered comparators over each group  -> Drift (one per object and kind)
        ▼
    DiffResult(drifts sorted by object then kind, managed_elsewhere, summary, clean)

The first side present in the order spec, models, database is the **reference** (the source of truth).
Every other side that disagrees with it gets a :class:`Fix` that makes it agree; when the reference is the
spec, each drift also offers the opposite fix (a ``spec_patch`` that accepts the code's version). An
object the reference does not have is compared among the remaining sides the same way (the first present
one leads), so models and database are still checked against each other.

Severities, from worst to mildest:

* ``breaking``: the side, as it stands, makes code that follows the reference fail or misbehave
  (a column or table missing from the database, a different type or FK target, NOT NULL where the
  reference allows NULL, an ON DELETE that blocks deletes the reference cascades).
* ``data-loss-risk``: the fix itself can destroy or reinterpret data (dropping a column or table,
  narrowing a varchar, timestamp <-> timestamptz, adding ON DELETE CASCADE).
* ``degraded``: nothing fails today, but the side enforces less or runs slower than the reference
  (a missing FK, CHECK, unique constraint or index, a nullable column the reference says is NOT NULL).
  Added because "missing index" and "missing FK" are neither breaking nor cosmetic.
* ``cosmetic``: names and spellings that change no behaviour (index names, text vs unbounded varchar,
  serial vs identity, a default that only lives in Python). ``clean`` ignores cosmetic drift.
* ``info``: a difference on Better Auth's tables that none of ours depends on (:mod:`.dependent`); listed
  only with ``include_managed``, and ignored by ``clean``.
"""

from __future__ import annotations

from ..schema.model import Schema

# Importing the aspect modules registers their comparators, in this order.
from . import columns, constraints, indexes, updated_at  # noqa: F401
from .core import COLUMN_COMPARATORS, TABLE_COMPARATORS, Ctx, align_columns, align_tables, differences, name_variants
from .dependent import compare_managed
from .managed import better_auth_decision, spec_claims
from .model import SEVERITIES, SIDE_ORDER, DiffResult, Drift, DriftKind, Fix, Severity, SideValue, Unstated
from .modelfix import unify_model_changes
from .tables import compare_enums

# ---------------------------------------------------------------------------------------------------
# Entry point


def diff_schemas(sides: dict[str, Schema], *, tables: list[str] | None = None, include_managed: bool = False,
                 owner_column: str = "user_id", spec_mentions_better_auth: str | None = None,
                 spec_claims: dict[str, str] | None = None) -> DiffResult:
    """Compare two or three schemas; the first of spec, models, database present is the reference.

    ``spec_mentions_better_auth``: where the spec text names Better Auth (``schema.md:3``);
    ``spec_claims``: the tables the spec's text says Better Auth manages (name -> ``schema.md:9``). Both
    are evidence that a table is Better Auth's (see :mod:`.managed`). Better Auth's tables are compared
    only for what our tables depend on; ``include_managed`` also lists their other differences (at info
    severity). No fix ever alters them (see :mod:`.dependent`)."""
    unknown = set(sides) - set(SIDE_ORDER)
    if unknown or len(sides) < 2:
        raise ValueError(f"diff_schemas needs two or three of {', '.join(SIDE_ORDER)}; got "
                         f"{', '.join(sorted(sides)) or 'none'}. Pass e.g. {{'spec': ..., 'models': ...}}.")
    ctx = Ctx(schemas=dict(sides), sides=[s for s in SIDE_ORDER if s in sides], owner_column=owner_column)
    wanted = {n.lower().rpartition(".")[2] for n in tables or []}
    managed: set[str] = set()
    evidence: dict[str, str] = {}
    drifts: list[Drift] = []
    groups = [g for g in align_tables(ctx) if g.key != "alembic_version"]  # Alembic's bookkeeping, not schema
    claims = spec_claims or {}
    owner_targets = {fk.ref_table for schema in sides.values() for t in schema.tables for fk in t.foreign_keys
                     if fk.columns == [owner_column]}
    decisions = {}
    for tg in groups:
        names = {t.name for t in tg.tables.values()} | {tg.key}
        spellings = names | {v for n in names for v in name_variants(n)}
        decisions[tg.key] = better_auth_decision(
            tg.tables, spec_claim=next((claims[n.lower()] for n in sorted(names) if n.lower() in claims), None),
            spec_mention=spec_mentions_better_auth, owner_target=bool(spellings & owner_targets))
    shown: dict[str, str] = {}
    for tg in groups:
        if (decision := decisions[tg.key]) is not None:
            shown[tg.key] = " / ".join(sorted({t.name for t in tg.tables.values()}))
            evidence[shown[tg.key]] = decision[1]
            if decision[0] and not include_managed:
                ctx.unaliased.add(tg.key)  # FK targets must say which spelling they use
    for tg in groups:
        names = {t.name for t in tg.tables.values()} | {tg.key}
        if wanted and not names & wanted and not any(v in wanted for n in names for v in name_variants(n)):
            continue
        if (decision := decisions[tg.key]) is not None and decision[0]:
            managed |= {t.name for t in tg.tables.values()}
            unstated = len(ctx.unstated)
            found = compare_managed(ctx, tg)
            info = [d for d in found if d.severity == "info"]
            if not include_managed:
                del ctx.unstated[unstated:]  # what the spec leaves unsaid about Better Auth's table is no news
                found = [d for d in found if d.severity != "info"]
            if info:
                evidence[shown[tg.key]] += (f"; {len(info)} difference(s) that our tables do not depend on, "
                                            "at info severity"
                                            + ("" if include_managed else ", listed with include_managed"))
            drifts += found
            continue
        found = [d for tcmp in TABLE_COMPARATORS for d in tcmp(ctx, tg)]
        if len(tg.tables) > 1:
            columns = align_columns(tg)
            for cg in columns:
                for ccmp in COLUMN_COMPARATORS:
                    found += ccmp(ctx, tg, cg)
            unify_model_changes(tg, columns, found)
        drifts += found
    if not wanted:
        drifts += compare_enums(ctx)
    drifts.sort(key=lambda d: (d.object, d.kind, d.message))
    summary: dict[str, int] = {s: sum(d.severity == s for d in drifts) for s in SEVERITIES}
    return DiffResult(reference=ctx.reference, compared=ctx.sides, drifts=drifts,
                      managed_elsewhere=sorted(managed), better_auth=evidence, unstated=ctx.unstated,
                      summary=summary,
                      clean=not any(d.severity not in ("cosmetic", "info") for d in drifts))


__all__ = [
    "DiffResult", "Drift", "DriftKind", "Fix", "SideValue", "Severity", "Unstated", "diff_schemas",
    "differences", "spec_claims",
]  # fmt: skip
