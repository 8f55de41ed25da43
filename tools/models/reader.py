"""Read a project's SQLModel (or plain SQLAlchemy) models into a :class:`Schema`.

Importing models runs user code, so it happens in a child process (``python -I _child.py``)
with a time limit, and the child reports JSON::

    read_models(root) ─ find_models ─> ImportPlan (files, module names, sys.path)
                      ─ child python ─> JSON (types compiled with the postgresql dialect)
                      ─ _to_schema ──> Schema + findings (import failures, timeouts, shadowed files)

The child runs with the project's own interpreter when it has a virtualenv, so the types are the
ones that project's SQLModel version would create (``datetime`` is ``timestamptz`` since 0.0.45).

Finding rules: ``models-not-found`` (error), ``models-import-failed`` (error, with the traceback's
last lines), ``models-import-timeout`` (error), ``models-file-shadowed`` (warning: ``models.py``
hidden by a ``models/`` package), ``models-other-candidates`` (info: another model set not read),
``models-python-unusable`` (warning: that interpreter had no SQLAlchemy or would not start),
``models-type-unknown`` (warning: a column type without a PostgreSQL spelling).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from ..database.types import UnknownType, normalize_type
from ..schema.findings import Finding
from ..schema.model import (
    Check,
    Column,
    Enum,
    ForeignKey,
    Index,
    IndexColumn,
    Location,
    Schema,
    Table,
    UniqueConstraint,
)
from ..schema.paths import inside_project

CHILD = Path(__file__).with_name("_child.py")
REAPER = Path(__file__).with_name("_reaper.py")
TIMED_OUT = 124  # the reaper's exit status when it killed the child for its time limit
#: Time the reaper gets, after killing the child, to kill what the child left behind and exit.
REAP_GRACE = 3.0

#: The only environment variables the child sees: never the server's secrets (DATABASE_URL, tokens,
#: SCHEMA_ARCHITECT_*): user code imported there has no business with them.
CHILD_ENVIRONMENT = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "TEMP",
                     "TMP", "SYSTEMROOT", "VIRTUAL_ENV")

#: Secret values registered by the server (its database password, its HTTP token; server/app.py): scrubbed,
#: with every secret-looking value of the server's environment, from all the child reports (see
#: :func:`scrub_secrets`). Extra variable names the child may see (the ``models_env`` setting).
_REGISTERED_SECRETS: set[str] = set()
_EXTRA_ENVIRONMENT: list[str] = []
#: Environment variables whose values are secrets, by name.
_SECRET_NAME = re.compile(r"(?i)pass(word|wd)?$|passwd|password|secret|token|api_?key|private_?key|credential"
                          r"|^pgpassword$|_key$")
#: Shorter values are not scrubbed: they would blank ordinary words out of the report. A value taken from
#: the environment by its variable's name alone must be longer (MIN_ENV_SECRET_CHARS): such a name may hold
#: a flag ("true") or a path.
MIN_SECRET_CHARS, MIN_ENV_SECRET_CHARS = 4, 8

#: Where real projects keep their models, in the order we look (specs_analysis.md §8).
MODEL_BASES = ("backend", "backend/app", "backend/src", "", "app", "src")

#: Time the child gets after its deadline to write what it read before the parent kills it.
KILL_GRACE = 1.0

_SKIP_FILES = re.compile(r"^(test_.*|.*_test|conftest)\.py$")


class ModelsError(ValueError):
    """Bad input: the project root does not exist."""


with warnings.catch_warnings():
    # ``schema`` is the field name the API promises; it shadows BaseModel's deprecated .schema().
    warnings.simplefilter("ignore", UserWarning)

    class ModelsRead(BaseModel):
        model_config = ConfigDict(extra="forbid")

        schema: Schema  # type: ignore[assignment]  # the API's field name (BaseModel.schema is deprecated)
        findings: list[Finding]
        files: list[str]
        elapsed_ms: float
        python: str | None = None
        versions: dict[str, str | None] = {}


@dataclass
class ImportPlan:
    """What to import: module names, the files they are, and what goes on ``sys.path``."""

    root: Path
    import_root: Path | None = None
    modules: list[tuple[str, Path, bool]] = field(default_factory=list)  # (name, file, is package)
    findings: list[Finding] = field(default_factory=list)

    @property
    def files(self) -> list[str]:
        return [_rel(f, self.root) for _, f, _ in self.modules if f.is_file()]


# --- finding the models ----------------------------------------------------------------------------


def find_models(project_root: Path, models: str | None = None) -> ImportPlan:
    """Locate the models: an explicit ``models`` (file, folder or dotted module) or the usual layouts.

    Everything it would import lies inside the project root (symlinks resolved): a ``models`` path that
    resolves outside, or models that do, raise :class:`ProjectPathError` before anything runs."""
    plan = _find_models(Path(project_root).resolve(), models)
    for _, file, _ in plan.modules:
        inside_project(plan.root, file, "models file", "backend/app/models")
    if plan.import_root is not None:
        inside_project(plan.root, plan.import_root, "models import root", "backend")
    return plan


def _find_models(root: Path, models: str | None) -> ImportPlan:
    plan = ImportPlan(root)
    if models:
        explicit = _explicit(root, models)
        if explicit is None:
            plan.findings.append(Finding(
                rule="models-not-found", severity="error",
                message=f"The models {models!r} were not found under {root}.",
                fix="Pass models= as a path relative to the project root (backend/app/models, "
                    "backend/models.py) or a dotted module name importable from it (app.models).",
            ))
            return plan
        _plan_target(plan, *explicit)
        return plan
    found = [t for base in MODEL_BASES if (t := _at_base(root, root / base)) is not None]
    if not found:
        plan.findings.append(Finding(
            rule="models-not-found", severity="error",
            message="No SQLModel models found: looked for models.py and models/ in "
                    + ", ".join(f"{b}/" if b else "the project root" for b in MODEL_BASES) + ".",
            fix="Pass models= with the file, folder or dotted module that defines the table classes.",
        ))
        return plan
    target, shadowed = found[0]
    if shadowed is not None:
        plan.findings.append(shadowed)
    _plan_target(plan, target, None, None)
    for other, _ in found[1:]:
        plan.findings.append(Finding(
            rule="models-other-candidates", severity="info",
            message=f"Read {_rel(target, root)}; {_rel(other, root)} also looks like models "
                    "and was not read.",
            location=Location(file=_rel(other, root)),
            fix=f"Pass models={_rel(other, root)!r} to read that one instead.",
        ))
    return plan


def _at_base(root: Path, base: Path) -> tuple[Path, Finding | None] | None:
    """``models/`` or ``models.py`` in one folder, the way Python's import would choose (and a
    finding when the package hides the file)."""
    file, package = base / "models.py", base / "models"
    regular = (package / "__init__.py").is_file()
    namespace = package.is_dir() and not regular and any(package.glob("*.py"))
    if regular and file.is_file():  # a package with __init__.py wins over a module of the same name
        return package, Finding(
            rule="models-file-shadowed", severity="warning",
            message=f"{_rel(file, root)} is shadowed by the package {_rel(package, root)}/: "
                    "`import models` loads the package, so the package was read and the file ignored.",
            location=Location(file=_rel(file, root)),
            fix=f"Delete or rename {_rel(file, root)} (move what it still defines into the package).",
        )
    if file.is_file():  # a module beats a folder without __init__.py (a namespace portion)
        return file, None
    if regular or namespace:
        return package, None
    return None


def _explicit(root: Path, models: str) -> tuple[Path, Path | None, str | None] | None:
    dotted = re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*", models) is not None
    if not dotted or (root / models).exists() or (root / models).is_symlink():
        # a path: checked before anything else is looked at (a dotted name is checked once found)
        path = inside_project(root, models, "models path", "backend/app/models")
    else:
        path = root / models
    if path.is_file() or path.is_dir():
        return path.resolve(), None, None
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py").resolve(), None, None
    if re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*", models):
        # A dotted name: importable from the root or from one of the usual source folders.
        rel = Path(*models.split("."))
        for base in dict.fromkeys((root / b).resolve() for b in MODEL_BASES):
            for candidate in (base / rel / "__init__.py", base / rel.with_suffix(".py"), base / rel):
                if candidate.is_file() or (candidate.is_dir() and any(candidate.glob("*.py"))):
                    target = candidate.parent if candidate.name == "__init__.py" else candidate
                    return target, base, models
    return None


def _plan_target(plan: ImportPlan, target: Path, import_root: Path | None, module: str | None) -> None:
    """Module names for a models file or package, and the folder that must be on ``sys.path``.

    The import root is the folder above the top-level package (walk up while ``__init__.py`` exists),
    so ``backend/app/models/`` with ``backend/app/__init__.py`` imports as ``app.models`` from
    ``backend/``: the absolute imports the project itself uses (``from app.models.user import User``)
    then resolve to the same modules instead of defining every table twice.
    """
    if import_root is None:
        top = target if target.is_dir() else target.with_suffix("")
        while top.parent != plan.root and (top.parent / "__init__.py").is_file():
            top = top.parent
        import_root = top.parent
        module = ".".join(target.with_suffix("").relative_to(import_root).parts)
    assert module is not None  # _explicit gives an import root with its module name
    plan.import_root = import_root
    if target.is_file():
        plan.modules.append((module, target, False))
        return
    init = target / "__init__.py"
    plan.modules.append((module, init if init.is_file() else target, True))
    for file in sorted(target.rglob("*.py")):
        rel = file.relative_to(target)
        # Subfolders count only when they are packages; the rest (scripts, fixtures) is not models.
        if file == init or _SKIP_FILES.match(file.name) or not all(
            (target / p / "__init__.py").is_file() for p in rel.parents if p != Path(".")
        ):
            continue
        parts = rel.with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        plan.modules.append((".".join((module, *parts)), file, file.name == "__init__.py"))


# --- running the child -----------------------------------------------------------------------------


def choose_python(project_root: Path, python: str | None = None) -> list[str]:
    """Interpreters to try, best first: the project's virtualenv (``.venv`` is where uv and an in-project
    poetry put it; any folder of the project or its ``backend/`` with a ``pyvenv.cfg`` is one), then
    ``python``, then the caller's ``$VIRTUAL_ENV`` (unless it is ours), then our own."""
    root = Path(project_root)
    venvs = [root / v for v in (".venv", "venv", "backend/.venv", "backend/venv")]
    for folder in (root, root / "backend"):
        try:
            venvs += sorted(p.parent for p in folder.glob("*/pyvenv.cfg"))
        except OSError:
            continue
    found = [exe for venv in venvs if (exe := _venv_python(venv))]
    if python:
        found.append(python)
    caller = os.environ.get("VIRTUAL_ENV")
    if caller and Path(caller).resolve() != Path(sys.prefix).resolve() and (exe := _venv_python(Path(caller))):
        found.append(exe)
    found.append(sys.executable)
    return list(dict.fromkeys(found))


