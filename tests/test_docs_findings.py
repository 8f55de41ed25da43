"""docs/findings.md documents every finding id and drift kind the code can emit, and nothing else.

The ids are collected from the source of tools/ and server/ (parsed with ``ast``, never imported for
this): the rule argument of every call that makes a finding (``Finding(rule=...)``,
``QueryRefused("...")`` and the helpers that forward a rule id), plus the ``DriftKind`` Literal.
The lint rules (``RuleId``) are left out: docs/rules.md covers them (tests/test_docs_rules.py).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import get_args

from schema_architect.tools.drift import DriftKind
from schema_architect.tools.spec.lint import RuleId

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "findings.md"
SOURCES = ("tools", "server")

# Calls that make a finding, by the called name (function, class or method), and which positional
# argument holds the rule id (None: only ever passed as rule=...). A keyword rule=... counts for all.
EMITTERS: dict[str, int | None] = {
    "Finding": None,        # tools/schema/findings.py
    "QueryRefused": 0,      # tools/sqlsafe/errors.py: QueryRefused(rule, message, fix)
    "QueryFailed": 0,       # its subclass (run-time failures), same signature
    "_refuse_at": 2,        # tools/sqlsafe/checker.py: _refuse_at(sql, node, rule, message, fix)
    "refuse": 1,            # tools/sqlsafe/checker.py: StaticChecks.refuse(node, rule, message, fix)
    "warn": 0,              # tools/spec/reader/document.py: _Reader.warn(rule, line, message)
    "_finding": 0,          # tools/explain_indexes/: _finding(rule, severity, message, ...)
}

# Calls that take rule=... but do not make a finding.
NOT_FINDINGS = {
    "AppliedRule",  # tools/propose_table/design.py: which design convention propose_table applied, not a problem
}

# Rule arguments that are not literal strings, by (file, expression): the ids each can produce.
DYNAMIC: dict[tuple[str, str], tuple[str, ...]] = {
    # lint_schema builds each finding from its registered rule: the RuleId Literal, in docs/rules.md.
    ("tools/spec/lint/__init__.py", "r.id"): (),
}

KEBAB = re.compile(r"[a-z]+(-[a-z]+)*")
# Any string literal that looks like one of these families' ids must be an id the scan found.
FAMILY_LITERAL = re.compile(r"(spec|models|sql)-[a-z]+(-[a-z]+)*")
ANCHOR = re.compile(r"^### (\S+) \{#([a-z0-9-]+)\}$", re.MULTILINE)


def _callee(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


class _Scan(ast.NodeVisitor):
    def __init__(self, file: str) -> None:
        self.file = file
        self.functions: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
        self.classes: list[str] = []
        self.ids: set[str] = set()
        self.dynamic: set[tuple[str, str]] = set()
        self.problems: list[str] = []
        self.literals: set[str] = set()

    def _name(self, function) -> str:
        """How callers name a function: a constructor by its class."""
        return self.classes[-1] if function.name == "__init__" and self.classes else function.name

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.classes.append(node.name)
        self.generic_visit(node)
        self.classes.pop()

    def visit_FunctionDef(self, node) -> None:
        params = [a.arg for a in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs)]
        if "rule" in params and self._name(node) not in EMITTERS:
            self.problems.append(f"{self.file}:{node.lineno}: {self._name(node)}() takes a rule id; "
                                 "add it to EMITTERS")
        self.functions.append(node)
        self.generic_visit(node)
        self.functions.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and FAMILY_LITERAL.fullmatch(node.value):
            self.literals.add(node.value)

    def visit_Call(self, node: ast.Call) -> None:
        name = _callee(node)
        keyword = next((k.value for k in node.keywords if k.arg == "rule"), None)
        if name in EMITTERS:
            index = EMITTERS[name]
            arg = keyword
            if arg is None and index is not None and len(node.args) > index:
                arg = node.args[index]
            if arg is None:
                self.problems.append(f"{self.file}:{node.lineno}: {name}(...) without a rule argument")
            else:
                self._resolve(arg, node.lineno)
        elif keyword is not None and name not in NOT_FINDINGS:
            self.problems.append(f"{self.file}:{node.lineno}: {name}(rule=...): add {name} to EMITTERS "
                                 "or NOT_FINDINGS")
        self.generic_visit(node)

    def _resolve(self, expr: ast.expr, line: int) -> None:
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            self.ids.add(expr.value)
            return
        if isinstance(expr, ast.IfExp):
            self._resolve(expr.body, line)
            self._resolve(expr.orelse, line)
            return
        if isinstance(expr, ast.Name) and self.functions:
            function = self.functions[-1]
            params = {a.arg for a in (*function.args.posonlyargs, *function.args.args,
                                      *function.args.kwonlyargs)}
            if expr.id == "rule" and "rule" in params and self._name(function) in EMITTERS:
                return  # an emitter forwarding its own rule parameter: its callers are scanned
            values = list(_assigned(function, expr.id))
            if values and expr.id not in params:
                for value in values:
                    self._resolve(value, line)
                return
        key = (self.file, ast.unparse(expr))
        if key in DYNAMIC:
            self.dynamic.add(key)
            self.ids.update(DYNAMIC[key])
        else:
            self.problems.append(f"{self.file}:{line}: the rule id {key[1]!r} is built at run time; "
                                 "list what it can be in DYNAMIC")


def _assigned(function: ast.AST, name: str):
    """The values assigned to ``name`` in ``function`` (``x = ...`` and ``x, y = ..., ...``)."""
    for node in ast.walk(function):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            if isinstance(target, ast.Name) and target.id == name:
                yield node.value
            elif isinstance(target, ast.Tuple):
                for i, element in enumerate(target.elts):
                    if isinstance(element, ast.Name) and element.id == name:
                        yield node.value.elts[i] if isinstance(node.value, ast.Tuple) else node.value


def scan() -> _Scan:
    total = _Scan("")
    for folder in SOURCES:
        for path in sorted((REPO / folder).rglob("*.py")):
            file = path.relative_to(REPO).as_posix()
            one = _Scan(file)
            one.visit(ast.parse(path.read_text(encoding="utf-8"), filename=file))
            total.ids |= one.ids
            total.dynamic |= one.dynamic
            total.problems += one.problems
            total.literals |= one.literals
    return total


def emitted_ids() -> set[str]:
    """Every finding id and drift kind the code can emit, lint rule ids excluded."""
    return (scan().ids - set(get_args(RuleId))) | set(get_args(DriftKind))


def documented_ids() -> list[str]:
    return [anchor for _, anchor in ANCHOR.findall(DOC.read_text(encoding="utf-8"))]


def test_scan_understands_every_rule_argument() -> None:
    result = scan()
    assert not result.problems, "\n".join(result.problems)
    stale = set(DYNAMIC) - result.dynamic
    assert not stale, f"DYNAMIC lists rule expressions the code no longer has: {sorted(stale)}"
    bad = sorted(i for i in result.ids if not KEBAB.fullmatch(i))
    assert not bad, f"rule ids that are not kebab-case: {bad}"
    unseen = sorted(result.literals - result.ids)
    assert not unseen, (f"string literals that look like finding ids but reach no finding the scan "
                        f"sees: {unseen}; teach the scan how they are emitted")


def test_every_emitted_id_is_documented_and_no_stale_ids() -> None:
    emitted, documented = emitted_ids(), set(documented_ids())
    missing, stale = sorted(emitted - documented), sorted(documented - emitted)
    assert not missing and not stale, (
        f"docs/findings.md is out of date.\n  missing (add a '### id {{#id}}' section): {missing}\n"
        f"  stale (the code no longer emits them): {stale}")


def test_findings_doc_headings_are_unique_and_match_anchors() -> None:
    headings = ANCHOR.findall(DOC.read_text(encoding="utf-8"))
    assert [h for h, a in headings if h != a] == [], "each '### id {#id}' heading names its own anchor"
    anchors = [a for _, a in headings]
    duplicates = sorted({a for a in anchors if anchors.count(a) > 1})
    assert not duplicates, f"ids documented more than once: {duplicates}"
    overlap = sorted(set(anchors) & set(get_args(RuleId)))
    assert not overlap, f"lint rule ids belong in docs/rules.md, not docs/findings.md: {overlap}"
