"""A parsed expression to a checked, compiled function. Every node is checked against the
whitelist *before anything runs*; the checked tree is rewritten so that names become context
lookups and costly operations calls to the bounded helpers, constant parts are computed now,
and the result is compiled once into a function of the context."""

from __future__ import annotations

import ast
import functools
import operator
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NoReturn

from .errors import ExpressionError
from .functions import FUNCTIONS, IMPLEMENTATIONS, SIGNATURES
from .limits import MAX_DEPTH, MAX_INT_BITS, MAX_NODES, MAX_SIZE
from .messages import SYMBOLS, failure_message
from .operations import attr, container, item, modulo, mul, power, slice_of
from .parsing import line_starts, parse
from .text import bounded_text, clip

Function = Callable[[Mapping[str, Any]], Any]
"""A compiled expression: the context (names → values) to the value."""

_CALLS_ALLOWED: Final = ", ".join(FUNCTIONS)

_GLOBALS: Final[dict[str, Any]] = {
    "__builtins__": {},
    "_attr": attr,
    "_item": item,
    "_slice": slice_of,
    "_mul": mul,
    "_pow": power,
    "_mod": modulo,
    "_container": container,
    "_text": bounded_text,
    **{f"_f_{name}": function for name, function in IMPLEMENTATIONS.items()},
}
"""What compiled expressions see besides their context: the helpers, under names a user cannot
write (they start with ``_``), and no builtins at all."""

_FOLD: Final[Mapping[type, Callable[..., Any]]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: modulo,
    ast.Pow: power,
    ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_,
    ast.BitXor: operator.xor,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Invert: operator.invert,
    ast.Not: operator.not_,
}


Span = tuple[int | None, int | None, int | None, int | None]
"""A source position as compiled code reports it: line, end line, column, end column."""
Site = tuple[ast.AST, int | None, int | None]
"""The expression node at a position, with its first and past-the-end columns in the source."""

_NEVER_MAPPINGS: Final[Mapping[type, str]] = {
    ast.Constant: "a literal",
    ast.List: "a list",
    ast.Tuple: "a tuple",
    ast.Set: "a set",
    ast.JoinedStr: "an f-string",
    ast.BinOp: "the result of an operator",
    ast.UnaryOp: "the result of an operator",
    ast.Compare: "a comparison",
}

_REFUSED: Final[Mapping[type, str]] = {
    ast.Lambda: "lambdas are not supported",
    ast.ListComp: "comprehensions are not supported",
    ast.SetComp: "comprehensions are not supported",
    ast.DictComp: "comprehensions are not supported",
    ast.GeneratorExp: "generator expressions are not supported",
    ast.NamedExpr: "assignments (:=) are not supported",
    ast.Await: "'await' is not supported",
    ast.Yield: "'yield' is not supported",
    ast.YieldFrom: "'yield' is not supported",
    ast.Starred: "unpacking with '*' is not supported",
    ast.Slice: "a slice is only allowed inside [...]",
    ast.FormattedValue: "a format field is only allowed inside an f-string",
}


