"""Safe access to a project's spec file: resolve inside the root, refuse what is not a text spec,
hash what was read, and write atomically only over the version the caller saw.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..schema.errors import PathOutsideProject, SpecChanged, SpecUnreadable

DEFAULT_SPEC_PATH = "specs/database/schema.md"
MAX_SPEC_BYTES = 2 * 1024 * 1024  # the largest real spec in the corpus is ~60 KB


class SpecFileError(SpecUnreadable):
    """The spec path or file cannot be used; the message says why and what to pass instead."""


class SpecPathOutside(SpecFileError, PathOutsideProject):
    """The spec path resolves outside the project root."""

    rule = PathOutsideProject.rule


class SpecFileChanged(SpecFileError, SpecChanged):
    """The spec changed since the caller read it (its content hash)."""

    rule = SpecChanged.rule


def content_hash(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def resolve_spec_path(project_root: Path, path: str | None, argument: str = "path") -> Path:
    """The spec's absolute path, refusing anything that resolves outside the project root."""
    root = project_root.resolve()
    candidate = Path(path) if path else Path(DEFAULT_SPEC_PATH)
    if "\x00" in str(candidate):
        raise SpecFileError("The spec path contains a NUL byte. Pass a plain relative path.")
    full = (root / candidate) if not candidate.is_absolute() else candidate
    resolved = full.resolve()  # follows symlinks, so a link pointing outside is caught below
    if not resolved.is_relative_to(root):
        raise SpecPathOutside(
            f"The spec path resolves to {resolved}, outside the project root {root}.",
            given=f"{argument}={path!r}", fix=f"Pass `{argument}` relative to the project root, e.g. "
            f"{DEFAULT_SPEC_PATH!r}.")
    return resolved


def read_spec_bytes(project_root: Path, path: str | None, argument: str = "path") -> tuple[Path, str, str]:
    """Read a spec file: returns (path, text, content hash). Raises SpecFileError with a fix.

    ``argument`` is the calling tool's name for the spec path (``path``, ``spec``), named in the fix."""
    spec_path = resolve_spec_path(project_root, path, argument)
    shown = display_path(project_root, spec_path)
    if not spec_path.exists():
        raise SpecFileError(
            f"No spec file at {shown} in the project root {project_root.resolve()}.",
            given=f"{argument}={path!r}" if path and path != DEFAULT_SPEC_PATH else None,
            fix=f"Pass `{argument}` with the spec's path relative to that root, or create the file (format: "
            "specs/format.md). If that root is not your project, start the server from the project's folder "
            "(or run `schema-architect serve --project DIR`).")
    if not spec_path.is_file():
        raise SpecFileError(f"{shown} is not a file. Pass the path of the markdown spec file.")
    size = spec_path.stat().st_size
    if size > MAX_SPEC_BYTES:
        raise SpecFileError(
            f"{shown} is {size / 2**20:.1f} MB; a schema spec is at most {MAX_SPEC_BYTES // 2**20} MB. "
            "Pass the markdown schema spec, not a dump or a binary."
        )
    try:
        data = spec_path.read_bytes()
    except OSError as exc:
        raise SpecFileError(f"Cannot read {shown}: {exc.strerror}. Check its permissions.") from None
    if b"\x00" in data[:8192]:
        raise SpecFileError(f"{shown} looks binary (it contains NUL bytes). Pass the markdown spec file.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecFileError(
            f"{shown} is not UTF-8 text (bad byte at offset {exc.start}). Save it as UTF-8."
        ) from None
    return spec_path, text, content_hash(data)


def display_path(project_root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(project_root.resolve()))
    except ValueError:
        return str(path)


BOM = b"\xef\xbb\xbf"


@contextmanager
def spec_lock(spec_path: Path, timeout_s: float = 10.0) -> Iterator[None]:
    """Hold the advisory write lock of ``spec_path`` (``flock`` on its folder, so no lock file is left in
    the project): every writer through this module reads, compares and replaces under it, so two writers
    holding the same hash cannot both succeed. Waits up to ``timeout_s``, then says who to wait for."""
    import fcntl

    folder = spec_path.parent
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise SpecFileError(
                        f"Another write to {spec_path.name} has held its lock for over {timeout_s:.0f} s. Try "
                        "again in a moment; if it persists, look for a stuck schema-architect process."
                    ) from None
                time.sleep(0.01)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def update_spec(spec_path: Path, expected_hash: str | None, change: Callable[[str], str]) -> str:
    """Read the spec, check it still hashes to ``expected_hash``, apply ``change`` to its text and write the
    result atomically: all of it under :func:`spec_lock`. The file's own encoding details survive (a
    UTF-8 byte-order mark stays; line ends are ``change``'s to keep). ``expected_hash`` None means the
    spec must not exist yet. Returns the new content hash."""
    with spec_lock(spec_path):
        current = spec_path.read_bytes() if spec_path.exists() else None
        if expected_hash is None and current is not None:
            raise SpecFileError(
                f"{spec_path.name} was created since you looked (it did not exist then). Call read_schema_spec, "
                "review it, and pass its content_hash as expected_spec_hash."
            )
        _check_hash(current or b"", expected_hash)
        bom = current is not None and current.startswith(BOM)
        text = current[len(BOM) if bom else 0:].decode("utf-8") if current is not None else ""
        data = change(text).encode("utf-8")
        return _replace_file(spec_path, (BOM if bom else b"") + data)


def _check_hash(current: bytes, expected_hash: str | None) -> None:
    if expected_hash is not None and content_hash(current) != expected_hash:
        raise SpecFileChanged(
            "The spec changed since you read it (its content hash differs from expected_spec_hash). "
            "Call read_schema_spec again, review the change, and pass the new hash."
        )


def write_spec_atomically(spec_path: Path, text: str, expected_hash: str | None) -> str:
    """Write ``text`` over the spec only if its current content still hashes to ``expected_hash``
    (checked and written under :func:`spec_lock`).

    The new content goes to a temporary file in the same folder, is flushed to disk and then renamed
    over the spec, so a crash at any point leaves either the old or the new file, never half of one.
    Returns the new content hash.
    """
    with spec_lock(spec_path):
        current = spec_path.read_bytes() if spec_path.exists() else b""
        _check_hash(current, expected_hash)
        return _replace_file(spec_path, text.encode("utf-8"))


def _replace_file(spec_path: Path, data: bytes) -> str:
    spec_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{spec_path.name}.", suffix=".tmp", dir=spec_path.parent)
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        if spec_path.exists():
            os.chmod(tmp_name, spec_path.stat().st_mode & 0o777)
        os.replace(tmp_name, spec_path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return content_hash(data)