def _venv_python(venv: Path) -> str | None:
    for exe in ("bin/python", "Scripts/python.exe"):
        candidate = venv / exe
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def read_models(
    project_root: Path,
    models: str | None = None,
    *,
    timeout: float = 30.0,
    python: str | None = None,
) -> ModelsRead:
    """Import the project's models in a child process and return them as a Schema.

    Never raises for a broken project: import errors, timeouts and missing models are findings, and
    whatever could be read is returned. ``timeout`` bounds the whole child (it is killed, with any
    processes it started, at ``timeout + KILL_GRACE`` seconds).
    """
    started = time.monotonic()
    root = Path(project_root).resolve()
    if not root.is_dir():
        raise ModelsError(f"The project root {project_root} is not a folder; pass the repository root.")
    plan = find_models(root, models)
    key = (str(root), models, python, timeout, os.environ.get("VIRTUAL_ENV"))
    fingerprint = _source_fingerprint(plan)
    if (cached := _READS.get(key)) is not None and cached[0] == fingerprint:
        # deep: the caller may change its schema (the drift engine does); the cache's copy stays as read
        return cached[1].model_copy(update={"elapsed_ms": round((time.monotonic() - started) * 1000, 1)}, deep=True)
    findings = list(plan.findings)
    raw: dict | None = None
    used = None
    if plan.modules:
        for exe in choose_python(root, python):
            raw, problem = _run_child(plan, exe, timeout)
            if raw is None and problem is not None and problem.startswith("cannot start"):
                findings.append(Finding(
                    rule="models-python-unusable", severity="warning",
                    message=f"{exe}: {problem}; tried the next Python.",
                    fix="Pass python= with the path of an interpreter that has sqlmodel installed.",
                ))
                continue
            if raw is None:  # it died without a word (os._exit, a crash in C code): report its stderr
                findings.append(Finding(
                    rule="models-import-failed", severity="error",
                    message=f"Importing the models with {exe} failed: {problem}",
                    fix="Run the import by hand from the project to see the whole error.",
                ))
                break
            if "fatal" not in raw:
                used = exe
                break
            findings.append(Finding(  # no SQLAlchemy (or the sqlmodel the models import) there: try the next
                rule="models-python-unusable", severity="warning",
                message=f"{exe} cannot import {raw.get('missing', 'SQLAlchemy')} ({raw['fatal']}); tried the "
                        "next Python.",
                fix="Install sqlmodel into the project's virtualenv, or pass python=.",
            ))
            raw = None
    schema, more = _to_schema(raw or {}, timeout)
    result = ModelsRead(
        schema=schema, findings=findings + more, files=plan.files,
        elapsed_ms=round((time.monotonic() - started) * 1000, 1), python=used,
        versions=(raw or {}).get("versions", {}),
    )
    if not any(f.severity == "error" for f in result.findings):  # a failure is tried again next time
        _READS[key] = (fingerprint, result.model_copy(deep=True))  # not the one the caller gets
        while len(_READS) > _MAX_CACHED_READS:
            _READS.pop(next(iter(_READS)))
    return result


