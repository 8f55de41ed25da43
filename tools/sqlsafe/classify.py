"""Which relations hold user data, read from the live catalog in one query (no hand configuration).

Rules, applied in this order:

* **auth users table**: the table the owner columns (``user_id``) point to by foreign key; failing
  that, a table named ``users`` or ``user`` with an ``id`` column. Filtered by its id.
* **owner**: a table with the owner column. Filtered by ``owner_column = caller``.
* **parent**: a table without the owner column whose foreign keys point to user data (a link
  table such as ``task_tags``). A row is visible only if *every* such parent row belongs to the
  caller: a link row between the caller's task and someone else's tag stays hidden.
* **shared**: a table listed in the ``shared_tables`` setting (non-secret, not per user).
* everything else is **refused**, with the reason: views and materialized views that read user
  tables (they run with their owner's rights, so filtering cannot reach inside), other tables not
  listed as shared, foreign tables.

The map is cached per database by :class:`ClassificationCache`.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from ..database.pipeline import StatementResult, run_batch
from ..database.queries import compose, query
from .credentials import masked_columns

if TYPE_CHECKING:
    from psycopg import AsyncConnection

Scope = Literal["owner", "auth-users", "parent", "shared", "refused"]

# A relation's version: how many catalog rows describe it (its pg_class row, columns, constraints,
# a view's rules) and the sum of their xmin. DDL that inserts, updates or deletes any of them changes
# it (DROP COLUMN and RENAME COLUMN touch pg_attribute only, DROP CONSTRAINT pg_constraint only);
# ANALYZE and autovacuum update pg_class in place and leave it alone. The versions of several
# relations add up, so one call checks the relations its query reads with one small aggregate.
REL_VERSION_SQL = compose(query("relation_version.sql"), xmins=compose(query("relation_xmins.sql"), oids="= c.oid"))
#: relations_version.sql over relation_xmins.sql, its ``{oids}`` slot left open for :func:`versions_sql`
_VERSIONS_SQL = compose(query("relations_version.sql"),
                        xmins=compose(query("relation_xmins.sql"), oids="{oids}"))


def versions_sql(oids: Sequence[int | None]) -> str:
    """An expression: ``count:sum`` over the relations ``oids`` (see :meth:`UserDataMap.version_of`).

    The oids come from the catalog and are formatted as integers, so the statement needs no
    parameter to plan (planning is most of its cost: about 0.1 ms). No '%' inside.
    """
    if not oids:
        return "'0:0'"
    # int(): only integers reach the SQL; a relation without an oid (not read from the catalog) raises
    array = "= ANY('{" + ",".join(str(int(o)) for o in oids) + "}'::pg_catalog.oid[])"  # type: ignore[arg-type]
    return compose(_VERSIONS_SQL, oids=array)


# The catalog version: a fingerprint of every catalog row the map is built from (relations, their
# columns, constraints, view rules, types) outside the system schemas. A row that DDL inserts or
# updates gets a new xmin, a dropped one leaves the count, so any change the map could depend on
# changes the text. It reads every user relation (about 1.5 ms for 200 tables), so it is checked only
# when a name is unknown or a relation refused, or the map is older than the cache's TTL; each call
# checks the shared relations it reads with versions_sql().
CATALOG_VERSION_SQL = query("catalog_version.sql")

# One round trip ($1: the owner column): every relation outside the system schemas, as
# database/sql/classify.sql describes, with the catalog version and each relation's version.
CLASSIFY_SQL = compose(query("classify.sql"), catalog_version=CATALOG_VERSION_SQL, relation_version=REL_VERSION_SQL)
#: :data:`CATALOG_VERSION_SQL` alone, as one statement
_READ_CATALOG_VERSION_SQL = compose(query("select_value.sql"), value=CATALOG_VERSION_SQL)

AUTH_TABLE_NAMES = ("users", "user")
MAX_PARENT_DEPTH = 4


@dataclass(frozen=True)
class ParentLink:
    """A foreign key from a child to a parent holding user data."""

    cols: tuple[str, ...]
    parent: tuple[str, str]
    parent_cols: tuple[str, ...]


@dataclass(frozen=True)
class Relation:
    schema: str
    name: str
    kind: str  # pg_class.relkind
    scope: Scope
    key_column: str | None = None  # owner column, or the users table's id column
    key_type: tuple[str, str] | None = None  # (schema, type name) of key_column
    parents: tuple[ParentLink, ...] = ()
    reason: str | None = None  # why refused
    oid: int | None = None
    version: tuple[int, int] = (0, 0)  # REL_VERSION_SQL (rows, sum of xmin) when the map was read
    columns: tuple[str, ...] = ()  # in table order
    masked: tuple[str, ...] = ()  # credential columns, shown masked (credentials.py)
    row_security: bool = False  # pg_class.relrowsecurity: its policies may run functions when it is read

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


_Key = TypeVar("_Key", bound=Hashable)
_Value = TypeVar("_Value")


class LRU(Generic[_Key, _Value]):
    """A small thread-safe least-recently-used map with at most ``size`` entries."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._data: OrderedDict[_Key, _Value] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: _Key) -> _Value | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: _Key, value: _Value) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


