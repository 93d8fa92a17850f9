"""The prompt and system templates of language-model agents: Jinja2, sandboxed and strict.

A template is text from a tree file, so it is rendered in Jinja2's immutable sandbox (no
attribute games, no mutation of the blackboard values it reads), and with ``StrictUndefined``:
a template naming a key that is not on the blackboard is an error naming that key, never a
prompt with a silent hole in it. Templates are compiled when the tree is loaded, so a syntax
error is reported with its line before anything runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache, lru_cache
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from canopy.bridge import CanopyError

from .user_faults import RUNTIME_CONTROL_FLOW

__all__ = ["AgentTemplate", "TemplateError"]


class TemplateError(CanopyError):
    """A template that does not compile, or cannot be rendered with the values given."""


@cache
def _environment() -> ImmutableSandboxedEnvironment:
    """One environment for every template: it holds no state between renders."""
    return ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
    )


@lru_cache(maxsize=1024)
def _compiled(source: str) -> jinja2.Template:
    """``source`` compiled, once: a tree's templates are checked when it loads, again when its
    agents are built, and again on every launch, fork and reload of it."""
    return _environment().from_string(source)


class AgentTemplate:
    """A compiled template and its source; ``field`` (``prompt``, ``system``) names it in
    errors."""

    __slots__ = ("_template", "field", "source")

    def __init__(self, field: str, source: str) -> None:
        self.field = field
        self.source = source
        try:
            self._template = _compiled(source)
        except jinja2.TemplateSyntaxError as error:
            raise TemplateError(f"{field} template, line {error.lineno}: {error.message}") from None

    def render(self, values: Mapping[str, Any]) -> str:
        """The text for ``values``; TemplateError names the undefined name or what failed."""
        try:
            return self._template.render(values)
        except jinja2.UndefinedError as error:
            raise TemplateError(f"{self.field} template: {error.message}") from None
        except RUNTIME_CONTROL_FLOW:
            raise
        except Exception as error:  # a sandbox refusal, a filter given the wrong type...
            raise TemplateError(f"{self.field} template: {type(error).__name__}: {error}") from None
