"""Model changes and spec patches proven on copies before they are offered (issue 28), as proof.py does
for the database fixes:

    models fixes ─ one per drift, all applied to one copy of the model files (model_edits.py)
        │ the copy re-read with the project's interpreter (the models reader: one child run), the same diff
        ├ every drift gone, nothing new, no column aspect changed that a fix does not name: all proven
        └ otherwise the fixes in doubt (and a drift's other fixes, which are alternatives) one copy each
    spec patches ─ each applied to a copy of the spec text, re-read with the spec reader, the same diff

A fix is proven when its drift no longer needs that side and nothing else changed, re-read and compared
(a fix of the default that made the column nullable is withheld); otherwise it is withheld (moved to
``Drift.withheld``) with the reason. The user's files are only read: the copies live in a temporary folder.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..models import reader as models_reader
from ..models.reader import ModelsRead, find_models, read_models
from ..schema.findings import Finding
from ..schema.model import Schema
from .core import name_variants
from .model import DiffResult, Drift, Fix
from .model_edits import CannotApply, apply_change
from .proof import Key, ProofReport, keys, shown_keys, withhold

#: The column aspects compared between a side and its copy, and those each drift kind's fix may change.
COLUMN_ATTRS = ("type", "nullable", "default", "identity", "primary_key", "unique", "on_update", "allowed_values")
MAY_CHANGE = {
    "column-type": ("type", "identity", "default", "allowed_values"),  # an enum's values: its CHECK's now
    "column-length": ("type",), "timestamp-timezone": ("type",),
    "nullability": ("nullable", "primary_key"), "default": ("default",), "identity": ("identity", "default"),
    "primary-key": ("primary_key", "nullable"), "unique": ("unique",), "updated-at-not-maintained": ("on_update",),
    "check": ("allowed_values",), "enum-labels": ("allowed_values", "type"), "possible-rename": COLUMN_ATTRS,
}
MAX_COPIED_BYTES = 1 << 20  # a file beside the models bigger than this is data, not something an import reads
_SKIP_DIRS = {".venv", "venv", "node_modules", "__pycache__", ".git", ".tox", ".mypy_cache"}


@dataclass
class Outcome:
    """What one copy showed: the diff's keys, unexplained column changes, or why it could not be read."""

    after: set[Key] = field(default_factory=set)
    changed: dict[str, set[str]] = field(default_factory=dict)
    broken: str | None = None


def column_changes(before: Schema, after: Schema) -> dict[str, set[str]]:
    """``table.column`` -> the aspects that differ between two readings of one side."""
    out: dict[str, set[str]] = {}
    for t in before.tables:
        if (t2 := after.table(t.name)) is None:
            continue
        for c in t.columns:
            if (c2 := t2.column(c.name)) is not None:
                if changed := {a for a in COLUMN_ATTRS if getattr(c, a) != getattr(c2, a)}:
                    out[f"{t.name}.{c.name}".lower()] = changed
    return out


def _unexplained(changed: dict[str, set[str]], drifts: list[Drift]) -> dict[str, set[str]]:
    allowed: dict[str, set[str]] = {}
    for d in drifts:
        allowed.setdefault(d.object.lower(), set()).update(MAY_CHANGE.get(d.kind, ()))
    return {obj: left for obj, aspects in changed.items() if (left := aspects - allowed.get(obj, set()))}


def _verdict(outcome: Outcome, drifts: list[Drift], side: str, baseline: set[Key], what: str) -> str | None:
    """None when the change proves for ``drifts`` (one drift, or the drifts on one column that share the
    change); else why it is withheld."""
    if outcome.broken:
        return outcome.broken
    mine, objects, fixed = {(d.object, d.kind) for d in drifts}, {d.object for d in drifts}, _fixed(drifts[0], side)
    if any((o, k) in mine and s == fixed for o, k, s in outcome.after):
        return f"the drift is still there after the change was applied to {what}"
    # new on these objects is fine only as the other side's turn (the models, once the spec takes the
    # database's version): any other new drift is something else the change did
    if new := {k for k in outcome.after - baseline if k[0] not in objects or k[2] == fixed}:
        return f"it changes something else on {what}: {shown_keys(new)}"
    if extra := _unexplained(outcome.changed, drifts):
        return f"it also changes, on {what}, " + "; ".join(
            f"the {', '.join(sorted(a))} of {obj}" for obj, a in sorted(extra.items()))
    return None


