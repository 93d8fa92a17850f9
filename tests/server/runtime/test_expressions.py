"""The safe expression language: what it allows, what it refuses (with the message and the
column a user sees), how it fails at run time, and the bounds that keep every evaluation cheap.

Every escape attempt must fail when the expression is compiled, before anything runs; the
runtime bounds are exercised with inputs that would hang or exhaust memory if a bound were
missing (the suite's timeout is the backstop, no test asserts a duration).
"""

from __future__ import annotations

import pickle
import warnings
from collections import ChainMap, OrderedDict, deque
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import pytest

from canopy.server.runtime.expressions import (
    FUNCTIONS,
    MAX_DEPTH,
    MAX_INT_BITS,
    MAX_NODES,
    MAX_SIZE,
    MAX_SOURCE_LENGTH,
    Expression,
    ExpressionError,
    HitCondition,
    Template,
    flatten_blackboard,
)

CALLS = (
    "calls are limited to len, abs, min, max, round, int, float, str, bool, sum, any, all, sorted"
)


def context() -> dict[str, Any]:
    return {
        "battery": {"level": 15, "volts": 12.5},
        "robot": {"pose": {"x": 1.5, "y": -2.0}, "my-key": "dash"},
        "status": "RUNNING",
        "tick": 10,
        "visits": 3,
        "xs": [1, 2, 3],
        "targets": ("dock", "home"),
        "tags": {"a", "b"},
        "name": "héllo",
        "nothing": None,
        "flag": True,
        "ratio": 0.25,
    }


def evaluate(source: str, names: Mapping[str, Any] | None = None) -> Any:
    return Expression.compile(source).evaluate(context() if names is None else names)


def compile_error(source: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        Expression.compile(source)
    return caught.value


def runtime_error(source: str, names: Mapping[str, Any] | None = None) -> ExpressionError:
    expression = Expression.compile(source)
    with pytest.raises(ExpressionError) as caught:
        expression.evaluate(context() if names is None else names)
    return caught.value


# -- what the language allows -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # literals and displays
        ("42", 42),
        ("-7", -7),
        ("0x1F", 31),
        ("2.5", 2.5),
        ("1e3", 1000.0),
        ("'text'", "text"),
        ('"a" "b"', "ab"),
        ("True", True),
        ("False", False),
        ("None", None),
        ("[1, 'a', None]", [1, "a", None]),
        ("(1, 2)", (1, 2)),
        ("(1,)", (1,)),
        ("()", ()),
        ("{'k': 1, 'j': [2]}", {"k": 1, "j": [2]}),
        ("{}", {}),
        ("{1, 2, 2}", {1, 2}),
        # names and dotted access into mappings
        ("tick", 10),
        ("status", "RUNNING"),
        ("nothing", None),
        ("battery.level", 15),
        ("robot.pose.x", 1.5),
        ("battery", {"level": 15, "volts": 12.5}),
        ("{'k': {'j': 3}}.k.j", 3),
        ("(battery if flag else robot).level", 15),
        ("(nothing or battery).volts", 12.5),
        # subscripts and slices
        ("xs[0]", 1),
        ("xs[-1]", 3),
        ("xs[True]", 2),
        ("battery['level']", 15),
        ("robot['my-key']", "dash"),
        ("robot.pose['y']", -2.0),
        ("targets[1]", "home"),
        ("name[0]", "h"),
        ("xs[1:]", [2, 3]),
        ("xs[:-1]", [1, 2]),
        ("xs[::-1]", [3, 2, 1]),
        ("xs[::2]", [1, 3]),
        ("name[1:3]", "él"),
        ("targets[:1]", ("dock",)),
        ("xs[5:]", []),
        ("xs[tick - 9]", 2),
        ("{'k': 1}['k']", 1),
        ("[[1, 2], [3]][0][1]", 2),
        # comparisons, chained, membership, identity with singletons
        ("tick == 10", True),
        ("tick != 10", False),
        ("tick < 11", True),
        ("tick <= 10", True),
        ("tick > 10", False),
        ("tick >= 10", True),
        ("0 < tick <= 10", True),
        ("0 < tick < 5", False),
        ("1 < 2 < 3 < 4", True),
        ("'dock' in targets", True),
        ("'x' not in targets", True),
        ("2 in xs", True),
        ("'a' in tags", True),
        ("'level' in battery", True),
        ("'ll' in name", True),
        ("status in ('RUNNING', 'SUCCESS')", True),
        ("status in ['FAILURE']", False),
        ("status in {'RUNNING'}", True),
        ("'k' in {'k': 1}", True),
        ("tick in xs", False),
        ("nothing is None", True),
        ("None is nothing", True),
        ("tick is not None", True),
        ("flag is True", True),
        ("flag is not False", True),
        # boolean logic and the conditional
        ("tick > 5 and status == 'RUNNING'", True),
        ("tick > 50 or status == 'RUNNING'", True),
        ("tick > 50 or nothing", None),
        ("xs and tick", 10),
        ("not xs", False),
        ("not nothing", True),
        ("'big' if tick > 5 else 'small'", "big"),
        ("'big' if tick > 50 else 'small'", "small"),
        # arithmetic
        ("tick + 1", 11),
        ("tick - 11", -1),
        ("tick * 3", 30),
        ("tick / 4", 2.5),
        ("tick // 3", 3),
        ("tick % 3", 1),
        ("-tick % 3", 2),
        ("tick % 2.5", 0.0),
        ("tick ** 2", 100),
        ("2 ** -1", 0.5),
        ("ratio ** 0.5", 0.5),
        ("-tick", -10),
        ("+tick", 10),
        ("~tick", -11),
        ("tick & 3", 2),
        ("tick | 1", 11),
        ("tick ^ 2", 8),
        ("tags | {'c'}", {"a", "b", "c"}),
        ("tags - {'a'}", {"b"}),
        ("tags & {'a', 'z'}", {"a"}),
        ("status + '!'", "RUNNING!"),
        ("xs + [4]", [1, 2, 3, 4]),
        ("xs * 2", [1, 2, 3, 1, 2, 3]),
        ("2 * targets", ("dock", "home", "dock", "home")),
        ("'ab' * 3", "ababab"),
        ("'-' * tick", "----------"),
        ("xs * 0", []),
        ("xs * -1", []),
        ("flag * 2", 2),
        ("ratio * 4", 1.0),
        ("(tick > 3) + (tick > 4)", 2),
        ("2 ** 10 * 3 - 1", 3071),
        # f-strings with plain fields
        ("f'{tick} ticks'", "10 ticks"),
        ("f'{battery.level}% at {robot.pose.x}'", "15% at 1.5"),
        ("f'{xs}'", "[1, 2, 3]"),
        ("f'{nothing}'", "None"),
        ("f'{{literal}} {status}'", "{literal} RUNNING"),
        ("f'{f\"{tick}\"}'", "10"),
    ],
)
def test_allowed_constructs(source: str, expected: Any) -> None:
    result = evaluate(source)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("len(xs)", 3),
        ("len(name)", 5),
        ("len(battery)", 2),
        ("len({})", 0),
        ("abs(-3)", 3),
        ("abs(robot.pose.y)", 2.0),
        ("min(xs)", 1),
        ("min(3, 1, 2)", 1),
        ("min([], default=0)", 0),
        ("min(xs, default=0)", 1),
        ("max(xs)", 3),
        ("max('b', 'a')", "b"),
        ("max(tags)", "b"),
        ("max({}, default=None)", None),
        ("round(2.567)", 3),
        ("round(2.567, 2)", 2.57),
        ("round(1234, -2)", 1200),
        ("int(2.9)", 2),
        ("int('42')", 42),
        ("int('ff', 16)", 255),
        ("int(flag)", 1),
        ("int()", 0),
        ("float('1.5')", 1.5),
        ("float(tick)", 10.0),
        ("float('inf') > 1e308", True),
        ("float()", 0.0),
        ("str(tick)", "10"),
        ("str(nothing)", "None"),
        ("str(xs)", "[1, 2, 3]"),
        ("str({'a': [1, (2,)], 'b': {3}})", "{'a': [1, (2,)], 'b': {3}}"),
        ("str(())", "()"),
        ("str('x')", "x"),
        ("str()", ""),
        ("bool(xs)", True),
        ("bool([])", False),
        ("bool()", False),
        ("sum(xs)", 6),
        ("sum(xs, 10)", 16),
        ("sum([0.5, True])", 1.5),
        ("sum([])", 0),
        ("any([0, nothing, 3])", True),
        ("any([])", False),
        ("all(xs)", True),
        ("all([1, 0])", False),
        ("sorted([3, 1, 2])", [1, 2, 3]),
        ("sorted(xs, reverse=True)", [3, 2, 1]),
        ("sorted(tags)", ["a", "b"]),
        ("sorted(battery)", ["level", "volts"]),
        ("sorted(name)", ["h", "l", "l", "o", "é"]),
        ("len(sorted(xs)) == len(xs)", True),
        ("max(abs(robot.pose.y), battery.level / 10)", 2.0),
    ],
)
def test_whitelisted_functions(source: str, expected: Any) -> None:
    result = evaluate(source)
    assert result == expected
    assert type(result) is type(expected)


