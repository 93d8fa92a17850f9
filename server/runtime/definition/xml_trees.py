"""BehaviorTree.CPP v4 XML trees, as Groot2 writes them, mapped onto py_trees kinds.

``<root BTCPP_format="4" main_tree_to_execute="Main">`` holds ``<BehaviorTree ID="...">``
elements (the main one is ``main_tree_to_execute``, else the first) and an optional
``<TreeNodesModel>``, which is only used to word errors better. Built-in BT.CPP nodes map onto
py_trees built-ins; every other node (``<BatteryCheck/>``, ``<Action ID="BatteryCheck"/>``)
must be in the caller's registry, which maps the BT.CPP name to a ``package.module:Class``
import path (or a built-in name, or an agent kind: ``llm``, ``python``). Attributes become
params; ``{key}`` values are blackboard references and stay strings (see :mod:`.references`);
other values of a custom class are converted to the type its constructor annotates (``int``,
``float``, ``bool``, ``str``). An agent's list params are written ``a;b`` (BT.CPP's way), its
``schema`` and ``tools`` as JSON.

Mapping of the built-in nodes:

- ``Sequence`` -> Sequence(memory=True): BT.CPP resumes a RUNNING child and restarts after a
  failure, like py_trees with memory. ``ReactiveSequence`` -> Sequence(memory=False).
- ``Fallback`` -> Selector(memory=True); ``ReactiveFallback`` -> Selector(memory=False).
- ``Inverter`` -> Inverter; ``ForceSuccess`` -> FailureIsSuccess; ``ForceFailure`` ->
  SuccessIsFailure; ``AlwaysSuccess`` -> Success; ``AlwaysFailure`` -> Failure.
- ``Repeat num_cycles`` -> Repeat(num_success); ``RetryUntilSuccessful num_attempts`` ->
  Retry(num_failures); ``Timeout msec`` -> Timeout(duration=msec / 1000).
- ``SubTree ID`` -> a SubTree node (a py_trees PassThrough, so the subtree stays visible as in
  Groot2) whose child is the referenced tree's root; the params record ``ID``, the port
  ``remapping`` (every other attribute) and ``autoremap`` (``_autoremap``).
- ``Parallel success_count failure_count`` -> the py_trees Parallel policy with the same
  outcome: py_trees fails as soon as one child fails, so only ``failure_count="1"`` (the
  default) maps; ``success_count`` equal to the number of children (``-1``, the default) maps
  to SuccessOnAll(synchronise=True) (BT.CPP does not re-tick children that completed), and
  ``success_count="1"`` to SuccessOnOne. BT.CPP counts a negative value from the number of
  children (``-1`` is all of them). Other counts have no py_trees equivalent and are reported
  instead of silently changing what the tree does. Within a tick the order differs slightly:
  BT.CPP may return as soon as the count is reached, py_trees ticks every child, then decides.
"""

from __future__ import annotations

import inspect
import json
import os
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .agent_kinds import AGENT_KINDS, agent_params
from .builtin_kinds import BUILTINS
from .class_kinds import is_import_path, resolve_class
from .ids import child_id, unique_id
from .kinds import ResolutionError
from .model import NodeSpec, SourceLocation, TreeDefinition
from .problems import DefinitionError, Problem
from .references import is_blackboard_reference
from .resolve import finalize
from .xml_elements import Element, parse_xml

DUPLICATE_FIX = "give one of them a distinct `name` attribute"

IGNORED_ATTRIBUTES = frozenset({"_description", "_uid", "_fullpath"})
"""Groot2/BT.CPP bookkeeping attributes that carry no behaviour."""

GENERIC_TAGS = frozenset({"Action", "Condition", "Decorator", "Control"})
"""``<Action ID="X"/>`` is the explicit spelling of ``<X/>``."""

Converter = Callable[[str], Any]


def _integer(text: str) -> int:
    return int(text.strip())


def _number(text: str) -> float:
    return float(text.strip())


def _boolean(text: str) -> bool:
    words = {"true": True, "1": True, "false": False, "0": False}
    if text.strip().lower() not in words:
        raise ValueError(text)
    return words[text.strip().lower()]