_SKIP_DIRS = {".venv", "venv", "node_modules", "__pycache__", ".git"}

#: Reads of unchanged model sources are reused: importing them costs a Python start (~1 s).
_READS: dict[tuple, tuple[tuple, ModelsRead]] = {}
_MAX_CACHED_READS = 8


def _source_fingerprint(plan: ImportPlan) -> tuple:
    """Size and modification time of every .py file beside the models (what an import could run)."""
    files: set[Path] = set()
    for _, path, is_package in plan.modules:
        folder = path if path.is_dir() else path.parent
        # a package's whole tree; a single module's neighbours (it may import them)
        found = folder.rglob("*.py") if is_package else folder.glob("*.py")
        files.update(p for p in found if not _SKIP_DIRS.intersection(p.relative_to(folder).parts[:-1]))
    stats = []
    for path in sorted(files):
        try:
            st = path.stat()
        except OSError:
            continue
        stats.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(stats)


def configure_child(*, secrets: list[str] | tuple[str, ...] = (), extra_env: list[str] | tuple[str, ...] = ()) -> None:
    """What the server knows: ``secrets`` to scrub from whatever the child reports (added to those already
    registered), and ``extra_env``, the variable names the child also gets (replacing the previous list)."""
    _REGISTERED_SECRETS.update(s for s in secrets if s)
    _EXTRA_ENVIRONMENT[:] = [n for n in extra_env if n]


