"""explain_indexes' result model, its input errors and the limits it works within."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..schema.errors import AgentError
from ..schema.findings import Finding
from ..schema.model import Location

#: Below this many rows (pg_class.reltuples) the planner's choice of a sequential scan proves nothing.
SMALL_TABLE_ROWS = 1000
#: A candidate index is recommended when it lowers a pattern's estimated cost by at least this share.
MIN_GAIN = 0.10
#: Dexter's floor: a query whose estimated cost is below this is already cheap; no index is tried for it.
MIN_COST = 100.0
#: The recommended set is the smallest whose workload cost is within this share of the best set's.
WORKLOAD_TOLERANCE = 0.05
#: PostgreSQL 18's btree skip scan: an index also serves equality on a later key column when the
#: columns before it have few distinct values.
SKIP_SCAN_MIN_VERSION = 180000
#: EXPLAIN (GENERIC_PLAN) arrived in PostgreSQL 16; older servers take the PREPARE path.
GENERIC_PLAN_MIN_VERSION = 160000
#: statement_timeout for one hypothetical build and for the evidence transaction.
STATEMENT_TIMEOUT_MS = 15_000

Source = Literal["spec", "database", "both"]


class ExplainError(AgentError, ValueError):
    """Bad input to explain_indexes; the message says what to pass instead."""

    rule = "query-invalid"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScanChoice(_Model):
    """How the plan reads one table: the node type and the index(es) it goes through."""

    table: str
    node: str = Field(description="Seq Scan, Index Scan, Index Only Scan, Bitmap Heap Scan...")
    indexes: list[str] = Field(default_factory=list)
    backward: bool = Field(False, description="Index read backward (DESC order from an ASC index or vice versa)")
    cost: float = Field(description="Total cost of this scan node")
    rows: float = Field(description="Rows the planner expects from it")


class PlanSummary(_Model):
    total_cost: float
    startup_cost: float
    scans: list[ScanChoice]
    sort: bool = Field(description="The plan sorts rows itself (no index gives the order)")
    indexes: list[str] = Field(description="Every index the plan uses")
    seq_scans: list[str] = Field(description="Tables read by a sequential scan")


class QueryEvidence(_Model):
    """One query pattern planned on the live database."""

    table: str
    query: str = Field(description="What the query does, in words")
    sql: str
    origin: Literal["spec", "convention", "caller", "foreign key"]
    location: Location | None = None
    needs: list[str] = Field(description="The index columns the query asks for: equality first, then order")
    planned_how: str = Field(description="generic plan, prepared generic plan, or plain EXPLAIN")
    chosen: PlanSummary | None = Field(None, description="What the planner chooses")
    forced: PlanSummary | None = Field(None, description="The plan with enable_seqscan=off, when asked")
    verdict: str
    notes: list[str] = Field(default_factory=list)


class IndexEntry(_Model):
    table: str
    name: str
    definition: str = Field(description="CREATE INDEX statement")
    columns: list[str] = Field(description="Key columns in order, with DESC / NULLS when not the default")
    method: str
    unique: bool
    primary: bool
    include: list[str]
    where: str | None
    constraint: str | None
    valid: bool
    declared_in: list[str] = Field(description="Spec line(s) and/or 'database'")
    spec_reason: str | None = None
    size_bytes: int | None = None
    idx_scan: int | None = None
    purposes: list[str] = Field(description="What it serves, derived from its columns")
    evidence: list[str] = Field(description="What EXPLAIN showed about it")
    problems: list[str] = Field(default_factory=list, description="Problem ids about this index")


@dataclass
class ColumnShape:
    """A column's live statistics (pg_stats) as a scratch copy reproduces them (on_copy.py)."""

    n_distinct: float  # pg_stats: > 0 a count, < 0 minus the fraction of rows
    null_frac: float = 0.0


class QueryCost(_Model):
    query: str
    cost_before: float
    cost_after: float | None
    uses_new_index: bool | None = None


class Recommendation(_Model):
    table: str
    ddl: str = Field(description="CREATE INDEX CONCURRENTLY ... (outside a transaction)")
    reason: str
    serves: list[str] = Field(description="The queries or foreign key it serves")
    cost_before: float | None = Field(None, description="Sum of the estimated costs of the queries it serves")
    cost_after: float | None = None
    cost_basis: str | None = Field(None, description="Which plans the costs come from")
    checked_how: str = Field(description='"hypopg", "transaction", "on a scratch copy with N synthetic rows shaped '
                             'like the live statistics" (no hypopg, build=false) or "not checked: why"')
    queries: list[QueryCost] = Field(default_factory=list)
    size_bytes: int | None = Field(None, description="Estimated size (hypopg's estimate, or the rolled-back build's)")
    wal_bytes_per_insert: int | None = Field(
        None, description="Estimated WAL each INSERT into the table writes for this index (one btree leaf "
        "insert record; full-page images after a checkpoint come on top)")
    workload_cost_without: float | None = Field(
        None, description="The workload's cost with the rest of the recommended set but not this index")
    notes: list[str] = Field(default_factory=list)


class WorkloadCost(_Model):
    """The whole workload (every distinct query explained) before and after the recommended set."""

    queries: list[QueryCost] = Field(description="Each distinct query (its SQL): cost now and with the set")
    cost_before: float = Field(description="Sum of the queries' estimated costs with today's indexes")
    cost_after: float | None = Field(None, description="The same with every recommended index added")
    indexes: int = Field(0, description="How many indexes the recommended set adds")
    size_bytes: int | None = Field(None, description="Their estimated total size")
    wal_bytes_per_insert: dict[str, int] = Field(
        default_factory=dict, description="Per table: estimated WAL bytes the set adds to each INSERT")
    checked_how: str = Field(description='"hypopg", "transaction", "on a scratch copy with ..." (as the '
                             'recommendations), "single index" or "not checked: why"')
    considered: list[str] = Field(default_factory=list,
                                  description="Sets tried and why the chosen one won (merges, indexes left out)")


class ExplainIndexesResult(_Model):
    source: Source = Field(description="Where the indexes were read from: spec, database or both")
    database: str | None = Field(None, description="Which database was read (never the password)")
    server_version: int | None = Field(None, description="server_version_num of the database, e.g. 180006")
    tables: list[str] = Field(description="The tables explained")
    indexes: list[IndexEntry] = Field(description="Every index: definition, where declared, purpose, evidence")
    problems: list[Finding] = Field(description="Missing, redundant, unused or invalid indexes, each with a fix")
    recommendations: list[Recommendation] = Field(
        description="Indexes to add, with DDL and the planner's cost before and after")
    workload: WorkloadCost | None = Field(
        None, description="The whole workload's cost before and after the recommended set, checked together")
    evidence: list[QueryEvidence] = Field(description="The plan of each query pattern: the planner's choice and cost")
    notes: list[str] = Field(description="Caveats: small tables, reset statistics, what was not checked")
    statements: int = Field(0, description="SQL statements sent to the database")
    round_trips: int = Field(0, description="Network round trips to the database (a pipeline of statements "
                             "sent together and answered together counts once)")


