"""Docs stay true: generated pages match the code."""

from schema_architect.server.settings import render_settings_doc

from conftest import REPO


def test_settings_doc_is_current() -> None:
    committed = (REPO / "docs" / "settings.md").read_text()
    assert committed == render_settings_doc(), (
        "docs/settings.md is stale: run `python -m schema_architect.server.settings > docs/settings.md`"
    )