def _singleton(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and (
        node.value is None or node.value is True or node.value is False
    )


class _Compiler:
    """Checks a parsed expression against the whitelist and rewrites it into the tree that is
    compiled: names become context lookups, dotted access and costly operators become calls to
    the bounded helpers, constant subexpressions are computed (and refused) now. Every new node
    carries the position of the node it replaces, which is how a runtime failure finds its
    column."""

    def __init__(self, source: str, text: str, lead: int) -> None:
        self.source = source
        self.lead = lead
        starts = line_starts(text)
        ends = [*starts[1:], len(text)]
        self.starts = starts
        self.lines = [text[start:end].encode() for start, end in zip(starts, ends, strict=True)]
        self.names: set[str] = set()
        self.spans: dict[Span, Site] = {}
        self.operands: dict[ast.AST, tuple[ast.expr, ...]] = {}

    # positions

    def column(self, line: int | None, offset: int | None) -> int | None:
        """The 1-based character position in the source of a (line, UTF-8 byte) position."""
        if line is None or offset is None or not 1 <= line <= len(self.lines):
            return None
        chars = len(self.lines[line - 1][:offset].decode("utf-8", errors="ignore"))
        return self.lead + self.starts[line - 1] + chars + 1

    def range(self, node: ast.AST) -> tuple[int | None, int | None]:
        start = self.column(getattr(node, "lineno", None), getattr(node, "col_offset", None))
        end = self.column(getattr(node, "end_lineno", None), getattr(node, "end_col_offset", None))
        return start, end

    def fail(self, node: ast.AST, message: str) -> NoReturn:
        start, end = self.range(node)
        raise ExpressionError(message, self.source, start, end)

    def fail_name(self, node: ast.Attribute, message: str) -> NoReturn:
        """Refuse the ``.name`` part of ``a.name`` (at the name, not at ``a``)."""
        end = self.column(node.end_lineno, node.end_col_offset)
        start = None if end is None else max(1, end - len(node.attr))
        raise ExpressionError(message, self.source, start, end)

    @staticmethod
    def snippet(node: ast.AST) -> str:
        return clip(ast.unparse(node), 40)

    # building nodes at the position of the node they replace

    @staticmethod
    def at(new: ast.expr, old: ast.AST) -> ast.expr:
        return ast.copy_location(new, old)

    def const(self, value: Any, old: ast.AST) -> ast.expr:
        return self.at(ast.Constant(value=value), old)

    def helper(self, name: str, args: list[ast.expr], old: ast.AST) -> ast.expr:
        function = self.at(ast.Name(id=name, ctx=ast.Load()), old)
        return self.at(ast.Call(func=function, args=args, keywords=[]), old)

    def fold(self, node: ast.AST, function: Callable[..., Any], *values: Any) -> ast.expr:
        try:
            result = function(*values)
        except Exception as error:
            operands = [functools.partial(_identity, value) for value in values]
            self.fail(node, failure_message(error, node, operands))
        return self.const(result, node)

    # the whitelist

    def expr(self, node: ast.expr) -> ast.expr:
        start, end = self.range(node)
        key = (
            getattr(node, "lineno", None),
            getattr(node, "end_lineno", None),
            getattr(node, "col_offset", None),
            getattr(node, "end_col_offset", None),
        )
        self.spans[key] = (node, start, end)
        visit = getattr(self, f"visit_{type(node).__name__}", None)
        if visit is None:
            self.fail(node, _REFUSED.get(type(node), f"{type(node).__name__} is not supported"))
        result: ast.expr = visit(node)
        return result

    def private(self, name: str) -> str:
        return f"names starting with '_' are not allowed ({name!r})"

    def visit_Constant(self, node: ast.Constant) -> ast.expr:
        value = node.value
        if isinstance(value, bool | str | float) or value is None:
            return node
        if isinstance(value, int):
            if value.bit_length() > MAX_INT_BITS:
                self.fail(node, f"integer literal is too large (more than {MAX_INT_BITS:,} bits)")
            return node
        if isinstance(value, bytes):
            self.fail(node, "bytes literals are not supported")
        if isinstance(value, complex):
            self.fail(node, "complex numbers are not supported")
        self.fail(node, f"{ast.unparse(node)!r} is not supported")

    def visit_Name(self, node: ast.Name) -> ast.expr:
        if node.id.startswith("_"):
            self.fail(node, self.private(node.id))
        self.names.add(node.id)
        context = self.at(ast.Name(id="_c", ctx=ast.Load()), node)
        lookup = ast.Subscript(value=context, slice=self.const(node.id, node), ctx=ast.Load())
        return self.at(lookup, node)

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        base = self.expr(node.value)  # first, so that the leftmost offence is the one reported
        if node.attr.startswith("_"):
            self.fail_name(node, self.private(node.attr))
        what = _NEVER_MAPPINGS.get(type(node.value))
        if what is not None:
            self.fail_name(
                node,
                "dotted names read mapping keys only (like battery.level);"
                f" {what} has no key {node.attr!r}",
            )
        text = self.snippet(node.value)
        return self.helper(
            "_attr", [base, self.const(node.attr, node), self.const(text, node)], node
        )

    def visit_Subscript(self, node: ast.Subscript) -> ast.expr:
        base = self.expr(node.value)
        text = self.const(self.snippet(node.value), node)
        index = node.slice
        if isinstance(index, ast.Slice):
            bounds = [
                self.expr(part) if part is not None else self.const(None, node)
                for part in (index.lower, index.upper, index.step)
            ]
            return self.helper("_slice", [base, *bounds, text], node)
        if isinstance(index, ast.Tuple) and any(isinstance(e, ast.Slice) for e in index.elts):
            self.fail(index, "multi-dimensional slices are not supported")
        return self.helper("_item", [base, self.expr(index), text], node)

    def visit_List(self, node: ast.List) -> ast.expr:
        return self.at(ast.List(elts=[self.expr(e) for e in node.elts], ctx=ast.Load()), node)

    def visit_Tuple(self, node: ast.Tuple) -> ast.expr:
        return self.at(ast.Tuple(elts=[self.expr(e) for e in node.elts], ctx=ast.Load()), node)

    def visit_Set(self, node: ast.Set) -> ast.expr:
        elements = [self.expr(e) for e in node.elts]
        self.operands[node] = tuple(elements)
        return self.at(ast.Set(elts=elements), node)

    def visit_Dict(self, node: ast.Dict) -> ast.expr:
        keys: list[ast.expr | None] = []
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:
                self.fail(value, "unpacking with '**' is not supported")
            keys.append(self.expr(key))
        values = [self.expr(value) for value in node.values]
        self.operands[node] = tuple(key for key in keys if key is not None)
        return self.at(ast.Dict(keys=keys, values=values), node)

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        kind = type(node.op)
        if kind not in _FOLD:
            self.fail(node, f"the operator '{SYMBOLS[kind]}' is not supported")
        left, right = self.expr(node.left), self.expr(node.right)
        if isinstance(left, ast.Constant) and isinstance(right, ast.Constant):
            return self.fold(node, _FOLD[kind], left.value, right.value)
        if kind is ast.Mod and (
            isinstance(left, ast.JoinedStr)
            or (isinstance(left, ast.Constant) and isinstance(left.value, str))
        ):
            self.fail(node, "'%' formatting of strings is not supported; use an f-string or '+'")
        if kind is ast.Mult:
            self.check_repeat(node, left, right)
            self.check_repeat(node, right, left)
        self.operands[node] = (left, right)
        name = {ast.Mult: "_mul", ast.Pow: "_pow", ast.Mod: "_mod"}.get(kind)
        if name is not None:
            return self.helper(name, [left, right], node)
        return self.at(ast.BinOp(left=left, op=node.op, right=right), node)

    def check_repeat(self, node: ast.BinOp, display: ast.expr, times: ast.expr) -> None:
        """``[a, b] * 10**6`` is refused now: its size is known without running it."""
        if (
            isinstance(display, ast.List | ast.Tuple)
            and isinstance(times, ast.Constant)
            and isinstance(times.value, int)
            and times.value * len(display.elts) > MAX_SIZE
        ):
            self.fail(node, f"'*' result is too large (more than {MAX_SIZE:,} items)")

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        operand = self.expr(node.operand)
        if isinstance(operand, ast.Constant):
            return self.fold(node, _FOLD[type(node.op)], operand.value)
        self.operands[node] = (operand,)
        return self.at(ast.UnaryOp(op=node.op, operand=operand), node)

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.expr:
        return self.at(ast.BoolOp(op=node.op, values=[self.expr(v) for v in node.values]), node)

    def visit_IfExp(self, node: ast.IfExp) -> ast.expr:
        test, body, orelse = self.expr(node.test), self.expr(node.body), self.expr(node.orelse)
        return self.at(ast.IfExp(test=test, body=body, orelse=orelse), node)

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        operands = [node.left, *node.comparators]
        for index, op in enumerate(node.ops):
            if isinstance(op, ast.Is | ast.IsNot) and not (
                _singleton(operands[index]) or _singleton(operands[index + 1])
            ):
                self.fail(
                    node,
                    f"'{SYMBOLS[type(op)]}' compares with None, True or False only;"
                    " use '==' or '!=' for other values",
                )
        rewritten = [self.expr(operand) for operand in operands]
        for index, op in enumerate(node.ops):
            right = operands[index + 1]
            literal = isinstance(right, ast.List | ast.Tuple | ast.Set | ast.Dict) or (
                isinstance(right, ast.Constant) and isinstance(right.value, str)
            )
            if isinstance(op, ast.In | ast.NotIn) and not literal:
                text = self.const(self.snippet(right), right)
                rewritten[index + 1] = self.helper(
                    "_container", [rewritten[index + 1], text], right
                )
        self.operands[node] = tuple(rewritten)
        compare = ast.Compare(left=rewritten[0], ops=node.ops, comparators=rewritten[1:])
        return self.at(compare, node)

    def visit_Call(self, node: ast.Call) -> ast.expr:
        function = node.func
        if not isinstance(function, ast.Name):
            self.expr(function)  # a more precise refusal if there is one (a lambda, a '_' name)
            self.fail(
                function,
                f"calls are limited to {_CALLS_ALLOWED} (not {self.snippet(function)!r})",
            )
        name = function.id
        signature = SIGNATURES.get(name)
        if signature is None:
            self.fail(function, f"calls are limited to {_CALLS_ALLOWED} (not {name!r})")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                self.fail(arg, "unpacking with '*' is not supported")
        for keyword in node.keywords:
            if keyword.arg is None:
                self.fail(keyword, "unpacking with '**' is not supported")
            if keyword.arg not in signature.keywords:
                allowed = ", ".join(f"{k}=" for k in sorted(signature.keywords))
                self.fail(
                    keyword,
                    f"{name}() accepts no keyword argument {keyword.arg!r}"
                    + (f" (only {allowed})" if allowed else ""),
                )
        count = len(node.args)
        if count < signature.least or (signature.most is not None and count > signature.most):
            if signature.most is None:
                expected = f"at least {signature.least} argument"
            elif signature.least == signature.most:
                expected = f"exactly {signature.least} argument"
            else:
                expected = f"{signature.least} to {signature.most} argument"
            plural = "" if (signature.most or signature.least) == 1 else "s"
            self.fail(node, f"{name}() takes {expected}{plural} ({count} given)")
        if node.keywords and name in ("min", "max") and count != 1:
            self.fail(node, f"{name}() accepts default= only with a single collection")
        args = [self.expr(arg) for arg in node.args]
        self.operands[node] = tuple(args)
        keywords = [ast.keyword(arg=k.arg, value=self.expr(k.value)) for k in node.keywords]
        target = self.at(ast.Name(id=f"_f_{name}", ctx=ast.Load()), function)
        return self.at(ast.Call(func=target, args=args, keywords=keywords), node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.expr:
        values: list[ast.expr] = []
        for part in node.values:
            if isinstance(part, ast.Constant):
                values.append(part)
                continue
            assert isinstance(part, ast.FormattedValue)
            if part.conversion != -1 or part.format_spec is not None:
                self.fail(
                    part,
                    "f-string fields are plain {expression} only:"
                    " no conversions (!r), format specs (:...) or '='",
                )
            text = self.helper("_text", [self.expr(part.value)], part.value)
            values.append(
                self.at(ast.FormattedValue(value=text, conversion=-1, format_spec=None), part)
            )
        return self.at(ast.JoinedStr(values=values), node)


def _measure(source: str, body: ast.expr, compiler: _Compiler) -> None:
    """Refuse a tree over the node or depth limit before anything recursive looks at it."""
    count = 0
    stack: list[tuple[ast.AST, int]] = [(body, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, ast.expr):
            count += 1
            if count > MAX_NODES:
                raise ExpressionError(
                    f"expression is too large (more than {MAX_NODES} elements)", source
                )
            if depth > MAX_DEPTH:
                compiler.fail(
                    node, f"expression is nested too deeply (more than {MAX_DEPTH} levels)"
                )
            depth += 1
        stack.extend((child, depth) for child in ast.iter_child_nodes(node))


def _identity(value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class Compiled:
    """A checked expression: its function, the names it reads, and what a failure needs to be
    explained (the node at each position of the compiled code, and each node's operands)."""

    function: Function
    names: frozenset[str]
    spans: Mapping[Span, Site]
    operands: Mapping[ast.AST, tuple[ast.expr, ...]]


def compile_source(source: str) -> Compiled:
    """Check ``source`` against the language and compile it; raises :class:`ExpressionError`."""
    tree, text, lead = parse(source)
    compiler = _Compiler(source, text, lead)
    _measure(source, tree.body, compiler)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        body = compiler.expr(tree.body)
        try:
            (function,) = compile_functions([body])
        except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
            raise ExpressionError(f"cannot compile: {clip(str(error), 200)}", source) from None
    return Compiled(function, frozenset(compiler.names), compiler.spans, compiler.operands)


def compile_functions(bodies: Sequence[ast.expr]) -> tuple[Function, ...]:
    """One function of the context per checked ``body``, compiled together: the expression
    itself, or the operands of a node whose failure is being explained."""
    arguments = ast.arguments(
        posonlyargs=[], args=[ast.arg(arg="_c")], kwonlyargs=[], kw_defaults=[], defaults=[]
    )
    lambdas: list[ast.expr] = [
        ast.copy_location(ast.Lambda(args=arguments, body=body), body) for body in bodies
    ]
    wrapper = ast.fix_missing_locations(ast.Expression(body=ast.Tuple(lambdas, ast.Load())))
    code = compile(wrapper, "<expression>", "eval")
    return eval(code, _GLOBALS)  # type: ignore[no-any-return]  # only the helpers in scope