def _fixed(drift: Drift, side: str) -> str:
    """The side that must agree after the fix: the models for a model change; for a spec patch, the side
    whose version it accepts (the first that differs from the spec)."""
    if side != "spec":
        return side
    spec = drift.sides.get("spec")
    return next((s for s, v in drift.sides.items() if s != "spec" and spec is not None and v.value != spec.value),
                "models")


def _sharing(todo: list[tuple[Drift, Fix]], drift: Drift, change: str | None) -> list[Drift]:
    """The drifts of ``drift``'s table whose fix is this same change (two drifts on one column, one line)."""
    table = drift.object.split(".")[0]
    return [drift] + [d for d, f in todo if d is not drift and d.object.split(".")[0] == table
                      and (f.model_change or f.spec_patch) == change]


def _prove_note(fix: Fix, what: str, outcome: Outcome, baseline: set[Key], drifts: list[Drift],
                extra: str = "") -> None:
    """Mark ``fix`` proven. A spec patch that takes the database's version leaves the models to follow (and
    the other way round): said, as what the other side then needs."""
    fix.proof = "proven"
    objects = {d.object for d in drifts}
    then = {k for k in outcome.after - baseline if k[0] in objects and k[2] not in ("spec", fix.side)}
    fix.proof_note = (f"applied to {what} and re-read: the drift is gone and nothing else changed{extra}"
                      + (f"; then this needs the same change: {shown_keys(then)}" if then else ""))


# --- models -----------------------------------------------------------------------------------------


def _models_table(schema: Schema, obj: str) -> str:
    key = obj.split(".")[0]
    for name in (key, *name_variants(key)):
        if schema.table(name) is not None:
            return name
    return key  # a table the models do not have yet: the change adds its class


def error_key(finding: Finding) -> tuple[str, str | None]:
    return finding.rule, finding.location.file if finding.location else None


class ModelsCopies:
    """Copies of the project's model files in a temporary folder, each re-read by the models reader."""

    def __init__(self, project: Path, models: str | None, python: str | None, timeout: float,
                 findings: Sequence[Finding] = ()) -> None:
        self.project = Path(project).resolve()
        #: the errors the models already had (a module that does not import): not the change's doing
        self.known = {error_key(f) for f in findings if f.severity == "error"}
        self.models, self.python, self.timeout = models, python, timeout
        plan = find_models(self.project, models)
        self.import_root = plan.import_root or self.project
        self.originals = {rel: (self.project / rel).read_text() for rel in plan.files}
        self.runs = 0

    def _files_beside(self) -> list[Path]:
        """What the models' import may need: the .py files under their import root, and the other files
        directly in it (a .env a settings module reads). Nothing a link takes outside the project."""
        out = [p for p in self.import_root.iterdir() if p.is_file() and p.stat().st_size <= MAX_COPIED_BYTES]
        for p in self.import_root.rglob("*.py"):
            rel = p.relative_to(self.import_root).parts[:-1]
            if not any(part in _SKIP_DIRS or part.startswith(".") for part in rel):
                out.append(p)
        return [p for p in out if p.resolve().is_relative_to(self.project)]

    def read(self, texts: dict[str, str]) -> ModelsRead:
        self.runs += 1
        with tempfile.TemporaryDirectory(prefix="schema-architect-models-copy-") as tmp:
            root = Path(tmp).resolve()
            for path in self._files_beside():
                target = root / path.relative_to(self.project)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
            for rel, text in texts.items():
                (root / rel).write_text(text)
            read = read_models(root, self.models, timeout=self.timeout, python=self.python)
            for key in [k for k in models_reader._READS if k[0] == str(root)]:
                del models_reader._READS[key]  # a copy is never read again: keep the cache for the project
        return read


