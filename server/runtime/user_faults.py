"""Which exceptions user code (a factory, a behaviour's constructor, ``initialise``,
``update``, ``terminate``, a module's import) may raise and still count as *its* failure.

Anything but the runtime's own control flow: a ``sys.exit()`` (``SystemExit``), a
``KeyboardInterrupt`` or a ``BaseException`` subclass of the user's is a fault of the tree,
recorded and reported like a ``ValueError``. Let through, it would end the tick thread
silently (``threading`` ignores ``SystemExit``) or, raised in a task, stop the event loop of the
pod worker or the debug adapter that runs the tree.

Catch them as::

    except RUNTIME_CONTROL_FLOW:
        raise
    except BaseException as exc:
        ...  # the user's fault
"""

from __future__ import annotations

import asyncio
from typing import Final

__all__ = ["RUNTIME_CONTROL_FLOW"]

RUNTIME_CONTROL_FLOW: Final = (GeneratorExit, asyncio.CancelledError)
"""Exceptions that unwind the runtime itself (a closed generator, a cancelled task): never
taken for the user's fault, always propagated."""
