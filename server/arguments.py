"""The server class: arguments checked as the agent sent them, and every expected error in one shape.

The SDK builds each tool's argument model from its signature and, like pydantic by default, ignores
arguments it does not know: ``{"tabels": ["tasks"]}`` would read every table. It reports a type mistake as
pydantic's multi-line text with a link. And an error a tool raises that is not a ``ToolError`` is hidden as
a crash. :class:`SchemaArchitectServer` overrides public methods of ``MCPServer`` to fix all three:

* ``call_tool`` checks the argument names against the tool's published input schema first (an unknown one
  is refused, naming the closest valid one), turns a ``ValidationError`` into one line (the argument, what
  was given, what is expected), and gives an :class:`~schema_architect.tools.schema.errors.AgentError`
  from anywhere in a tool its rule id and one message shape (``[rule] problem Given: ... fix``).
* ``list_tools`` publishes each tool's input schema lean (server/results.py), the schema ``call_tool``
  checks names against.
* ``get_prompt`` answers an unknown prompt name with an invalid-params error naming the closest prompt,
  not "Internal server error" with a traceback on stderr.
"""

from __future__ import annotations

import json
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import ValidationError

from ..tools.schema.errors import AgentError, ArgumentError, UnknownArgument, closest
from .db import redact_url
from .results import input_schema


def unknown_arguments(tool: str, arguments: dict[str, Any], schema: dict[str, Any]) -> UnknownArgument | None:
    """The error for arguments the tool does not take, or None."""
    known = list(schema.get("properties", {}))
    extra = [k for k in arguments if k not in known]
    if not extra:
        return None
    near = [(k, c) for k in extra if (c := closest(k, known))]
    mean = (f"Did you mean `{near[0][1]}`? " if len(near) == 1 else
            "Did you mean " + ", ".join(f"`{c}` for `{k}`" for k, c in near) + "? " if near else "")
    return UnknownArgument(
        f"{tool} has no argument {', '.join(f'`{k}`' for k in extra)}",
        given=", ".join(f"{k}={_shown(arguments[k])}" for k in extra),
        fix=mean + f"Its arguments: {', '.join(known)}.")


def invalid_arguments(exc: ValidationError, arguments: dict[str, Any], schema: dict[str, Any]) -> ArgumentError:
    """pydantic's errors as one line: per argument, what is wrong, what was given, what is expected."""
    by_argument: dict[str, str] = {}
    for err in exc.errors(include_url=False):
        loc = [p for p in err.get("loc", ()) if not (isinstance(p, str) and ("[" in p or p in _TYPE_TAGS))]
        name = str(loc[0]) if loc else "arguments"
        if name in by_argument:
            continue
        where = name + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc[1:])
        message = err.get("msg", "is invalid")
        if err.get("type") == "missing":
            by_argument[name] = f"`{where}` is required"
        else:
            by_argument[name] = f"`{where}`: {message[:1].lower()}{message[1:]}"
    names = list(by_argument)
    properties = schema.get("properties", {})
    given = "; ".join(f"{n}={_shown(arguments[n])}" for n in names if n in arguments) or None
    expected = "; ".join(f"{n}: {_expected(properties[n], schema)}" for n in names if n in properties)
    return ArgumentError("; ".join(by_argument.values()), given=given,
                         fix=f"Expected {expected}." if expected else None)


_TYPE_TAGS = {"str", "int", "float", "bool", "list", "dict", "none", "function-after", "function-plain"}


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _expected(prop: dict[str, Any], root: dict[str, Any], depth: int = 0) -> str:
    """A schema property in words: ``a list of text, or null``."""
    if "$ref" in prop:
        target = root.get("$defs", {}).get(prop["$ref"].rpartition("/")[2], {})
        fields = ", ".join(target.get("properties", {}))
        if fields or target.get("type") == "object":
            return f"an object ({fields})" if fields and depth < 2 else "an object"
        # A named type that is not an object (params' value: text, a number, ... or a list of them)
        return _expected(target, root, depth + 1) if depth < 2 else "a value"
    if "enum" in prop:
        return "one of " + ", ".join(json.dumps(v) for v in prop["enum"])
    if "const" in prop:
        return json.dumps(prop["const"])
    if "anyOf" in prop:
        return _one_of([_expected(p, root, depth + 1) for p in prop["anyOf"]])
    types = prop.get("type", [])
    words: list[str] = []
    for t in types if isinstance(types, list) else [types]:
        if t == "array":
            item = _expected(prop["items"], root, depth + 1) if "items" in prop else "a value"
            words.append(f"a list whose items are each {item};" if " or " in item.replace("true or false", "")
                         else "a list of " + _plural(item))
        else:
            words.append(_TYPE_WORDS.get(t) or t)
    text = _one_of(words) or "a value"
    if "minimum" in prop or "maximum" in prop:
        text += f" from {prop.get('minimum', '-')} to {prop.get('maximum', '-')}"
    return text


_TYPE_WORDS: dict[str, str] = {"string": "text", "integer": "an integer", "number": "a number",
                               "boolean": "true or false", "null": "null", "object": "an object"}


def _one_of(words: list[str]) -> str:
    """``a, b, or c``; after an alternative that is itself a list of alternatives (ending in ";"), the
    next one opens with "or" so the two levels read apart."""
    out = ""
    for i, word in enumerate(words):
        if i:
            out += " or " if out.endswith(";") else (", or " if i == len(words) - 1 else ", ")
        out += word
    return out.rstrip(";")


def _plural(text: str) -> str:
    return {"text": "text", "an integer": "integers", "a number": "numbers", "an object": "objects",
            "a value": "values"}.get(
        text, text.removeprefix("an ").removeprefix("a "))


class SchemaArchitectServer(MCPServer):
    """``MCPServer`` with arguments checked as sent and every expected error in the agent's one shape."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context=None):
        schema = await self._input_schema(name)
        arguments = arguments or {}
        prefix = f"Error executing tool {name}: "
        if schema is not None and (error := unknown_arguments(name, arguments, schema)) is not None:
            raise ToolError(prefix + error.for_agent())
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError) and schema is not None and cause.title.endswith("Arguments"):
                raise ToolError(prefix + invalid_arguments(cause, arguments, schema).for_agent()) from None
            if isinstance(cause, AgentError):  # raised outside agent_errors(): same shape, no crash log
                raise ToolError(prefix + redact_url(cause.for_agent())) from None
            raise

    async def list_tools(self):
        """The tools with their lean input schemas (server/results.py: no titles or null-only noise, and
        ``additionalProperties: false``); the SDK still validates arguments with the tool's own model."""
        return [tool.model_copy(update={"input_schema": input_schema(tool.input_schema)})
                for tool in await super().list_tools()]

    async def get_prompt(self, name: str, arguments: dict[str, Any] | None = None, context=None):
        from ..prompts.loader import unknown_prompt

        names = [p.name for p in await self.list_prompts()]
        if name not in names:
            raise unknown_prompt(name, names)
        return await super().get_prompt(name, arguments, context)

    async def _input_schema(self, name: str) -> dict[str, Any] | None:
        schemas = getattr(self, "_schemas", None)
        if schemas is None:
            schemas = self._schemas = {t.name: t.input_schema for t in await self.list_tools()}
        return schemas.get(name)
