"""The tree library: versions of tree definitions uploaded to the server, kept in the log.

Each upload is a ``TreeUploaded`` event on the stream ``tree/<name>`` of the uploader's tenant;
its version is the stream's version, so versions are gap-free and two uploads racing for the
same version cannot both win. Uploading the same content as the latest version again is not a
new version. Executions in any pod (local or Kubernetes) can then run a version: the server
ships the content to the pod, which needs no access to the uploader's files.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final

from canopy.bridge import (
    CanopyError,
    ConcurrencyConflict,
    EventFilter,
    EventStore,
    InvalidArgument,
    NewEvent,
    Producer,
    Topic,
)

from . import __version__
from .runtime.definition import DefinitionError
from .runtime.definition.documents import read_document
from .runtime.definition.tree_schema import schema_problems
from .runtime.definition.xml_elements import parse_xml

__all__ = ["FORMATS", "TREE_PROGRAM", "StoredTree", "TreeLibrary", "UnknownTree", "parse_program"]

FORMATS: Final = ("yaml", "json", "xml")
TREE_PROGRAM: Final = "tree:"
"""Launch programs of the form ``tree:<name>`` (latest) or ``tree:<name>@<version>``."""
NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
PRODUCER: Final = Producer("canopy-server", __version__)
_PAGE: Final = 1000


class UnknownTree(CanopyError):
    """No such tree, or no such version of it."""


@dataclass(frozen=True, slots=True)
class StoredTree:
    """One version of a tree definition."""

    name: str
    version: int
    format: str
    content: str
    sha256: str
    uploaded_at: str

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "format": self.format,
            "sha256": self.sha256,
            "uploaded_at": self.uploaded_at,
        }

    @property
    def file_name(self) -> str:
        return f"{self.name}@{self.version}.{self.format}"


def parse_program(program: str) -> tuple[str, int | None] | None:
    """``(name, version)`` of a ``tree:`` program (version None for the latest), else None."""
    if not program.startswith(TREE_PROGRAM):
        return None
    name, _, version = program.removeprefix(TREE_PROGRAM).partition("@")
    if not version:
        return name, None
    if not version.isdigit():
        raise UnknownTree(f"{program!r}: the version after '@' must be a number")
    return name, int(version)


def check_definition(name: str, format: str, content: str) -> None:
    """Refuse a definition that is not well-formed (``DefinitionError`` with positions).
    Classes are not resolved here: they are imported in the pod that runs the tree."""
    path = f"{name}.{format}"
    if format == "xml":
        parse_xml(path, content.encode("utf-8"))
        return
    document = read_document(path, content, is_json=format == "json")
    if problems := schema_problems(document):
        raise DefinitionError(problems)


class TreeLibrary:
    """Upload, list and read tree versions of one tenant."""

    def __init__(self, store: EventStore, tenant_id: str) -> None:
        self.store = store
        self.tenant_id = tenant_id

    async def upload(self, name: str, format: str, content: str, user_id: str) -> StoredTree:
        """Store ``content`` as the next version of ``name`` (or return the latest version
        when it holds the same content)."""
        if not NAME.match(name):
            raise InvalidArgument(
                f"tree name {name!r} must be 1-128 letters, digits, '_', '.' or '-', "
                "starting with a letter or digit"
            )
        if format not in FORMATS:
            raise InvalidArgument(f"format {format!r} is not one of {', '.join(FORMATS)}")
        # Parsing is pure Python (a 1 MiB tree file takes a while): off the event loop.
        await asyncio.to_thread(check_definition, name, format, content)
        digest = hashlib.sha256(content.encode("utf-8")).hexdigest()
        while True:
            versions = await self._versions(name)
            if versions and versions[-1].sha256 == digest and versions[-1].format == format:
                return versions[-1]
            payload = {
                "name": name,
                "version": len(versions) + 1,
                "format": format,
                "content": content,
                "sha256": digest,
                "user_id": user_id,
            }
            event = NewEvent(
                tenant_id=self.tenant_id,
                topic=Topic.INTERNAL,
                stream=f"tree/{name}",
                type="TreeUploaded",
                payload=payload,
                producer=PRODUCER,
                expected_version=len(versions),
            )
            try:
                await self.store.append([event])
            except ConcurrencyConflict:
                continue  # another upload took that version: look again
            return (await self._versions(name))[len(versions)]

    async def get(self, name: str, version: int | None = None) -> StoredTree:
        versions = await self._versions(name)
        if not versions:
            raise UnknownTree(f"no tree {name!r}")
        if version is None:
            return versions[-1]
        if not 1 <= version <= len(versions):
            raise UnknownTree(f"tree {name!r} has versions 1 to {len(versions)}, not {version}")
        return versions[version - 1]

    async def summaries(self) -> list[dict[str, Any]]:
        """The latest version of every tree, with how many versions it has."""
        latest: dict[str, StoredTree] = {}
        async for tree in self._read(EventFilter.of(self.tenant_id, types=["TreeUploaded"])):
            latest[tree.name] = tree
        return [
            {**tree.summary(), "versions": tree.version}
            for tree in sorted(latest.values(), key=lambda t: t.name)
        ]

    async def _versions(self, name: str) -> list[StoredTree]:
        wanted = EventFilter.of(self.tenant_id, streams=[f"tree/{name}"], types=["TreeUploaded"])
        return [tree async for tree in self._read(wanted)]

    async def _read(self, wanted: EventFilter) -> AsyncIterator[StoredTree]:
        head = await self.store.last_offset()
        after = 0
        while after < head:
            page = await self.store.read(wanted, after=after, limit=_PAGE, until=head)
            for event in page.events:
                payload = event.payload
                yield StoredTree(
                    payload["name"],
                    payload["version"],
                    payload["format"],
                    payload["content"],
                    payload["sha256"],
                    event.time.isoformat(),
                )
            after = page.scanned_to