def _seconds(text: str) -> float:
    return _integer(text) / 1000


def _names(text: str) -> list[str]:
    """A list port, BehaviorTree.CPP's way: items separated by ``;``."""
    return [item.strip() for item in text.split(";") if item.strip()]


def _json(text: str) -> Any:
    """A structured port (a schema, tools) written as JSON."""
    return json.loads(text)


def _json_object(text: str) -> dict[str, Any]:
    value = _json(text)
    if not isinstance(value, dict):
        raise ValueError(text)
    return value


_WORDS: Mapping[Converter, str] = {
    _integer: "an integer",
    _number: "a number",
    _boolean: "true or false",
    _seconds: "an integer (milliseconds)",
    _names: "names separated by ;",
    _json: "JSON",
    _json_object: "a JSON object",
    str: "a string",
}

_BY_TYPE: Mapping[str, Converter] = {
    "integer": _integer,
    "number": _number,
    "boolean": _boolean,
    "string": str,
}
"""How a port's text becomes a built-in's param of each JSON Schema type."""
_AGENT_TYPES: Mapping[str, Converter] = {
    **_BY_TYPE,
    "array": _names,
    "object": _json_object,
    "any": _json,
}
"""The same for agents' params: lists as ``a;b``, a schema or tools as JSON."""


@dataclass(frozen=True)
class _Builtin:
    """How a BT.CPP built-in tag maps onto a py_trees kind."""

    kind: str
    fixed: Mapping[str, Any] = field(default_factory=dict)
    attributes: Mapping[str, tuple[str, Converter]] = field(default_factory=dict)
    """XML attribute -> (py_trees param, converter)."""
    required: tuple[str, ...] = ()


TAGS: Mapping[str, _Builtin] = {
    "Sequence": _Builtin("Sequence", {"memory": True}),
    "ReactiveSequence": _Builtin("Sequence", {"memory": False}),
    "Fallback": _Builtin("Selector", {"memory": True}),
    "ReactiveFallback": _Builtin("Selector", {"memory": False}),
    "Parallel": _Builtin("Parallel"),
    "Inverter": _Builtin("Inverter"),
    "ForceSuccess": _Builtin("FailureIsSuccess"),
    "ForceFailure": _Builtin("SuccessIsFailure"),
    "Repeat": _Builtin(
        "Repeat", attributes={"num_cycles": ("num_success", _integer)}, required=("num_cycles",)
    ),
    "RetryUntilSuccessful": _Builtin(
        "Retry", attributes={"num_attempts": ("num_failures", _integer)}, required=("num_attempts",)
    ),
    "Timeout": _Builtin("Timeout", attributes={"msec": ("duration", _seconds)}, required=("msec",)),
    "AlwaysSuccess": _Builtin("Success"),
    "AlwaysFailure": _Builtin("Failure"),
    "SubTree": _Builtin("SubTree"),
}
"""The BehaviorTree.CPP built-in tags understood here."""

_PARALLEL_ATTRIBUTES = ("success_count", "failure_count")


def load_xml_tree(
    path: Path, registry: Mapping[str, str], text: str | None = None
) -> TreeDefinition:
    """The checked definition of the main tree in the XML file ``path`` (read from ``text``
    when given)."""
    top = os.path.abspath(path)
    try:
        data = Path(top).read_bytes() if text is None else text.encode("utf-8")
    except OSError as exc:
        raise DefinitionError(
            [Problem(top, 1, 1, f"cannot read the file: {exc.strerror}")]
        ) from None
    reader = _XmlReader(top, parse_xml(top, data), registry)
    main = reader.main_tree()
    root = reader.tree_root(main, None, ()) if main is not None else None
    if main is None or root is None or reader.problems:
        raise DefinitionError(reader.problems)
    return finalize(
        name=main.attributes.get("ID") or Path(top).stem,
        root=root,
        blackboard={},
        path=top,
        format="xml",
        duplicate_fix=DUPLICATE_FIX,
    )


