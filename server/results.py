"""What an agent receives from a tool: one compact JSON result, bounded in bytes, and a small schema for it.

Why each rule:

* **Compact.** A field at its default (null, false, an empty list, ``nullable: true``) is left out: a
  column says what is particular about it, not every field it could have. A null with no default is
  kept: it says something (a side of a drift that lacks the object has ``"value": null``). The defaults are documented
  in docs/tools/. ``detail="summary"`` (the default) also leaves out what repeats the rest: where each
  schema element was read (``location``), the ER diagram, the prose report. ``detail="full"`` gives
  everything.
* **Once.** The text block is the structured result's own JSON, so a client that shows the text and one
  that passes the structured result (Claude Code does, anthropics/claude-code#79944) see the same data,
  and the wire carries it twice at most, never a third pretty-printed copy.
* **Bounded.** A result larger than :data:`PAGE_BYTES` is paged by table: each page holds whole tables
  until the budget is spent, and ``page.next_cursor`` asks for the next. The pages come from one reading
  (:class:`Snapshots` keeps it a few minutes), so they agree with each other and the next page costs no
  second diff or catalog read. Past that, the result is computed again, and the cursor, which names the
  list of tables it was cut from, is refused if the tables changed rather than skip or repeat any.
* **Small definitions.** Clients load every tool's schemas into the model's context on every turn. The
  published output schema gives the top-level fields and their types; what each field means, and the
  nested shapes, are in docs/tools/<tool>.md, generated from the same models.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Literal

from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel

from ..tools.schema.errors import CursorInvalid
from ..tools.schema.shape import Shape

#: A page's budget of JSON bytes: about 15k tokens at bytes/4, under the ~20k a client shows inline.
PAGE_BYTES = 60_000

Detail = Literal["summary", "full"]

DETAIL_DESCRIPTION = "full adds locations, diagrams, reports"
CURSOR_DESCRIPTION = "page.next_cursor, for the next page"

#: A result given whole, nothing left out in summary.
PLAIN = Shape()


class CursorError(CursorInvalid):
    """A cursor this server did not give, or one cut from a list of tables that has changed since."""


def _table_key(table: str | None) -> str | None:
    """One spelling per table: results name tables with and without the default schema."""
    return table.removeprefix("public.") if table else None


def compact(result: BaseModel, detail: Detail = "summary", shape: Shape = PLAIN) -> dict[str, Any]:
    """The result as the agent receives it: defaults left out, and in summary the omissions."""
    data = result.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    if detail == "summary":
        for name, keys in shape.summary_omits.items():
            if keys is None:
                data.pop(name, None)
            elif name in data:
                data[name] = _without(data[name], keys)
    return data


def resource_json(item: BaseModel) -> str:
    """A resource's JSON by the rule of tool results in summary: compact, defaults and locations left out."""
    return dumps(_without(compact(item, "full"), frozenset({"location"})))


def _without(value: Any, keys: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_without(v, keys) for v in value]
    return value


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def size(data: Any) -> int:
    return len(dumps(data).encode())


@dataclass(frozen=True)
class Layout:
    """Where a paged result's tables fall: their order, each one's bytes, and the tag its cursors carry.

    Worked out once per result and kept with its snapshot, so a later page does not measure every
    item again."""

    order: list[str]
    cost: dict[str | None, int]
    tag: str


def layout(data: dict[str, Any], shape: Shape) -> Layout:
    order: list[str] = []  # tables in the order the result first names them
    cost: dict[str | None, int] = {}
    for name, table_of in shape.per_table.items():
        for item in data.get(name) or ():
            table = _table_key(table_of(item))
            if table is not None and table not in cost:
                order.append(table)
            cost[table] = cost.get(table, 0) + size(item) + 1
    return Layout(order, cost, hashlib.sha256("\n".join(order).encode()).hexdigest()[:12])


def page(data: dict[str, Any], shape: Shape, cursor: str | None = None, budget: int = PAGE_BYTES,
         plan: Layout | None = None) -> tuple[dict[str, Any], Layout | None]:
    """``data`` whole when it fits in ``budget`` bytes; otherwise the page of tables ``cursor`` points at.

    A page holds whole tables (at least one, even a table larger than the budget) and says
    ``page: {tables, of, next_cursor}``; the last page has no next_cursor. Returns the page and the
    :class:`Layout` it was cut by (None when whole), which the next page may be given as ``plan``.
    """
    if not shape.per_table or (cursor is None and plan is None and size(data) <= budget):
        return data, None
    plan = plan or layout(data, shape)
    order, cost, tag = plan.order, plan.cost, plan.tag
    start = _decode(cursor, tag) if cursor else 0
    if start > len(order):
        raise CursorError("That cursor points past the last table: the listing is complete.")
    first = start == 0
    rest = {k: v for k, v in data.items() if k not in shape.per_table and k not in shape.whole_only
            and (first or k not in shape.first_page_only)}
    spent = size(rest) + 120 + (cost.get(None, 0) if first else 0)  # 120: the page object itself
    end = start
    while end < len(order) and (end == start or spent + cost[order[end]] <= budget):
        spent += cost[order[end]]
        end += 1
    chosen = set(order[start:end])
    out = dict(rest)
    for name, table_of in shape.per_table.items():
        if name in data:
            out[name] = [item for item in data[name]
                         if (t := _table_key(table_of(item))) in chosen or (t is None and first)]
    info: dict[str, Any] = {"tables": end - start, "of": len(order)}
    if start:
        info["after"] = order[start - 1]
    if end < len(order):
        info["next_cursor"] = _encode(end, tag)
    out["page"] = info
    return out, plan


