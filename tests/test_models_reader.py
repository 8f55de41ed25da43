"""Reading SQLModel models: finding them, importing them in a child process, mapping them to Schema.

Every read starts a real child Python (about 1 s, most of it importing sqlmodel), so the fixture
projects under tests/fixtures/models/ are read once per module, two at a time, and shared.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from schema_architect.tools.database.types import from_format_type
from schema_architect.tools.models.reader import (
    ModelsError,
    ModelsRead,
    choose_python,
    find_models,
    read_models,
)
from schema_architect.tools.schema.model import ForeignKey, Index, IndexColumn, Location, UniqueConstraint

FIXTURES = Path(__file__).parent / "fixtures" / "models"
LOOP_TIMEOUT = 2.5
SYSTEM_PYTHON = "/usr/bin/python3"


def _system_python_lacks_sqlalchemy() -> bool:
    return Path(SYSTEM_PYTHON).is_file() and subprocess.run(
        [SYSTEM_PYTHON, "-I", "-c", "import sqlalchemy"], capture_output=True
    ).returncode != 0


@pytest.fixture(scope="module")
def helper_pid_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # the child sees only a few variables (never the server's secrets); TMPDIR is one of them
    return tmp_path_factory.mktemp("models-pid", numbered=False) / "helper.pid"


@pytest.fixture(scope="module")
def reads(tmp_path_factory: pytest.TempPathFactory, helper_pid_file: Path) -> dict[str, ModelsRead]:
    """Every fixture project read once. Three workers: the stubborn one mostly sleeps."""
    venv_project = tmp_path_factory.mktemp("venv_project")
    shutil.copytree(FIXTURES / "layout_root_file", venv_project, dirs_exist_ok=True)
    (venv_project / ".venv" / "bin").mkdir(parents=True)
    (venv_project / ".venv" / "bin" / "python").symlink_to(SYSTEM_PYTHON)

    jobs: dict[str, Callable[[], ModelsRead]] = {
        name: (lambda n=name: read_models(FIXTURES / n))
        for name in ("mapping", "layout_backend_file", "layout_backend_pkg", "layout_backend_app",
                     "layout_backend_src", "layout_root_file", "layout_root_app", "layout_namespace",
                     "shadowed", "broken", "prints", "own_tools")
    }
    jobs["loops"] = lambda: read_models(FIXTURES / "loops", timeout=LOOP_TIMEOUT)
    jobs["stubborn"] = lambda: read_models(FIXTURES / "stubborn", timeout=LOOP_TIMEOUT)
    jobs["bad_python"] = lambda: read_models(FIXTURES / "layout_root_file", python="/no/such/python")
    if _system_python_lacks_sqlalchemy():
        jobs["venv_without_sqlalchemy"] = lambda: read_models(venv_project)
    order = ["loops", "stubborn", *(k for k in jobs if k not in ("loops", "stubborn"))]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TMPDIR", str(helper_pid_file.parent))
        with ThreadPoolExecutor(max_workers=3) as pool:
            futures = {name: pool.submit(jobs[name]) for name in order}
            return {name: f.result() for name, f in futures.items()}


# --- finding the models (no child process) ---------------------------------------------------------

LAYOUTS = {
    "layout_backend_file": ("backend", [("models", "backend/models.py")]),
    "layout_backend_pkg": ("backend", [("models", "backend/models/__init__.py"),
                                       ("models.task", "backend/models/task.py"),
                                       ("models.user", "backend/models/user.py")]),
    # app/ is a package, so backend/ goes on sys.path and the project's `from app.models...` works.
    "layout_backend_app": ("backend", [("app.models", "backend/app/models/__init__.py"),
                                       ("app.models.task", "backend/app/models/task.py"),
                                       ("app.models.user", "backend/app/models/user.py")]),
    # test_task.py sits in the package but is no model: never imported.
    "layout_backend_src": ("backend", [("src.models", "backend/src/models/__init__.py"),
                                       ("src.models.task", "backend/src/models/task.py")]),
    "layout_root_file": ("", [("models", "models.py")]),
    "layout_root_app": ("app", [("models", "app/models/__init__.py"), ("models.task", "app/models/task.py")]),
    "layout_namespace": ("", [("models", "models"), ("models.task", "models/task.py")]),
    "shadowed": ("backend", [("models", "backend/models/__init__.py")]),
}


@pytest.mark.parametrize("name", LAYOUTS)
def test_find_models_in_each_layout(name: str) -> None:
    root = (FIXTURES / name).resolve()
    plan = find_models(root)
    import_root, modules = LAYOUTS[name]
    assert plan.import_root == (root / import_root).resolve()
    assert [(m, f.relative_to(root).as_posix()) for m, f, _ in plan.modules] == modules
    assert plan.files == [f for _, f in modules if f.endswith(".py")]


def test_a_models_package_shadows_models_py_and_says_so() -> None:
    plan = find_models(FIXTURES / "shadowed")
    assert [(f.rule, f.severity, f.location) for f in plan.findings] == [
        ("models-file-shadowed", "warning", Location(file="backend/models.py"))
    ]
    assert "backend/models/" in plan.findings[0].message


def test_a_folder_without_init_does_not_shadow_models_py(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "task.py").write_text("")
    (tmp_path / "models.py").write_text("")
    plan = find_models(tmp_path)
    assert plan.files == ["models.py"] and plan.findings == []


def test_other_model_sets_are_named_but_not_read(tmp_path: Path) -> None:
    (tmp_path / "backend").mkdir()
    (tmp_path / "backend" / "models.py").write_text("")
    (tmp_path / "models.py").write_text("")
    plan = find_models(tmp_path)
    assert plan.files == ["backend/models.py"]
    assert [(f.rule, f.fix) for f in plan.findings] == [
        ("models-other-candidates", "Pass models='models.py' to read that one instead.")
    ]


@pytest.mark.parametrize(
    ("models", "files", "module"),
    [
        ("backend/app/models", ["backend/app/models/__init__.py", "backend/app/models/task.py",
                                "backend/app/models/user.py"], "app.models"),
        ("backend/app/models/task.py", ["backend/app/models/task.py"], "app.models.task"),
        ("backend/app/models/task", ["backend/app/models/task.py"], "app.models.task"),
        ("app.models.user", ["backend/app/models/user.py"], "app.models.user"),
    ],
)
def test_explicit_models_argument(models: str, files: list[str], module: str) -> None:
    plan = find_models(FIXTURES / "layout_backend_app", models)
    assert plan.files == files
    assert plan.modules[0][0] == module
    assert plan.import_root == (FIXTURES / "layout_backend_app" / "backend").resolve()


def test_explicit_absolute_path() -> None:
    target = (FIXTURES / "mapping" / "backend" / "models.py").resolve()
    assert find_models(FIXTURES / "mapping", str(target)).files == ["backend/models.py"]


def test_missing_models_are_a_finding_not_an_exception(tmp_path: Path) -> None:
    for models in (None, "no/such/models.py", "no.such.module"):
        result = read_models(tmp_path, models)  # nothing to import: no child is started
        assert [f.rule for f in result.findings] == ["models-not-found"]
        assert result.schema.tables == [] and result.files == []
    with pytest.raises(ModelsError, match="not a folder"):
        read_models(tmp_path / "missing")


def test_the_projects_own_virtualenv_python_comes_first(tmp_path: Path) -> None:
    assert choose_python(tmp_path) == [sys.executable]
    assert choose_python(tmp_path, "/opt/py") == ["/opt/py", sys.executable]
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").symlink_to(sys.executable)
    assert choose_python(tmp_path, "/opt/py") == [str(tmp_path / ".venv/bin/python"), "/opt/py",
                                                  sys.executable]


# --- reading each layout ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "tables"),
    [
        ("layout_backend_file", ["task"]),
        ("layout_backend_pkg", ["users", "task"]),
        ("layout_backend_app", ["user", "task"]),
        ("layout_backend_src", ["tasks"]),
        ("layout_root_file", ["task"]),
        ("layout_root_app", ["task"]),
        ("layout_namespace", ["task"]),
        ("own_tools", ["note"]),
    ],
)
def test_each_layout_reads_its_tables(reads: dict[str, ModelsRead], name: str, tables: list[str]) -> None:
    result = reads[name]
    assert result.findings == []
    assert [t.name for t in result.schema.tables] == tables
    assert result.python == sys.executable and result.versions["sqlmodel"] == "0.0.50"


def test_shadowed_file_is_not_read(reads: dict[str, ModelsRead]) -> None:
    result = reads["shadowed"]
    assert [t.name for t in result.schema.tables] == ["fresh"]
    assert [f.rule for f in result.findings] == ["models-file-shadowed"]


def test_a_project_tools_package_is_theirs_not_ours(reads: dict[str, ModelsRead]) -> None:
    # backend/models.py does `from tools.fields import title_field` (max_length=123).
    note = reads["own_tools"].schema.table("note")
    assert note.column("title").type == "varchar(123)"


def test_stdout_of_user_code_does_not_mix_with_the_result(reads: dict[str, ModelsRead]) -> None:
    result = reads["prints"]
    assert result.findings == []
    task = result.schema.table("task")
    assert [(c.name, c.type, c.nullable, c.identity) for c in task.columns] == [
        ("id", "integer", False, "serial"), ("title", "varchar(80)", False, None),
    ]


def test_a_python_that_cannot_start_falls_back(reads: dict[str, ModelsRead]) -> None:
    result = reads["bad_python"]
    assert [(f.rule, f.severity) for f in result.findings] == [("models-python-unusable", "warning")]
    assert "/no/such/python: cannot start it" in result.findings[0].message
    assert result.python == sys.executable and result.schema.table("task") is not None


@pytest.mark.skipif(not _system_python_lacks_sqlalchemy(), reason=f"needs a {SYSTEM_PYTHON} without sqlalchemy")
def test_a_virtualenv_without_sqlalchemy_falls_back_to_the_next_python(reads: dict[str, ModelsRead]) -> None:
    result = reads["venv_without_sqlalchemy"]
    assert [(f.rule, f.severity) for f in result.findings] == [("models-python-unusable", "warning")]
    assert "ModuleNotFoundError" in result.findings[0].message
    assert result.python == sys.executable
    assert [t.name for t in result.schema.tables] == ["task"]


# --- the mapping table -----------------------------------------------------------------------------

M = "backend/models.py"


def _columns(result: ModelsRead, table: str) -> dict[str, tuple]:
    return {c.name: (c.type, c.nullable, c.default, c.identity, c.primary_key, c.unique)
            for c in result.schema.table(table).columns}


def test_mapping_tables_in_declaration_order(reads: dict[str, ModelsRead]) -> None:
    result = reads["mapping"]
    assert result.findings == []
    assert result.files == [M]
    assert [t.name for t in result.schema.tables] == ["users", "task", "labels", "audit_log"]
    assert result.schema.source == "models"


def test_mapping_users(reads: dict[str, ModelsRead]) -> None:
    assert _columns(reads["mapping"], "users") == {
        #        type            nullable default identity PK     unique
        "id": ("varchar", False, None, None, True, False),  # str PK: no serial
        "email": ("varchar", False, None, None, False, True),  # unique=True
        "handle": ("varchar(40)", False, None, None, False, True),  # unique=True, index=True
        "name": ("varchar(200)", True, None, None, False, False),  # str | None, max_length
    }
    users = reads["mapping"].schema.table("users")
    # unique=True alone is a constraint; with index=True it is a unique index and no constraint.
    assert users.unique_constraints == [
        UniqueConstraint(columns=["email"], location=Location(file=M, line=24))
    ]
    assert users.indexes == [Index(name="ix_users_handle", unique=True, columns=[IndexColumn(name="handle")],
                                   location=Location(file=M, line=25))]


def test_mapping_task_columns(reads: dict[str, ModelsRead]) -> None:
    assert _columns(reads["mapping"], "task") == {
        # inherited from the non-table TaskBase, first (SQLModel puts base fields first)
        "title": ("varchar(200)", False, None, None, False, False),
        "description": ("varchar", True, None, None, False, False),  # Optional[str]
        "completed": ("boolean", False, None, None, False, False),  # Python default: no DB default
        "id": ("integer", False, None, "serial", True, False),  # int | None PK: serial, NOT NULL
        "user_id": ("varchar", False, None, None, False, False),
        "editor_id": ("varchar", True, None, None, False, False),
        "priority": ("priority", False, None, None, False, False),  # native enum, Python default only
        "due_on": ("date", True, None, None, False, False),
        "created_at": ("timestamptz", False, "now()", None, False, False),  # datetime: timestamptz
        "archived": ("boolean", False, "false", None, False, False),  # server_default=sa.false()
        "pinned": ("boolean", False, "false", None, False, False),  # server_default="false"
        "position": ("integer", False, "0", None, False, False),  # server_default="0"
        "estimate": ("numeric(6,2)", True, None, None, False, False),
        "score": ("double precision", False, None, None, False, False),  # float
        "blob": ("bytea", True, None, None, False, False),
        "ext_id": ("uuid", False, None, None, False, False),  # default_factory: not a DB default
        "note": ("text", True, None, None, False, False),
        "tags": ("varchar(30)[]", True, None, None, False, False),
        "payload": ("jsonb", True, None, None, False, False),
    }
    task = reads["mapping"].schema.table("task")
    assert task.column("priority").allowed_values == ["low", "high"]
    assert task.column("note").description == "Free text"
    assert task.description == "Todo items"
    assert task.primary_key == ["id"]


def test_mapping_enum_labels_are_member_names(reads: dict[str, ModelsRead]) -> None:
    enums = reads["mapping"].schema.enums
    assert [(e.name, e.values, e.schema_name, e.location) for e in enums] == [
        ("priority", ["low", "high"], "public", Location(file=M, line=15))
    ]


def test_mapping_task_constraints_and_indexes(reads: dict[str, ModelsRead]) -> None:
    task = reads["mapping"].schema.table("task")
    assert task.foreign_keys == [
        ForeignKey(columns=["user_id"], ref_table="users", ref_columns=["id"], on_delete="CASCADE",
                   location=Location(file=M, line=48)),
        ForeignKey(columns=["editor_id"], ref_table="users", ref_columns=["id"], on_delete="SET NULL",
                   location=Location(file=M, line=49)),
    ]
    assert [(u.name, u.columns, u.location.line) for u in task.unique_constraints] == [
        ("uq_task_user_title", ["user_id", "title"], 41), (None, ["user_id", "due_on"], 36),
    ]
    assert [(c.name, c.expression, c.columns, c.location.line) for c in task.checks] == [
        ("ck_task_title_nonempty", "length(title) > 0", ["title"], 43)
    ]
    assert task.indexes == [
        Index(name="ix_task_due", columns=[IndexColumn(name="due_on", descending=True)],  # postgresql_ops
              include=["title"], location=Location(file=M, line=39)),
        Index(name="ix_task_open", columns=[IndexColumn(name="user_id")], where="completed = false",
              location=Location(file=M, line=38)),
        Index(name="ix_task_title_hash", columns=[IndexColumn(name="title")], method="hash",
              location=Location(file=M, line=40)),
        Index(name="ix_task_user_created",  # text("created_at DESC")
              columns=[IndexColumn(name="user_id"), IndexColumn(name="created_at", descending=True)],
              location=Location(file=M, line=37)),
        Index(name="ix_task_user_id", columns=[IndexColumn(name="user_id")],  # index=True
              location=Location(file=M, line=48)),
    ]


def test_mapping_identity_bigserial_and_other_registries(reads: dict[str, ModelsRead]) -> None:
    result = reads["mapping"]
    assert _columns(result, "labels") == {
        "id": ("bigint", False, None, "identity always", True, False),
        "label": ("varchar(50)", False, None, None, False, False),  # attribute `name`, column "label"
        "seen": ("timestamp", True, None, None, False, False),  # sa_type=DateTime(timezone=False)
    }
    assert result.schema.table("labels").indexes == [  # a module-level Index(...) on an expression
        Index(name="ix_labels_lower_label", columns=[IndexColumn(name="lower(label)", is_expression=True)],
              location=Location(file=M, line=76))
    ]
    # A plain SQLAlchemy DeclarativeBase next to SQLModel: its metadata is read too.
    assert _columns(result, "audit_log") == {
        "id": ("bigint", False, None, "bigserial", True, False),
        "at": ("timestamptz", False, "now()", None, False, False),
        "action": ("varchar(20)", False, "'created'", None, False, False),
    }


def test_mapping_locations(reads: dict[str, ModelsRead]) -> None:
    schema = reads["mapping"].schema
    task = schema.table("task")
    assert task.location == Location(file=M, line=35)
    assert task.column("title").location == Location(file=M, line=30)  # in TaskBase
    assert task.column("id").location == Location(file=M, line=47)
    assert schema.table("labels").column("label").location == Location(file=M, line=72)
    assert schema.table("audit_log").column("at").location == Location(file=M, line=87)
    lines = (FIXTURES / "mapping" / M).read_text().splitlines()
    assert lines[29].strip().startswith("title:") and lines[71].strip().startswith("name:")


# --- broken, slow and noisy projects ---------------------------------------------------------------


def test_a_module_that_raises_is_a_finding_and_the_rest_is_read(reads: dict[str, ModelsRead]) -> None:
    result = reads["broken"]
    # __init__ imports user (fine) then task (raises); tag.py is imported on its own afterwards.
    assert {t.name for t in result.schema.tables} >= {"user", "tag"}
    failed = [(f.rule, f.severity, f.location) for f in result.findings]
    assert failed == [
        ("models-import-failed", "error", Location(file="backend/models/task.py", line=5)),
        ("models-import-failed", "error", Location(file="backend/models/typo.py", line=4)),
    ]
    raised, syntax = (f.message for f in result.findings)
    assert "RuntimeError: could not reach the database at import time" in raised
    assert "ENGINE = connect()" in raised  # the traceback's last lines, from the user's file
    assert "importlib" not in raised
    assert "SyntaxError: expected ':'" in syntax


def test_a_module_that_loops_forever_times_out(reads: dict[str, ModelsRead], helper_pid_file: Path) -> None:
    result = reads["loops"]
    # b_slow.py never ends, so a result at all means it was stopped (a missed stop hangs until pytest's timeout);
    # the child's own alarm stopped it, in the loop, and said so.
    assert "ImportTimeout: the time limit for importing the models was reached here" in result.findings[0].message
    assert [(f.rule, f.severity, f.location) for f in result.findings] == [
        ("models-import-timeout", "error", Location(file="backend/models/b_slow.py", line=10))
    ]
    assert f"within {LOOP_TIMEOUT:g} s" in result.findings[0].message
    assert [t.name for t in result.schema.tables] == ["task"]  # a_task.py came first
    # The `sleep 60` it started is gone too: the whole process group was killed.
    helper = int(helper_pid_file.read_text())
    assert _gone(helper)


def test_a_module_that_ignores_the_alarm_is_killed(reads: dict[str, ModelsRead]) -> None:
    result = reads["stubborn"]
    # It swallows the child's alarm, so only the reaper's kill at its deadline can end it (else pytest's timeout).
    assert result.findings and result.findings[0].message.endswith("(it printed nothing; it was killed)")
    assert [(f.rule, f.severity) for f in result.findings] == [("models-import-timeout", "error")]
    assert "models (models.py)" in result.findings[0].message
    assert result.schema.tables == []


def _gone(pid: int, wait: float = 2.0) -> bool:
    """True when the process no longer runs (a zombie awaiting its reaper counts as gone)."""
    end = time.monotonic() + wait
    while time.monotonic() < end:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


# --- model side and catalog side agree -------------------------------------------------------------

CREATE_ALL = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    import sqlalchemy as sa
    from sqlmodel import SQLModel
    import models
    engine = sa.create_engine(sys.argv[2])
    SQLModel.metadata.create_all(engine)
    models.Base.metadata.create_all(engine)
""")