def test_every_documented_function_is_callable() -> None:
    assert tuple(FUNCTIONS) == (
        "len",
        "abs",
        "min",
        "max",
        "round",
        "int",
        "float",
        "str",
        "bool",
        "sum",
        "any",
        "all",
        "sorted",
    )
    for name, description in FUNCTIONS.items():
        assert description.startswith(f"{name}(")
        Expression.compile(f"{name}(xs)")  # every one takes one positional argument


def test_names_are_the_top_level_names_read() -> None:
    expression = Expression.compile('battery.level < 20 and status == "RUNNING"')
    assert expression.names == frozenset({"battery", "status"})
    assert expression.source == 'battery.level < 20 and status == "RUNNING"'
    assert Expression.compile("len(xs) + max(a, b.c['d'])").names == {"xs", "a", "b"}
    assert Expression.compile("f'{tick}' if flag else x[y]").names == {"tick", "flag", "x", "y"}
    assert Expression.compile("1 + 2").names == frozenset()
    assert Expression.compile("sorted(xs, reverse=desc)").names == {"xs", "desc"}


def test_leading_blanks_and_line_breaks_inside_brackets() -> None:
    assert evaluate("   tick + 1  ") == 11
    assert evaluate("\n\ttick") == 10
    assert evaluate("(tick +\n 1)") == 11
    assert evaluate("[1,\r\n 2]") == [1, 2]


def test_function_names_are_not_values_and_context_names_may_shadow_them() -> None:
    assert str(runtime_error("len")) == "column 1: unknown name 'len'"
    assert str(runtime_error("print")) == "column 1: unknown name 'print'"
    names = {"len": 4, "sorted": "yes", "xs": [1]}
    assert evaluate("len + 1", names) == 5
    assert evaluate("len(xs) + len", names) == 5
    assert evaluate("sorted", names) == "yes"


def test_contexts_are_any_mapping() -> None:
    expression = Expression.compile("battery.level + tick")
    base = context()
    assert expression.evaluate(ChainMap({"tick": 100}, base)) == 115
    assert expression.evaluate(MappingProxyType(base)) == 25

    class Lazy(Mapping[str, Any]):
        def __init__(self) -> None:
            self.asked: list[str] = []

        def __getitem__(self, key: str) -> Any:
            self.asked.append(key)
            if key == "battery":
                return MappingProxyType({"level": 1})
            if key == "tick":
                return 2
            raise KeyError(key)

        def __iter__(self) -> Iterator[str]:
            return iter(("battery", "tick"))

        def __len__(self) -> int:
            return 2

    lazy = Lazy()
    assert expression.evaluate(lazy) == 3
    assert lazy.asked == ["battery", "tick"]
    assert str(runtime_error("battery.level + tik", lazy)) == "column 17: unknown name 'tik'"


