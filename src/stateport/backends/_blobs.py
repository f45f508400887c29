"""Choosing where an engine keeps its blobs: the ``blobs=`` URL parameter.

``blobs=<directory>`` puts them in files (:mod:`.filesystem`) beside any table
engine; ``blobs=memory`` keeps them in the process; the default is the engine's
own blob store (inside the SQLite file, in memory for ``memory://``).
"""

from __future__ import annotations

from collections.abc import Callable

from ..ports.blob import BlobPort


def choose_blobs(spec: str | None, own: Callable[[], BlobPort], *, durable: bool) -> BlobPort:
    """The blob port the ``blobs`` URL parameter asks for (``spec``; None for the default)."""
    if spec is None or spec in ("", "own"):
        return own()
    if spec == "memory":
        from .memory import MemoryBlobPort

        return MemoryBlobPort()
    from .filesystem import FilesystemBlobPort

    return FilesystemBlobPort(spec.removeprefix("file://"), durable=durable)
