"""What the role run_scoped_query runs as can do, read from the catalog in one statement.

Row security binds a role only when it is not a superuser, has no BYPASSRLS and does not own the table
(an owner is bound only when the table FORCEs row security). On Neon the default role
(``neondb_owner``) owns every table and has BYPASSRLS: the rewriter still filters each query to the
caller, but nothing underneath it does. This report says which of those holds, so a team can see it at
start and in CI, and refuse to serve queries as such a role (setting ``refuse_owner_role``).

User-owned tables are the ones with the owner column, and the users table their owner column
references; a link table owned only through a parent has no owner column and is not listed.

The role's DDL is written here too: :func:`scoped_role_ddl` (what ``schema-architect scoped-role`` prints
for a real database) and :func:`embedded_role_sql` (the reader role of the embedded database), with one
row-security policy between them.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from ..schema.model import Schema
from ..schema.names import CALLER_SETTING
from .pipeline import run_batch
from .queries import query
from .quoting import ident, literal

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


# ---------------------------------------------------------------------------------------------------
# The role's DDL: printed for a real database (``schema-architect scoped-role``), run on the embedded one

#: What the role may not be or do: row security binds it and it cannot grant itself more.
_LEAST_PRIVILEGE = "NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION"


def _read_policy(table_sql: str, table: str, column: str, role_sql: str, setting: str) -> str:
    """A policy letting the role read the rows whose ``column`` is the caller's id (compared as text,
    which the setting is, whatever the column's type)."""
    return (f"CREATE POLICY {ident('scoped_read_' + table)} ON {table_sql} FOR SELECT TO {role_sql} "
            f"USING ({ident(column)}::text = (SELECT current_setting({literal(setting)}, true)))")


def scoped_role_ddl(role: str, schema: str = "public", user_tables: list[str] | None = None, *,
                    owner_column: str = "user_id", setting: str = CALLER_SETTING,
                    users_table: str | None = None) -> str:
    """SQL creating a non-owner, SELECT-only, NOBYPASSRLS login role for run_scoped_query.

    With ``user_tables``, also RLS policies keyed on the caller setting (defence in depth: the
    rewriter filters rows already). Read before running: enabling RLS on a table hides its rows
    from every other non-owner role that has no policy.
    """
    r, s = ident(role), ident(schema)
    lines = [
        "-- Role for schema-architect's run_scoped_query: not an owner, cannot bypass RLS, SELECT only.",
        f"CREATE ROLE {r} LOGIN {_LEAST_PRIVILEGE};",
        f"-- Then set a password: ALTER ROLE {r} PASSWORD '...';",
        f"ALTER ROLE {r} SET default_transaction_read_only = on;",
        f"GRANT USAGE ON SCHEMA {s} TO {r};",
    ]
    if not user_tables:
        lines.append(f"GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {r};")
        lines.append("-- Revoke SELECT on tables holding secrets (tokens, keys) from this role.")
        return "\n".join(lines) + "\n"
    lines += [f"GRANT SELECT ON {s}.{ident(t)} TO {r};" for t in user_tables]
    lines.append("")
    lines.append(f"-- Row-level security keyed on the transaction-local setting {setting}.")
    lines.append("-- CAUTION: ENABLE ROW LEVEL SECURITY hides rows from every non-owner role without a policy.")
    for t in user_tables:
        table_sql = f"{s}.{ident(t)}"
        column = "id" if users_table and t == users_table else owner_column
        lines += [f"ALTER TABLE {table_sql} ENABLE ROW LEVEL SECURITY;",
                  _read_policy(table_sql, t, column, r, setting) + ";"]
    return "\n".join(lines) + "\n"


def embedded_role_sql(role: str, schema: Schema, owner_column: str) -> list[str]:
    """The embedded database's reader role (created once), its SELECT grants, and row security enabled
    and forced on every user table: the owned ones and the users table their owner column references."""
    r = ident(role)
    statements = [
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {literal(role)}) THEN "
        f"CREATE ROLE {r} NOLOGIN {_LEAST_PRIVILEGE}; END IF; END $$",
        f"GRANT USAGE ON SCHEMA public TO {r}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {r}",
    ]
    owned = [t for t in schema.tables if t.column(owner_column) is not None]
    owner_fks = [(t, fk) for t in owned for fk in t.foreign_keys if fk.columns == [owner_column]]
    for table in schema.tables:
        if table in owned:
            column = owner_column
        elif any(fk.ref_table == table.name for _, fk in owner_fks):
            column = next(fk.ref_columns[0] for _, fk in owner_fks if fk.ref_table == table.name)
        else:
            continue
        name = ident(table.name)
        statements += [f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY",
                       f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY",
                       _read_policy(name, table.name, column, r, CALLER_SETTING)]
    return statements