def test_values_are_returned_by_reference() -> None:
    names = context()
    assert evaluate("xs", names) is names["xs"]
    assert evaluate("battery", names) is names["battery"]


def test_truthy() -> None:
    names = context()
    assert Expression.compile("battery.level < 20 and status == 'RUNNING'").truthy(names) is True
    assert Expression.compile("tick > 50").truthy(names) is False
    assert Expression.compile("xs").truthy(names) is True
    assert Expression.compile("nothing").truthy(names) is False
    assert Expression.compile("status").truthy(names) is True

    class Ambiguous:
        def __bool__(self) -> bool:
            raise ValueError("the truth value of an array is ambiguous")

    with pytest.raises(ExpressionError) as caught:
        Expression.compile("grid").truthy({"grid": Ambiguous()})
    assert caught.value.message == "the truth value of an array is ambiguous"
    with pytest.raises(ExpressionError) as caught:
        Expression.compile("grid and 1").truthy({"grid": Ambiguous()})
    assert caught.value.message == "the truth value of an array is ambiguous"
    with pytest.raises(ExpressionError, match="unknown name 'tik'"):
        Expression.compile("tik > 1").truthy(names)


def test_no_warning_escapes_from_compiling() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Expression.compile("'\\d' in name")
        Expression.compile("[1, 2][0]")
        Template.compile("{'\\d'}")


def test_repr() -> None:
    assert repr(Expression.compile("tick")) == "Expression('tick')"
    assert repr(Template.compile("t={tick}")) == "Template('t={tick}')"


# -- what the language refuses, at compile time ---------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message", "column"),
    [
        # the escape attempts
        ("().__class__", "names starting with '_' are not allowed ('__class__')", 4),
        ("__import__('os')", f"{CALLS} (not '__import__')", 1),
        ("x.__dict__", "names starting with '_' are not allowed ('__dict__')", 3),
        (
            "[].append",
            "dotted names read mapping keys only (like battery.level); a list has no key 'append'",
            4,
        ),
        ("getattr(x, 'y')", f"{CALLS} (not 'getattr')", 1),
        ("(lambda: 1)()", "lambdas are not supported", 2),
        ("[x for x in y]", "comprehensions are not supported", 1),
        ("open('f')", f"{CALLS} (not 'open')", 1),
        ("x and open('f')", f"{CALLS} (not 'open')", 7),
        ("9**9**9", "exponent 387420489 is too large (the limit is ±1,024)", 1),
        ("'a'*10**9", "'*' result is too large (more than 10,000 characters)", 1),
        ("eval('1')", f"{CALLS} (not 'eval')", 1),
        ("_x", "names starting with '_' are not allowed ('_x')", 1),
        ("tick + _x", "names starting with '_' are not allowed ('_x')", 8),
        # more escapes: the helpers and the context parameter, builtins, object graphs
        ("_c", "names starting with '_' are not allowed ('_c')", 1),
        ("_attr(x, 'a', 'b')", f"{CALLS} (not '_attr')", 1),
        ("_f_len(x)", f"{CALLS} (not '_f_len')", 1),
        ("__builtins__", "names starting with '_' are not allowed ('__builtins__')", 1),
        (
            "().__class__.__bases__[0].__subclasses__()",
            "names starting with '_' are not allowed ('__class__')",
            4,
        ),
        ("x.y.__globals__", "names starting with '_' are not allowed ('__globals__')", 5),
        ("type(x)", f"{CALLS} (not 'type')", 1),
        ("vars()", f"{CALLS} (not 'vars')", 1),
        ("globals()", f"{CALLS} (not 'globals')", 1),
        ("exec('1')", f"{CALLS} (not 'exec')", 1),
        ("compile('1', '', 'eval')", f"{CALLS} (not 'compile')", 1),
        ("range(10)", f"{CALLS} (not 'range')", 1),
        ("s.upper()", f"{CALLS} (not 's.upper')", 1),
        ("'{0.x}'.format(x)", "dotted names read mapping keys only", 9),
        ("{}.get('a')", f"{CALLS} (not '{{}}.get')", 1),
        ("f'{x}' % y", "'%' formatting of strings is not supported", 1),
        ("x[0]()", f"{CALLS} (not 'x[0]')", 1),
        ("f'{x.__class__}'", "names starting with '_' are not allowed ('__class__')", 6),
        ("f'{x!r}'", "f-string fields are plain {expression} only", 1),
        ("f'{x:>10}'", "f-string fields are plain {expression} only", 1),
        ("f'{x:{y}}'", "f-string fields are plain {expression} only", 1),
        ("f'{x=}'", "f-string fields are plain {expression} only", 1),
        ("'%s' % x", "'%' formatting of strings is not supported; use an f-string or '+'", 1),
        ("sorted(xs, key=eval)", "sorted() accepts no keyword argument 'key' (only reverse=)", 12),
        ("max(xs, key=len)", "max() accepts no keyword argument 'key' (only default=)", 9),
        ("len(x, **y)", "unpacking with '**' is not supported", 8),
        ("len(*x)", "unpacking with '*' is not supported", 5),
        ("[*x]", "unpacking with '*' is not supported", 2),
        ("{**x}", "unpacking with '**' is not supported", 4),
        ("(y := 1)", "assignments (:=) are not supported", 2),
        ("(x for x in y)", "generator expressions are not supported", 1),
        ("{x: 1 for x in y}", "comprehensions are not supported", 1),
        ("{x for x in y}", "comprehensions are not supported", 1),
        ("await x", "'await' is not supported", 1),
        ("(yield)", "'yield' is not supported", 2),
        ("x if True else __import__('os')", f"{CALLS} (not '__import__')", 16),
        # operators and literals outside the language
        ("1 << 3", "the operator '<<' is not supported", 1),
        ("x >> 1", "the operator '>>' is not supported", 1),
        ("x @ y", "the operator '@' is not supported", 1),
        ("b'x'", "bytes literals are not supported", 1),
        ("1j", "complex numbers are not supported", 1),
        ("...", "'...' is not supported", 1),
        ("x is 1", "'is' compares with None, True or False only", 1),
        ("x is not y", "'is not' compares with None, True or False only", 1),
        ("x[1:2, 3]", "multi-dimensional slices are not supported", 3),
        ("1 + 'a'", "cannot apply '+' to int and str", 1),
        ("None + 1", "cannot apply '+' to None and int", 1),
        ("1 / 0", "division by zero", 1),
        ("tick + 1 // 0", "division by zero", 8),
        ("0 ** -1", "0 cannot be raised to a negative power", 1),
        ("(-8) ** 0.5", "'**' result is not a real number", 1),
        ("10.0 ** 400", "number out of range", 1),
        ("-'a'", "cannot apply unary '-' to str", 1),
        # calls: arity and keywords
        ("len()", "len() takes exactly 1 argument (0 given)", 1),
        ("len(x, y)", "len() takes exactly 1 argument (2 given)", 1),
        ("round(1, 2, 3)", "round() takes 1 to 2 arguments (3 given)", 1),
        ("int(1, 2, 3)", "int() takes 0 to 2 arguments (3 given)", 1),
        ("str(1, 2)", "str() takes 0 to 1 argument (2 given)", 1),
        ("min()", "min() takes at least 1 argument (0 given)", 1),
        ("min(1, 2, default=3)", "min() accepts default= only with a single collection", 1),
        ("len(x, reverse=True)", "len() accepts no keyword argument 'reverse'", 8),
        ("tick and sorted(x, y)", "sorted() takes exactly 1 argument (2 given)", 10),
    ],
)
def test_refused_at_compile_time(source: str, message: str, column: int) -> None:
    error = compile_error(source)
    assert error.message.startswith(message)
    assert error.column == column
    assert error.source == source
    assert str(error) == f"column {column}: {error.message}"