class _XmlReader:
    """Turns the elements of one XML file into nodes, collecting every problem."""

    def __init__(self, path: str, document: Element, registry: Mapping[str, str]) -> None:
        self.folder = Path(path).parent
        self.document = document
        self.registry = registry
        self.problems: list[Problem] = []
        self.trees: dict[str, Element] = {}
        self.models: dict[str, str] = {}
        self._index()

    def _problem(self, where: SourceLocation, message: str) -> None:
        self.problems.append(Problem.at(where, message))

    def _index(self) -> None:
        """Check the document element; find the trees and the TreeNodesModel declarations."""
        root = self.document
        if root.tag != "root":
            self._problem(root.source, f'expected <root BTCPP_format="4">, found <{root.tag}>')
            return
        version = root.attributes.get("BTCPP_format")
        if version is not None and version != "4":
            self._problem(root.source, f'only BTCPP_format="4" is supported, found "{version}"')
        for element in root.children:
            if element.tag == "BehaviorTree":
                self._add_tree(element)
            elif element.tag == "TreeNodesModel":
                self.models.update({m.attributes.get("ID", ""): m.tag for m in element.children})
            else:
                self._problem(
                    element.source,
                    f"unexpected <{element.tag}> in <root>: "
                    "expected <BehaviorTree> or <TreeNodesModel>",
                )

    def _add_tree(self, element: Element) -> None:
        tree_id = element.attributes.get("ID") or f"BehaviorTree{len(self.trees) + 1}"
        if tree_id in self.trees:
            line = self.trees[tree_id].source.line
            self._problem(
                element.source, f'duplicate <BehaviorTree ID="{tree_id}"> (first at line {line})'
            )
            return
        self.trees[tree_id] = element

    def main_tree(self) -> Element | None:
        """``main_tree_to_execute``, else the first tree."""
        wanted = self.document.attributes.get("main_tree_to_execute")
        if self.document.tag != "root":
            return None
        if not self.trees:
            self._problem(self.document.source, "no <BehaviorTree> in the file")
            return None
        if wanted is None:
            return next(iter(self.trees.values()))
        if wanted not in self.trees:
            known = ", ".join(self.trees)
            self._problem(
                self.document.source,
                f"main_tree_to_execute names '{wanted}', but the file defines: {known}",
            )
            return None
        return self.trees[wanted]

    def tree_root(
        self, tree: Element, parent_id: str | None, chain: tuple[str, ...]
    ) -> NodeSpec | None:
        """The one node inside ``<BehaviorTree>``."""
        if len(tree.children) != 1:
            tree_id = tree.attributes.get("ID", "")
            self._problem(
                tree.source,
                f'<BehaviorTree ID="{tree_id}"> must hold exactly one root node, '
                f"found {len(tree.children)}",
            )
            return None
        return self.node(tree.children[0], parent_id, (*chain, tree.attributes.get("ID", "")))

    def node(
        self,
        element: Element,
        parent_id: str | None,
        chain: tuple[str, ...],
        siblings: set[str] | None = None,
    ) -> NodeSpec | None:
        """The node for ``element`` and everything below it.

        Groot2 leaves most nodes unnamed, so siblings of one type are common: an unnamed node
        takes ``#2``, ``#3``... after its type in tree order (as Python factories do). Nodes the
        author named alike stay an error — the names say they are meant to differ.
        """
        resolved = self._kind_and_params(element)
        if resolved is None:
            return None
        kind, params, default_name = resolved
        explicit = element.attributes.get("name")
        name = explicit or default_name
        node_id = child_id(parent_id, name)
        if siblings is not None:
            if explicit:
                siblings.add(node_id)
            else:
                node_id = unique_id(node_id, siblings)
        if element.tag == "SubTree" and "SubTree" not in self.registry:
            children = self._subtree_children(element, params["ID"], node_id, chain)
        else:
            taken: set[str] = set()
            children = [self.node(child, node_id, chain, taken) for child in element.children]
        return NodeSpec(
            id=node_id,
            name=name,
            kind=kind,
            params=params,
            children=tuple(child for child in children if child is not None),
            source=element.source,
        )

    def _subtree_children(
        self, element: Element, tree_id: str, node_id: str, chain: tuple[str, ...]
    ) -> list[NodeSpec | None]:
        if element.children:
            self._problem(
                element.source, "<SubTree> takes no child elements: its nodes come from its ID"
            )
        if tree_id not in self.trees:
            known = ", ".join(self.trees)
            self._problem(
                element.source, f"unknown subtree ID '{tree_id}'; the file defines: {known}"
            )
            return []
        if tree_id in chain:
            cycle = " -> ".join([*chain[chain.index(tree_id) :], tree_id])
            self._problem(element.source, f"subtree cycle: {cycle}")
            return []
        return [self.tree_root(self.trees[tree_id], node_id, chain)]

    def _kind_and_params(self, element: Element) -> tuple[str, dict[str, Any], str] | None:
        """(kind, params, default name) for ``element``, or None (problems recorded)."""
        attributes = self._plain_attributes(element)
        tag = element.tag
        if tag in GENERIC_TAGS:
            if "ID" not in attributes:
                self._problem(element.source, f"<{tag}> needs an ID attribute naming the node type")
                return None
            tag = attributes.pop("ID")
        if tag in self.registry:
            kind = self.registry[tag]
            return kind, self._custom_params(element, kind, attributes), tag
        if tag in TAGS and element.tag not in GENERIC_TAGS:
            return self._builtin(element, TAGS[tag], attributes)
        self._problem(element.source, self._unknown_tag(tag))
        return None

    def _plain_attributes(self, element: Element) -> dict[str, str]:
        """Attributes other than ``name`` and BT.CPP's ``_`` attributes (scripts unsupported)."""
        plain = {}
        for key, value in element.attributes.items():
            if key == "name" or key in IGNORED_ATTRIBUTES:
                continue
            if key.startswith("_") and not (key == "_autoremap" and element.tag == "SubTree"):
                self._problem(
                    element.source, f"attribute {key} of <{element.tag}> is not supported"
                )
                continue
            plain[key] = value
        return plain

    def _builtin(
        self, element: Element, mapping: _Builtin, attributes: dict[str, str]
    ) -> tuple[str, dict[str, Any], str] | None:
        if element.tag == "SubTree":
            return self._subtree_params(element, attributes)
        if element.tag == "Parallel":
            policy = self._parallel_params(element, attributes)
            return (mapping.kind, policy, element.tag) if policy is not None else None
        params: dict[str, Any] = dict(mapping.fixed)
        for missing in (key for key in mapping.required if key not in attributes):
            self._problem(element.source, f"<{element.tag}> needs the attribute {missing}")
        for key, text in attributes.items():
            if key not in mapping.attributes:
                accepted = ", ".join(["name", *mapping.attributes])
                self._problem(
                    element.source,
                    f"<{element.tag}> has no attribute {key}; it accepts: {accepted}",
                )
                continue
            param, convert = mapping.attributes[key]
            value = self._convert(element, key, text, convert)
            if value is not None:
                params[param] = value
        return mapping.kind, params, element.tag

    def _subtree_params(
        self, element: Element, attributes: dict[str, str]
    ) -> tuple[str, dict[str, Any], str] | None:
        tree_id = attributes.pop("ID", None)
        if not tree_id:
            self._problem(element.source, "<SubTree> needs an ID attribute naming a <BehaviorTree>")
            return None
        autoremap = attributes.pop("_autoremap", "false")
        params = {
            "ID": tree_id,
            "remapping": attributes,
            "autoremap": self._convert(element, "_autoremap", autoremap, _boolean) or False,
        }
        return "SubTree", params, tree_id

    def _parallel_params(
        self, element: Element, attributes: dict[str, str]
    ) -> dict[str, Any] | None:
        """The policy with the same outcome (see the module docstring), or None."""
        for key in attributes:
            if key not in _PARALLEL_ATTRIBUTES:
                self._problem(
                    element.source,
                    f"<Parallel> has no attribute {key}; "
                    "it accepts: name, success_count, failure_count",
                )
        count = len(element.children)
        success = self._convert(
            element, "success_count", attributes.get("success_count", "-1"), _integer
        )
        failure = self._convert(
            element, "failure_count", attributes.get("failure_count", "1"), _integer
        )
        if success is None or failure is None:
            return None
        if count and _threshold(failure, count) != 1:
            self._problem(
                element.source,
                f'<Parallel failure_count="{failure}"> cannot be mapped: a py_trees Parallel '
                'fails as soon as one child fails (failure_count="1")',
            )
            return None
        needed = _threshold(success, count)
        if needed == count:
            return {"policy": "SuccessOnAll", "synchronise": True}
        if needed == 1:
            return {"policy": "SuccessOnOne"}
        self._problem(
            element.source,
            f'<Parallel success_count="{success}"> with {count} children has no py_trees '
            'equivalent: use success_count="-1" (all children, SuccessOnAll) or "1" (SuccessOnOne)',
        )
        return None

    def _custom_params(
        self, element: Element, kind: str, attributes: dict[str, str]
    ) -> dict[str, Any]:
        """Attributes converted to what the class (or built-in) the registry names expects."""
        converters = self._converters(kind)
        params: dict[str, Any] = {}
        for key, text in attributes.items():
            convert = converters.get(key)
            if convert is None or is_blackboard_reference(text):
                params[key] = text
                continue
            value = self._convert(element, key, text, convert)
            params[key] = text if value is None else value
        return params

    def _converters(self, kind: str) -> dict[str, Converter]:
        builtin = BUILTINS.get(kind)
        if builtin is not None:
            return {p.name: _BY_TYPE[p.type] for p in builtin.params if p.type in _BY_TYPE}
        if kind in AGENT_KINDS:
            return {p.name: _AGENT_TYPES[p.type] for p in agent_params(kind)}
        if not is_import_path(kind):
            return {}
        try:
            cls = resolve_class(kind, self.folder)
        except ResolutionError:  # reported with the other unknown classes once parsing is done
            return {}
        return _annotated_converters(cls)

    def _convert(self, element: Element, key: str, text: str, convert: Converter) -> Any:
        if is_blackboard_reference(text):
            self._problem(
                element.source,
                f"<{element.tag}> attribute {key}: a blackboard reference ({text}) cannot be "
                "used here; give a value",
            )
            return None
        try:
            return convert(text)
        except ValueError:
            self._problem(
                element.source,
                f"<{element.tag}> attribute {key} must be {_WORDS[convert]}, got {text!r}",
            )
            return None

    def _unknown_tag(self, tag: str) -> str:
        if tag in self.models:
            return (
                f"unknown node <{tag}>: <TreeNodesModel> declares it as {self.models[tag]}, "
                "but the registry has no class for it; "
                f'add "{tag}": "package.module:Class" to the registry'
            )
        registered = ", ".join(sorted(self.registry)) or "(empty)"
        return (
            f"unknown node <{tag}>: not a BehaviorTree.CPP built-in and not in the registry; "
            f"built-in tags: {', '.join(sorted(TAGS))}; registry: {registered}"
        )


def _threshold(count: int, children: int) -> int:
    """BT.CPP's effective count: a negative value counts back from the number of children."""
    return max(children + count + 1, 0) if count < 0 else count


def _annotated_converters(cls: type[object]) -> dict[str, Converter]:
    """param -> converter for constructor params annotated int, float, bool or str (or
    ``X | None``); unannotated params keep their string."""
    try:
        hints = typing.get_type_hints(cls.__init__)
        names = list(inspect.signature(cls).parameters)
    except Exception:  # unresolvable annotations or no signature: leave the values as strings
        return {}
    plain: dict[Any, Converter] = {int: _integer, float: _number, bool: _boolean, str: str}
    converters = {}
    for name in names:
        hint = _without_none(hints.get(name))
        if hint in plain:
            converters[name] = plain[hint]
    return converters


def _without_none(hint: Any) -> Any:
    """``X | None`` and ``Optional[X]`` -> ``X``; anything else unchanged."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rest = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return rest[0] if len(rest) == 1 else hint
    return hint
