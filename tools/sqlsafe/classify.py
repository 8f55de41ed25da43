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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

Scope = Literal["owner", "auth-users", "parent", "shared", "refused"]

# One round trip. Relations outside the system schemas, with their owner-column type, the type of
# a column named id, outgoing foreign keys (with referenced column types), and for views the
# relations their rewrite rules read. Also user-defined type names, for result column types.
CLASSIFY_SQL = """
SELECT current_database() AS db, current_schemas(false) AS search_path,
  (SELECT coalesce(json_agg(json_build_object(
      'schema', n.nspname, 'name', c.relname, 'kind', c.relkind,
      'owner_type', (SELECT json_build_array(tn.nspname, t.typname) FROM pg_attribute a
                      JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace tn ON tn.oid = t.typnamespace
                      WHERE a.attrelid = c.oid AND a.attname = %(owner)s AND a.attnum > 0
                        AND NOT a.attisdropped),
      'id_type', (SELECT json_build_array(tn.nspname, t.typname) FROM pg_attribute a
                   JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace tn ON tn.oid = t.typnamespace
                   WHERE a.attrelid = c.oid AND a.attname = 'id' AND a.attnum > 0 AND NOT a.attisdropped),
      'fks', (SELECT coalesce(json_agg(json_build_object(
                  'cols', (SELECT json_agg(a.attname ORDER BY k.i) FROM unnest(con.conkey) WITH ORDINALITY k(num, i)
                           JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num),
                  'ref_schema', rn.nspname, 'ref_name', rc.relname,
                  'ref_cols', (SELECT json_agg(a.attname ORDER BY k.i) FROM unnest(con.confkey) WITH ORDINALITY k(num, i)
                               JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num),
                  'ref_types', (SELECT json_agg(json_build_array(tn.nspname, t.typname) ORDER BY k.i)
                                FROM unnest(con.confkey) WITH ORDINALITY k(num, i)
                                JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num
                                JOIN pg_type t ON t.oid = a.atttypid
                                JOIN pg_namespace tn ON tn.oid = t.typnamespace))), '[]')
              FROM pg_constraint con JOIN pg_class rc ON rc.oid = con.confrelid
              JOIN pg_namespace rn ON rn.oid = rc.relnamespace
              WHERE con.conrelid = c.oid AND con.contype = 'f'),
      'reads', (SELECT coalesce(json_agg(DISTINCT json_build_array(dn.nspname, dc.relname)::text), '[]')
                FROM pg_rewrite r JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                JOIN pg_class dc ON dc.oid = d.refobjid AND d.refclassid = 'pg_class'::regclass
                JOIN pg_namespace dn ON dn.oid = dc.relnamespace
                WHERE r.ev_class = c.oid AND dc.oid <> c.oid)
    )), '[]')
   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
     AND n.nspname NOT IN ('pg_catalog', 'information_schema')
     AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp\\_%%') AS relations,
  (SELECT coalesce(json_object_agg(t.oid::text, t.typname), '{}') FROM pg_type t
    JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND t.typtype IN ('e', 'd', 'c', 'b', 'r')
      AND n.nspname NOT LIKE 'pg\\_toast%%') AS types
"""

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

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


class LRU:
    """A small thread-safe least-recently-used map with at most ``size`` entries."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key, value) -> None:
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

    ``rewrites`` caches rewritten queries computed from this map (see ``rewriter.prepare``); a
    reloaded catalog is a new map with a new ``version`` and an empty cache.
    """

    database: str
    search_path: tuple[str, ...]
    relations: dict[tuple[str, str], Relation]
    type_names: dict[int, str] = field(default_factory=dict)
    owner_column: str = "user_id"
    loaded_at: float = field(default_factory=time.monotonic)
    version: int = field(default_factory=lambda: next(_VERSIONS))
    rewrites: LRU = field(default_factory=lambda: LRU(REWRITE_CACHE_SIZE), repr=False, compare=False)

    def resolve(self, schema: str | None, name: str) -> Relation | None:
        """The relation a (possibly unqualified) name refers to, searching the search path."""
        if schema:
            return self.relations.get((schema, name))
        for s in self.search_path:
            if (rel := self.relations.get((s, name))) is not None:
                return rel
        return None

    @property
    def user_tables(self) -> list[str]:
        return sorted(r.qualified for r in self.relations.values() if r.scope in ("owner", "auth-users", "parent"))


