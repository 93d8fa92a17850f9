"""The safe expression language of breakpoint conditions, hit conditions, watch expressions,
DAP ``evaluate`` and logpoint templates.

These strings are typed by a client in an editor and evaluated inside a debug pod, next to a
running behavior tree, many times per second. Running them as Python would hand the pod to
whoever can reach the debugger, and one careless ``10**10**10`` would freeze the robot. So a
source is parsed by Python's own parser (users already know the syntax), every node is checked
against a whitelist *before anything runs*, and the checked tree is rewritten and compiled once
into a function that costs a few microseconds per evaluation. A bad expression is an
:class:`ExpressionError` with a precise message and column, never an exception inside the tree.

The language
------------
- Literals: ``int``, ``float``, ``str``, ``True``/``False``/``None``; list, tuple, dict and set
  displays (without ``*``/``**`` unpacking). Bytes, complex numbers and ``...`` are refused.
- Names are looked up in the evaluation context (a ``Mapping``: blackboard values, see
  :func:`flatten_blackboard`, and node state such as ``status``, ``tick``, ``visits``). A name is
  never a Python builtin: the functions below exist only in call position, so a blackboard key
  called ``len`` is still readable as ``len``.
- ``a.b.c`` reads keys of nested mappings (``context["a"]["b"]["c"]``); it never reads an
  attribute of a Python object. Names and dotted keys starting with ``_`` are refused.
- Subscripts ``x[0]``, ``x[-1]``, ``x["key"]`` and slices ``x[1:3]``, ``x[::2]``: mappings by
  key, other values (lists, tuples, strings, arrays) by their own indexing. A string key may
  start with ``_``: it is data, not an attribute.
- Operators: comparisons, chained (``0 < x <= 10``); ``in``/``not in`` (the right side must be
  a collection, never an iterator that could run forever); ``is``/``is not`` against ``None``,
  ``True`` or ``False`` only; ``and``/``or``/``not``; unary ``- + ~``; ``+ - * / // % **``;
  bitwise ``& | ^`` (flags and set operations); ``a if c else b``. ``%`` is arithmetic only:
  printf-style string formatting is refused. ``<<``, ``>>``, ``@`` and ``:=`` are refused.
- Calls, only to the pure functions of :data:`FUNCTIONS` (``len abs min max round int float str
  bool sum any all sorted``), with positional arguments; the only keyword arguments are
  ``sorted(..., reverse=...)`` and ``min/max(collection, default=...)``.
- f-strings with plain ``{expression}`` fields; conversions (``!r``), format specs (``:>10``)
  and ``{x=}`` are refused, because a format spec such as ``:>999999999`` is a memory bomb.
- Nothing else: no method calls or attributes of objects, lambdas, comprehensions, generator
  expressions, ``await``/``yield``, starred arguments.

Bounds, so that no expression hangs the tree or exhausts memory (a violation is an
:class:`ExpressionError`): source ≤ 2,000 characters, ≤ 256 expression nodes, ≤ 50 levels of
nesting; integers from literals, ``*``, ``**``, ``int()``, ``round()`` and ``sum()`` ≤ 4,096 bits
(``+`` and ``-`` add at most one bit each, within the node limit); ``**`` with
|exponent| ≤ 1,024, float overflow and complex results are errors; ``*`` on strings, bytes,
lists and tuples builds at most 10,000 items or characters, nested contents included (so
``[[0] * 100] * 1000`` is refused too); ``str()`` and f-string fields produce at most 10,000
characters; ``sorted min max sum any all`` take a collection of at most 1,000,000 items;
``round(x, n)`` needs |n| ≤ 1,024. There is no ``range``. Constant subexpressions are computed
when compiling, so ``9**9**9`` and ``'a' * 10**9`` are refused when a breakpoint is set, not
when it is hit. The bounds stop an expression from *making* work; reading what the tree already
holds (comparing two large lists of the blackboard) costs what reading that data costs.

Errors: compile-time refusals and the checks of the evaluator's own helpers say what Canopy
knows (``unknown name 'batery'``, ``cannot apply '+' to int and str``); a failure raised by a
value itself (a ``__getitem__``, a ``__bool__``) is passed through with its own message. No
message is parsed out of CPython's wording, so the messages do not change between Python
releases.

Error positions: ``column`` is the 1-based index in the source string of the first character of
the offending part (for a one-line source, the editor column).

The modules, one concern each: :mod:`.limits` (the bounds), :mod:`.errors` (the exception),
:mod:`.text` (bounded text of values), :mod:`.operations` and :mod:`.functions` (what an
expression runs), :mod:`.parsing` and :mod:`.compiler` (source to checked function),
:mod:`.messages` (what a failure says), :mod:`.expression`, :mod:`.template`,
:mod:`.hit_condition` and :mod:`.blackboard` (the public objects).
"""

from .blackboard import flatten_blackboard
from .errors import ExpressionError
from .expression import Expression
from .functions import FUNCTIONS
from .hit_condition import HitCondition
from .limits import (
    MAX_DEPTH,
    MAX_EXPONENT,
    MAX_INT_BITS,
    MAX_ITEMS,
    MAX_NODES,
    MAX_SIZE,
    MAX_SOURCE_LENGTH,
)
from .template import Template

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_EXPONENT",
    "MAX_INT_BITS",
    "MAX_ITEMS",
    "MAX_NODES",
    "MAX_SIZE",
    "MAX_SOURCE_LENGTH",
    "Expression",
    "ExpressionError",
    "HitCondition",
    "Template",
    "flatten_blackboard",
]
