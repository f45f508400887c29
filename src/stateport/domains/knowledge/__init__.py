"""The knowledge repository (``sp.knowledge``): collections, artifacts and their
revisions, relationships, change records, queries, workflow runs and context
references, written once on the table and blob ports.

The parts, each a module a reader can hold in their head:

* :mod:`.keys` — where every item lives (the whole layout);
* :mod:`.models` — the records and the checks of what callers pass in;
* :mod:`.changes` — the change feed (a ledger: commit order is sequence order);
* :mod:`.collections`, :mod:`.artifacts`, :mod:`.relationships` — the graph;
* :mod:`.queries` — queries by type, digest, metadata and relationship;
* :mod:`.workflow` — operation runs, steps, manifests;
* :mod:`.context` — context packages and dangling references;
* :mod:`.repository` — :class:`KnowledgeRepository`, assembled from them.

See docs/decisions/0030-knowledge-repository.md and
docs/decisions/0031-knowledge-change-feed-and-queries.md.
"""

from .keys import MAX_INDEXED_KEYS, PREFIX
from .models import (
    OPERATION_STATES,
    Artifact,
    ArtifactPage,
    ArtifactRef,
    ArtifactRevision,
    ChangeKind,
    ChangeRecord,
    Collection,
    ContextPackage,
    ContextReference,
    DanglingReference,
    Direction,
    InputBundle,
    Neighbour,
    OperationRun,
    OperationStatus,
    Provenance,
    ReferenceKind,
    Relationship,
    RunManifest,
    RunPage,
    WorkflowStep,
)
from .relationships import MAX_DEPTH
from .repository import KnowledgeRepository

__all__ = [
    "MAX_DEPTH",
    "MAX_INDEXED_KEYS",
    "OPERATION_STATES",
    "PREFIX",
    "Artifact",
    "ArtifactPage",
    "ArtifactRef",
    "ArtifactRevision",
    "ChangeKind",
    "ChangeRecord",
    "Collection",
    "ContextPackage",
    "ContextReference",
    "DanglingReference",
    "Direction",
    "InputBundle",
    "KnowledgeRepository",
    "Neighbour",
    "OperationRun",
    "OperationStatus",
    "Provenance",
    "ReferenceKind",
    "Relationship",
    "RunManifest",
    "RunPage",
    "WorkflowStep",
]