def _encode(offset: int, tag: str) -> str:
    return base64.urlsafe_b64encode(f"{offset}:{tag}".encode()).decode().rstrip("=")


def _decode(cursor: str, tag: str) -> int:
    try:
        offset, _, got = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().partition(":")
        start = int(offset)
    except (ValueError, UnicodeDecodeError):
        raise CursorError("That cursor is not one this server gave: pass page.next_cursor exactly as "
                          "returned, or call without cursor for the first page.") from None
    if got != tag or start < 0:
        raise CursorError("The tables changed since that cursor was given (the spec or database was edited): "
                          "call again without cursor to start from the first page.")
    return start


class Snapshots:
    """The last few paged results, kept so that following a cursor reads the same result, not a new one.

    Each is kept with its :class:`Layout`, so the next page is only a selection."""

    def __init__(self, size: int = 4, ttl_s: float = 300.0) -> None:
        self._entries: OrderedDict[Hashable, tuple[float, tuple[dict[str, Any], Layout | None]]] = OrderedDict()
        self._size, self._ttl_s = size, ttl_s

    def get(self, key: Hashable) -> tuple[dict[str, Any], Layout | None] | None:
        entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry[0] > self._ttl_s:
            self._entries.pop(key, None)
            return None
        return entry[1]

    def put(self, key: Hashable, data: dict[str, Any], plan: Layout | None) -> None:
        self._entries[key] = (time.monotonic(), (data, plan))
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


def tool_result(data: dict[str, Any]) -> CallToolResult:
    """The result on the wire: the structured content and, as its text, the same JSON once."""
    return CallToolResult(content=[TextContent(type="text", text=dumps(data))], structured_content=data)


# ---------------------------------------------------------------------------------------------------
# Schemas as published in tools/list


def output_schema(model: type[BaseModel], shape: Shape = PLAIN) -> dict[str, Any]:
    """The result's schema as an agent's client needs it: each top-level field and its type.

    Nested objects are ``{"type": "object"}`` and descriptions are left to docs/tools/ (the field
    names say most of it; the tool's description says the rest): a client validating results still
    checks every top-level type. Nothing that may be left out is required (fields with defaults,
    summary omissions, fields of the first or only page)."""
    full = model.model_json_schema(mode="serialization")
    defs = full.get("$defs", {})
    properties: dict[str, Any] = {}
    required = []
    sometimes_absent = set(shape.summary_omits) | shape.whole_only | shape.first_page_only
    for name, prop in full["properties"].items():
        properties[name] = _shallow(prop, defs)
        if name in full.get("required", ()) and name not in sometimes_absent:
            required.append(name)
    if shape.per_table:
        properties["page"] = {"type": "object"}
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _resolve(prop: dict, defs: dict) -> dict:
    while "$ref" in prop:
        prop = {**defs[prop["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in prop.items() if k != "$ref"}}
    return prop


def _shallow(prop: dict, defs: dict, depth: int = 0) -> dict[str, Any]:
    """Type only: objects as {"type": "object"}, arrays with their items' type, enums kept when short."""
    prop = _resolve(prop, defs)
    if "anyOf" in prop:
        alternatives = [_shallow(a, defs, depth) for a in prop["anyOf"]]
        kinds = [a.get("type") for a in alternatives]
        if len(alternatives) == 2 and "null" in kinds and all(isinstance(k, str) for k in kinds):
            other = alternatives[kinds.index("null") ^ 1]  # X or null: one type list
            return {**other, "type": [other["type"], "null"]} if "enum" not in other else {"anyOf": alternatives}
        return {"anyOf": alternatives}
    kind = prop.get("type")
    if kind == "array":
        items = prop.get("items")
        return ({"type": "array", "items": _shallow(items, defs, depth + 1)} if items and depth < 1
                else {"type": "array"})
    if kind == "object" or "properties" in prop:
        return {"type": "object"}
    out: dict[str, Any] = {"type": kind} if kind else {}
    if "enum" in prop and len(dumps(prop["enum"])) <= 80:
        out["enum"] = prop["enum"]
    elif "const" in prop:
        out["const"] = prop["const"]
    return out


def input_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """An argument schema without pydantic's titles and null-only noise; still what the SDK validates.

    ``anyOf [X, null]`` becomes X with ``"null"`` added to its type, so an explicit null still passes.
    ``additionalProperties: false``: an argument the tool does not take is refused (server/arguments.py)."""
    return {**_lean(schema), "additionalProperties": False}


def _lean(value: Any, in_properties: bool = False) -> Any:
    if isinstance(value, list):
        return [_lean(v) for v in value]
    if not isinstance(value, dict):
        return value
    if in_properties:  # keys here are argument names, not schema keywords
        return {k: _lean(v) for k, v in value.items()}
    alternatives = value.get("anyOf")
    if alternatives and {"type": "null"} in alternatives and len(alternatives) == 2:
        other = next(a for a in alternatives if a != {"type": "null"})
        if isinstance(other.get("type"), str) and "$ref" not in other:
            value = {**{k: v for k, v in value.items() if k != "anyOf"}, **other,
                     "type": [other["type"], "null"]}
    out = {}
    for k, v in value.items():
        if k == "title" or (k == "default" and v is None):
            continue
        out[k] = _lean(v, in_properties=k in ("properties", "$defs"))
    return out
