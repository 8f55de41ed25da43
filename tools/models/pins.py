"""The SQLModel / SQLAlchemy versions a project pins, and whether the versions the models were read
with satisfy them (issue 14: ``datetime`` was ``timestamp`` before SQLModel 0.0.45).

Read, in the project root and ``backend/``: ``uv.lock`` and ``poetry.lock`` (exact versions), then
``requirements*.txt`` and ``pyproject.toml`` (PEP 621 ``dependencies`` or ``[tool.poetry.dependencies]``).
Only the comparison operators real pins use are understood (``==``, ``>=``, ``<=``, ``>``, ``<``, ``!=``,
``~=``, poetry's ``^`` and ``~``); anything else is reported as pinned but not checked.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("sqlmodel", "sqlalchemy")
_FOLDERS = ("", "backend")


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


def _from_lock(path: Path) -> dict[str, str]:
    try:
        data = tomllib.loads(path.read_text())
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
        data = tomllib.loads(path.read_text())
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


def project_pins(root: Path) -> dict[str, Pin]:
    """package -> the project's pin, the most exact source first (lock files, then requirements)."""
    pins: dict[str, Pin] = {}
    for folder in _FOLDERS:
        base = root / folder
        sources: list[tuple[Path, dict[str, str]]] = []
        for lock in ("uv.lock", "poetry.lock"):
            if (base / lock).is_file():
                sources.append((base / lock, _from_lock(base / lock)))
        for req in sorted(base.glob("requirements*.txt")):
            try:
                lines = req.read_text().splitlines()
            except OSError:
                continue
            sources.append((req, dict(r for line in lines if (r := _from_requirement(line)))))
        if (base / "pyproject.toml").is_file():
            sources.append((base / "pyproject.toml", _from_pyproject(base / "pyproject.toml")))
        for path, specs in sources:
            for package, spec in specs.items():
                if package not in pins and spec:
                    pins[package] = Pin(package, spec, str(path.relative_to(root)))
    return pins


def version_mismatches(root: Path, versions: dict[str, str | None]) -> list[tuple[Pin, str]]:
    """The project's pins the versions used do not satisfy: (pin, the version used)."""
    out = []
    for package, pin in project_pins(root).items():
        used = versions.get(package)
        if used and satisfies(used, pin.spec) is False:
            out.append((pin, used))
    return out
