"""Issue 28: model changes and spec patches proven inside the tool, on copies, before they are offered.

The project is tests/planted.py's, with the models drifted from the spec once per kind of model fix
(VARIANT) and one table only in the spec. Comparing spec and models needs no database: the proof re-reads
a copy of the models with the project's interpreter (a real models child) and a copy of the spec with the
spec reader. The three-sided case (with a real PostgreSQL) is in tests/test_proven_fixes.py.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from schema_architect.tools.diff_models_vs_spec import diff_project
from schema_architect.tools.drift import diff_schemas
from schema_architect.tools.drift.proof import keys
from schema_architect.tools.drift.proof_files import ModelsCopies, apply_patch, prove_model_fixes, prove_spec_patches
from schema_architect.tools.models.reader import read_models
from schema_architect.tools.spec.reader import parse_spec

import planted

pytestmark = pytest.mark.anyio

SPEC_ONLY_TABLE = """
## Table: labels

Labels of the spec that the models do not have yet.

| Column | Type | Constraints | Description |
|---|---|---|---|
| id | serial | PRIMARY KEY | Label id |
| name | varchar(50) | NOT NULL | Label text |
"""


def _in_class(models: str, cls: str, old: str, new: str) -> str:
    """``old`` replaced by ``new`` inside the class ``cls`` only."""
    start = models.index(f"class {cls}(")
    end = models.find("\nclass ", start + 1)
    end = len(models) if end < 0 else end
    body = models[start:end]
    assert old in body, (cls, old)
    return models[:start] + body.replace(old, new, 1) + models[end:]


#: (class, old, new): one drift of the models from the spec each; the drift it makes.
VARIANT = [
    ("Task", 'completed: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})',
     "completed: bool | None = Field(default=None)"),  # nullability and default: one line fixes both
    ("Task", "title: str = Field(max_length=200)", "title: str = Field(max_length=100)"),
    ("Task", "    due_date: datetime | None = None\n", "    legacy_code: str | None = None\n"),
    ("Task", 'Index("idx_tasks_user_completed", "user_id", "completed")',
     'Index("idx_tasks_user_completed", "completed", "user_id")'),
    ("Tag", '__table_args__ = (Index("uq_tags_user_name", "user_id", "name", unique=True),)\n', ""),
    ("Tag", "created_at: datetime = Field(default_factory=utcnow, sa_column_kwargs",
     "created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=False), sa_column_kwargs"),
    ("TaskTag", 'tag_id: int = Field(foreign_key="tags.id", ondelete="CASCADE", primary_key=True)',
     'tag_id: int = Field(foreign_key="tags.id", primary_key=True)'),
    ("Conversation", "title: str | None = Field(default=None, max_length=200)", "title: int | None = None"),
    ("Message", "CheckConstraint(\"role IN ('user', 'assistant', 'tool')\", name=\"ck_messages_role\"),\n", ""),
    ("Message", "content: str = Field(sa_type=Text)", "content: str = Field(max_length=500)"),
    ("Message", 'user_id: str = Field(sa_type=Text, foreign_key="users.id", ondelete="CASCADE")',
     "user_id: str = Field(sa_type=Text)"),
    # A named one-column index: index=True would come back as ix_task_tags_tag_id, not the spec's name.
    ("TaskTag", 'Index("idx_task_tags_tag_id", "tag_id"), Index("idx_task_tags_user_id", "user_id"))',
     'Index("idx_task_tags_user_id", "user_id"),)'),
]
MODEL_KINDS = {
    ("tasks.completed", "default"), ("tasks.completed", "nullability"), ("tasks.title", "column-length"),
    ("tasks.due_date", "missing-column"), ("tasks.legacy_code", "extra-column"),
    ("tasks.idx_tasks_user_completed", "index-order"), ("tags.(user_id, name)", "unique"),
    ("tags.created_at", "timestamp-timezone"), ("task_tags.tag_id", "fk-on-delete"),
    ("conversations.title", "column-type"), ("messages.role", "check"), ("messages.content", "column-length"),
    ("messages.user_id", "fk-missing"), ("notes", "extra-table"), ("labels", "missing-table"),
    ("task_tags.idx_task_tags_tag_id", "index-missing"),
}


def drifted_models() -> str:
    models = planted.MODELS.replace("from sqlalchemy import CheckConstraint,",
                                    "from sqlalchemy import DateTime, CheckConstraint,")
    for cls, old, new in VARIANT:
        models = _in_class(models, cls, old, new)
    return models


def make_variant(root: Path) -> Path:
    planted.make_project(root)
    (root / "backend" / "models.py").write_text(drifted_models())
    (root / "specs" / "database" / "schema.md").write_text(planted.SPEC + SPEC_ONLY_TABLE)
    return root


def fingerprint(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def variant(tmp_path_factory) -> tuple[Path, dict, dict, object]:
    root = make_variant(tmp_path_factory.mktemp("variant"))
    before = fingerprint(root)
    result = await diff_project(project=root, spec_path=None, models=None, include_database=False, tables=None)
    return root, before, fingerprint(root), result


def by_key(result) -> dict:
    return {(d.object, d.kind): d for d in result.drifts}


async def test_every_model_fix_kind_is_proven_on_a_copy_without_a_database(variant) -> None:
    _, _, _, result = variant
    found = by_key(result)
    assert set(found) >= MODEL_KINDS, result.report
    for key in MODEL_KINDS:
        fixes = [f for f in found[key].fixes if f.side == "models"]
        assert fixes and all(f.proof == "proven" for f in fixes), (key, found[key].withheld)
        assert not [f for f in found[key].withheld if f.side == "models"], key
    proof = result.proof
    assert proof.server == "" and result.migration is None  # no database was needed, none was used
    assert proof.models_proven >= len(MODEL_KINDS) and proof.models_withheld == 0
    # one child for all of them (and one more per fix the combined copy could not vouch for)
    assert 1 <= proof.models_runs < proof.models_proven
    assert (f"Proof on copies of the models and the spec: {proof.models_proven} model change(s) proven, 0 withheld; "
            f"{proof.spec_proven} spec patch(es) proven, {proof.spec_withheld} withheld.") in result.report


async def test_the_users_files_are_byte_identical_after_the_proof(variant) -> None:
    _, before, after, result = variant
    assert result.proof.models_runs and before == after


async def test_two_drifts_on_one_column_give_one_proven_change(variant) -> None:
    _, _, _, result = variant
    found = by_key(result)
    changes = {f.model_change for k in (("tasks.completed", "default"), ("tasks.completed", "nullability"))
               for f in found[k].fixes if f.side == "models"}
    assert len(changes) == 1, changes
    [change] = changes
    assert change.startswith("completed: bool = Field(") and "None" not in change, change


async def test_a_proven_model_fix_keeps_nullability_when_re_read(variant, tmp_path: Path) -> None:
    """The proven fix of completed, applied by hand and re-read: NOT NULL and the default, nothing else."""
    root, _, _, result = variant
    change = next(f for f in by_key(result)[("tasks.completed", "default")].fixes if f.side == "models").model_change
    copy = make_variant(tmp_path / "copy")
    models = (copy / "backend" / "models.py").read_text()
    (copy / "backend" / "models.py").write_text(models.replace("completed: bool | None = Field(default=None)", change))
    before = read_models(root).schema.table("tasks")
    after = read_models(copy).schema.table("tasks")
    assert after.column("completed").nullable is False and after.column("completed").default == "false"
    others = [c.name for c in before.columns if c.name != "completed"]
    assert [after.column(n) .model_dump(exclude={"location"}) for n in others] == \
        [before.column(n).model_dump(exclude={"location"}) for n in others]


def spec_and_models(root: Path):
    spec_text = (root / "specs" / "database" / "schema.md").read_text()
    spec = parse_spec(spec_text, "specs/database/schema.md")
    models = read_models(root)
    return spec_text, spec, {"spec": spec.schema, "models": models.schema}, models


async def test_a_wrong_model_fix_is_withheld_with_its_reason(variant) -> None:
    root, before, _, _ = variant
    _, _, sides, models = spec_and_models(root)
    result = diff_schemas(sides)
    baseline = keys(result)
    found = by_key(result)
    # the default right, but the column made nullable: the proof re-reads the copy and sees it
    nullable = next(f for f in found[("tasks.title", "column-length")].fixes if f.side == "models")
    nullable.model_change = "title: str | None = Field(default=None, max_length=200)"
    broken = next(f for f in found[("messages.content", "column-length")].fixes if f.side == "models")
    broken.model_change = "content: str = Field(sa_type=NoSuchType)"
    good = next(f for f in found[("tasks.due_date", "missing-column")].fixes if f.side == "models")
    copies = ModelsCopies(root, None, models.python, 30.0)
    await prove_model_fixes(copies, sides, result, diff_schemas, baseline)
    assert nullable.proof == "withheld" and nullable in found[("tasks.title", "column-length")].withheld
    note = nullable.proof_note  # the new drift it makes, or the aspect it changes: either names nullability
    assert "tasks.title nullability (models)" in note or "the nullable of tasks.title" in note, note
    assert broken.proof == "withheld" and "does not import" in broken.proof_note and "NoSuchType" in broken.proof_note
    assert good.proof == "proven"
    assert fingerprint(root) == before


async def test_spec_patches_are_proven_on_a_copy_of_the_spec(variant) -> None:
    root, _, _, result = variant
    found = by_key(result)
    for key in (("tasks.title", "column-length"), ("tasks.legacy_code", "extra-column"),
                ("messages.role", "check"), ("tasks.idx_tasks_user_completed", "index-order"),
                ("tasks.completed", "default"), ("tasks.completed", "nullability")):
        patches = [f for f in found[key].fixes if f.side == "spec"]
        assert patches and all(f.proof == "proven" for f in patches), (key, found[key].withheld)
    for d in result.drifts:  # whatever is withheld says why
        assert all(f.proof == "withheld" and f.proof_note for f in d.withheld)
    assert result.proof.spec_proven >= 6
    # the proven patch, applied and re-read: the spec now says what the models say
    text, spec, _, _ = spec_and_models(root)
    patch = next(f for f in found[("tasks.title", "column-length")].fixes if f.side == "spec").spec_patch
    again = parse_spec(apply_patch(text, spec.schema, "tasks.title", patch), "specs/database/schema.md").schema
    assert again.table("tasks").column("title").type == "varchar(100)"
    assert again.table("tasks").column("title").nullable is False


async def test_a_wrong_spec_patch_is_withheld_with_its_reason(variant) -> None:
    root, _, _, _ = variant
    text, spec, sides, _ = spec_and_models(root)
    result = diff_schemas(sides)
    found = by_key(result)
    wrong = next(f for f in found[("tasks.title", "column-length")].fixes if f.side == "spec")
    wrong.spec_patch = "| title | VARCHAR(100) |  |  |"  # the length accepted, NOT NULL lost
    nowhere = next(f for f in found[("messages.content", "column-length")].fixes if f.side == "spec")
    nowhere.spec_patch = "| contents | TEXT | NOT NULL |  |"  # a row for a column that is not the drift's

    def parse(patched: str):
        again = parse_spec(patched, "specs/database/schema.md")
        return again.schema, [w.message for w in again.warnings]

    prove_spec_patches(text, parse, sides, result, diff_schemas, keys(result), [w.message for w in spec.warnings])
    assert wrong.proof == "withheld" and "the nullable of tasks.title" in wrong.proof_note, wrong.proof_note
    assert nowhere.proof == "withheld" and nowhere.proof_note


async def test_a_module_that_already_fails_to_import_does_not_withhold_the_others_fixes(tmp_path: Path) -> None:
    """The models' own import error is there in every copy too: only an error the change brings counts."""
    root = planted.make_project(tmp_path)
    (root / "backend" / "models.py").unlink()
    package = root / "backend" / "models"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "app.py").write_text(planted.MODELS.replace("title: str = Field(max_length=200)",
                                                          "title: str = Field(max_length=100)", 1))
    (package / "broken.py").write_text("raise RuntimeError('this module never imported')\n")
    result = await diff_project(project=root, spec_path=None, models=None, include_database=False, tables=None)
    assert any(f.rule == "models-import-failed" for f in result.findings)
    [fix] = [f for f in by_key(result)[("tasks.title", "column-length")].fixes if f.side == "models"]
    assert fix.proof == "proven", fix