async def prove_model_fixes(copies: ModelsCopies, sides: dict[str, Schema], result: DiffResult,
                            diff: Callable[[dict[str, Schema]], DiffResult], baseline: set[Key]) -> None:
    """Mark every models fix of ``result`` proven, or withhold it (see the module doc)."""
    import anyio

    todo = [(d, f) for d in result.drifts for f in d.fixes if f.side == "models"]
    first = {id(d): f for d, f in reversed(todo)}
    batch = [(d, f) for d, f in todo if first[id(d)] is f]
    singles = [(d, f) for d, f in todo if first[id(d)] is not f]

    def outcome(read: ModelsRead) -> Outcome:
        errors = [f for f in read.findings if f.severity == "error" and error_key(f) not in copies.known]
        if errors or not read.schema.tables:
            why = errors[0].message.splitlines()[0] if errors else "no tables were read"
            return Outcome(broken=f"the models copy does not import after the change: {why}")
        return Outcome(after=keys(diff({**sides, "models": read.schema})),
                       changed=column_changes(sides["models"], read.schema))

    async def run(texts: dict[str, str]) -> Outcome:
        return outcome(await anyio.to_thread.run_sync(copies.read, texts))

    texts: dict[str, str] = dict(copies.originals)
    applied: list[tuple[Drift, Fix, list[str]]] = []
    done: dict[tuple[str, str], list[str]] = {}
    for d, f in batch:
        edit = (_models_table(sides["models"], d.object), f.model_change or "")
        if edit in done:
            applied.append((d, f, done[edit]))
            continue
        try:
            texts, imports = apply_change(texts, *edit)
        except CannotApply as exc:
            withhold(d, f, f"it cannot be applied to a copy of the models: {exc}")
            continue
        done[edit] = imports
        applied.append((d, f, imports))
    if applied:
        combined = await run(texts)
        # what the combined copy shows that no fix asked for, by table: those tables' fixes are tried alone;
        # on a table no fix touched (a stale FK to a renamed table), it cannot be told whose it is: all are
        odd = {k[0] for k in combined.after - baseline}
        odd |= set(_unexplained(combined.changed, [d for d, _, _ in applied]))
        suspects = {o.split(".")[0] for o in odd}
        if combined.broken or suspects - {d.object.split(".")[0] for d, _, _ in applied}:
            suspects |= {d.object.split(".")[0] for d, _, _ in applied}
        for d, f, imports in applied:
            if d.object.split(".")[0] in suspects or (d.object, d.kind, "models") in combined.after:
                singles.append((d, f))
            else:
                _prove_note(f, "a copy of the models (with the other model changes)", combined, baseline, [d],
                            _imported(imports))
    for d, f in singles:
        try:
            one, imports = apply_change(copies.originals, _models_table(sides["models"], d.object),
                                        f.model_change or "")
        except CannotApply as exc:
            withhold(d, f, f"it cannot be applied to a copy of the models: {exc}")
            continue
        seen, sharing = await run(one), _sharing(todo, d, f.model_change)
        why = _verdict(seen, sharing, "models", baseline, "a copy of the models")
        if why:
            withhold(d, f, why)
        else:
            _prove_note(f, "a copy of the models", seen, baseline, sharing, _imported(imports))


def _imported(imports: list[str]) -> str:
    return f" (with {'; '.join(imports)} added at the file's top)" if imports else ""


# --- spec -------------------------------------------------------------------------------------------


def _section(lines: list[str], line: int) -> tuple[int, int]:
    """The 0-based [start, end) of the section whose heading is at or above ``line`` (1-based)."""
    start = next((i for i in range(min(line, len(lines)) - 1, -1, -1) if lines[i].startswith("#")), None)
    if start is None:
        raise CannotApply("the spec's table has no heading to find its section by")
    level = len(lines[start]) - len(lines[start].lstrip("#"))
    end = next((i for i in range(start + 1, len(lines))
                if lines[i].startswith("#") and len(lines[i]) - len(lines[i].lstrip("#")) <= level), len(lines))
    return start, end


def _cell(line: str) -> str:
    return line.strip().strip("|").split("|")[0].strip().strip("`")