CATALOG_COLUMNS = """
    select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
           pg_get_expr(d.adbin, d.adrelid), a.attidentity
    from pg_attribute a
    join pg_class c on c.oid = a.attrelid
    join pg_namespace n on n.oid = c.relnamespace
    left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
    where n.nspname = 'public' and c.relkind = 'r' and a.attnum > 0 and not a.attisdropped
"""


def test_reported_schema_matches_what_create_all_builds(reads: dict[str, ModelsRead], pg_url: str) -> None:
    url = re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg://", pg_url)
    subprocess.run([sys.executable, "-I", "-B", "-c", CREATE_ALL, str(FIXTURES / "mapping" / "backend"), url],
                   check=True, capture_output=True, timeout=60)
    schema = reads["mapping"].schema
    with psycopg.connect(pg_url) as conn:
        catalog = {(t, c): rest for t, c, *rest in conn.execute(CATALOG_COLUMNS)}
        enums = conn.execute("select t.typname, array_agg(e.enumlabel order by e.enumsortorder) "
                             "from pg_enum e join pg_type t on t.oid = e.enumtypid group by 1").fetchall()
        indexes = dict(conn.execute(
            "select indexrelid::regclass::text, pg_get_indexdef(indexrelid) from pg_index i "
            "where indrelid::regclass::text in ('users', 'task', 'labels', 'audit_log') "
            "and not exists (select from pg_constraint where conindid = i.indexrelid)"
        ).fetchall())
        uniques = conn.execute("select conrelid::regclass::text, array(select attname from unnest(conkey) "
                               "with ordinality k(num, pos) join pg_attribute on attrelid = conrelid "
                               "and attnum = k.num order by k.pos) "
                               "from pg_constraint "
                               "where contype = 'u' and connamespace = 'public'::regnamespace").fetchall()
        fks = conn.execute("select conrelid::regclass::text, pg_get_constraintdef(oid) from pg_constraint "
                           "where contype = 'f' and connamespace = 'public'::regnamespace").fetchall()

    ours = {(t.name, c.name): c for t in schema.tables for c in t.columns}
    assert set(ours) == set(catalog)
    for key, column in ours.items():
        pg_type, not_null, default, identity = catalog[key]
        assert (key, from_format_type(pg_type)) == (key, column.type)
        assert (key, not_null) == (key, not column.nullable)
        if column.identity in ("serial", "bigserial"):
            assert default.startswith("nextval(") and identity == ""
        elif column.identity == "identity always":
            assert (default, identity) == (None, "a")
        else:  # PostgreSQL adds casts to the literals it stores: 'created'::character varying
            assert (key, default and re.sub(r"::[a-z ]+$", "", default)) == (key, column.default)
    assert sorted(enums) == sorted((e.name, e.values) for e in schema.enums)

    assert set(indexes) == {i.name for t in schema.tables for i in t.indexes}
    for table in schema.tables:
        for index in table.indexes:
            cols = ", ".join(c.name + (" DESC" if c.descending else "") for c in index.columns)
            expected = (f"{'UNIQUE ' if index.unique else ''}INDEX {index.name} ON public.{table.name} "
                        f"USING {index.method} ({cols})"
                        + (f" INCLUDE ({', '.join(index.include)})" if index.include else "")
                        + (f" WHERE ({index.where})" if index.where else ""))
            if any(c.is_expression for c in index.columns):  # lower(label) is stored lower((label)::text)
                assert _no_casts(indexes[index.name]) == _no_casts(f"CREATE {expected}")
            else:
                assert indexes[index.name] == f"CREATE {expected}"
    assert sorted(uniques) == sorted((t.name, u.columns) for t in schema.tables for u in t.unique_constraints)
    assert sorted(fks) == sorted(
        (t.name, f"FOREIGN KEY ({', '.join(f.columns)}) REFERENCES {f.ref_table}({', '.join(f.ref_columns)})"
                 + (f" ON DELETE {f.on_delete}" if f.on_delete else ""))
        for t in schema.tables for f in t.foreign_keys
    )


