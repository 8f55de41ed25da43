"""Spec file safety: hashes, refusing stale writes, and atomic replacement."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from schema_architect.tools.spec.file import (
    SpecFileError,
    content_hash,
    read_spec_bytes,
    resolve_spec_path,
    write_spec_atomically,
)


def test_hash_is_of_the_bytes_read(tmp_path: Path) -> None:
    (tmp_path / "s.md").write_bytes(b"# spec\n")
    path, text, digest = read_spec_bytes(tmp_path, "s.md")
    assert path == (tmp_path / "s.md").resolve()
    assert text == "# spec\n"
    assert digest == content_hash(b"# spec\n")


def test_a_symlink_inside_the_project_is_fine(tmp_path: Path) -> None:
    (tmp_path / "real.md").write_text("x")
    os.symlink(tmp_path / "real.md", tmp_path / "alias.md")
    assert resolve_spec_path(tmp_path, "alias.md") == (tmp_path / "real.md").resolve()


def test_stale_hash_is_refused_and_the_file_untouched(tmp_path: Path) -> None:
    spec = tmp_path / "s.md"
    spec.write_text("v1")
    stale = content_hash(b"v0")
    with pytest.raises(SpecFileError, match="changed since you read it"):
        write_spec_atomically(spec, "v2", stale)
    assert spec.read_text() == "v1"
    assert list(tmp_path.iterdir()) == [spec]  # no temp file left behind


def test_write_replaces_and_returns_the_new_hash(tmp_path: Path) -> None:
    spec = tmp_path / "s.md"
    spec.write_text("v1")
    spec.chmod(0o640)
    new_hash = write_spec_atomically(spec, "v2 ✓", content_hash(b"v1"))
    assert spec.read_text() == "v2 ✓"
    assert new_hash == content_hash("v2 ✓".encode())
    assert spec.stat().st_mode & 0o777 == 0o640


def test_a_crash_between_write_and_rename_leaves_the_original(tmp_path: Path, monkeypatch) -> None:
    spec = tmp_path / "s.md"
    spec.write_text("original")

    def crash(src, dst):  # the process dies after the temp file is written, before the rename
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        write_spec_atomically(spec, "new content", content_hash(b"original"))
    assert spec.read_text() == "original"
    assert list(tmp_path.iterdir()) == [spec]
