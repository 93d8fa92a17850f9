"""py_trees blackboard keys as the nested names expressions read (``/battery/level`` is
``battery.level``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

_MISSING: Final = object()
"""Marks a key that is absent (a present key may hold ``None``)."""


def flatten_blackboard(items: Mapping[str, Any]) -> dict[str, Any]:
    """py_trees blackboard keys (``/battery/level``, ``/robot/pose/x``) as nested dicts
    (``{"battery": {"level": ...}, "robot": {"pose": {"x": ...}}}``), so that expressions say
    ``battery.level``.

    Rules:

    - a key is split on ``/``; leading, trailing and doubled slashes are ignored (``/a//b/``
      is ``a.b``), so keys that differ only in slashes collide and the last one wins;
    - a key that is both a value and a namespace (``/battery`` = 80 and ``/battery/level`` =
      20) becomes a namespace holding its children *and* its own value under the empty key:
      ``battery[""]`` is 80 (think ``/battery/``) and ``battery.level`` is 20; if that value is
      a mapping, its keys are also readable directly (``battery.voltage``) except where a child
      key has the same name (the more specific blackboard key wins). The result does not depend
      on the order of the keys;
    - values are not copied (the caller copies at capture time if it must);
    - a segment that is not an identifier (``my-key``, ``2nd``) is kept as it is and is readable
      as ``parent["my-key"]``; at the top level it cannot be named in an expression.
    """
    root: dict[str, Any] = {}
    namespaces: set[int] = set()  # ids of the dicts made here (a value may be a dict too)

    def absorb(namespace: dict[str, Any], value: Any) -> None:
        namespace[""] = value
        if isinstance(value, Mapping):
            for key, item in value.items():
                if isinstance(key, str) and key not in namespace:
                    namespace[key] = item

    for key, value in items.items():
        segments = [segment for segment in str(key).split("/") if segment] or [""]
        node = root
        for segment in segments[:-1]:
            child = node.get(segment, _MISSING)
            if child is _MISSING or id(child) not in namespaces:
                namespace: dict[str, Any] = {}
                namespaces.add(id(namespace))
                if child is not _MISSING:
                    absorb(namespace, child)
                node[segment] = child = namespace
            node = child
        leaf = segments[-1]
        existing = node.get(leaf, _MISSING)
        if existing is not _MISSING and id(existing) in namespaces:
            absorb(existing, value)
        else:
            node[leaf] = value
    return root
