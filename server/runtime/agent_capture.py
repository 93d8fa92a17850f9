"""What an agent's events keep of its content: everything (verbose), or a digest (silent).

Prompts, responses, inputs, outputs and tool traffic may be confidential or large. Under
``silent`` capture an event keeps one short digest of all of its content instead (``digest``:
the first 16 hex digits of the SHA-256 of its canonical bytes), so two runs can still be
compared event by event while the log stays a fraction of the verbose one's size; a call's
fingerprint, itself a hash of what was asked, is folded into that digest rather than stored
beside it. Tokens, timing, cost and errors are kept either way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final

import orjson

from .values import jsonable

DIGEST_DIGITS: Final = 16
"""Hex digits of a silent event's digest (64 bits)."""

__all__ = ["DIGEST_DIGITS", "canonical_bytes", "content_fields", "digest", "fingerprint_of"]


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


def digest(value: Any) -> str:
    """The first :data:`DIGEST_DIGITS` hex digits of the SHA-256 of the value's canonical
    bytes: short, and still far from any chance collision between two runs' events."""
    return hashlib.sha256(canonical_bytes(value)).hexdigest()[:DIGEST_DIGITS]


def fingerprint_of(value: Any) -> str:
    """``sha256:`` and the hex digest of the value's canonical bytes (the form of
    :meth:`~canopy.server.llm.ModelRequest.fingerprint`)."""
    return "sha256:" + hashlib.sha256(canonical_bytes(value)).hexdigest()


def content_fields(fields: Mapping[str, Any], *, silent: bool) -> dict[str, Any]:
    """The payload entries for content ``fields``: the values themselves, or under silent
    capture one ``digest`` of them all (by name)."""
    if not silent:
        return dict(fields)
    if not fields:
        return {}
    return {"digest": digest(dict(fields))}
