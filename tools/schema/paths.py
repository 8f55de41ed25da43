"""Paths stay inside the project: the one check for every path we are given or write to.

A path argument (a spec, the models, a file ``init`` writes) is joined to the project root when relative,
resolved (``..`` collapsed, symlinks followed, ``strict=False`` so a file still to be created is fine) and
refused unless the result is inside the resolved project root. A symlink inside the project that points
out is therefore refused like ``../outside`` or an absolute path elsewhere.
"""

from __future__ import annotations

from pathlib import Path

from .errors import PathOutsideProject


class ProjectPathError(PathOutsideProject):
    """A path resolves outside the project root (or is not a usable path); the message says what to pass."""


def inside_project(project_root: Path | str, path: Path | str, what: str, example: str | None = None) -> Path:
    """``path`` (relative to the root, or absolute) resolved, if it lies inside the project root.

    ``what`` names the argument in the message (``"models path"``); ``example`` is a path to suggest."""
    root = Path(project_root).resolve()
    text = str(path)
    hint = f", e.g. {example!r}" if example else ""
    if "\x00" in text:
        raise ProjectPathError(f"The {what} contains a NUL byte. Pass a plain path relative to the project "
                               f"root{hint}.")
    if not text.strip():
        raise ProjectPathError(f"The {what} is empty. Pass a path relative to the project root{hint}.")
    candidate = Path(path).expanduser() if text.startswith("~") else Path(path)
    full = candidate if candidate.is_absolute() else root / candidate
    try:
        resolved = full.resolve(strict=False)  # follows symlinks: a link pointing out is caught below
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise ProjectPathError(f"The {what} {text!r} cannot be resolved ({exc}). Pass a path inside the "
                               f"project{hint}.") from None
    if not resolved.is_relative_to(root):
        raise ProjectPathError(
            f"The {what} {text!r} resolves to {resolved}, outside the project root {root}. Only files inside "
            f"the project are read or written: pass a path relative to the project root{hint}."
        )
    return resolved


def is_inside(project_root: Path | str, path: Path | str) -> bool:
    try:
        inside_project(project_root, path, "path")
    except ProjectPathError:
        return False
    return True
