"""The records of the knowledge repository, and the checks of what callers pass in.

Every record is a frozen dataclass of plain values (str, int, datetime, dicts of
JSON): nothing of the engine reaches a caller. Ids are assigned by the store:
``col_…`` for a collection, ``col_….art_…`` for an artifact (its collection's
id first), ``col_….art_….rel_…`` for a relationship (its source's id first),
``ctx_…``, and ``run_…`` unless the caller chooses an operation run's id.
Timestamps are UTC.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from ... import _json, _time
from ...digest import ContentDigest
from ...errors import ValidationError
from ...primitives.machine import StateMachine
from ..work.models import check_enum, check_name, check_text

__all__ = [
    "OPERATION_STATES",
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

MAX_ID: Final = 128
MAX_TYPE: Final = 128
MAX_METADATA_BYTES: Final = 64 * 1024
"""Canonical JSON bytes of one metadata dict (artifact, relationship, run, ...)."""
MAX_URIS: Final = 100
MAX_PROVENANCE_BYTES: Final = 16 * 1024
"""Canonical JSON bytes of an artifact's provenance (with the metadata, the record
stays far below DynamoDB's 400 KB per item)."""
MAX_REFERENCES: Final = 1000
"""References of one context package, and artifact revisions of one input bundle or manifest."""
DEFAULT_MEDIA_TYPE: Final = "application/octet-stream"
_ID_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-")


# --------------------------------------------------------------------------- enums