def _no_casts(sql: str) -> str:
    return re.sub(r"::[a-z ]+|[()]", "", sql)


def test_reading_does_not_leave_bytecode_in_the_project() -> None:
    assert not list(FIXTURES.rglob("__pycache__")), "the child runs with -B"


def test_the_child_never_imports_our_package() -> None:
    child = (Path(__file__).parents[1] / "tools" / "models" / "_child.py").read_text()
    imports = re.findall(r"^\s*(?:from|import) ([\w.]+)", child, re.M)
    assert {i.split(".")[0] for i in imports} <= {
        "__future__", "ast", "contextlib", "importlib", "inspect", "json", "os", "re", "signal", "sys", "time",
        "traceback", "types", "sqlalchemy",
    }


def test_an_unchanged_read_is_reused_and_a_change_is_seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = tmp_path / "backend" / "models.py"
    models.parent.mkdir()
    models.write_text("from sqlmodel import Field, SQLModel\n\n"
                      "class Note(SQLModel, table=True):\n    id: int | None = Field(default=None, primary_key=True)\n")
    started: list[list[str]] = []  # every process the reader starts (the reaper, which runs the child)

    class CountingPopen(subprocess.Popen):
        def __init__(self, args, *rest, **kwargs):
            started.append(list(args))
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", CountingPopen)
    first = read_models(tmp_path)
    assert len(started) == 1
    again = read_models(tmp_path)
    assert again.schema == first.schema
    assert len(started) == 1  # no child process the second time
    models.write_text(models.read_text() + "    body: str\n")
    changed = read_models(tmp_path)
    assert len(started) == 2
    assert [c.name for c in changed.schema.table("note").columns] == ["id", "body"]