def test_the_error_format_of_a_refused_call() -> None:
    error = compile_error("tick > 3 or open('f')")
    assert str(error) == f"column 13: {CALLS} (not 'open')"
    assert (error.column, error.end_column) == (13, 17)


def test_refusals_underline_the_offending_part() -> None:
    error = compile_error("battery.__class__")
    assert (error.column, error.end_column) == (9, 18)
    error = compile_error("x + (lambda: 1)")
    assert (error.column, error.end_column) == (6, 15)
    error = compile_error("sorted(xs, key=len)")
    assert (error.column, error.end_column) == (12, 19)


@pytest.mark.parametrize(
    ("source", "message", "column"),
    [
        ("x = 1", "invalid syntax", 3),
        ("tick +", "invalid syntax: the expression is incomplete", 7),
        ("tick + ", "invalid syntax: the expression is incomplete", 7),
        ("(tick", "invalid syntax: '(' was never closed", 1),
        ("tick)", "invalid syntax: unmatched ')'", 5),
        ("'abc", "invalid syntax: unterminated string literal", 1),
        ("1 if x", "invalid syntax: expected 'else' after 'if' expression", 1),
        ("'é' + é$", "invalid syntax", 8),
        ("(1,\n 2 $)", "invalid syntax", 8),
        ("  tick $", "invalid syntax", 8),
        ("import os", "invalid syntax", 1),
    ],
)
def test_syntax_errors_have_their_column(source: str, message: str, column: int) -> None:
    error = compile_error(source)
    assert error.message.startswith(message)
    assert error.column == column


def test_syntax_error_without_position() -> None:
    error = compile_error("tick\x00")
    assert error.message.startswith("invalid syntax")
    assert error.column is None
    assert str(error) == error.message


def test_empty_and_non_string_sources() -> None:
    assert compile_error("").message == "empty expression"
    assert compile_error(" \n\t ").message == "empty expression"
    assert compile_error(12).message == "an expression must be a string, not an int"  # type: ignore[arg-type]


def test_size_limits_at_compile_time() -> None:
    longest = "x" * MAX_SOURCE_LENGTH
    assert Expression.compile(longest).names == {longest}
    error = compile_error("x" * (MAX_SOURCE_LENGTH + 1))
    assert error.message == "expression is too long (2,001 characters; the limit is 2,000)"
    assert error.column is None
    assert len(error.source) <= 100

    assert evaluate("[" + ", ".join(["1"] * (MAX_NODES - 1)) + "]") == [1] * (MAX_NODES - 1)
    error = compile_error("[" + ", ".join(["1"] * MAX_NODES) + "]")
    assert error.message == f"expression is too large (more than {MAX_NODES} elements)"
    assert error.column is None
    assert evaluate(" + ".join(["1"] * MAX_DEPTH)) == MAX_DEPTH  # a chain of 49 '+'
    error = compile_error(" + ".join(["tick"] * (MAX_DEPTH + 1)))
    assert error.message == f"expression is nested too deeply (more than {MAX_DEPTH} levels)"


def test_deeply_nested_expressions_are_refused() -> None:
    error = compile_error("[" * (MAX_DEPTH + 10) + "]" * (MAX_DEPTH + 10))
    assert error.message == f"expression is nested too deeply (more than {MAX_DEPTH} levels)"
    assert error.column == MAX_DEPTH + 1
    error = compile_error("-" * 1_999 + "1")
    assert error.message.startswith("expression is nested too deeply")
    error = compile_error("(" * 300 + "1" + ")" * 300)
    assert error.message.startswith("invalid syntax")  # Python's parser has its own limit
    assert evaluate("(" * 100 + "1" + ")" * 100) == 1  # parentheses alone are not nesting
    assert evaluate("[" * MAX_DEPTH + "]" * MAX_DEPTH) == eval("[" * MAX_DEPTH + "]" * MAX_DEPTH)


def test_integer_literals_are_bounded() -> None:
    assert evaluate(hex((1 << MAX_INT_BITS) - 1)) == (1 << MAX_INT_BITS) - 1
    error = compile_error(hex(1 << MAX_INT_BITS))
    assert error.message == "integer literal is too large (more than 4,096 bits)"
    assert error.column == 1


