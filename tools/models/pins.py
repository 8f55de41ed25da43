"""The SQLModel / SQLAlchemy versions a project pins, and whether the versions the models were read
with satisfy them (issue 14: ``datetime`` was ``timestamp`` before SQLModel 0.0.45).

Read, nearest the models first (their folder and its parents), then the project root, ``backend/`` and any
other folder a few levels down (``phase2/backend/``): ``uv.lock`` and ``poetry.lock`` (exact versions), then
``requirements*.txt`` and ``pyproject.toml`` (PEP 621 ``dependencies`` or ``[tool.poetry.dependencies]``).
Files are read as text in whatever encoding they carry (UTF-8, UTF-16 with its BOM, Windows' ANSI); one that
cannot be read is skipped, never fatal.

Which type mappings really depend on the version is in :data:`MAPPINGS`: a drift gets a version caveat only
when its models-side type is one of them and the version used and the version pinned are on opposite sides.
Only the comparison operators real pins use are understood (``==``, ``>=``, ``<=``, ``>``, ``<``, ``!=``,
``~=``, poetry's ``^`` and ``~``); anything else is reported as pinned but not checked.
"""

from __future__ import annotations

import codecs
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("sqlmodel", "sqlalchemy")
_FOLDERS = ("", "backend")
_SKIP = {".venv", "venv", "env", "node_modules", "__pycache__", ".git", "site-packages", "dist", "build"}
_DEPTH = 3  # phase2/backend/requirements.txt


@dataclass(frozen=True)
class Mapping:
    """A Python type whose PostgreSQL type changed at ``since`` of ``package``."""

    package: str
    python: str
    since: str
    before_type: str
    after_type: str

    def type_for(self, version: str) -> str:
        v = _version(version)
        return self.after_type if v is not None and _cmp(v, _version(self.since) or ()) >= 0 else self.before_type


#: SQLModel maps a plain ``datetime`` field to TIMESTAMP WITH TIME ZONE since 0.0.45 (issue 14).
#: SQLAlchemy's PostgreSQL types did not change within 2.0, so its patch versions never matter.
MAPPINGS = (Mapping("sqlmodel", "datetime", "0.0.45", "timestamp", "timestamptz"),)


@dataclass
class Pin:
    package: str
    spec: str  # as written, e.g. "==0.0.14", ">=0.0.8,<0.1", "^0.0.14"
    file: str  # relative to the project root

    def __str__(self) -> str:
        return f"{self.package}{self.spec} ({self.file})"


def _version(text: str) -> tuple[int, ...] | None:
    m = re.match(r"^\s*v?(\d+(?:\.\d+)*)", text)
    return tuple(int(p) for p in m.group(1).split(".")) if m else None


def _pad(a: tuple[int, ...], n: int) -> tuple[int, ...]:
    return a + (0,) * (n - len(a))


