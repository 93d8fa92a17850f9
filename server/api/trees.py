"""The tree library over HTTP: upload versions of tree definitions, list them, read one.

An execution runs an uploaded version with the launch program ``tree:<name>`` (the latest)
or ``tree:<name>@<version>``.
"""

from __future__ import annotations

from aiohttp import web

from canopy.bridge.jsondata import INT_MAX

from ..trees import TreeLibrary
from .keys import PRINCIPAL, STORE
from .params import json_body, whole_number
from .problems import Problem

__all__ = ["get_tree", "list_trees", "upload_tree"]


def _library(request: web.Request) -> TreeLibrary:
    return TreeLibrary(request.app[STORE], request[PRINCIPAL].tenant_id)


async def upload_tree(request: web.Request) -> web.Response:
    """``POST /api/v1/trees`` with ``{"name", "format": "yaml"|"json"|"xml", "content"}``:
    201 with the new version, or 200 with the latest one when the content is the same."""
    body = await json_body(request, '{"name": ..., "format": ..., "content": ...}')
    fields: dict[str, str] = {}
    for key in ("name", "format", "content"):
        value = body.get(key)
        if not isinstance(value, str):
            raise Problem(400, "invalid-request", f"{key!r} must be a string", field=key)
        fields[key] = value
    if unknown := sorted(set(body) - set(fields)):
        raise Problem(400, "invalid-request", f"unknown field {unknown[0]!r}", field=unknown[0])
    library = _library(request)
    before = await library.store.last_offset()
    tree = await library.upload(
        fields["name"], fields["format"], fields["content"], request[PRINCIPAL].user_id
    )
    created = await library.store.last_offset() > before
    return web.json_response(tree.summary(), status=201 if created else 200)


async def list_trees(request: web.Request) -> web.Response:
    """``GET /api/v1/trees``: the latest version of each tree of the caller's tenant."""
    return web.json_response({"trees": await _library(request).summaries()})


async def get_tree(request: web.Request) -> web.Response:
    """``GET /api/v1/trees/{name}[?version=N]``: one version (default the latest), with its
    content."""
    version = whole_number(request.query, "version", 1, INT_MAX)
    tree = await _library(request).get(request.match_info["name"], version)
    return web.json_response({**tree.summary(), "content": tree.content})