def test_constant_parts_are_computed_when_compiling() -> None:
    assert compile_error("tick > 2 ** 5000").message.startswith("exponent 5000 is too large")
    assert compile_error("tick > 2 ** 5000").column == 8
    assert (
        compile_error("[0] * 20000").message == "'*' result is too large (more than 10,000 items)"
    )
    assert compile_error("(1, 2) * 5001").message.startswith("'*' result is too large")
    assert compile_error("'ab' * 5001").message.startswith("'*' result is too large")
    assert compile_error("16 ** 1024").message.startswith("integer result is too large")
    assert compile_error("-'x' + tick").column == 1
    assert evaluate("'ab' * 5000") == "ab" * 5000
    assert evaluate("[1, 2] * 5000") == [1, 2] * 5000


def test_escape_attempts_run_nothing() -> None:
    """A refused expression never touches its context: compiling is all that happens."""

    class Tripwire(Mapping[str, Any]):
        def __getitem__(self, key: str) -> Any:
            raise AssertionError(f"read {key!r}")

        def __iter__(self) -> Iterator[str]:
            raise AssertionError("iterated")

        def __len__(self) -> int:
            raise AssertionError("measured")

    for source in ("x.__class__", "open('f')", "x and y.__dict__", "[x for x in y]"):
        with pytest.raises(ExpressionError):
            Expression.compile(source).evaluate(Tripwire())


def test_helpers_cannot_be_shadowed_by_context_keys() -> None:
    called: list[str] = []

    def evil(*args: Any) -> Any:
        called.append("evil")
        return 0

    names = {"_attr": evil, "_c": evil, "_f_len": evil, "_mul": evil, **context()}
    assert evaluate("battery.level * 2 + len(xs)", names) == 33
    assert called == []


def test_dotted_access_never_reads_object_attributes() -> None:
    read: list[str] = []

    class Pose:
        x = 1.0

        @property
        def y(self) -> float:
            read.append("y")
            return 2.0

        def __getattr__(self, name: str) -> Any:
            read.append(name)
            return 0

    names = {"pose": Pose()}
    for source, attr in (("pose.x", "x"), ("pose.y", "y"), ("pose.z", "z")):
        error = runtime_error(source, names)
        assert error.message == (
            "'pose' is a Pose, not a mapping: dotted names read mapping keys only"
        )
        assert (error.column, error.end_column) == (1, 7), attr
    assert read == []


# -- runtime errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message", "column"),
    [
        ("batery.level < 20", "unknown name 'batery'", 1),
        ("battery.level < limit", "unknown name 'limit'", 17),
        ("battery.levle < 20", "'battery' has no key 'levle'", 1),
        ("robot.pose.z", "'robot.pose' has no key 'z'", 1),
        ("battery['x']", "'battery' has no key 'x'", 1),
        (
            "battery.level.x",
            "'battery.level' is an int, not a mapping: dotted names read mapping keys only",
            1,
        ),
        ("xs.first", "'xs' is a list, not a mapping: dotted names read mapping keys only", 1),
        ("nothing.x", "'nothing' is None, not a mapping: dotted names read mapping keys only", 1),
        ("xs[5]", "index 5 is out of range for 'xs' (length 3)", 1),
        ("xs['a']", "'xs' is a list: an index must be an integer or a slice, not a str", 1),
        ("name[1.5]", "'name' is a str: an index must be an integer or a slice, not a float", 1),
        ("tick[0]", "'tick' is an int, which cannot be indexed", 1),
        ("battery[[1]]", "a list cannot be a key (it is unhashable)", 1),
        ("battery[1:]", "'battery' is a dict, which cannot be sliced", 1),
        ("tick[1:]", "'tick' is an int, which cannot be sliced", 1),
        ("xs[::0]", "a slice step cannot be zero", 1),
        ("xs[ratio:]", "slice bounds must be integers or empty, not a float", 1),
        ("tick / 0", "division by zero", 1),
        ("tick // (tick - 10)", "division by zero", 1),
        ("tick % 0", "division by zero", 1),
        ("ratio % 0.0", "division by zero", 1),
        ("status + 1", "cannot apply '+' to str and int", 1),
        ("1 + status", "cannot apply '+' to int and str", 1),
        ("nothing + 1", "cannot apply '+' to None and int", 1),
        ("tick - status", "cannot apply '-' to int and str", 1),
        ("xs * ratio", "'*' repeats a sequence an integer number of times only", 1),
        ("-status", "cannot apply unary '-' to str", 1),
        ("~ratio", "cannot apply unary '~' to float", 1),
        ("status < 1", "cannot compare str and int with '<'", 1),
        ("tick > 1 and nothing >= 2", "cannot compare None and int with '>='", 14),
        ("1 in tick", "'in' needs a collection on its right, but 'tick' is an int", 6),
        ("[1] in tags", "a list cannot be a dict key or a set item (it is unhashable)", 1),
        ("{xs: 1}", "a list cannot be a dict key or a set item (it is unhashable)", 1),
        ("{xs}", "a list cannot be a dict key or a set item (it is unhashable)", 1),
        ("len(tick)", "len() is not defined for int", 1),
        ("len(nothing)", "len() is not defined for None", 1),
        ("abs(status)", "abs() is not defined for str", 1),
        ("round(status)", "round() is not defined for str", 1),
        ("sorted([1, status])", "sorted(): cannot compare int and str", 1),
        ("max(1, status)", "max(): cannot compare int and str", 1),
        ("min([battery, battery])", "min(): cannot compare dict and dict", 1),
        ("sorted([1, 2.5, status, nothing])", "sorted(): cannot compare int and str", 1),
        ("int(status)", "int(): 'RUNNING' is not an integer in base 10", 1),
        ("int('12', 99)", "int(): the base must be 0 or from 2 to 36, not 99", 1),
        ("int(ratio, 2)", "int() with a base converts a string, not a float", 1),
        ("int(xs)", "int() is not defined for list", 1),
        ("round(ratio, status)", "round() is not defined for float and str", 1),
        ("float(status)", "float(): 'RUNNING' is not a number", 1),
        ("0 < tick < status", "cannot compare int and str with '<'", 1),
        ("1 in status", "cannot apply 'in' to int and str", 1),
        ("{1: 2, xs: 3}", "a list cannot be a dict key or a set item (it is unhashable)", 1),
        ("tags | xs", "cannot apply '|' to set and list", 1),
        ("(ratio - 0.25) ** -1", "0 cannot be raised to a negative power", 1),
        ("min([])", "min() of an empty collection (give a default=...)", 1),
        (
            "max(battery.level)",
            "max() needs a collection (a list, tuple, set, dict or string), not an int",
            1,
        ),
        ("sum(['a'])", "sum() adds numbers only, not a str", 1),
        ("sum(xs, 'a')", "sum() adds numbers only, not a str", 1),
        ("round(ratio, 2000)", "round() to 2,000 digits is over the limit of ±1,024", 1),
        (
            "round(float('inf'))",
            "number out of range (cannot convert float infinity to integer)",
            1,
        ),
        ("tick and f'{tick + status}'", "cannot apply '+' to int and str", 13),
        ("(tick +\n status)", "cannot apply '+' to int and str", 2),
        ("name + é", "unknown name 'é'", 8),
    ],
)
def test_runtime_errors(source: str, message: str, column: int) -> None:
    error = runtime_error(source)
    assert error.message == message
    assert error.column == column
    assert error.source == source
    assert "__" not in error.message
    assert "NoneType" not in error.message
    # a clean error: no Python internals chained to it
    assert error.__suppress_context__
    assert error.__cause__ is None


