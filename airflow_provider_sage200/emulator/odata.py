"""A real OData ``$filter`` parser (tokenizer + recursive descent) and evaluator, as Sage 200 accepts it.

Grammar::

    expr     := and_expr ("or" and_expr)*
    and_expr := unary ("and" unary)*
    unary    := "not" unary | "(" expr ")" | function | comparison
    function := ("contains" | "startswith" | "endswith") "(" field "," string ")"
    compare  := field ("eq" | "ne" | "gt" | "ge" | "lt" | "le") literal
    literal  := 'string' (with '' for ') | number | true | false | null | date | datetime ending in Z

Every error is an :class:`ODataError` whose message names the offending part; the server answers 400 with it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

Record = dict[str, Any]


class ODataError(ValueError):
    """An invalid query option; rendered as HTTP 400."""


# Field types: the schema of a resource maps field name -> one of these.
INT, FLOAT, STR, DATE, DATETIME, BOOL, ENUM, LIST = (
    "int",
    "float",
    "str",
    "date",
    "datetime",
    "bool",
    "enum",
    "list",
)

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<string>'(?:[^']|'')*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
    """,
    re.VERBOSE,
)
COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")
FUNCTIONS = ("contains", "startswith", "endswith")


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            if text[pos] == "'":
                raise ODataError(f"$filter: unterminated string starting at position {pos}")
            raise ODataError(f"$filter: unexpected character {text[pos]!r} at position {pos}")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    return tokens


# AST
@dataclass(frozen=True)
class Literal:
    kind: str  # string, number, date, datetime, bool, null
    value: Any


@dataclass(frozen=True)
class Compare:
    field: str
    op: str
    literal: Literal


@dataclass(frozen=True)
class Function:
    name: str
    field: str
    text: str


@dataclass(frozen=True)
class BoolOp:
    op: str  # and, or
    left: Any
    right: Any


@dataclass(frozen=True)
class Not:
    operand: Any


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise ODataError("$filter: unexpected end of expression")
        self.i += 1
        return token

    def expect(self, kind: str, what: str) -> Token:
        token = self.take()
        if token.kind != kind:
            raise ODataError(f"$filter: expected {what} at position {token.pos}, found {token.text!r}")
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "ident" and token.text.lower() == word:
            self.i += 1
            return True
        return False

    def parse(self) -> Any:
        if not self.tokens:
            raise ODataError("$filter is empty")
        node = self.expr()
        if self.peek() is not None:
            token = self.peek()
            raise ODataError(f"$filter: unexpected {token.text!r} at position {token.pos}")
        return node

    def expr(self) -> Any:
        node = self.and_expr()
        while self.keyword("or"):
            node = BoolOp("or", node, self.and_expr())
        return node

    def and_expr(self) -> Any:
        node = self.unary()
        while self.keyword("and"):
            node = BoolOp("and", node, self.unary())
        return node

    def unary(self) -> Any:
        if self.keyword("not"):
            return Not(self.unary())
        token = self.peek()
        if token is not None and token.kind == "lparen":
            self.take()
            node = self.expr()
            self.expect("rparen", "')'")
            return node
        field = self.expect("ident", "a field name")
        if field.text.lower() in FUNCTIONS:
            self.expect("lparen", f"'(' after {field.text}")
            target = self.expect("ident", "a field name").text
            self.expect("comma", "','")
            text = self.literal()
            if text.kind != "string":
                raise ODataError(f"$filter: {field.text}() needs a quoted string")
            self.expect("rparen", "')'")
            return Function(field.text.lower(), target, text.value)
        op = self.take()
        if op.kind != "ident" or op.text.lower() not in COMPARISONS:
            raise ODataError(
                f"$filter: expected an operator ({', '.join(COMPARISONS)}) after {field.text!r} at position {op.pos}"
            )
        return Compare(field.text, op.text.lower(), self.literal())

    def literal(self) -> Literal:
        token = self.take()
        if token.kind == "string":
            return Literal("string", token.text[1:-1].replace("''", "'"))
        if token.kind == "number":
            return Literal("number", float(token.text) if "." in token.text else int(token.text))
        if token.kind == "date":
            try:
                return Literal("date", date.fromisoformat(token.text))
            except ValueError:
                raise ODataError(f"$filter: {token.text!r} is not a valid date") from None
        if token.kind == "datetime":
            if not token.text.endswith("Z"):
                raise ODataError(
                    f"$filter: datetime {token.text!r} must be in UTC with a 'Z' suffix (e.g. 2026-01-02T03:04:05Z)"
                )
            try:
                return Literal(
                    "datetime", datetime.fromisoformat(token.text[:-1]).replace(tzinfo=UTC).timestamp()
                )
            except ValueError:
                raise ODataError(f"$filter: {token.text!r} is not a valid datetime") from None
        if token.kind == "ident" and token.text.lower() in ("true", "false"):
            return Literal("bool", token.text.lower() == "true")
        if token.kind == "ident" and token.text.lower() == "null":
            return Literal("null", None)
        raise ODataError(f"$filter: expected a value at position {token.pos}, found {token.text!r}")


def parse_filter(text: str) -> Any:
    """Parse a ``$filter`` expression into an AST."""
    return _Parser(text).parse()


def to_timestamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a is not None and a > b,
    "ge": lambda a, b: a is not None and a >= b,
    "lt": lambda a, b: a is not None and a < b,
    "le": lambda a, b: a is not None and a <= b,
}