def child_environment() -> dict[str, str]:
    """What the child's environment holds: :data:`CHILD_ENVIRONMENT` and the ``models_env`` names, taken
    from ours."""
    names = (*CHILD_ENVIRONMENT, *_EXTRA_ENVIRONMENT)
    return {k: v for k in names if (v := os.environ.get(k)) is not None}


def known_secrets() -> list[str]:
    """Every secret value the server knows, in the forms it may be printed in, longest first: the
    registered ones, and from the server's environment the values of secret-looking variables
    (PGPASSWORD, *_TOKEN, *_SECRET, ...) and the passwords of URLs (DATABASE_URL and the like)."""
    from urllib.parse import quote, unquote, urlsplit

    found = set(_REGISTERED_SECRETS)
    for name, value in os.environ.items():
        if _SECRET_NAME.search(name) and len(value) >= MIN_ENV_SECRET_CHARS:
            found.add(value)
        if "://" in value:
            try:
                password = urlsplit(value.strip()).password
            except ValueError:
                password = None
            if password:
                found.add(password)
    forms = {form for secret in found for form in (secret, unquote(secret), quote(secret, safe=""))}
    return sorted((f for f in forms if len(f) >= MIN_SECRET_CHARS), key=len, reverse=True)


def scrub_secrets(value, secrets: list[str] | None = None):
    """``value`` (text, or JSON made of dicts, lists and strings) with every known secret replaced by ***."""
    secrets = known_secrets() if secrets is None else secrets
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, "***")
        return value
    if isinstance(value, dict):
        return {scrub_secrets(k, secrets): scrub_secrets(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_secrets(v, secrets) for v in value]
    return value


def _run_child(plan: ImportPlan, python: str, timeout: float) -> tuple[dict | None, str | None]:
    """Run the child; returns (result, None) or (None, what went wrong), scrubbed of every secret the server
    knows: user code may have read one (a .env file, another process's environment) and printed it."""
    raw, problem = _run_child_raw(plan, python, timeout)
    secrets = known_secrets()
    return scrub_secrets(raw, secrets), scrub_secrets(problem, secrets)


def _run_child_raw(plan: ImportPlan, python: str, timeout: float) -> tuple[dict | None, str | None]:
    with tempfile.TemporaryDirectory(prefix="schema-architect-models-") as tmp:
        request, result, progress = (Path(tmp, n) for n in ("request.json", "result.json", "progress.json"))
        deadline = time.time() + timeout
        request.write_text(json.dumps({
            "root": str(plan.root),
            "sys_path": list(dict.fromkeys([str(plan.import_root), str(plan.root)])),
            "cwd": str(plan.import_root),
            # The child stops importing a little early, to have time to report what it read.
            "deadline": deadline - min(0.5, timeout / 10),
            "progress": str(progress),
            "modules": [{"module": name, "file": _rel(file, plan.root),
                         "package_dir": str(file.parent if file.name == "__init__.py" else file)
                         if is_pkg else None}
                        for name, file, is_pkg in plan.modules],
        }))
        with open(Path(tmp, "stderr"), "w+b") as stderr:
            kill_at = deadline + KILL_GRACE
            try:
                # The reaper (our interpreter, standard library only) runs the child, kills it at kill_at and
                # then every process it left behind, detached ones included (see _reaper.py).
                proc = subprocess.Popen(
                    [sys.executable, "-I", "-B", str(REAPER), repr(kill_at), "--",
                     python, "-I", "-B", str(CHILD), str(request), str(result)],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                    cwd=plan.import_root, start_new_session=True, env=child_environment(),
                )
            except OSError as exc:
                return None, f"cannot start it ({exc})"
            try:
                proc.wait(timeout=max(0.0, kill_at - time.time()) + REAP_GRACE)
            except subprocess.TimeoutExpired:  # the reaper itself is stuck: end it, then its group
                proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=REAP_GRACE)
            finally:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            killed = proc.returncode == TIMED_OUT
            if proc.returncode == 126:  # the reaper could not start this interpreter
                stderr.seek(0)
                return None, "cannot start it (" + stderr.read().decode(errors="replace").strip()[-300:] + ")"
            if result.is_file():
                return json.loads(result.read_text()), None
            stderr.seek(0)
            tail = "\n".join(stderr.read().decode(errors="replace").rstrip().splitlines()[-12:])
            # Which module it was importing when it stopped answering.
            at = json.loads(progress.read_text()) if progress.is_file() else {"module": None, "file": None}
        if killed:
            return {"errors": [{"kind": "timeout", "module": at["module"], "file": at["file"],
                                "exc_type": "Timeout", "message": "", "location": None,
                                "traceback": tail or "(it printed nothing; it was killed)"}]}, None
        return None, f"it exited with status {proc.returncode}:\n{tail}"