def test_the_runtime_error_format() -> None:
    error = runtime_error("tick > 3 and batery < 20")
    assert str(error) == "column 14: unknown name 'batery'"
    assert (error.column, error.end_column) == (14, 20)
    assert error.message == "unknown name 'batery'"


def test_runtime_bounds() -> None:
    names = {
        "big": 1 << 5000,
        "huge": 1 << 20_000,
        "n": 10**9,
        "s": "ab",
        "xs": [0],
        "two": 2,
        "k": 2000,
    }
    cases = {
        "big * 1": "integer result is too large (more than 4,096 bits)",
        "big ** two": "integer result is too large (more than 4,096 bits)",
        "two ** k": "exponent 2000 is too large (the limit is ±1,024)",
        "s * n": "'*' result is too large (more than 10,000 characters)",
        "n * xs": "'*' result is too large (more than 10,000 items)",
        "[xs * 100] * 1000": "'*' result is too large (more than 10,000 items)",
        "[[s] * 10] * 2000": "'*' result is too large (more than 10,000 items)",
        "int('1' * 2000)": "integer result is too large (more than 4,096 bits)",
        "int(s * 3000, 36)": (
            "int(): a text of 6,000 characters is too long (an integer has at most 4,096 bits)"
        ),
        "str(huge)": "an integer of 20,001 bits is too large to show as text",
        "str(xs * 10000)": "text is too long (more than 10,000 characters)",
        "f'{xs * 10000}'": "text is too long (more than 10,000 characters)",
        "float(big)": "number out of range (int too large to convert to float)",
        "sum([big, big])": "integer result is too large (more than 4,096 bits)",
        "round(two, -k)": "round() to -2,000 digits is over the limit of ±1,024",
    }
    for source, message in cases.items():
        assert runtime_error(source, names).message == message, source
    assert evaluate("big + 1 > big", names) is True
    assert evaluate("len(s * 5000)", names) == 10_000
    assert evaluate("len(xs * 10000)", names) == 10_000
    assert evaluate("xs * 1", names) == [0]
    assert evaluate("two ** 1024", names) == 2**1024


def test_amplifying_shared_structures_is_bounded() -> None:
    """Repeating a list of lists counts the nested items, so the result cannot be made huge
    through sharing (which would make comparing or printing it cost without bound)."""
    row = [0] * 1_000
    names = {"grid": [row] * 1_000, "row": row}
    assert runtime_error("[row] * 20", names).message.startswith("'*' result is too large")
    assert runtime_error("[row, row] * 5", names).message.startswith("'*' result is too large")
    assert evaluate("[row] * 9", names) == [row] * 9
    assert evaluate("len([grid] * 1)", names) == 1
    assert runtime_error("[grid] * 2", names).message.startswith("'*' result is too large")
    assert (
        runtime_error("str(grid)", names).message
        == "text is too long (more than 10,000 characters)"
    )
    names = {"queue": deque(range(4_000)), "table": OrderedDict(a=row)}
    assert runtime_error("[queue] * 3", names).message.startswith("'*' result is too large")
    assert runtime_error("[table] * 20", names).message.startswith("'*' result is too large")
    assert evaluate("len([queue] * 2)", names) == 2
    cyclic: list[Any] = [1]
    cyclic.append(cyclic)
    assert runtime_error("c * 2", {"c": cyclic}).message.startswith("'*' result is too large")
    assert evaluate("str(c)", {"c": cyclic}) == "[1, [...]]"


def test_iterators_are_refused_where_they_could_run_forever() -> None:
    def forever() -> Iterator[int]:
        while True:
            yield 1

    names = {"gen": forever()}
    assert runtime_error("1 in gen", names).message == (
        "'in' needs a collection on its right, but 'gen' is a generator"
    )
    for function in ("any", "all", "sorted", "sum", "min", "max"):
        error = runtime_error(f"{function}(gen)", names)
        assert error.message == (
            f"{function}() needs a collection (a list, tuple, set, dict or string), not a generator"
        )


