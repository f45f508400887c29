"""Moving state between stores: the content digest, copy, and snapshot files.

One mechanism serves them all (docs/decisions/0022-moving-state-between-engines.md):
items are read in canonical key order through the table port's scan, written
with their versions through its restore, blobs are streamed, and every move
ends by comparing content digests. A :class:`~stateport.domains.registry.Scope`
limits any of them to some domains (or partition-key prefixes), so a store can
export and import its own partitions with the same format.

Use it through :meth:`stateport.Stateport.digest`,
:meth:`~stateport.Stateport.export_snapshot`,
:meth:`~stateport.Stateport.import_snapshot` and :func:`stateport.copy`.
"""

from .fileformat import FORMAT, MAGIC, Manifest
from .files import export_store, import_store
from .moving import (
    PAGE_SIZE,
    MoveSummary,
    Ports,
    Progress,
    ProgressCallback,
    content_digest,
    copy_store,
)
from .records import StoreDigest

__all__ = [
    "FORMAT",
    "MAGIC",
    "PAGE_SIZE",
    "Manifest",
    "MoveSummary",
    "Ports",
    "Progress",
    "ProgressCallback",
    "StoreDigest",
    "content_digest",
    "copy_store",
    "export_store",
    "import_store",
]