def compile_filter(
    node: Any, schema: dict[str, str], enums: dict[str, list[str]]
) -> Callable[[Record], bool]:
    """Turn an AST into a predicate, checking every field and literal against the resource's schema."""
    if isinstance(node, BoolOp):
        left, right = compile_filter(node.left, schema, enums), compile_filter(node.right, schema, enums)
        if node.op == "and":
            return lambda r: left(r) and right(r)
        return lambda r: left(r) or right(r)
    if isinstance(node, Not):
        inner = compile_filter(node.operand, schema, enums)
        return lambda r: not inner(r)
    if isinstance(node, Function):
        kind = _field_type(node.field, schema)
        if kind != STR:
            raise ODataError(f"$filter: {node.name}() needs a text field; {node.field!r} is {kind}")
        needle, name = node.text.lower(), node.field
        test = {
            "contains": lambda v: needle in v,
            "startswith": lambda v: v.startswith(needle),
            "endswith": lambda v: v.endswith(needle),
        }[node.name]
        return lambda r: r.get(name) is not None and test(str(r[name]).lower())
    kind = _field_type(node.field, schema)
    value = _coerce(node.field, kind, node.literal, enums)
    compare, name = _OPS[node.op], node.field
    if node.literal.kind == "null":
        if node.op not in ("eq", "ne"):
            raise ODataError(f"$filter: null can only be compared with eq or ne ({node.field})")
        return lambda r: compare(r.get(name), None)
    # OData: a null value is not equal to any value, so `ne` holds and every other comparison fails.
    on_null = node.op == "ne"
    if kind == DATETIME:
        return lambda r: on_null if r.get(name) is None else compare(to_timestamp(r[name]), value)
    if kind == DATE:
        return lambda r: on_null if r.get(name) is None else compare(date.fromisoformat(r[name][:10]), value)
    if kind == ENUM:
        return lambda r: compare(r.get(name), value)
    if kind == STR:
        return lambda r: on_null if r.get(name) is None else compare(str(r[name]).lower(), value)
    return lambda r: compare(r.get(name), value)


def _field_type(field: str, schema: dict[str, str]) -> str:
    kind = schema.get(field)
    if kind is None:
        raise ODataError(f"$filter: unknown field {field!r}; filterable fields: {', '.join(sorted(schema))}")
    if kind == LIST:
        raise ODataError(f"$filter: {field!r} is a collection and cannot be filtered")
    return kind


def _coerce(field: str, kind: str, literal: Literal, enums: dict[str, list[str]]) -> Any:
    if literal.kind == "null":
        return None
    mismatch = ODataError(f"$filter: {field!r} is a {kind} field; {literal.value!r} is not a {kind}")
    if kind in (INT, FLOAT):
        if literal.kind != "number":
            raise mismatch
        return literal.value
    if kind == STR:
        if literal.kind != "string":
            raise ODataError(f"$filter: {field!r} is text; quote the value, e.g. {field} eq 'abc'")
        return literal.value.lower()
    if kind == BOOL:
        if literal.kind != "bool":
            raise mismatch
        return literal.value
    if kind == DATETIME:
        if literal.kind == "datetime":
            return literal.value
        if literal.kind == "date":
            return datetime(
                literal.value.year, literal.value.month, literal.value.day, tzinfo=UTC
            ).timestamp()
        raise ODataError(
            f"$filter: {field!r} is a datetime; write e.g. 2026-01-02T00:00:00Z (unquoted, UTC, Z)"
        )
    if kind == DATE:
        if literal.kind == "date":
            return literal.value
        if literal.kind == "datetime":
            return datetime.fromtimestamp(literal.value, UTC).date()
        raise ODataError(f"$filter: {field!r} is a date; write e.g. 2026-01-02 (unquoted)")
    if kind == ENUM:
        names = enums[field]
        if literal.kind != "string":
            raise ODataError(
                f"$filter: {field!r} is an enum; quote the name or number, e.g. {field} eq '{names[0]}'"
            )
        text = literal.value
        if text.isdigit() and int(text) < len(names):
            return names[int(text)]
        if text in names:
            return text
        raise ODataError(f"$filter: {text!r} is not a value of {field}; use one of {', '.join(names)}")
    raise mismatch


def id_bounds(node: Any, field: str = "id") -> tuple[float, float]:
    """Bounds ``[lo, hi]`` on ``field`` implied by the top-level ``and`` chain (for pushing scans down)."""
    lo, hi = float("-inf"), float("inf")
    for part in _conjuncts(node):
        if isinstance(part, Compare) and part.field == field and part.literal.kind in ("number", "datetime"):
            v = part.literal.value
            if part.op == "gt":
                lo = max(lo, math.floor(v) + 1 if field == "id" else v + 1e-6)
            elif part.op == "ge":
                lo = max(lo, v)
            elif part.op == "lt":
                hi = min(hi, math.ceil(v) - 1 if field == "id" else v - 1e-6)
            elif part.op == "le":
                hi = min(hi, v)
            elif part.op == "eq":
                lo, hi = max(lo, v), min(hi, v)
    return lo, hi


def only_bounds(node: Any, field: str = "id") -> bool:
    """True when the filter is nothing but numeric comparisons of ``field`` joined by ``and``.

    Then :func:`id_bounds` says exactly which records match, so a scan of that range needs no predicate.
    """
    return all(
        isinstance(part, Compare)
        and part.field == field
        and part.op in ("gt", "ge", "lt", "le", "eq")
        and part.literal.kind == "number"
        for part in _conjuncts(node)
    )


def _conjuncts(node: Any) -> list[Any]:
    if isinstance(node, BoolOp) and node.op == "and":
        return _conjuncts(node.left) + _conjuncts(node.right)
    return [node]