def test_collections_given_to_functions_are_bounded() -> None:
    names = {"huge": range(10**12), "many": [0] * 1_000_001}
    assert evaluate("len(huge)", names) == 10**12
    assert evaluate("5 in huge", names) is True
    assert runtime_error("sorted(huge)", names).message == (
        "sorted() of 1,000,000,000,000 items is over the limit of 1,000,000"
    )
    assert runtime_error("sum(many)", names).message.startswith("sum() of 1,000,001 items")


def test_errors_raised_by_values_themselves() -> None:
    class Grumpy:
        def __eq__(self, other: object) -> bool:
            raise RuntimeError("no comparing")

        __hash__ = object.__hash__

    error = runtime_error("g == 1", {"g": Grumpy()})
    assert error.message == "RuntimeError: no comparing"
    assert error.column == 1


def test_objects_with_their_own_indexing() -> None:
    class Grid:
        def __getitem__(self, key: Any) -> Any:
            if key == (9, 9):
                raise IndexError("off the grid")
            return key

    names = {"grid": Grid()}
    assert evaluate("grid[1, 2]", names) == (1, 2)
    assert evaluate("grid[1:2]", names) == slice(1, 2)
    assert runtime_error("grid[9, 9]", names).message == "index (9, 9) is out of range for 'grid'"


def test_an_expression_is_reusable_after_an_error() -> None:
    expression = Expression.compile("battery.level < 20")
    with pytest.raises(ExpressionError):
        expression.evaluate({"battery": {}})
    assert expression.evaluate({"battery": {"level": 5}}) is True


def test_expression_error_is_an_exception_with_fields() -> None:
    error = ExpressionError("bad thing", "x + y", 3, 4)
    assert (error.message, error.source, error.column, error.end_column) == (
        "bad thing",
        "x + y",
        3,
        4,
    )
    assert str(error) == "column 3: bad thing"
    assert str(ExpressionError("bad thing")) == "bad thing"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.message, copy.source, copy.column, copy.end_column) == ("bad thing", "x + y", 3, 4)


# -- templates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("battery at {battery.level}%", "battery at 15%"),
        ("{status}", "RUNNING"),
        ("plain text", "plain text"),
        ("", ""),
        ("{{literal}} and {tick}", "{literal} and 10"),
        ("}}{{", "}{"),
        ("{{{tick}}}", "{10}"),
        ("{ tick + 1 }", "11"),
        ("{xs} {targets} {nothing} {flag}", "[1, 2, 3] ('dock', 'home') None True"),
        ("{'}'}", "}"),
        ('{"{"}', "{"),
        ("{ {'a': 1} }", "{'a': 1}"),
        ("{battery['level']}/{ {'k': [1, {2}]}['k'] }", "15/[1, {2}]"),
        ("{'a\\'}'}", "a'}"),
        ("{len(xs)} items", "3 items"),
        ("{f'{tick}!'}", "10!"),
        ("{name}", "héllo"),
    ],
)
def test_templates_render(source: str, expected: str) -> None:
    assert Template.compile(source).render(context()) == expected


def test_template_names_and_fields() -> None:
    template = Template.compile("battery at {battery.level}% ({status}, {len(xs)})")
    assert template.names == {"battery", "status", "xs"}
    assert [expression.source for expression in template.expressions] == [
        "battery.level",
        "status",
        "len(xs)",
    ]
    assert template.source == "battery at {battery.level}% ({status}, {len(xs)})"
    assert Template.compile("no fields").names == frozenset()


def test_template_fields_that_fail_render_as_errors() -> None:
    template = Template.compile("level {batery.level}, tick {tick}, {status + 1}")
    assert template.render(context()) == (
        "level <error: unknown name 'batery'>, tick 10, <error: cannot apply '+' to str and int>"
    )

    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("boom")

    assert Template.compile("[{b}]").render({"b": Broken()}) == "[<error: RuntimeError: boom>]"
    assert Template.compile("{big}").render({"big": 1 << 20_000}) == (
        "<error: an integer of 20,001 bits is too large to show as text>"
    )
    assert Template.compile("{x}").render({}) == "<error: unknown name 'x'>"


def test_template_values_are_cut_at_the_limit() -> None:
    row = [0] * 1_000
    names = {"text": "y" * 50_000, "grid": [row] * 1_000, "short": "z" * MAX_SIZE}
    rendered = Template.compile("<{text}>").render(names)
    assert rendered == "<" + "y" * MAX_SIZE + "\u2026>"
    rendered = Template.compile("{grid}").render(names)
    assert len(rendered) == MAX_SIZE + 1
    assert rendered.startswith("[[0, 0, ")
    assert rendered.endswith("\u2026")
    assert Template.compile("{short}").render(names) == "z" * MAX_SIZE


@pytest.mark.parametrize(
    ("source", "message", "column"),
    [
        ("level {battery.level", "'{' was never closed (write '{{' for a literal brace)", 7),
        ("50} done", "a single '}' must be written '}}'", 3),
        ("a {} b", "empty field '{}'", 3),
        ("a {  } b", "empty field '{}'", 3),
        ("at {open('f')}", f"{CALLS} (not 'open')", 5),
        ("x={tick.__class__}", "names starting with '_' are not allowed ('__class__')", 9),
        ("{tick +}", "invalid syntax: the expression is incomplete", 8),
        ("ok {tick} {x $}", "invalid syntax", 14),
        ("{ '}' ", "'{' was never closed (write '{{' for a literal brace)", 1),
    ],
)
def test_template_errors(source: str, message: str, column: int) -> None:
    with pytest.raises(ExpressionError) as caught:
        Template.compile(source)
    assert caught.value.message.startswith(message)
    assert caught.value.column == column
    assert caught.value.source == source


def test_template_limits() -> None:
    Template.compile("x" * MAX_SOURCE_LENGTH)
    with pytest.raises(ExpressionError, match="template is too long"):
        Template.compile("x" * (MAX_SOURCE_LENGTH + 1))
    with pytest.raises(ExpressionError, match="a template must be a string"):
        Template.compile(None)  # type: ignore[arg-type]