def _shared_keys(shared: Sequence[str], search_path: Sequence[str]) -> set[tuple[str, str]]:
    keys = set()
    for item in shared:
        schema, _, name = item.rpartition(".")
        keys.add((schema or (search_path[0] if search_path else "public"), name))
    return keys


def build_map(row: dict, owner_column: str, shared_tables: Sequence[str]) -> UserDataMap:
    """Classify catalog rows (the output of :data:`CLASSIFY_SQL`) into a :class:`UserDataMap`."""
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
    auth: tuple[str, str] | None = max(counts, key=counts.get) if counts else None
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
            reason = ("it is a view that reads user tables (" + ", ".join(sorted(".".join(k) for k in reads & user_keys))
                      + ") with its owner's rights, so it cannot be filtered to the caller")
            out[key] = Relation(key[0], key[1], kind, "refused", reason=reason)
        elif key in shared:
            out[key] = Relation(key[0], key[1], kind, "shared")
        else:
            what = {"v": "view", "m": "materialized view", "f": "foreign table"}.get(kind, "table")
            reason = (f"it is a {what} without a {owner_column} column or a foreign key to user data, "
                      "and it is not listed in the shared_tables setting (it may hold secrets)")
            out[key] = Relation(key[0], key[1], kind, "refused", reason=reason)
    types = {int(k): v for k, v in (row.get("types") or {}).items()}
    return UserDataMap(row["db"], search_path, out, types, owner_column)


async def load_map(conn, owner_column: str = "user_id", shared_tables: Sequence[str] = ()) -> UserDataMap:
    """Read the catalog (one query) and classify it. Leaves no transaction open if it opened one."""
    from psycopg.rows import dict_row

    was_idle = conn.info.transaction_status == 0  # psycopg.pq.TransactionStatus.IDLE
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(CLASSIFY_SQL, {"owner": owner_column}, prepare=False)
        row = await cur.fetchone()
    if was_idle and not conn.autocommit:
        await conn.rollback()
    return build_map(row, owner_column, shared_tables)


class ClassificationCache:
    """UserDataMaps keyed by (server, database, owner column, shared tables).

    Invalidation: an entry is reloaded when older than ``ttl`` seconds, and on demand when a query
    names a relation the map does not know (a table created since), at most once every
    ``min_refresh`` seconds per entry so a misspelt name cannot make every call re-read the catalog.
    Stale entries can only refuse (a new table looks unknown) until the TTL passes; :meth:`clear`
    drops everything (call it after migrations).
    """

    def __init__(self, ttl: float = 60.0, min_refresh: float = 2.0) -> None:
        self.ttl = ttl
        self.min_refresh = min_refresh
        self._maps: dict[tuple, UserDataMap] = {}

    @staticmethod
    def key(conn, owner_column: str, shared_tables: Sequence[str]) -> tuple:
        info = conn.info
        return (info.host, info.port, info.dbname, owner_column, tuple(sorted(shared_tables)))

    def peek(self, conn, owner_column: str, shared_tables: Sequence[str]) -> UserDataMap | None:
        m = self._maps.get(self.key(conn, owner_column, shared_tables))
        if m is not None and time.monotonic() - m.loaded_at < self.ttl:
            return m
        return None

    async def get(self, conn, owner_column: str = "user_id", shared_tables: Sequence[str] = (),
                  *, refresh: bool = False) -> UserDataMap:
        key = self.key(conn, owner_column, shared_tables)
        m = self._maps.get(key)
        now = time.monotonic()
        if m is not None and now - m.loaded_at < self.ttl:
            if not refresh or now - m.loaded_at < self.min_refresh:
                return m
        m = await load_map(conn, owner_column, shared_tables)
        self._maps[key] = m
        return m

    def clear(self) -> None:
        self._maps.clear()


DEFAULT_CACHE = ClassificationCache()
