"""Real servers for the Neon-like tests: Debian's PostgreSQL 15 (optionally with TLS) and PgBouncer.

Each server lives in its own temporary folder, listens on a free loopback port (TCP 127.0.0.1 only, no
Unix socket other than in its own folder) and is stopped and removed by ``stop()`` / the ``with``
block. Logins over TCP use SCRAM passwords, as on Neon. As root, the servers run as the ``postgres``
system user (created by Debian's package), since neither PostgreSQL nor PgBouncer runs as root.

Command line (CI runs the catalog and scoped-query suites a second time on PostgreSQL 15 this way)::

    python tests/pgservers.py -- pytest tests/test_catalog.py      # run a command against a fresh PG15
    python tests/pgservers.py                                       # start one, print its URL, wait for Enter

The command gets ``SCHEMA_ARCHITECT_TEST_ADMIN_URL`` (a superuser URL) in its environment.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Self

# Where Debian's packages put them; the environment can say otherwise (tests/test_plain_clone.py points them
# at nothing, to run as a machine without the packages).
PG15_BIN = Path(os.environ.get("SCHEMA_ARCHITECT_PG15_BIN", "/usr/lib/postgresql/15/bin"))
PGBOUNCER = Path(os.environ.get("SCHEMA_ARCHITECT_PGBOUNCER", "/usr/sbin/pgbouncer"))
INSTALL = ("apt-get update && apt-get install -y --no-install-recommends postgresql-15 pgbouncer "
           "(.ci/run does this when the binaries are missing)")
SUPERUSER = "postgres"
PASSWORD = "npg_Sup3rS3cretPw"  # looks like a Neon password, so redaction tests can look for it


def missing() -> str | None:
    """None when PostgreSQL 15 and PgBouncer are installed, else what to run to install them."""
    absent = [str(p) for p in (PG15_BIN / "initdb", PG15_BIN / "pg_ctl", PGBOUNCER) if not p.exists()]
    if not absent:
        return None
    return f"missing {', '.join(absent)}; install with: {INSTALL}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:g} s:\n{tail}")


def stop_process(proc: subprocess.Popen, timeout_s: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout_s`` (tests and benches alike)."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout_s)


class _RunAs:
    """Run commands as the postgres system user when we are root."""

    def __init__(self) -> None:
        self.user: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True,
                               capture_output=True)
            self.user = "postgres"

    def own(self, path: Path) -> None:
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def run(self, args: list[str], **kw) -> subprocess.CompletedProcess:
        return subprocess.run(args, user=self.user, check=True, capture_output=True, text=True, **kw)

    def popen(self, args: list[str], **kw) -> subprocess.Popen:
        return subprocess.Popen(args, user=self.user, **kw)


def _url(user: str, password: str | None, port: int, dbname: str, **params: str) -> str:
    auth = f"{user}:{password}@" if password else f"{user}@"
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"postgresql://{auth}127.0.0.1:{port}/{dbname}" + (f"?{query}" if query else "")


class _LoopbackService:
    """What PgServer and PgBouncer share: a temporary folder the server's user owns, a free loopback port,
    URLs to it, the ``with`` block that starts and stops it, and the check that Debian's packages are there."""

    def __init__(self) -> None:
        if problem := missing():
            raise RuntimeError(problem)
        self.port = 0
        self.root: Path | None = None
        self._as = _RunAs()

    def url(self, dbname: str = "postgres", user: str = SUPERUSER, password: str | None = PASSWORD,
            **params: str) -> str:
        return _url(user, password, self.port, dbname, **params)

    def _new_root(self, prefix: str) -> Path:
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        self.root.chmod(0o755)
        self._as.own(self.root)
        self.port = free_port()
        return self.root

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PgServer(_LoopbackService):
    """Debian's PostgreSQL 15 in a temporary folder; ``tls=True`` adds ssl=on with a self-signed cert."""

    def __init__(self, *, tls: bool = False, trust: bool = False, max_connections: int = 60) -> None:
        """``trust``: loopback logins need no password (as the embedded test server, for suites that log
        in as roles they create without one); otherwise SCRAM, as on Neon."""
        super().__init__()
        self.tls = tls
        self.trust = trust
        self.max_connections = max_connections

    @property
    def data(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def log(self) -> Path:
        assert self.root is not None
        return self.root / "server.log"

    @property
    def admin_url(self) -> str:
        return self.url()

    def start(self) -> PgServer:
        self._new_root("sa-pg15-")
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        self._as.own(pwfile)
        self._as.run([str(PG15_BIN / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "-E", "UTF8",
                      "--no-sync", "--auth-local=trust",
                      f"--auth-host={'trust' if self.trust else 'scram-sha-256'}",
                      f"--pwfile={pwfile}", "--no-instructions"])
        pwfile.unlink()
        conf = [
            "listen_addresses = '127.0.0.1'", f"port = {self.port}",
            f"unix_socket_directories = '{self.root}'", f"max_connections = {self.max_connections}",
            "fsync = off", "synchronous_commit = off", "full_page_writes = off",
            "shared_buffers = 32MB", "log_min_messages = warning", "log_connections = off",
        ]
        if self.tls:
            self._make_certificate()
            conf += ["ssl = on", "ssl_cert_file = 'server.crt'", "ssl_key_file = 'server.key'"]
        with (self.data / "postgresql.conf").open("a") as f:
            f.write("\n".join(conf) + "\n")
        self._pg_ctl("start")
        return self

    def _make_certificate(self) -> None:
        key, crt = self.data / "server.key", self.data / "server.crt"
        subprocess.run(["openssl", "req", "-new", "-x509", "-days", "2", "-nodes", "-subj", "/CN=localhost",
                        "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True)
        for path in (key, crt):
            self._as.own(path)
        key.chmod(0o600)

    def _pg_ctl(self, action: str) -> None:
        args = [str(PG15_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "30"]
        if action == "start":
            args += ["-l", str(self.log), "start"]
        else:
            args += ["-m", "fast", action]
        try:
            self._as.run(args, timeout=60)
        except subprocess.CalledProcessError as exc:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl {action} failed: {exc.stderr}\n{tail}") from None

    def stop_server(self) -> None:
        """Stop the server but keep its data (``start_server`` brings it back on the same port)."""
        self._pg_ctl("stop")

    def start_server(self) -> None:
        self._pg_ctl("start")

    def restart(self) -> None:
        self.stop_server()
        self.start_server()

    def stop(self) -> None:
        if self.root is None:
            return
        try:
            if (self.data / "postmaster.pid").exists():
                self._pg_ctl("stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


class PgBouncer(_LoopbackService):
    """PgBouncer in front of ``backend``: transaction pooling, SCRAM logins, as Neon's ``-pooler`` hosts."""

    def __init__(self, backend: PgServer, *, pool_size: int = 2, pool_mode: str = "transaction") -> None:
        super().__init__()
        self.backend = backend
        self.pool_size = pool_size
        self.pool_mode = pool_mode
        self._proc: subprocess.Popen | None = None

    def start(self) -> PgBouncer:
        self._new_root("sa-pgbouncer-")
        users = self.root / "userlist.txt"
        users.write_text(f'"{SUPERUSER}" "{PASSWORD}"\n')
        self._as.own(users)
        users.chmod(0o600)
        ini = self.root / "pgbouncer.ini"
        ini.write_text("\n".join([
            "[databases]",
            f"* = host=127.0.0.1 port={self.backend.port}",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1", f"listen_port = {self.port}", "unix_socket_dir =",
            "auth_type = scram-sha-256", f"auth_file = {users}",
            f"pool_mode = {self.pool_mode}", f"default_pool_size = {self.pool_size}",
            "max_client_conn = 200", "server_login_retry = 1", "server_check_delay = 0",
            # Neon's pooler accepts options=endpoint%3D... (SNI-less clients); ours ignores it.
            "ignore_startup_parameters = extra_float_digits,options",
            f"logfile = {self.root / 'pgbouncer.log'}", f"pidfile = {self.root / 'pgbouncer.pid'}",
            f"admin_users = {SUPERUSER}", "",
        ]))
        self._as.own(ini)
        self._proc = self._as.popen([str(PGBOUNCER), str(ini)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        try:
            _wait_for_port(self.port, 15, "pgbouncer", self.root / "pgbouncer.log")
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._proc is not None:
            stop_process(self._proc)
            self._proc = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


# --- a small todo database: the reference spec's schema and a few users' rows ------------------------

REPO = Path(__file__).resolve().parents[1]
TODO_USERS = {"u_alice": 3, "u_bob": 2, "u_carol": 0}  # user id -> tasks


def create_database(admin_url: str, name: str) -> str:
    """CREATE DATABASE ``name`` on the server of ``admin_url``; return its URL (same credentials)."""
    import re

    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return re.sub(r"^(postgres(?:ql)?://[^/]*/)([^?]*)", lambda m: m.group(1) + name, admin_url)


def seed_todo(url: str, users: dict[str, int] = TODO_USERS) -> None:
    """The reference spec's tables (specs/database/schema.md) with ``users`` and their tasks."""
    import psycopg

    from schema_architect.tools.database.ddl import schema_ddl
    from schema_architect.tools.spec.reader import parse_spec

    spec = parse_spec((REPO / "specs/database/schema.md").read_text()).schema
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in schema_ddl(spec):
            conn.execute(statement)
        for user, tasks in users.items():
            conn.execute("INSERT INTO users (id, email, name) VALUES (%s, %s, %s)",
                         (user, f"{user}@example.com", user))
            for i in range(tasks):
                conn.execute("INSERT INTO tasks (user_id, title) VALUES (%s, %s)", (user, f"{user} task {i}"))
        conn.execute("ANALYZE")


def make_project(root: Path) -> Path:
    """A user project holding the reference spec and models, as tests/test_diff_tool.py builds one."""
    spec = root / "specs" / "database" / "schema.md"
    spec.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "specs" / "database" / "schema.md", spec)
    (root / "backend").mkdir(exist_ok=True)
    shutil.copy(REPO / "specs" / "database" / "models.py", root / "backend" / "models.py")
    return root


def main(argv: list[str]) -> int:
    command = argv[argv.index("--") + 1:] if "--" in argv else []
    if problem := missing():
        print(f"pgservers: {problem}", file=sys.stderr)
        return 2
    with PgServer(trust=True) as server:
        if not command:
            print(server.admin_url, flush=True)
            with contextlib.suppress(EOFError):
                input("PostgreSQL 15 running; press Enter to stop it.\n")
            return 0
        env = dict(os.environ, SCHEMA_ARCHITECT_TEST_ADMIN_URL=server.admin_url)
        print(f"pgservers: PostgreSQL 15 on 127.0.0.1:{server.port}: {' '.join(command)}", file=sys.stderr)
        return subprocess.run(command, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
