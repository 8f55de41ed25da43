"""The project's spec as its schema, for a tool that has no spec argument (the server's setting names it)."""

from __future__ import annotations

from pathlib import Path

from ..schema.model import Schema
from .file import SpecFileError, read_spec_bytes
from .reader import parse_spec

#: How a tool without a spec argument names where the spec's path comes from.
SPEC_SETTING = "SCHEMA_ARCHITECT_SPEC_PATH"


def read_spec_schema(project: Path, spec_path: str | None) -> tuple[Schema | None, SpecFileError | None]:
    """The spec's schema and None, or None and why it could not be read (a SpecUnreadable)."""
    try:
        path, text, _ = read_spec_bytes(project, spec_path, SPEC_SETTING)
    except SpecFileError as exc:
        return None, exc
    return parse_spec(text, file=str(path.relative_to(project.resolve()))).schema, None