class OperationStatus(StrEnum):
    """Where an operation run, or one of its steps, stands."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


_O = OperationStatus
OPERATION_STATES: Final = StateMachine(
    "operation",
    {
        _O.PENDING: {_O.RUNNING, _O.CANCELLED},
        _O.RUNNING: {_O.SUCCEEDED, _O.FAILED, _O.CANCELLED},
    },
)
"""The status machine of operation runs and of workflow steps: pending → running →
succeeded | failed | cancelled (a pending one may be cancelled); the last three are final."""


class ChangeKind(StrEnum):
    """What a change record records."""

    COLLECTION_CREATED = "collection.created"
    COLLECTION_RENAMED = "collection.renamed"
    COLLECTION_DELETED = "collection.deleted"
    ARTIFACT_CREATED = "artifact.created"
    ARTIFACT_UPDATED = "artifact.updated"
    ARTIFACT_DELETED = "artifact.deleted"
    RELATIONSHIP_CREATED = "relationship.created"
    RELATIONSHIP_DELETED = "relationship.deleted"


class Direction(StrEnum):
    """Which relationships of an artifact: from it (``out``), to it (``in``) or both."""

    OUT = "out"
    IN = "in"
    BOTH = "both"


class ReferenceKind(StrEnum):
    """What a context reference points at."""

    ARTIFACT = "artifact"
    RELATIONSHIP = "relationship"
    RUN = "run"
    EXTERNAL = "external"


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Collection:
    """A named group of artifacts; names are unique in the repository."""

    id: str
    name: str
    description: str
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Provenance:
    """Who or what produced an artifact: an actor, the operation run that produced it
    (it must exist in this repository), and the URIs of its sources."""

    actor: str | None = None
    run_id: str | None = None
    source_uris: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Artifact:
    """An artifact at its current revision. ``digest`` names its content in the blob store."""

    id: str
    collection_id: str
    name: str
    artifact_type: str
    revision: int
    digest: ContentDigest
    size: int
    media_type: str
    metadata: dict[str, Any]
    provenance: Provenance
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ArtifactRevision:
    """One revision of an artifact: its content and metadata then, and the digest before."""

    artifact_id: str
    revision: int
    digest: ContentDigest
    old_digest: ContentDigest | None
    size: int
    media_type: str
    metadata: dict[str, Any]
    created_at: datetime
    actor: str | None


@dataclass(frozen=True, slots=True)
class ArtifactPage:
    """One page of artifacts; pass ``cursor`` back (with the same filters) for the next."""

    artifacts: list[Artifact]
    cursor: str | None


@dataclass(frozen=True, slots=True)
class Relationship:
    """A typed, directed relationship from ``source_id`` to ``target_id``."""

    id: str
    source_id: str
    rel_type: str
    target_id: str
    metadata: dict[str, Any]
    created_at: datetime
    actor: str | None


@dataclass(frozen=True, slots=True)
class Neighbour:
    """An artifact reached by :meth:`~KnowledgeRepository.traverse`: how many hops away,
    and the relationship it was first reached through."""

    artifact_id: str
    depth: int
    via: Relationship


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    """One mutation of the repository, numbered in commit order (``seq`` 1, 2, 3, ...).

    ``entity_id`` is the collection, artifact or relationship changed;
    ``artifact_id`` the artifact concerned (a relationship's source);
    ``old_digest``/``new_digest`` the content before and after (artifacts);
    ``details`` what else describes it (names, relationship endpoints).
    """

    seq: int
    kind: ChangeKind
    entity_id: str
    collection_id: str | None
    artifact_id: str | None
    revision: int | None
    old_digest: ContentDigest | None
    new_digest: ContentDigest | None
    actor: str | None
    at: datetime
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """A revision of an artifact, as a run reads or writes it."""

    artifact_id: str
    revision: int


@dataclass(frozen=True, slots=True)
class InputBundle:
    """The artifact revisions an operation run reads, with what else describes them."""

    artifacts: tuple[ArtifactRef, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OperationRun:
    """A run of an operation over the repository (its steps are :class:`WorkflowStep`)."""

    id: str
    operation: str
    status: OperationStatus
    inputs: InputBundle
    metadata: dict[str, Any]
    actor: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None


@dataclass(frozen=True, slots=True)
class RunPage:
    """One page of operation runs, newest first; pass ``cursor`` back for the next."""

    runs: list[OperationRun]
    cursor: str | None


@dataclass(frozen=True, slots=True)
class WorkflowStep:
    """One step of an operation run; ``seq`` numbers the run's steps 1, 2, 3, ..."""

    run_id: str
    seq: int
    name: str
    status: OperationStatus
    metadata: dict[str, Any]
    output: Any
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class RunManifest:
    """What an operation run read and wrote, what it reported, and when; stored as given."""

    run_id: str
    inputs: tuple[ArtifactRef, ...] = ()
    outputs: tuple[ArtifactRef, ...] = ()
    diagnostics: Any = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ContextReference:
    """What a context package refers to. Build with :meth:`artifact` (optionally pinned
    to a revision), :meth:`relationship`, :meth:`run` or :meth:`external`.

    An external reference (a memory record of another system) is opaque: it is
    stored with its provenance (``source_system``, ``uri``, ``recorded_at``) and
    never dereferenced.
    """

    kind: ReferenceKind
    target: str
    revision: int | None = None
    source_system: str | None = None
    recorded_at: datetime | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def artifact(cls, artifact_id: str, revision: int | None = None) -> ContextReference:
        return cls(ReferenceKind.ARTIFACT, artifact_id, revision)

    @classmethod
    def relationship(cls, relationship_id: str) -> ContextReference:
        return cls(ReferenceKind.RELATIONSHIP, relationship_id)

    @classmethod
    def run(cls, run_id: str) -> ContextReference:
        return cls(ReferenceKind.RUN, run_id)

    @classmethod
    def external(
        cls,
        source_system: str,
        uri: str,
        *,
        recorded_at: datetime | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> ContextReference:
        """An opaque reference to a record of another system (``target`` is its URI)."""
        return cls(
            ReferenceKind.EXTERNAL, uri, None, source_system, recorded_at, dict(metadata or {})
        )


@dataclass(frozen=True, slots=True)
class DanglingReference:
    """A reference of a context package whose target no longer exists, found on reading."""

    index: int
    reference: ContextReference
    reason: str


@dataclass(frozen=True, slots=True)
class ContextPackage:
    """A named set of references. ``dangling`` lists, when the package is read, the
    references whose target is gone (they are kept, never dropped)."""

    id: str
    name: str
    references: tuple[ContextReference, ...]
    metadata: dict[str, Any]
    actor: str | None
    created_at: datetime
    dangling: tuple[DanglingReference, ...] = ()


# --------------------------------------------------------------------------- checks


def new_id(kind: str) -> str:
    """A new random id of ``kind`` (``col``, ``run``, ...): ``<kind>_`` and 64 random
    bits in hex (artifacts and relationships prefix theirs with their parent's id)."""
    return f"{kind}_{secrets.token_hex(8)}"


def check_id(value: Any, what: str) -> str:
    """An id: 1 to 128 characters of ``A-Z a-z 0-9 _ . : -`` (no ``#``: ids go into keys)."""
    if type(value) is not str or not value:
        raise ValidationError(f"{what} must be a non-empty str, got {value!r}")
    if len(value) > MAX_ID or not _ID_CHARS.issuperset(value):
        raise ValidationError(
            f"{what} must be at most {MAX_ID} characters of letters, digits and _ . : - "
            f"(got {value[:40]!r})"
        )
    return value


def check_type_name(value: Any, what: str) -> str:
    """An artifact or relationship type: printable, at most 128 characters, no ``#``."""
    text = check_name(value, what)
    if len(text) > MAX_TYPE or "#" in text:
        raise ValidationError(f"{what} must be at most {MAX_TYPE} characters without '#': {text!r}")
    return text


def check_media_type(value: Any) -> str:
    text = check_name(value, "media_type")
    essence = text.partition(";")[0].strip()
    kind, slash, sub = essence.partition("/")
    if not slash or not kind or not sub or " " in essence or "/" in sub:
        raise ValidationError(
            f"media_type must look like 'type/subtype' (parameters may follow ';'), got {text!r}"
        )
    return text


def check_actor(value: Any) -> str | None:
    return None if value is None else check_name(value, "actor")


def check_metadata(value: Any, what: str, *, portable: bool) -> dict[str, Any]:
    """A JSON object of at most :data:`MAX_METADATA_BYTES` (canonical JSON); a copy."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(f"{what} must be a dict, got {type(value).__name__}")
    data = dict(value)
    _json.check_json(data, portable=portable, where=what)
    size = len(_json.encode_bytes(data))
    if size > MAX_METADATA_BYTES:
        raise ValidationError(
            f"{what} is {size} bytes of JSON; the limit is {MAX_METADATA_BYTES}: "
            "store large values as artifact content"
        )
    return data


def check_json_value(value: Any, what: str, *, portable: bool) -> Any:
    """Any JSON value of at most :data:`MAX_METADATA_BYTES` (a step's output, diagnostics)."""
    _json.check_json(value, portable=portable, where=what)
    size = len(_json.encode_bytes(value))
    if size > MAX_METADATA_BYTES:
        raise ValidationError(f"{what} is {size} bytes of JSON; the limit is {MAX_METADATA_BYTES}")
    return value


def check_revision(value: Any, what: str) -> int:
    if type(value) is not int or value < 1:
        raise ValidationError(f"{what} must be an int >= 1, got {value!r}")
    return value


def check_limit(value: Any) -> int:
    if type(value) is not int or not 1 <= value <= 10_000:
        raise ValidationError(f"limit must be an int from 1 to 10000, got {value!r}")
    return value


def check_provenance(value: Any, actor: str | None) -> dict[str, Any]:
    """The stored form of a :class:`Provenance` (``actor`` fills in a missing actor)."""
    if value is None:
        value = Provenance(actor=actor)
    if not isinstance(value, Provenance):
        raise ValidationError(f"provenance must be a Provenance, got {type(value).__name__}")
    uris = value.source_uris
    if isinstance(uris, (str, bytes)) or not isinstance(uris, (tuple, list)):
        raise ValidationError("provenance.source_uris must be a list of str")
    if len(uris) > MAX_URIS:
        raise ValidationError(f"provenance.source_uris holds {len(uris)} URIs; at most {MAX_URIS}")
    stored = {
        "actor": check_actor(value.actor if value.actor is not None else actor),
        "run": None if value.run_id is None else check_id(value.run_id, "provenance.run_id"),
        "uris": [check_text(u, "each of provenance.source_uris", limit=2048) for u in uris],
    }
    size = len(_json.encode_bytes(stored))
    if size > MAX_PROVENANCE_BYTES:
        raise ValidationError(
            f"provenance is {size} bytes of JSON; the limit is {MAX_PROVENANCE_BYTES}"
        )
    return stored


def provenance_of(data: Mapping[str, Any]) -> Provenance:
    return Provenance(data.get("actor"), data.get("run"), tuple(data.get("uris", ())))


def check_refs(value: Any, what: str) -> list[list[Any]]:
    """A list of :class:`ArtifactRef`, stored as ``[[artifact id, revision], ...]``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)):
        raise ValidationError(f"{what} must be a list of ArtifactRef")
    if len(value) > MAX_REFERENCES:
        raise ValidationError(f"{what} holds {len(value)} entries; at most {MAX_REFERENCES}")
    out: list[list[Any]] = []
    for ref in value:
        if not isinstance(ref, ArtifactRef):
            raise ValidationError(f"each of {what} must be an ArtifactRef, got {ref!r}")
        out.append(
            [
                check_id(ref.artifact_id, f"{what}: artifact_id"),
                check_revision(ref.revision, f"{what}: revision"),
            ]
        )
    return out


def refs_of(data: list[list[Any]]) -> tuple[ArtifactRef, ...]:
    return tuple(ArtifactRef(a, r) for a, r in data)


def check_status(value: Any) -> OperationStatus:
    return check_enum(OperationStatus, value, "status")


def check_direction(value: Any) -> Direction:
    return check_enum(Direction, value, "direction")


def optional_time(value: Any, what: str) -> str | None:
    return None if value is None else _time.to_text(_time.check_datetime(value, what))


def time_of(text: str | None) -> datetime | None:
    return None if text is None else _time.from_text(text)