# --- JSON -> Schema --------------------------------------------------------------------------------


def _to_schema(raw: dict, timeout: float) -> tuple[Schema, list[Finding]]:
    findings = [_error_finding(e, timeout) for e in raw.get("errors", [])]
    tables = []
    for t in raw.get("tables", []):
        table, more = _table(t)
        tables.append(table)
        findings += more
    enums = [Enum(name=e["name"], values=e["labels"], schema_name=e.get("schema") or "public",
                  location=_loc(e.get("location"))) for e in raw.get("enums", [])]
    return Schema(tables=tables, enums=enums, source="models"), findings


def _error_finding(error: dict, timeout: float) -> Finding:
    what = f"{error['module']} ({error['file']})" if error.get("module") else "the models"
    where = _loc(error.get("location"))
    if error["kind"] == "timeout":
        return Finding(
            rule="models-import-timeout", severity="error",
            message=f"Importing {what} did not finish within {timeout:g} s"
                    + (f"; it was at {where}" if where else "") + ". Last lines:\n" + error["traceback"],
            location=where,
            fix="Move slow work (loops, network or database calls) out of module import time, "
                "or raise the timeout.",
        )
    if error["kind"] == "describe":
        return Finding(rule="models-import-failed", severity="error",
                       message=f"Could not describe {error['message']}:\n{error['traceback']}")
    return Finding(
        rule="models-import-failed", severity="error",
        message=f"Importing {what} failed: {error['exc_type']}: {error['message']}\n{error['traceback']}",
        location=where,
        fix="Make the module importable on its own (`python -c 'import "
            f"{error.get('module') or 'models'}'` from the project), or pass models= to choose "
            "other files.",
    )


def _loc(d: dict | None) -> Location | None:
    return Location(file=d["file"], line=d.get("line")) if d and d.get("file") else None


