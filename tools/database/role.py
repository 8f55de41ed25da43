"""What the role run_scoped_query runs as can do, read from the catalog in one statement.

Row security binds a role only when it is not a superuser, has no BYPASSRLS and does not own the table
(an owner is bound only when the table FORCEs row security). On Neon the default role
(``neondb_owner``) owns every table and has BYPASSRLS: the rewriter still filters each query to the
caller, but nothing underneath it does. This report says which of those holds, so a team can see it at
start and in CI, and refuse to serve queries as such a role (setting ``refuse_owner_role``).

User-owned tables are the ones with the owner column, and the users table their owner column
references; a link table owned only through a parent has no owner column and is not listed.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from .pipeline import run_batch
from .queries import query

#: One statement ($1: the owner column, $2: the role, NULL for the connected one).
ROLE_SQL = query("role_report.sql")


class TableAccess(BaseModel):
    table: str = Field(description="A user-owned table, schema-qualified")
    owner: bool = Field(description="The role owns it (or inherits its owner's rights)")
    write: list[str] = Field(description="Write privileges the role holds on it")
    rls_enabled: bool
    rls_forced: bool = Field(description="Row security binds the owner too")


class RoleReport(BaseModel):
    """What the role run_scoped_query runs as can do to user data."""

    role: str
    superuser: bool
    bypass_rls: bool
    tables: list[TableAccess] = Field(description="The user-owned tables and the role's rights on each")
    problems: list[str] = Field(description="Why row security does not bind this role, or what it may write")
    notes: list[str] = Field(default_factory=list, description="Weaker defences that are not the role's doing")
    least_privilege: bool = Field(description="No problems: row security binds it and it can write nothing")

    @property
    def owns_user_data(self) -> bool:
        """Row security would not stop this role: superuser, BYPASSRLS, or owner of an unforced table."""
        return self.superuser or self.bypass_rls or any(t.owner and not t.rls_forced for t in self.tables)

    def lines(self) -> list[str]:
        head = ([f"role {self.role}: least privilege (not an owner, no BYPASSRLS, read-only on "
                 f"{len(self.tables)} user table(s))"] if self.least_privilege else [])
        return head + [f"role {self.role}: {line}" for line in self.problems + self.notes]


async def read_role_report(conn, *, role: str | None = None, owner_column: str = "user_id") -> RoleReport:
    """The report for ``role`` (the connected role when None), in one statement; no transaction left open."""
    # an implicit transaction on an idle connection (none left open), or the caller's own
    (result,) = await run_batch(conn, [(ROLE_SQL, [owner_column, role])], join_transaction=True)
    if result.error is not None:
        raise result.error
    row = result.rows[0] if result.rows else None
    if row is None:
        raise ValueError(f"No role named {role!r} exists in this database's cluster; check the scoped_role setting.")
    name, superuser, bypass, tables = row
    access = [TableAccess(**t) for t in tables]
    problems = []
    if superuser:
        problems.append("is a superuser: row security and privileges do not apply to it")
    if bypass:
        problems.append("has BYPASSRLS: row-level security policies do not apply to it")
    if owned := [t.table for t in access if t.owner and not t.rls_forced]:
        problems.append(f"owns {len(owned)} user table(s) without FORCE ROW LEVEL SECURITY "
                        f"({', '.join(owned[:5])}{', …' if len(owned) > 5 else ''}): their policies do not bind it")
    if writable := [f"{t.table} ({', '.join(t.write)})" for t in access if t.write]:
        problems.append(f"may write {len(writable)} user table(s): {', '.join(writable[:5])}"
                        f"{', …' if len(writable) > 5 else ''}")
    notes = []
    if unprotected := [t.table for t in access if not t.rls_enabled]:
        notes.append(f"{len(unprotected)} user table(s) have no row-level security, so only the query "
                        f"rewrite scopes them: {', '.join(unprotected[:5])}{', …' if len(unprotected) > 5 else ''}")
    return RoleReport(role=name, superuser=superuser, bypass_rls=bypass, tables=access, problems=problems,
                      notes=notes, least_privilege=not problems)