def _cmp(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = max(len(a), len(b))
    a, b = _pad(a, n), _pad(b, n)
    return (a > b) - (a < b)


def _caret_upper(v: tuple[int, ...]) -> tuple[int, ...]:
    """Poetry's ^: the first non-zero part may not change (^0.0.14 -> <0.0.15, ^0.14 -> <0.15)."""
    parts = list(_pad(v, 3))
    i = next((k for k, p in enumerate(parts) if p), len(parts) - 1)
    return (*parts[:i], parts[i] + 1)


def satisfies(version: str, spec: str) -> bool | None:
    """Whether ``version`` meets ``spec``; None when the spec is not understood."""
    have = _version(version)
    if have is None:
        return None
    for clause in (c.strip() for c in spec.split(",")):
        if not clause:
            continue
        m = re.match(r"^(===|==|>=|<=|!=|~=|>|<|\^|~)?\s*([0-9][0-9a-zA-Z.*+-]*)$", clause)
        if not m or (want := _version(m.group(2))) is None:
            return None
        op = m.group(1) or "=="
        if "*" in m.group(2):  # ==0.0.* : the given parts must match
            if have[: len(want)] != want:
                return False
            continue
        c = _cmp(have, want)
        ok = {"==": c == 0, "===": c == 0, "!=": c != 0, ">=": c >= 0, "<=": c <= 0, ">": c > 0, "<": c < 0}.get(op)
        if op == "^":
            ok = c >= 0 and _cmp(have, _caret_upper(want)) < 0
        elif op in ("~", "~="):  # ~1.2.3 / ~=1.2.3: the last given part may grow
            upper = (*want[:-1][:-1], want[:-1][-1] + 1) if len(want) > 1 else (want[0] + 1,)
            ok = c >= 0 and _cmp(have, upper) < 0
        if not ok:
            return False
    return True


def read_text(path: Path) -> str | None:
    """A small text file in whatever encoding it carries: BOM-marked UTF-8/16/32, UTF-8, else cp1252.
    None when it cannot be read (missing, a folder, unreadable, or not text at all)."""
    try:
        data = path.read_bytes()[:1_000_000]
    except OSError:
        return None
    for bom, codec in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
                       (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError:
                return None
    if b"\x00" in data[:200]:  # UTF-16 without a BOM (PowerShell's `>` writes it with one, others not)
        for codec in ("utf-16-le", "utf-16-be"):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError:
                continue
            if text[:200].isprintable() or "\n" in text[:200]:
                return text
        return None
    for codec in ("utf-8", "cp1252"):
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    return None


def _from_lock(path: Path) -> dict[str, str]:
    try:
        data = tomllib.loads(read_text(path) or "")
    except (OSError, ValueError):
        return {}
    return {p["name"].lower(): "==" + str(p["version"]) for p in data.get("package", [])
            if isinstance(p, dict) and str(p.get("name", "")).lower() in PACKAGES and "version" in p}


def _from_requirement(line: str) -> tuple[str, str] | None:
    line = line.split("#", 1)[0].split(";", 1)[0].strip()
    m = re.match(r"^([A-Za-z0-9_.-]+)\s*(?:\[[^\]]*\])?\s*(.*)$", line)
    if not m or m.group(1).lower().replace("_", "-") not in PACKAGES:
        return None
    return m.group(1).lower(), m.group(2).replace(" ", "")


def _from_pyproject(path: Path) -> dict[str, str]:
    try:
        data = tomllib.loads(read_text(path) or "")
    except (OSError, ValueError):
        return {}
    found: dict[str, str] = {}
    for line in data.get("project", {}).get("dependencies", []) or []:
        if isinstance(line, str) and (req := _from_requirement(line)):
            found[req[0]] = req[1]
    for name, value in (data.get("tool", {}).get("poetry", {}).get("dependencies", {}) or {}).items():
        if name.lower() in PACKAGES:
            spec = value.get("version") if isinstance(value, dict) else value
            if isinstance(spec, str):
                found[name.lower()] = spec.replace(" ", "")
    return found


def _folders(root: Path, near: list[str] | None) -> list[Path]:
    """Folders that may hold pins, best first: the models' folders and their parents up to the root, the
    root, ``backend/``, then any folder up to :data:`_DEPTH` levels down that holds a pin file."""
    out: list[Path] = []
    for file in near or ():
        path = (root / file).resolve()
        if not path.is_relative_to(root):
            continue
        for parent in [path.parent, *path.parent.parents]:
            if not parent.is_relative_to(root):
                break
            out.append(parent)
    out += [root / f for f in _FOLDERS]
    level = [root]
    for _ in range(_DEPTH):
        deeper = []
        for folder in level:
            try:
                children = sorted(p for p in folder.iterdir() if p.is_dir() and p.name not in _SKIP
                                  and not p.name.startswith(".") and not p.is_symlink())
            except OSError:
                continue
            deeper += children
        out += [f for f in deeper if any((f / n).is_file() for n in ("uv.lock", "poetry.lock", "pyproject.toml"))
                or any(f.glob("requirements*.txt"))]
        level = deeper
    return list(dict.fromkeys(out))  # each folder once, in the order found


def project_pins(root: Path, near: list[str] | None = None) -> dict[str, Pin]:
    """package -> the project's pin, the nearest folder to the models (``near``: their files, relative to
    the root) first, and in one folder the most exact source first (lock files, then requirements)."""
    root = root.resolve()
    pins: dict[str, Pin] = {}
    for base in _folders(root, near):
        sources: list[tuple[Path, dict[str, str]]] = []
        for lock in ("uv.lock", "poetry.lock"):
            if (base / lock).is_file():
                sources.append((base / lock, _from_lock(base / lock)))
        for req in sorted(base.glob("requirements*.txt")):
            text = read_text(req)
            if text is None:
                continue
            sources.append((req, dict(r for line in text.splitlines() if (r := _from_requirement(line)))))
        if (base / "pyproject.toml").is_file():
            sources.append((base / "pyproject.toml", _from_pyproject(base / "pyproject.toml")))
        for path, specs in sources:
            for package, spec in specs.items():
                if package not in pins and spec:
                    pins[package] = Pin(package, spec, str(path.relative_to(root)))
    return pins


def version_mismatches(root: Path, versions: dict[str, str | None],
                       near: list[str] | None = None) -> list[tuple[Pin, str]]:
    """The project's pins the versions used do not satisfy: (pin, the version used)."""
    out = []
    for package, pin in project_pins(root, near).items():
        used = versions.get(package)
        if used and satisfies(used, pin.spec) is False:
            out.append((pin, used))
    return out


def datetime_meaning(versions: dict[str, str | None]) -> str:
    """What a plain ``datetime`` field creates with the SQLModel the models were read with."""
    used = versions.get("sqlmodel")
    mapping = next(m for m in MAPPINGS if m.package == "sqlmodel" and m.python == "datetime")
    return mapping.type_for(used) if used else mapping.after_type


def _pinned_type(mapping: Mapping, pin: Pin) -> str | None:
    """The type the pinned versions give, when they all give the same one (None: the pin spans both)."""
    before = satisfies(_previous(mapping.since), pin.spec)
    after = satisfies(mapping.since, pin.spec)
    lower = re.search(r"(?:==|===|~=|\^|~|>=|>)\s*([0-9][0-9.]*)", pin.spec)
    if lower and (v := lower.group(1)):  # "==0.0.14", ">=0.0.46": judge by the version the pin names
        return mapping.type_for(v) if before is not True or after is not True else None
    return None


def _previous(version: str) -> str:
    parts = list(_version(version) or (0,))
    i = len(parts) - 1
    while i >= 0 and parts[i] == 0:
        i -= 1
    if i < 0:
        return version
    parts[i] -= 1
    return ".".join(str(p) for p in parts)


def mapping_caveats(mismatches: list[tuple[Pin, str]]) -> dict[str, str]:
    """Models-side type -> why it may not hold (the version used maps it differently than the pinned one),
    for the :data:`MAPPINGS` that really differ between the two versions; empty when none does."""
    out: dict[str, str] = {}
    for pin, used in mismatches:
        for mapping in MAPPINGS:
            if mapping.package != pin.package:
                continue
            mine, theirs = mapping.type_for(used), _pinned_type(mapping, pin)
            if theirs is None or mine == theirs:
                continue
            out[mine] = (f"The models' type comes from the library version used: read with {pin.package} {used}, "
                         f"the project pins {pin}. {pin.package} {used} maps a plain `{mapping.python}` field to "
                         f"{mine}; the pinned version maps it to {theirs} ({mapping.package} "
                         f"{mapping.since} changed it), so with the project's own version this side would say "
                         f"{theirs}.")
    return out