_BOOL_LITERALS = {"'true'": "true", "'t'": "true", "'1'": "true",
                  "'false'": "false", "'f'": "false", "'0'": "false"}
_NUMERIC = ("integer", "bigint", "smallint", "numeric", "real", "double precision")


def _default(text: str | None, pg_type: str) -> str | None:
    """``server_default="false"`` compiles to ``DEFAULT 'false'``; PostgreSQL stores ``false``."""
    if text is None:
        return None
    if pg_type == "boolean" and text.lower() in _BOOL_LITERALS:
        return _BOOL_LITERALS[text.lower()]
    if pg_type.startswith(_NUMERIC) and re.fullmatch(r"'-?\d+(\.\d+)?'", text):
        return text.strip("'")
    return text


def _column_type(c: dict) -> str:
    if c.get("enum") and c["enum"]["native"]:
        return c["enum"]["name"] + ("[]" if (c.get("type") or "").endswith("[]") else "")
    if not c.get("type"):
        return "unknown"
    try:
        return normalize_type(c["type"]).type
    except UnknownType:  # vector(1536), bit(3): PostgreSQL shows them as written, in lower case
        return " ".join(c["type"].split()).lower()


def _table(t: dict) -> tuple[Table, list[Finding]]:
    findings = []
    columns = []
    for c in t["columns"]:
        pg_type = _column_type(c)
        identity = None
        if c.get("serial"):
            identity = c["serial"]
        elif c.get("identity"):
            identity = f"identity {c['identity']}"
        enum = c.get("enum")
        allowed = enum["labels"] if enum and (enum["native"] or enum["constrained"]) else None
        if c.get("type_error"):
            findings.append(Finding(
                rule="models-type-unknown", severity="warning", object=f"{t['name']}.{c['name']}",
                message=f"The type of {t['name']}.{c['name']} has no PostgreSQL spelling: {c['type_error']}",
                location=_loc(c.get("location")),
            ))
        columns.append(Column(
            name=c["name"], type=pg_type, nullable=c["nullable"] and not c["primary_key"],
            default=_default(c.get("server_default"), pg_type), identity=identity,
            primary_key=c["primary_key"], allowed_values=allowed, description=c.get("comment"),
            on_update="onupdate" if c.get("onupdate") else None, location=_loc(c.get("location")),
        ))
    names = [c.name for c in columns]
    indexes = [Index(
        name=i["name"], unique=i["unique"], method=i["using"], where=i["where"], include=i["include"],
        columns=[IndexColumn(name=e["name"], descending=e["descending"], nulls_first=e["nulls_first"],
                             is_expression=e["is_expression"]) for e in i["columns"]],
        location=_loc(i["location"]),
    ) for i in t["indexes"]]
    uniques = [UniqueConstraint(name=u["name"], columns=u["columns"], location=_loc(u["location"]))
               for u in t["unique_constraints"]]
    # A column is unique when one constraint or one plain unique index covers exactly it.
    single = {u.columns[0] for u in uniques if len(u.columns) == 1} | {
        i.columns[0].name for i in indexes
        if i.unique and len(i.columns) == 1 and not i.columns[0].is_expression and not i.where
    }
    for column in columns:
        column.unique = column.name in single
    return Table(
        name=t["name"], schema_name=t.get("schema") or "public", columns=columns,
        primary_key=t["primary_key"],
        foreign_keys=[ForeignKey(
            name=f["name"], columns=f["columns"], ref_table=f["ref_table"], ref_columns=f["ref_columns"],
            ref_schema=f["ref_schema"], on_delete=_action(f["ondelete"]), on_update=_action(f["onupdate"]),
            location=_loc(f["location"]),
        ) for f in t["foreign_keys"]],
        unique_constraints=uniques,
        checks=[Check(name=k["name"], expression=k["expression"],
                      columns=[n for n in names if re.search(rf'(?<![\w."]){re.escape(n)}(?![\w"])|"{re.escape(n)}"',
                                                             k["expression"])],
                      location=_loc(k["location"])) for k in t["checks"]],
        indexes=indexes, description=t.get("comment"), location=_loc(t.get("location")),
    ), findings


def _action(text: str | None):
    if not text:
        return None
    action = " ".join(text.upper().split())
    return action if action in ("CASCADE", "SET NULL", "SET DEFAULT", "RESTRICT", "NO ACTION") else None


def _rel(path: Path, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)