def apply_patch(text: str, spec: Schema, obj: str, patch: str) -> str:
    """``text`` with ``patch`` put where the spec's format keeps it: a table section at the end, a column
    row in place of the column's row (or after the last row), a constraint or index line under the
    table's Constraints or Indexes heading. Raises :class:`CannotApply`."""
    if patch.startswith("#"):
        return text.rstrip("\n") + "\n\n" + patch.rstrip() + "\n"
    table = spec.table(_models_table(spec, obj))
    if table is None or table.location is None or table.location.line is None:
        raise CannotApply(f"the spec has no table {obj.split('.')[0]} to put it in")
    lines = text.splitlines()
    start, end = _section(lines, table.location.line)
    first = patch.splitlines()[0]
    if first.startswith("|"):
        name = _cell(first)
        rows = [i for i in range(start, end) if lines[i].startswith("|")]
        header = next((i for i in rows if _cell(lines[i]).lower() == "column"), None)
        if header is None:
            raise CannotApply(f"the spec's table {table.name} has no column table to put the row in")
        block = [header]
        while block[-1] + 1 < end and lines[block[-1] + 1].startswith("|"):
            block.append(block[-1] + 1)
        row = next((i for i in block[2:] if _cell(lines[i]) == name), None)
        if row is not None:
            lines[row] = first
        else:
            lines.insert(block[-1] + 1, first)
        return "\n".join(lines) + "\n"
    if first.startswith("- "):
        named = re.match(r"- `([^`]+)`:", first)
        if named:  # an index or constraint of that name is replaced
            lines[start:end] = [line for line in lines[start:end] if not (
                line.startswith(("|", "- ")) and _cell(line.removeprefix("- ").split(":")[0]) == named.group(1))]
            start, end = _section(lines, table.location.line)
        heading = "### Indexes" if named else "### Constraints"  # render.spec_index names its index
        at = next((i for i in range(start, end) if lines[i].strip() == heading), None)
        if at is None:
            last = max(i for i in range(start, end) if lines[i].strip())
            lines[last + 1:last + 1] = ["", heading, "", first]
        else:
            stop = next((i for i in range(at + 1, end) if lines[i].startswith("#")), end)
            while stop > at + 1 and not lines[stop - 1].strip():
                stop -= 1
            lines[stop:stop] = ([""] if not lines[stop - 1].startswith("- ") else []) + [first]
        return "\n".join(lines) + "\n"
    raise CannotApply("it is not a spec line the proof knows where to put")


def prove_spec_patches(text: str, parse: Callable[[str], tuple[Schema, list[str]]], sides: dict[str, Schema],
                       result: DiffResult, diff: Callable[[dict[str, Schema]], DiffResult], baseline: set[Key],
                       warnings: list[str]) -> None:
    """Mark every spec patch of ``result`` proven, or withhold it (see the module doc). ``parse`` reads a
    spec text into its Schema and its warnings (``warnings``: those of the spec as it is)."""
    todo = [(d, f) for d in result.drifts for f in d.fixes if f.side == "spec"]
    for d, f in todo:
        try:
            patched = apply_patch(text, sides["spec"], d.object, f.spec_patch or "")
        except CannotApply as exc:
            withhold(d, f, f"it cannot be applied to a copy of the spec: {exc}")
            continue
        schema, said = parse(patched)
        seen = Outcome(after=keys(diff({**sides, "spec": schema})), changed=column_changes(sides["spec"], schema))
        if new := [w for w in said if w not in warnings]:
            seen.broken = f"the copy of the spec reads with a new warning after the patch: {new[0]}"
        sharing = _sharing(todo, d, f.spec_patch)
        why = _verdict(seen, sharing, "spec", baseline, "a copy of the spec")
        if why:
            withhold(d, f, why)
        else:
            _prove_note(f, "a copy of the spec", seen, baseline, sharing)


#: The fields of ProofReport this module fills in (proof.py fills in the database's).
FILES_FIELDS = {"models_proven", "models_withheld", "spec_proven", "spec_withheld", "models_runs", "files_ms"}


def count(result: DiffResult, report: ProofReport, runs: int, started: float) -> ProofReport:
    """The models and spec counts of ``report`` filled in from the marks on ``result``."""
    fixes = [f for d in result.drifts for f in [*d.fixes, *d.withheld]]
    for side in ("models", "spec"):
        setattr(report, f"{side}_proven", sum(f.side == side and f.proof == "proven" for f in fixes))
        setattr(report, f"{side}_withheld", sum(f.side == side and f.proof == "withheld" for f in fixes))
    report.models_runs = runs
    report.files_ms = round((time.monotonic() - started) * 1000, 1)
    return report
