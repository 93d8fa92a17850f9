"""The bounds that keep every expression cheap: one place, so that the language's description,
the compiler, the evaluator's helpers and the messages agree on the numbers."""

from typing import Final

MAX_SOURCE_LENGTH: Final = 2_000
"""Characters of an expression or a logpoint template."""
MAX_NODES: Final = 256
"""Expression nodes (names, literals, operations, calls...) of one expression."""
MAX_DEPTH: Final = 50
"""Levels of nesting of one expression."""
MAX_INT_BITS: Final = 4_096
"""Size of an integer made by a literal, ``*``, ``**``, ``int()``, ``round()`` or ``sum()``."""
MAX_EXPONENT: Final = 1_024
"""Largest |exponent| of ``**`` and |ndigits| of ``round()``."""
MAX_SIZE: Final = 10_000
"""Items or characters built by ``*`` on sequences, by ``str()`` and by f-string fields."""
MAX_ITEMS: Final = 1_000_000
"""Items of a collection given to ``sorted min max sum any all``."""
MAX_TEXT: Final = MAX_SIZE
"""Characters of one rendered template field; longer values are cut and end with '…'."""
