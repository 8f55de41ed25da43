"""The read_schema_spec tool as an agent calls it: its arguments, what it says about itself, its result's shape."""

from __future__ import annotations

from typing import Annotated

import anyio
from pydantic import Field

from ..schema.call import READ_ONLY, ToolCall, ToolSpec
from ..schema.shape import Shape, name_field, table_of_object
from . import ParsedSpecs, ReadSchemaSpecResult, read_schema_spec as read


async def read_schema_spec(
    call: ToolCall,
    path: Annotated[str | None, Field(
        description="Spec file relative to the project root (default specs/database/schema.md)"
    )] = None,
    tables: Annotated[list[str] | None, Field(
        description="Only these tables (default: all)"
    )] = None,
) -> ReadSchemaSpecResult:
    """Read the schema spec (any common markdown format) into tables: columns with PostgreSQL types,
    keys, FKs with ON DELETE, checks, indexes and query patterns. Also lint findings, unreadable
    lines and conflicts by line, and content_hash (pass it as expected_spec_hash to write). No database.
    """
    settings = call.settings
    return await anyio.to_thread.run_sync(read, settings.project, path or settings.spec_path, tables,
                                          call.kept(ParsedSpecs))


TOOL = ToolSpec(
    read_schema_spec, title="Read the schema spec", hints=READ_ONLY, result=ReadSchemaSpecResult, paged=True,
    shape=Shape(
        summary_omits={"tables": frozenset({"location"}), "enums": frozenset({"location"}),
                       "query_patterns": frozenset({"location"}), "er_diagram": None},
        per_table={"tables": name_field, "lint": table_of_object, "warnings": table_of_object,
                   "conflicts": table_of_object},
        first_page_only=frozenset({"enums", "query_patterns"}), whole_only=frozenset({"er_diagram"})),
)