REWRITE_CACHE_SIZE = 256
_VERSIONS = itertools.count(1)


@dataclass
class UserDataMap:
    """The classification of every relation in one database. Not changed after it is built.

    ``rewrites`` caches rewritten queries computed from this map (see ``rewriter.prepare``) and
    ``resolved`` the ones PostgreSQL's analysis cleared (see ``resolved``); a reloaded catalog is a
    new map with a new ``version`` and empty caches.
    """

    database: str
    search_path: tuple[str, ...]
    relations: dict[tuple[str, str], Relation]
    type_names: dict[int, str] = field(default_factory=dict)
    owner_column: str = "user_id"
    catalog_version: str = ""  # CATALOG_VERSION_SQL when the map was read
    #: The server has restrict_nonsystem_relation_kind (PostgreSQL 17; 16.4, 15.8, 14.13 and 13.16 on):
    #: a transaction can forbid reading views (run_scoped_query's calls on plain tables)
    restricts_relation_kinds: bool = False
    loaded_at: float = field(default_factory=time.monotonic)
    #: A check of the catalog's version is on its way for this map (ClassificationCache.revalidate)
    revalidating: bool = field(default=False, repr=False, compare=False)
    version: int = field(default_factory=lambda: next(_VERSIONS))
    #: (sql, caller setting, caller param, row cap) -> rewriter.prepare's Prepared (not imported here:
    #: the rewriter imports this module)
    rewrites: LRU[tuple[str, str, int, int | None], object] = field(
        default_factory=lambda: LRU(REWRITE_CACHE_SIZE), repr=False, compare=False)
    _reads: LRU[tuple[str, ...], tuple[tuple[str, str], ...]] = field(
        default_factory=lambda: LRU(REWRITE_CACHE_SIZE), repr=False, compare=False)
    #: (rewritten SQL, parameter types, caller setting) that PostgreSQL's analysis cleared (resolved.py)
    resolved: LRU[tuple[str, tuple[int, ...], str], bool] = field(
        default_factory=lambda: LRU(REWRITE_CACHE_SIZE), repr=False, compare=False)
    #: (relations read, with a role, parameters before the catalog check) -> run_scoped_query's context
    #: statement, composed once per shape rather than on every call
    contexts: LRU[tuple[tuple[tuple[str, str], ...], bool, int], str] = field(
        default_factory=lambda: LRU(REWRITE_CACHE_SIZE), repr=False, compare=False)

    def resolve(self, schema: str | None, name: str) -> Relation | None:
        """The relation a (possibly unqualified) name refers to, searching the search path."""
        if schema:
            return self.relations.get((schema, name))
        for s in self.search_path:
            if (rel := self.relations.get((s, name))) is not None:
                return rel
        return None

    def version_of(self, keys: Sequence[tuple[str, str]]) -> str:
        """What :func:`versions_sql` over these relations' oids returns while the catalog is unchanged."""
        rows = sum(self.relations[k].version[0] for k in keys)
        return f"{rows}:{sum(self.relations[k].version[1] or 0 for k in keys)}" if keys else "0:0"

    def unfiltered(self, keys: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        """Of ``keys``, the relations whose rows only this map's word scopes: the shared ones.

        Every other relation a query may read is filtered in the rewritten SQL itself (``user_id =
        $n``, the users table's id, or every parent's filter through an FK), and PostgreSQL applies
        that filter to the rows as they are: DDL since the map was read can make the query fail,
        never let another user's row through. A shared table, read as it is, may have become user
        data since (a user_id column added): those are the ones each call checks against the
        catalog."""
        return tuple(k for k in keys if self.relations[k].scope == "shared")

    def reads(self, names: Sequence[str]) -> tuple[tuple[str, str], ...]:
        """The keys of the relations a rewritten query reads: ``names`` (qualified) and their parents."""
        hit = self._reads.get(tuple(names))
        if hit is not None:
            return hit
        by_name = {r.qualified: k for k, r in self.relations.items()}
        keys: list[tuple[str, str]] = []
        todo = [by_name[n] for n in names if n in by_name]
        while todo:
            key = todo.pop()
            if key not in keys:
                keys.append(key)
                todo.extend(link.parent for link in self.relations[key].parents if link.parent in self.relations)
        out = tuple(sorted(keys))
        self._reads.put(tuple(names), out)
        return out

    @property
    def user_tables(self) -> list[str]:
        return sorted(r.qualified for r in self.relations.values() if r.scope in ("owner", "auth-users", "parent"))


def _shared_keys(shared: Sequence[str], search_path: Sequence[str]) -> set[tuple[str, str]]:
    keys = set()
    for item in shared:
        schema, _, name = item.rpartition(".")
        keys.add((schema or (search_path[0] if search_path else "public"), name))
    return keys


def build_map(row: dict[str, Any], owner_column: str, shared_tables: Sequence[str],
              sensitive: Sequence[str] = ()) -> UserDataMap:
    """Classify catalog rows (the output of :data:`CLASSIFY_SQL`) into a :class:`UserDataMap`;
    ``sensitive``: ``table.column`` patterns masked besides Better Auth's credentials."""
    search_path = tuple(row["search_path"] or ())
    raw = {(r["schema"], r["name"]): r for r in row["relations"]}
    shared = _shared_keys(shared_tables, search_path)
    tables = {k for k, r in raw.items() if r["kind"] in ("r", "p")}

    # The auth users table: most referenced target of owner-column foreign keys.
    votes: dict[tuple[str, str], tuple[str, tuple[str, str]]] = {}
    counts: dict[tuple[str, str], int] = {}
    for r in raw.values():
        for fk in r["fks"] or ():
            if fk["cols"] == [owner_column] and len(fk["ref_cols"]) == 1:
                target = (fk["ref_schema"], fk["ref_name"])
                votes[target] = (fk["ref_cols"][0], tuple(fk["ref_types"][0]))
                counts[target] = counts.get(target, 0) + 1
    auth: tuple[str, str] | None = max(counts, key=counts.__getitem__) if counts else None
    if auth is None:
        for schema in search_path:
            for name in AUTH_TABLE_NAMES:
                r = raw.get((schema, name))
                if auth is None and r and r["kind"] in ("r", "p") and r["id_type"]:
                    auth = (schema, name)
                    votes[auth] = ("id", tuple(r["id_type"]))

    out: dict[tuple[str, str], Relation] = {}
    if auth is not None and auth in raw:
        col, typ = votes[auth]
        out[auth] = Relation(auth[0], auth[1], raw[auth]["kind"], "auth-users", col, typ)
    for key in tables:
        r = raw[key]
        if key != auth and r["owner_type"]:
            out[key] = Relation(key[0], key[1], r["kind"], "owner", owner_column, tuple(r["owner_type"]))

    # Tables owned through a parent, to a fixed point (link tables of link tables).
    for _ in range(MAX_PARENT_DEPTH):
        added = False
        for key in tables - out.keys():
            links = tuple(
                ParentLink(tuple(fk["cols"]), (fk["ref_schema"], fk["ref_name"]), tuple(fk["ref_cols"]))
                for fk in raw[key]["fks"] or ()
                if (fk["ref_schema"], fk["ref_name"]) in out and (fk["ref_schema"], fk["ref_name"]) != key
            )
            if links:
                out[key] = Relation(key[0], key[1], raw[key]["kind"], "parent", parents=links)
                added = True
        if not added:
            break

    user_keys = set(out)
    for key, r in raw.items():
        if key in out:
            continue
        reads = {tuple(json.loads(x)) for x in r["reads"] or ()}
        kind = r["kind"]
        if kind in ("v", "m") and reads & user_keys:
            reason = ("it is a view that reads user tables ("
                      + ", ".join(sorted(".".join(k) for k in reads & user_keys))
                      + ") with its owner's rights, so it cannot be filtered to the caller")
            out[key] = Relation(key[0], key[1], kind, "refused", reason=reason)
        elif key in shared:
            out[key] = Relation(key[0], key[1], kind, "shared")
        else:
            what = {"v": "view", "m": "materialized view", "f": "foreign table"}.get(kind, "table")
            reason = (f"it is a {what} without a {owner_column} column or a foreign key to user data, "
                      "and it is not listed in the shared_tables setting (it may hold secrets)")
            out[key] = Relation(key[0], key[1], kind, "refused", reason=reason)
    out = {k: replace(r, oid=raw[k].get("oid"), version=tuple(raw[k].get("version") or (0, 0)),
                      row_security=bool(raw[k].get("rls")),
                      columns=tuple(raw[k].get("columns") or ()),
                      masked=masked_columns(k[0], k[1], raw[k].get("columns") or (), sensitive))
           for k, r in out.items()}
    types = {int(k): v for k, v in (row.get("types") or {}).items()}
    return UserDataMap(row["db"], search_path, out, types, owner_column, row.get("catalog_version") or "",
                       restricts_relation_kinds=bool(row.get("restricts_relation_kinds")))


async def load_map(conn: AsyncConnection[Any], owner_column: str = "user_id", shared_tables: Sequence[str] = (),
                   sensitive: Sequence[str] = ()) -> UserDataMap:
    """Read the catalog (one query) and classify it. Leaves no transaction open if it opened one."""
    (result,) = await run_batch(conn, [(CLASSIFY_SQL, [owner_column])], join_transaction=True)
    row = dict(zip([name for name, _ in _checked(result).columns], result.rows[0], strict=True))
    return build_map(row, owner_column, shared_tables, sensitive)


async def read_catalog_version(conn: AsyncConnection[Any]) -> str:
    """:data:`CATALOG_VERSION_SQL` alone: one small statement. Leaves no transaction open."""
    (result,) = await run_batch(conn, [(_READ_CATALOG_VERSION_SQL, ())], join_transaction=True)
    version: str = _checked(result).rows[0][0]
    return version


def _checked(result: StatementResult) -> StatementResult:
    """``result``, or its error raised (an idle connection ran it in an implicit transaction: none is left)."""
    if result.error is not None:
        raise result.error
    return result


class ClassificationCache:
    """UserDataMaps keyed by (server, database, owner column, shared tables).

    Invalidation: run_scoped_query reads the versions of the shared relations it reads in the same
    round trip as the query (of every relation it reads when the query fails) and, when one differs
    from the map's, reloads the map and runs again, so DDL by any session on those tables is seen by
    the very call (see :meth:`UserDataMap.unfiltered`). ``get(refresh=True)`` (a name the map
    does not know, a refused relation, a version seen to differ) and an entry older than ``ttl``
    seconds first compare the whole catalog's version (one statement) and re-read the catalog only
    if it changed. A map past half its age is checked off the calls' path (:meth:`revalidate`, after a
    call, on a connection of its own), so calls a few seconds to ``ttl`` apart never carry the check;
    the bound is unchanged: no call uses a map whose version was last seen more than ``ttl`` ago.
    :meth:`clear` drops everything.
    """

    def __init__(self, ttl: float = 60.0) -> None:
        self.ttl = ttl
        self._maps: dict[tuple[object, ...], UserDataMap] = {}

    @staticmethod
    def key(conn: AsyncConnection[Any], owner_column: str, shared_tables: Sequence[str],
            sensitive: Sequence[str] = ()) -> tuple[object, ...]:
        info = conn.info
        return (info.host, info.port, info.dbname, owner_column, tuple(sorted(shared_tables)),
                tuple(sorted(sensitive)))

    def peek(self, conn: AsyncConnection[Any], owner_column: str, shared_tables: Sequence[str],
             sensitive: Sequence[str] = ()) -> UserDataMap | None:
        m = self._maps.get(self.key(conn, owner_column, shared_tables, sensitive))
        if m is not None and time.monotonic() - m.loaded_at < self.ttl:
            return m
        return None

    async def get(self, conn: AsyncConnection[Any], owner_column: str = "user_id", shared_tables: Sequence[str] = (),
                  *, refresh: bool = False, sensitive: Sequence[str] = (), stale_ok: bool = False) -> UserDataMap:
        """The map; ``stale_ok``: even one older than ``ttl``, unchecked (the caller checks the catalog's
        version in its own statement, :data:`CATALOG_VERSION_SQL`, and calls :meth:`confirm` or refreshes)."""
        key = self.key(conn, owner_column, shared_tables, sensitive)
        m = self._maps.get(key)
        now = time.monotonic()
        if m is not None and not refresh and (stale_ok or now - m.loaded_at < self.ttl):
            return m
        if m is not None and await read_catalog_version(conn) == m.catalog_version:
            m.loaded_at = now  # unchanged: keep the map and its rewrite cache
            return m
        m = await load_map(conn, owner_column, shared_tables, sensitive)
        self._maps[key] = m
        return m

    def due(self, m: UserDataMap) -> bool:
        """Whether ``m`` is older than ``ttl``: its catalog version should be checked."""
        return time.monotonic() - m.loaded_at >= self.ttl

    def revalidation_due(self, m: UserDataMap) -> bool:
        """Whether ``m`` is past half its age, still cached and not being checked: worth checking now,
        off the call's path, so that the next call finds it fresh (:meth:`revalidate`)."""
        return (not m.revalidating and time.monotonic() - m.loaded_at >= self.ttl / 2
                and any(cached is m for cached in self._maps.values()))

    async def revalidate(self, conn: AsyncConnection[Any], m: UserDataMap, owner_column: str,
                         shared_tables: Sequence[str], sensitive: Sequence[str] = ()) -> None:
        """``get(refresh=True)`` for ``m``: compare the whole catalog's version (one statement); unchanged,
        ``m`` counts as fresh from when the version was read; changed, the catalog is read again (a second
        statement) and the new map replaces ``m``, so the next call neither carries the check nor reads
        the catalog itself."""
        m.revalidating = True
        try:
            await self.get(conn, owner_column, shared_tables, refresh=True, sensitive=sensitive)
        finally:
            m.revalidating = False

    @staticmethod
    def confirm(m: UserDataMap) -> None:
        """The catalog's version was seen unchanged: ``m`` counts as fresh again."""
        m.loaded_at = time.monotonic()

    def clear(self) -> None:
        self._maps.clear()

