"""docs/architecture.md agrees with the tree (issue 32): it names every module, names none that is gone,
and its layer table is the one tests/test_architecture.py enforces.

Everything is derived from the files on disk, so a new module or folder fails here until the doc names it.
Each folder of tools/ has a row in the doc's layer table, server/ a row in its Folders table; a row names
the folder's modules as `name.py` and its sub-packages as `name/` (what a sub-package holds is its own
business: its row names the package, not each of its modules).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from test_architecture import LAYERS, REPO

DOC = REPO / "docs" / "architecture.md"
TEXT = DOC.read_text(encoding="utf-8")
PACKAGES = ("tools", "server")


def _rows() -> dict[str, str]:
    """Each table row whose first cell is a backticked folder (`name/`), by that name."""
    rows: dict[str, str] = {}
    for line in TEXT.splitlines():
        if match := re.match(r"\|\s*`([\w.]+)/`\s*\|", line):
            assert match.group(1) not in rows, f"docs/architecture.md has two rows for `{match.group(1)}/`"
            rows[match.group(1)] = line
    return rows


ROWS = _rows()


def _folders() -> dict[str, Path]:
    """server/ and every folder of tools/, by the name its row has."""
    found = {"server": REPO / "server"}
    found |= {p.name: p for p in sorted((REPO / "tools").iterdir()) if (p / "__init__.py").is_file()}
    return found


FOLDERS = _folders()


def _parts(folder: Path) -> list[str]:
    """What a row must name: the folder's modules (`x.py`) and sub-packages (`x/`), its __init__.py aside."""
    modules = [p.name for p in folder.glob("*.py") if p.name != "__init__.py"]
    packages = [f"{p.name}/" for p in folder.iterdir() if (p / "__init__.py").is_file()]
    return sorted(modules + packages)


def _named(row: str) -> set[str]:
    """The backticked module and folder names in a row after its first cell (`reader.py`, `lint/`, `sql/*.sql`)."""
    after_name = row.split("|", 2)[2]
    return {token for token in re.findall(r"`([^`\s]+)`", after_name)
            if re.fullmatch(r"[\w./*]+(\.py|/|\.sql)", token)}


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_every_module_of_the_folder_is_named_in_its_row(name: str) -> None:
    assert name in ROWS, f"docs/architecture.md needs a row for `{name}/` naming {_parts(FOLDERS[name])}"
    missing = [part for part in _parts(FOLDERS[name]) if part not in _named(ROWS[name])]
    assert not missing, f"docs/architecture.md's row for `{name}/` does not name {missing}"


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_every_module_a_row_names_exists(name: str) -> None:
    if name not in ROWS:
        pytest.fail(f"docs/architecture.md needs a row for `{name}/`")
    gone = [token for token in _named(ROWS[name]) if not any(FOLDERS[name].glob(token.rstrip("/")))]
    assert not gone, f"docs/architecture.md's row for `{name}/` names what {FOLDERS[name]} does not hold: {gone}"


def test_every_path_the_doc_names_exists() -> None:
    """Paths written out in full anywhere in the doc (`tools/schema/paths.py`, `server/fair.py`)."""
    paths = set(re.findall(r"`((?:tools|server)/[\w/]+\.py)`", TEXT))
    assert paths, "the doc names no module by its path: this test reads it wrong"
    gone = sorted(p for p in paths if not (REPO / p).is_file())
    assert not gone, f"docs/architecture.md names modules that do not exist: {gone}"


def test_the_layer_table_is_the_one_the_architecture_test_enforces() -> None:
    documented = {}
    for name, row in ROWS.items():
        if match := re.match(r"\|\s*`[\w.]+/`\s*\|\s*(\d+)\s*\|", row):
            documented[name] = int(match.group(1))
    assert documented == LAYERS, "docs/architecture.md's layer table and tests/test_architecture.py's LAYERS differ"


def test_every_folder_of_tools_is_in_the_layer_diagram() -> None:
    diagram = TEXT.split("```")[3]  # the second code block: the layers drawn
    assert "layer 0" in diagram, "the layer diagram is not the second code block any more"
    for name, layer in LAYERS.items():
        line = next((ln for ln in diagram.splitlines() if ln.startswith(f"layer {layer}")), "")
        assert f"{name}/" in line, f"the diagram's `layer {layer}` line does not show {name}/"