def test_a_reused_read_shares_nothing_a_caller_can_change(tmp_path: Path) -> None:
    """The cache keeps its own copy: what one caller does to its result never reaches the next one."""
    models = tmp_path / "models.py"
    models.write_text("from sqlmodel import Field, SQLModel\n\n"
                      "class Note(SQLModel, table=True):\n    id: int | None = Field(default=None, primary_key=True)\n")
    first = read_models(tmp_path)
    first.schema.table("note").columns.clear()  # the read that filled the cache
    again = read_models(tmp_path)
    assert [c.name for c in again.schema.table("note").columns] == ["id"]
    again.schema.tables.clear()  # a read the cache answered
    again.files.append("elsewhere.py")
    third = read_models(tmp_path)
    assert [t.name for t in third.schema.tables] == ["note"] and "elsewhere.py" not in third.files


def test_a_virtualenv_with_sqlalchemy_but_no_sqlmodel_falls_back_to_the_next_python(tmp_path: Path) -> None:
    """The project's .venv has SQLAlchemy but not the sqlmodel its models import (a half-installed
    environment): the models are read with the next interpreter that has it, and the finding says why."""
    import importlib.util
    import venv

    project = tmp_path / "project"
    shutil.copytree(FIXTURES / "layout_root_file", project)
    venv.create(project / ".venv", with_pip=False)
    [site] = (project / ".venv").glob("lib/python*/site-packages")
    only = tmp_path / "sqlalchemy_only"  # SQLAlchemy and what it imports, nothing else of ours
    only.mkdir()
    for name in ("sqlalchemy", "typing_extensions", "greenlet"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            origin = Path(spec.origin)
            source = origin.parent if origin.name == "__init__.py" else origin
            (only / source.name).symlink_to(source)
    (site / "sqlalchemy_only.pth").write_text(f"{only}\n")
    probe = subprocess.run([str(project / ".venv/bin/python"), "-I", "-c", "import sqlalchemy; import sqlmodel"],
                           capture_output=True, text=True)
    assert "No module named 'sqlmodel'" in probe.stderr  # the environment is what the test says it is

    result = read_models(project)
    assert [(f.rule, f.severity) for f in result.findings] == [("models-python-unusable", "warning")]
    assert "cannot import sqlmodel" in result.findings[0].message
    assert result.python == sys.executable
    assert [t.name for t in result.schema.tables] == ["task"]
