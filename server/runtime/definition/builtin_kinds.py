"""The py_trees 2.6 composites, decorators and behaviours a tree file can name without an import.

Each entry maps a name and the params a tree file gives onto the real py_trees constructor.
Param names are py_trees' own (``num_success``, ``variable_name``...), so the py_trees docs apply
as they are; where py_trees wants an object (a policy, a status, a comparison) the tree file
gives a string and this table turns it into the object. ``schemas/tree.schema.json`` describes
the same params for editors; a test keeps the two in step.
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from py_trees import behaviours, common, composites, decorators
from py_trees.behaviour import Behaviour

from .kinds import Role, did_you_mean
from .model import NodeSpec

Maker = Callable[[str, Mapping[str, Any], Sequence[Behaviour]], Behaviour]
Refiner = Callable[[dict[str, Any], Sequence[NodeSpec]], list[str]]

OPERATORS: Mapping[str, Callable[[Any, Any], bool]] = MappingProxyType(
    {
        "==": operator.eq,
        "!=": operator.ne,
        "<": operator.lt,
        "<=": operator.le,
        ">": operator.gt,
        ">=": operator.ge,
    }
)
"""Comparison operators a tree file may name, for py_trees.common.ComparisonExpression."""

PARALLEL_POLICIES = ("SuccessOnAll", "SuccessOnOne", "SuccessOnSelected")
STATUSES = ("SUCCESS", "FAILURE", "RUNNING")
ONE_SHOT_POLICIES = tuple(policy.name for policy in common.OneShotPolicy)

_TYPE_CHECKS: Mapping[str, Callable[[Any], bool]] = MappingProxyType(
    {
        "boolean": lambda value: isinstance(value, bool),
        "integer": lambda value: isinstance(value, int) and not isinstance(value, bool),
        "number": lambda value: isinstance(value, int | float) and not isinstance(value, bool),
        "string": lambda value: isinstance(value, str),
        "array": lambda value: isinstance(value, list) and all(isinstance(v, str) for v in value),
        "object": lambda value: isinstance(value, dict),
        "any": lambda value: True,
    }
)
_TYPE_WORDS = MappingProxyType(
    {
        "boolean": "a boolean",
        "integer": "an integer",
        "number": "a number",
        "string": "a string",
        "array": "a list of names",
        "object": "a mapping",
        "any": "any value",
    }
)


class _Required:
    """Marks a param without a default: the tree file must give it."""

    def __repr__(self) -> str:
        return "REQUIRED"


class _Optional:
    """Marks a param that may be left out and then gets no value (its meaning depends on another
    param, e.g. Parallel's ``synchronise``)."""

    def __repr__(self) -> str:
        return "OPTIONAL"


REQUIRED: Any = _Required()
OPTIONAL: Any = _Optional()


@dataclass(frozen=True)
class Param:
    """One constructor parameter of a built-in, as a tree file gives it."""

    name: str
    type: str
    """A JSON Schema type name (``integer``, ``string``...), or ``any``."""
    default: Any = REQUIRED
    choices: tuple[str, ...] = ()
    minimum: float | None = None

    def error(self, value: Any) -> str | None:
        """Why ``value`` does not fit this param, or None."""
        if not _TYPE_CHECKS[self.type](value):
            return f"parameter `{self.name}` must be {_TYPE_WORDS[self.type]}, got {value!r}"
        if self.choices and value not in self.choices:
            listed = ", ".join(self.choices)
            return f"parameter `{self.name}` must be one of {listed}; got {value!r}"
        if self.minimum is not None and value < self.minimum:
            return f"parameter `{self.name}` must be at least {self.minimum:g}, got {value!r}"
        return None


def _keep(params: dict[str, Any], children: Sequence[NodeSpec]) -> list[str]:
    return []


@dataclass(frozen=True)
class Builtin:
    """A built-in kind: its role, its params and how to construct it."""

    name: str
    role: Role
    make: Maker
    params: tuple[Param, ...] = ()
    refine: Refiner = _keep
    """Checks that involve several params or the children; may fill in dependent defaults."""
    xml_only: bool = False
    """Produced by the XML loader only (not offered to YAML/JSON files)."""

    def normalize(
        self, params: Mapping[str, Any], children: Sequence[NodeSpec]
    ) -> tuple[dict[str, Any], list[str]]:
        """The params with defaults filled in, and every error found in them."""
        result, errors = check_params(self.name, self.params, params)
        if not errors:
            errors.extend(f"{self.name}: {error}" for error in self.refine(result, children))
        return result, errors

    def construct(
        self, name: str, params: Mapping[str, Any], children: Sequence[Behaviour]
    ) -> Behaviour:
        """A fresh py_trees behaviour (params as :meth:`normalize` returned them)."""
        return self.make(name, params, children)


def check_params(
    kind: str, table: Sequence[Param], params: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """``params`` checked against a kind's ``table``, with defaults filled in, and every error
    found in them (unknown, missing, of the wrong type)."""
    known = {param.name: param for param in table}
    errors = [_unknown(kind, key, known) for key in params if key not in known]
    result: dict[str, Any] = {}
    for param in table:
        if param.name in params:
            problem = param.error(params[param.name])
            errors.extend([f"{kind}: {problem}"] if problem else [])
            result[param.name] = params[param.name]
        elif param.default is REQUIRED:
            word = _TYPE_WORDS[param.type]
            errors.append(f"{kind}: missing parameter `{param.name}` ({word})")
        elif param.default is not OPTIONAL:
            result[param.name] = copy.deepcopy(param.default)
    return result, errors


def _unknown(kind: str, key: str, known: Mapping[str, Param]) -> str:
    if not known:
        return f"{kind} takes no parameters, got `{key}`"
    accepted = ", ".join(known)
    hint = did_you_mean(key, known)
    return f"{kind}: unknown parameter `{key}`{hint}; it accepts: {accepted}"


# --- composites ------------------------------------------------------------------------------


def _composite(cls: type[composites.Sequence] | type[composites.Selector]) -> Maker:
    def make(name: str, params: Mapping[str, Any], children: Sequence[Behaviour]) -> Behaviour:
        return cls(name=name, memory=params["memory"], children=list(children))

    return make


def _parallel(name: str, params: Mapping[str, Any], children: Sequence[Behaviour]) -> Behaviour:
    policy: common.ParallelPolicy.Base
    if params["policy"] == "SuccessOnOne":
        policy = common.ParallelPolicy.SuccessOnOne()
    elif params["policy"] == "SuccessOnAll":
        policy = common.ParallelPolicy.SuccessOnAll(synchronise=params["synchronise"])
    else:
        chosen = [
            child for wanted in params["children"] for child in children if child.name == wanted
        ]
        policy = common.ParallelPolicy.SuccessOnSelected(
            children=chosen, synchronise=params["synchronise"]
        )
    return composites.Parallel(name=name, policy=policy, children=list(children))


def _refine_parallel(params: dict[str, Any], children: Sequence[NodeSpec]) -> list[str]:
    """``synchronise`` belongs to SuccessOnAll/SuccessOnSelected (default true); ``children``
    (names of direct children) to SuccessOnSelected only, each naming exactly one child."""
    policy = params["policy"]
    if policy == "SuccessOnOne":
        extra = [key for key in ("synchronise", "children") if key in params]
        return [f"parameter `{key}` does not apply to policy SuccessOnOne" for key in extra]
    params.setdefault("synchronise", True)
    if policy == "SuccessOnAll":
        if "children" in params:
            return ["parameter `children` applies only to policy SuccessOnSelected"]
        return []
    if not params.get("children"):
        return [
            "policy SuccessOnSelected needs `children`: the names of the children to succeed on"
        ]
    names = [child.name for child in children]
    return [
        _selected_error(wanted, names) for wanted in params["children"] if names.count(wanted) != 1
    ]


def _selected_error(wanted: str, names: list[str]) -> str:
    if wanted in names:
        return f"`children` names {wanted!r}, but several children have that name"
    return f"`children` names {wanted!r}, which is not a direct child{did_you_mean(wanted, names)}"


# --- decorators ------------------------------------------------------------------------------


def _decorator(cls: type[decorators.Decorator]) -> Maker:
    def make(name: str, params: Mapping[str, Any], children: Sequence[Behaviour]) -> Behaviour:
        return cls(name=name, child=children[0], **params)

    return make


def _one_shot(name: str, params: Mapping[str, Any], children: Sequence[Behaviour]) -> Behaviour:
    policy = common.OneShotPolicy[params["policy"]]
    return decorators.OneShot(name=name, child=children[0], policy=policy)


def _subtree(name: str, params: Mapping[str, Any], children: Sequence[Behaviour]) -> Behaviour:
    """A BehaviorTree.CPP SubTree stays visible as a node (as Groot2 shows it); its ``ID`` and
    port remapping are recorded in params for the engine, not passed to py_trees."""
    return decorators.PassThrough(name=name, child=children[0])


# --- behaviours ------------------------------------------------------------------------------


def _leaf(cls: Callable[..., Behaviour]) -> Maker:
    def make(name: str, params: Mapping[str, Any], children: Sequence[Behaviour]) -> Behaviour:
        return cls(name=name, **params)

    return make


def _tick_counter(name: str, params: Mapping[str, Any], children: Sequence[Behaviour]) -> Behaviour:
    status = common.Status[params["completion_status"]]
    return behaviours.TickCounter(name=name, duration=params["duration"], completion_status=status)


def _set_variable(name: str, params: Mapping[str, Any], children: Sequence[Behaviour]) -> Behaviour:
    return behaviours.SetBlackboardVariable(
        name=name,
        variable_name=params["variable_name"],
        variable_value=copy.deepcopy(params["variable_value"]),  # py_trees stores by reference
        overwrite=params["overwrite"],
    )


def _comparison(
    cls: type[behaviours.CheckBlackboardVariableValue]
    | type[behaviours.WaitForBlackboardVariableValue],
) -> Maker:
    def make(name: str, params: Mapping[str, Any], children: Sequence[Behaviour]) -> Behaviour:
        check = common.ComparisonExpression(
            variable=params["variable_name"],
            value=copy.deepcopy(params["expected_value"]),
            operator=OPERATORS[params["operator"]],
        )
        return cls(name=name, check=check)

    return make


_MEMORY = Param("memory", "boolean", default=True)
_VARIABLE = Param("variable_name", "string")
_COMPARISON = (
    _VARIABLE,
    Param("expected_value", "any"),
    Param("operator", "string", default="==", choices=tuple(OPERATORS)),
)

_TABLE: tuple[Builtin, ...] = (
    Builtin("Sequence", Role.COMPOSITE, _composite(composites.Sequence), (_MEMORY,)),
    Builtin("Selector", Role.COMPOSITE, _composite(composites.Selector), (_MEMORY,)),
    Builtin(
        "Parallel",
        Role.COMPOSITE,
        _parallel,
        (
            Param("policy", "string", default="SuccessOnAll", choices=PARALLEL_POLICIES),
            Param("synchronise", "boolean", default=OPTIONAL),
            Param("children", "array", default=OPTIONAL),
        ),
        refine=_refine_parallel,
    ),
    Builtin("Inverter", Role.DECORATOR, _decorator(decorators.Inverter)),
    Builtin(
        "Repeat",
        Role.DECORATOR,
        _decorator(decorators.Repeat),
        (Param("num_success", "integer", minimum=-1),),
    ),
    Builtin(
        "Retry",
        Role.DECORATOR,
        _decorator(decorators.Retry),
        (Param("num_failures", "integer", minimum=1),),
    ),
    Builtin(
        "Timeout",
        Role.DECORATOR,
        _decorator(decorators.Timeout),
        (Param("duration", "number", default=5.0, minimum=0),),
    ),
    Builtin(
        "OneShot",
        Role.DECORATOR,
        _one_shot,
        (Param("policy", "string", choices=ONE_SHOT_POLICIES),),
    ),
    Builtin("FailureIsSuccess", Role.DECORATOR, _decorator(decorators.FailureIsSuccess)),
    Builtin("SuccessIsFailure", Role.DECORATOR, _decorator(decorators.SuccessIsFailure)),
    Builtin("FailureIsRunning", Role.DECORATOR, _decorator(decorators.FailureIsRunning)),
    Builtin("RunningIsFailure", Role.DECORATOR, _decorator(decorators.RunningIsFailure)),
    Builtin("RunningIsSuccess", Role.DECORATOR, _decorator(decorators.RunningIsSuccess)),
    Builtin("SuccessIsRunning", Role.DECORATOR, _decorator(decorators.SuccessIsRunning)),
    Builtin(
        "SubTree",
        Role.DECORATOR,
        _subtree,
        (
            Param("ID", "string"),
            Param("remapping", "object", default={}),
            Param("autoremap", "boolean", default=False),
        ),
        xml_only=True,
    ),
    Builtin("Success", Role.BEHAVIOUR, _leaf(behaviours.Success)),
    Builtin("Failure", Role.BEHAVIOUR, _leaf(behaviours.Failure)),
    Builtin("Running", Role.BEHAVIOUR, _leaf(behaviours.Running)),
    Builtin("Dummy", Role.BEHAVIOUR, _leaf(behaviours.Dummy)),
    Builtin(
        "TickCounter",
        Role.BEHAVIOUR,
        _tick_counter,
        (
            Param("duration", "integer", minimum=0),
            Param("completion_status", "string", choices=STATUSES),
        ),
    ),
    Builtin(
        "SuccessEveryN",
        Role.BEHAVIOUR,
        _leaf(behaviours.SuccessEveryN),
        (Param("n", "integer", minimum=1),),
    ),
    Builtin(
        "Periodic", Role.BEHAVIOUR, _leaf(behaviours.Periodic), (Param("n", "integer", minimum=1),)
    ),
    Builtin(
        "SetBlackboardVariable",
        Role.BEHAVIOUR,
        _set_variable,
        (_VARIABLE, Param("variable_value", "any"), Param("overwrite", "boolean")),
    ),
    Builtin(
        "UnsetBlackboardVariable",
        Role.BEHAVIOUR,
        _leaf(behaviours.UnsetBlackboardVariable),
        (Param("key", "string"),),
    ),
    Builtin(
        "CheckBlackboardVariableExists",
        Role.BEHAVIOUR,
        _leaf(behaviours.CheckBlackboardVariableExists),
        (_VARIABLE,),
    ),
    Builtin(
        "CheckBlackboardVariableValue",
        Role.BEHAVIOUR,
        _comparison(behaviours.CheckBlackboardVariableValue),
        _COMPARISON,
    ),
    Builtin(
        "WaitForBlackboardVariable",
        Role.BEHAVIOUR,
        _leaf(behaviours.WaitForBlackboardVariable),
        (_VARIABLE,),
    ),
    Builtin(
        "WaitForBlackboardVariableValue",
        Role.BEHAVIOUR,
        _comparison(behaviours.WaitForBlackboardVariableValue),
        _COMPARISON,
    ),
)

BUILTINS: Mapping[str, Builtin] = MappingProxyType({entry.name: entry for entry in _TABLE})
"""Every built-in kind by name."""

FILE_BUILTINS: tuple[str, ...] = tuple(entry.name for entry in _TABLE if not entry.xml_only)
"""The built-in names a YAML/JSON tree file may use as ``type``."""
