"""``schema-architect init``: set up a user's project for Claude Code.

Two things are written into the project:

* ``.mcp.json`` gets a ``schema-architect`` entry under ``mcpServers`` (``command`` + ``args``). Every
  other server and key in the file is kept as it is. An existing ``schema-architect`` entry with a
  different command or arguments is left alone unless ``force`` is given (then its ``command`` and
  ``args`` are replaced and its other keys, such as ``env``, kept).
* ``.claude/agents/<role>.md``: the subagent definitions shipped in ``schema_architect.agents``. A file
  identical to ours is "unchanged"; a file that differs was changed by the user (or comes from an older
  version) and is "kept" unless ``force`` is given.

Everything is checked before anything is written: an invalid ``.mcp.json`` (or a folder where a file
should be, or a path that resolves outside the project, e.g. through a symlinked ``.claude/agents``)
raises :class:`InitError` and leaves the project exactly as it was. Files are written
atomically (a temporary file in the same folder, then a rename). Running it twice changes nothing the
second time.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from ..schema.paths import ProjectPathError, inside_project

__all__ = ["SERVER_NAME", "FileResult", "InitError", "InitReport", "default_command", "init_project",
           "portable_command"]

SERVER_NAME = "schema-architect"
MCP_CONFIG = ".mcp.json"
AGENTS_DIR = Path(".claude") / "agents"
KEPT_AGENT = ("differs from ours: yours, or changed by you; rename yours to keep both, or run init "
              "--as PREFIX to install ours as PREFIX-<name>")
KEPT_SERVER = "has a different schema-architect server; use --force to replace it"

Action = Literal["created", "updated", "unchanged", "kept"]


class InitError(Exception):
    """The project cannot be set up as it is; nothing was changed. The message says what to fix."""


@dataclass(frozen=True)
class FileResult:
    path: str  #: relative to the project, with forward slashes
    action: Action
    note: str = ""

    def __str__(self) -> str:
        return f"{self.path}: {self.action}" + (f" ({self.note})" if self.note else "")


@dataclass
class InitReport:
    project: Path
    files: list[FileResult] = field(default_factory=list)

    def lines(self) -> list[str]:
        """One line per file: ``<path>: created|updated|unchanged|kept (why)``."""
        return [str(f) for f in self.files]

    @property
    def changed(self) -> bool:
        return any(f.action in ("created", "updated") for f in self.files)

    @property
    def kept(self) -> list[FileResult]:
        return [f for f in self.files if f.action == "kept"]

    def __str__(self) -> str:
        return "\n".join(self.lines())


def default_command() -> list[str]:
    """How to launch this installation's server: the ``schema-architect`` script next to the running
    Python (absolute, so it works without the virtualenv activated), else ``python -m``."""
    script = shutil.which("schema-architect", path=str(Path(sys.executable).parent))
    if script:
        return [str(Path(script).absolute()), "serve"]
    return [str(Path(sys.executable).absolute()), "-m", "schema_architect.server.cli", "serve"]


def portable_command() -> tuple[list[str], str]:
    """The command to write into a file the team commits, and why it was chosen.

    The bare ``schema-architect`` when it is on PATH (pipx, ``uv tool install``): it works on every
    machine that installed it the same way. Otherwise this installation's absolute path, which works on
    this machine only; the reason says how to make it portable."""
    on_path = shutil.which("schema-architect")
    if on_path:
        return (["schema-architect", "serve"],
                f"`schema-architect` is on PATH ({on_path}), so the bare command was written: it works on every "
                "machine where it is installed with `uv tool install` or `pipx install`")
    command = default_command()
    return (command, f"`schema-architect` is not on PATH, so this machine's path was written ({command[0]}); "
            "teammates whose install lives elsewhere need their own. Install it with `uv tool install` or "
            "`pipx install` (it is then on PATH) and run init again to write the bare command")


def agent_named(text: str, prefix: str) -> str:
    """Our agent ``text`` renamed ``<prefix>-<name>`` in its front matter (for --as PREFIX)."""
    return re.sub(r"(?m)\A(---\n(?:.*\n)*?)name:\s*(\S+)", lambda m: f"{m.group(1)}name: {prefix}-{m.group(2)}",
                  text, count=1)


def shipped_agents() -> dict[str, str]:
    """The subagent files this package ships: file name -> text."""
    package = resources.files("schema_architect.agents")
    return {entry.name: entry.read_text(encoding="utf-8")
            for entry in package.iterdir() if entry.name.endswith(".md") and entry.is_file()}


def init_project(project: Path, *, command: list[str], force: bool = False,
                 prefix: str | None = None) -> InitReport:
    """Write or merge ``.mcp.json`` and copy the subagents into ``.claude/agents/``; report each file."""
    project = Path(project)
    if not project.is_dir():
        raise InitError(f"{project} is not a folder; pass the root folder of your project")
    if not command or not all(isinstance(part, str) and part for part in command):
        raise InitError("command must be a non-empty list of non-empty strings, e.g. "
                        "['/path/to/schema-architect', 'serve']")

    writes: list[tuple[Path, str]] = []
    report = InitReport(project=project)

    # 1. .mcp.json (read and checked first: a bad file stops everything before any write)
    config_path = _inside(project, MCP_CONFIG)
    action, note, text = _plan_mcp_config(config_path, command, force)
    report.files.append(FileResult(MCP_CONFIG, action, note))
    if text is not None:
        writes.append((config_path, text))

    # 2. the subagents
    agents_dir = project / AGENTS_DIR
    for parent in (project / ".claude", agents_dir):
        if parent.exists() and not parent.is_dir():
            raise InitError(f"{parent} exists and is not a folder; move it away so the agents can be "
                            f"written into {AGENTS_DIR.as_posix()}/")
    if prefix is not None and not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", prefix):
        raise InitError(f"--as {prefix!r}: use lower-case letters, digits and hyphens, e.g. --as sa")
    agents = shipped_agents()
    if prefix is not None:
        agents = {f"{prefix}-{name}": agent_named(text, prefix) for name, text in agents.items()}
    for filename, ours in sorted(agents.items()):
        target = _inside(project, AGENTS_DIR / filename)
        shown = (AGENTS_DIR / filename).as_posix()
        if not target.exists() and not target.is_symlink():
            report.files.append(FileResult(shown, "created"))
            writes.append((target, ours))
            continue
        if not target.is_file():
            raise InitError(f"{target} exists and is not a file; move it away and run init again")
        try:
            theirs = target.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            theirs = None
        if theirs is not None and _same_text(theirs, ours):
            report.files.append(FileResult(shown, "unchanged"))
        elif force:
            report.files.append(FileResult(shown, "updated"))
            writes.append((target, ours))
        else:
            report.files.append(FileResult(shown, "kept", KEPT_AGENT))

    # 3. write (each target checked again just before: nothing is written outside the project)
    for path, text in writes:
        _inside(project, path)
        path.parent.mkdir(parents=True, exist_ok=True)
        _inside(project, path)
        _write_atomic(path, text)
    return report


def _inside(project: Path, path: Path | str) -> Path:
    """The path resolved (symlinks followed) if it is inside the project, else InitError."""
    try:
        return inside_project(project, path, "file to write")
    except ProjectPathError as exc:
        raise InitError(f"{exc} Remove or fix the symlink (or the path) and run init again. Nothing was "
                        "changed.") from None


def _plan_mcp_config(path: Path, command: list[str], force: bool) -> tuple[Action, str, str | None]:
    """(action, note, new file text or None when nothing is to be written)."""
    ours = {"command": command[0], "args": list(command[1:])}
    if not path.exists() and not path.is_symlink():
        return "created", "", _dump({"mcpServers": {SERVER_NAME: ours}})
    if not path.is_file():
        raise InitError(f"{path} exists and is not a file; move it away and run init again")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InitError(f"{path} is not UTF-8 text; fix or remove it, then run init again. "
                        "Nothing was changed.") from None
    except json.JSONDecodeError as exc:
        raise InitError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
                        "fix or remove it, then run init again. Nothing was changed.") from None
    except OSError as exc:
        raise InitError(f"cannot read {path}: {exc.strerror}. Nothing was changed.") from None
    if not isinstance(config, dict):
        raise InitError(f"{path} must hold a JSON object ({{\"mcpServers\": {{...}}}}), not "
                        f"{_json_kind(config)}; fix or remove it. Nothing was changed.")
    servers = config.get("mcpServers")
    if servers is None:
        config["mcpServers"] = {SERVER_NAME: ours}
        return "updated", "", _dump(config)
    if not isinstance(servers, dict):
        raise InitError(f"{path}: \"mcpServers\" must be a JSON object mapping server names to their "
                        f"settings, not {_json_kind(servers)}; fix it. Nothing was changed.")
    entry = servers.get(SERVER_NAME)
    if entry is None:
        servers[SERVER_NAME] = ours
        return "updated", "", _dump(config)
    if not isinstance(entry, dict):
        if not force:
            return "kept", KEPT_SERVER, None
        servers[SERVER_NAME] = ours
        return "updated", "", _dump(config)
    if entry.get("command") == ours["command"] and list(entry.get("args") or []) == ours["args"]:
        return "unchanged", "", None
    if not force:
        return "kept", KEPT_SERVER, None
    entry.update(ours)  # keep the user's other keys (env, type...)
    return "updated", "", _dump(config)


def _json_kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


def _dump(config: dict) -> str:
    return json.dumps(config, indent=2, ensure_ascii=False) + "\n"


def _same_text(a: str, b: str) -> bool:
    """Equal up to line endings (a checkout with CRLF is still our file)."""
    return a.replace("\r\n", "\n") == b.replace("\r\n", "\n")


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        if path.exists():
            with contextlib.suppress(OSError):
                os.chmod(tmp, path.stat().st_mode & 0o777)
        else:
            os.chmod(tmp, 0o644)  # mkstemp creates 0600; these are ordinary project files
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