# -- hit conditions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "operator", "value", "hits"),
    [
        ("5", "==", 5, [5]),
        ("== 5", "==", 5, [5]),
        ("==5", "==", 5, [5]),
        ("  5  ", "==", 5, [5]),
        (">= 3", ">=", 3, [3, 4, 5, 6, 7, 8]),
        ("> 3", ">", 3, [4, 5, 6, 7, 8]),
        ("< 4", "<", 4, [1, 2, 3]),
        ("<= 4", "<=", 4, [1, 2, 3, 4]),
        ("% 2", "%", 2, [2, 4, 6, 8]),
        ("%3", "%", 3, [3, 6]),
        ("% 1", "%", 1, [1, 2, 3, 4, 5, 6, 7, 8]),
        ("0", "==", 0, []),
    ],
)
def test_hit_conditions(text: str, operator: str, value: int, hits: list[int]) -> None:
    condition = HitCondition.parse(text)
    assert (condition.operator, condition.value) == (operator, value)
    assert [count for count in range(1, 9) if condition.matches(count)] == hits
    assert HitCondition.parse(str(condition)) == condition


def test_hit_condition_text() -> None:
    assert str(HitCondition.parse("5")) == "== 5"
    assert str(HitCondition.parse("%2")) == "% 2"
    assert HitCondition.parse("5") == HitCondition.parse("== 5")


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("", "empty hit condition", None),
        ("   ", "empty hit condition", None),
        ("!= 3", "unexpected '!'", 1),
        ("=5", "unexpected '='", 1),
        ("x", "unexpected 'x'", 1),
        ("-1", "unexpected '-'", 1),
        (">=", "a number is missing after '>='", 3),
        ("% ", "a number is missing after '%'", 3),
        ("5 6", "unexpected '6'", 3),
        ("== 5x", "unexpected 'x'", 5),
        ("1.5", "unexpected '.'", 2),
        ("% 0", "'% 0' would divide by zero (use '% 1' or more)", 3),
        ("9" * 19, "the number is too large", 1),
        ("\uff15", "unexpected '\uff15'", 1),  # a fullwidth 5: digits are ASCII only
    ],
)
def test_hit_condition_errors(text: str, message: str, column: int | None) -> None:
    with pytest.raises(ExpressionError) as caught:
        HitCondition.parse(text)
    assert caught.value.message.startswith(message)
    assert caught.value.message.endswith(
        "a hit condition is a number, optionally after ==, >, >=, <, <= or % (e.g. '>= 3')"
    )
    assert caught.value.column == column


def test_hit_condition_limits() -> None:
    with pytest.raises(ExpressionError, match="hit condition is too long"):
        HitCondition.parse(" " * 200 + "5")
    with pytest.raises(ExpressionError, match="must be a string"):
        HitCondition.parse(5)  # type: ignore[arg-type]


# -- blackboard keys ------------------------------------------------------------------------------


def test_flatten_nests_absolute_keys() -> None:
    flat = flatten_blackboard(
        {"/battery/level": 20, "/robot/pose/x": 1.0, "/robot/pose/y": 2.0, "/status": "ok"}
    )
    assert flat == {
        "battery": {"level": 20},
        "robot": {"pose": {"x": 1.0, "y": 2.0}},
        "status": "ok",
    }
    assert Expression.compile("battery.level < 30 and robot.pose.y > 1").evaluate(flat) is True
    assert flatten_blackboard({}) == {}


def test_flatten_ignores_extra_slashes() -> None:
    assert flatten_blackboard({"//a//b/": 1, "c": 2, "d/e": 3}) == {
        "a": {"b": 1},
        "c": 2,
        "d": {"e": 3},
    }
    assert flatten_blackboard({"/": 5}) == {"": 5}


@pytest.mark.parametrize(
    "items",
    [
        {"/battery": 80, "/battery/level": 20},
        {"/battery/level": 20, "/battery": 80},
    ],
)
def test_flatten_keeps_a_value_that_is_also_a_namespace(items: dict[str, Any]) -> None:
    flat = flatten_blackboard(items)
    assert flat == {"battery": {"": 80, "level": 20}}
    assert Expression.compile("battery[''] + battery.level").evaluate(flat) == 100


@pytest.mark.parametrize(
    "items",
    [
        {"/battery": {"volts": 12, "level": 99}, "/battery/level": 20},
        {"/battery/level": 20, "/battery": {"volts": 12, "level": 99}},
    ],
)
def test_flatten_merges_a_mapping_value_with_its_namespace(items: dict[str, Any]) -> None:
    flat = flatten_blackboard(items)
    assert flat == {"battery": {"": {"volts": 12, "level": 99}, "volts": 12, "level": 20}}
    assert Expression.compile("battery.level").evaluate(flat) == 20  # the child key wins
    assert Expression.compile("battery.volts").evaluate(flat) == 12
    assert Expression.compile("battery[''].level").evaluate(flat) == 99


def test_flatten_deep_conflicts() -> None:
    assert flatten_blackboard({"/a/b/c": 1, "/a": 0, "/a/b": 2}) == {
        "a": {"": 0, "b": {"": 2, "c": 1}}
    }
    assert flatten_blackboard({"/a": {"b": {"x": 1}}, "/a/b/y": 2}) == {
        "a": {"": {"b": {"x": 1}}, "b": {"": {"x": 1}, "x": 1, "y": 2}}
    }


def test_flatten_does_not_copy_values() -> None:
    pose = {"x": 1}
    samples = [1, 2]
    flat = flatten_blackboard({"/pose": pose, "/samples": samples})
    assert flat["pose"] is pose
    assert flat["samples"] is samples
    assert pose == {"x": 1}  # and does not modify them


def test_flatten_keeps_segments_that_are_not_identifiers() -> None:
    flat = flatten_blackboard({"/robot/my-key": 1, "/robot/2nd": 2, "/robot/_private": 3})
    assert flat == {"robot": {"my-key": 1, "2nd": 2, "_private": 3}}
    expression = Expression.compile("robot['my-key'] + robot['2nd'] + robot['_private']")
    assert expression.evaluate(flat) == 6
