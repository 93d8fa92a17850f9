"""What an agent's events keep of its content: everything (verbose), or a digest (silent).

Prompts, responses, inputs, outputs and tool traffic may be confidential or large. Under
``silent`` capture an event keeps, for each such field, only the SHA-256 and the size of its
canonical bytes (``digests``), so two runs can still be compared and a fork can still tell
whether an input changed; tokens, timing, cost and errors are kept either way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from .values import jsonable

__all__ = ["canonical_bytes", "content_fields", "digest", "fingerprint_of"]


def canonical_bytes(value: Any) -> bytes:
    """The bytes a value is hashed as: a text's UTF-8, anything else its JSON with sorted
    keys (objects JSON cannot hold as their repr, integers beyond 64 bits as their digits)."""
    if isinstance(value, str):
        return value.encode("utf-8")
    try:
        return orjson.dumps(
            value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=repr
        )
    except TypeError:  # an integer beyond 64 bits: the log's own exact form of it
        return orjson.dumps(jsonable(value), option=orjson.OPT_SORT_KEYS)


def digest(value: Any) -> dict[str, Any]:
    """``{"sha256": hex, "bytes": size}`` of the value's canonical bytes."""
    data = canonical_bytes(value)
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def fingerprint_of(value: Any) -> str:
    """``sha256:`` and the hex digest of the value's canonical bytes (the form of
    :meth:`~canopy.server.llm.ModelRequest.fingerprint`)."""
    return "sha256:" + hashlib.sha256(canonical_bytes(value)).hexdigest()


def content_fields(fields: Mapping[str, Any], *, silent: bool) -> dict[str, Any]:
    """The payload entries for content ``fields``: the values themselves, or under silent
    capture one ``digests`` entry holding each field's digest."""
    if not silent:
        return dict(fields)
    if not fields:
        return {}
    return {"digests": {name: digest(value) for name, value in fields.items()}}
