"""Tree definitions: loading a tree from a YAML/JSON file, a BehaviorTree.CPP (Groot2) XML file
or a Python factory into one checked, format-independent :class:`TreeDefinition` (stable node
ids, kinds, params, source locations), and building fresh py_trees behaviours from it.

    definition = load_tree("trees/patrol.yaml")
    built = build_tree(definition)
    built.root.tick_once()

Every mistake in a definition is a :class:`DefinitionError` listing each :class:`Problem` with
its file, line and column; nothing here raises a traceback at a user for a bad tree.
"""

from .agent_kinds import AGENT_KINDS
from .build import CANOPY_ID, BuiltTree, build_tree, stable_id
from .builtin_kinds import BUILTINS, FILE_BUILTINS
from .load import TREE_FILE_SUFFIXES, load_tree
from .model import NodeSpec, SourceLocation, TreeDefinition, TreeFormat
from .problems import DefinitionError, Problem
from .references import blackboard_key, is_blackboard_reference

__all__ = [
    "AGENT_KINDS",
    "BUILTINS",
    "CANOPY_ID",
    "FILE_BUILTINS",
    "TREE_FILE_SUFFIXES",
    "BuiltTree",
    "DefinitionError",
    "NodeSpec",
    "Problem",
    "SourceLocation",
    "TreeDefinition",
    "TreeFormat",
    "blackboard_key",
    "build_tree",
    "is_blackboard_reference",
    "load_tree",
    "stable_id",
]
