"""Where the knowledge repository keeps its items: the whole layout, in one place.

Every partition key starts with ``knowledge.``, so the repository is exactly
the partitions under that prefix, and every item of one collection is under
``knowledge.c#<collection id>``: a snapshot or copy scoped by prefix takes
the repository, or one collection, whole and nothing else. Content lives in
the blob store, named by digest. An artifact's id is its collection's id, a
dot and its own part (``col_….art_…``), and a relationship's id is its
source's id, a dot and its own part, so each names its partition::

    knowledge.log#changes   / head, e#<seq:20>        the change feed (a Ledger)
        gsi1..gsi3 = changes-of#<entity>, "c"         history of an entity (see below)
    knowledge.cn#<sha256(name):32> / name              a collection name -> {id, name}
    knowledge.c#<C>         / collection              the collection
        gsi1 = collections, <name>                    collections by name
    knowledge.c#<C>         / n#<artifact name>       an artifact name -> {id}
    knowledge.c#<A>         / artifact                the artifact at its current revision
        gsi1 = digest#<sha256>, <A>                   query by content digest
        gsi2 = type#<artifact type>, <A>              query by artifact type
    knowledge.c#<A>         / r#<rev:10>              a revision it replaced (kept after deletion)
    knowledge.c#<A>         / m#<key>                 one indexed metadata key
        gsi1 = meta#<canonical [key, value]>, <A>
    knowledge.c#<A>         / o#<type>#<A'>           relationship A -type-> A' (a copy)
    knowledge.c#<A>         / i#<type>#<A'>           relationship A' -type-> A (a copy)
    knowledge.c#<A>         / rel#<part>              relationship <A>.<part> from A, by id
        gsi1 = rel-type#<type>, "<source>#<target>"   relationships of one type
    knowledge.run#<U>       / head, e#<seq:20>        an operation run and its steps (a Ledger)
        gsi1 = runs, "<created>#<U>"                  runs, newest first
        gsi2 = runs#<status>, "<created>#<U>"         runs in one status, newest first
    knowledge.run#<U>       / manifest                the run's manifest
    knowledge.run#<U>       / out#<A>                 an artifact the run produced
    knowledge.ctx#<P>       / pkg                     a context package
        gsi1 = contexts, "<created>#<P>"              packages, newest first

(``<C>`` is a collection id, ``<A>`` an artifact id: ``knowledge.c#<A>`` is
``knowledge.c#<C>.art_…``.) Artifact ids start with their collection's id, so
in every stream a query intersects (the digest, type and metadata indexes,
and the relationship copies after ``o#<type>#``) artifacts come in id order
and a collection is a prefix. Change records of one entity share the index
sort key ``"c"``, so the index orders them by their own key, which is their
sequence number.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

from ... import _json

PREFIX: Final = "knowledge."
"""Every partition key of the repository starts with this."""

FEED_KIND: Final = "knowledge.log"
FEED_STREAM: Final = "changes"
RUN_KIND: Final = "knowledge.run"

COLLECTION: Final = "collection"
ARTIFACT: Final = "artifact"
NAME_ENTRY: Final = "name"
NAME: Final = "n#"
REVISION: Final = "r#"
INDEXED: Final = "m#"
OUT: Final = "o#"
IN: Final = "i#"
REL: Final = "rel#"
MANIFEST: Final = "manifest"
OUTPUT: Final = "out#"
PACKAGE: Final = "pkg"

ALL_COLLECTIONS: Final = "knowledge.collections"
ALL_RUNS: Final = "knowledge.runs"
ALL_CONTEXTS: Final = "knowledge.contexts"
HISTORY_SK: Final = "c"
_PARTITION: Final = "knowledge.c#"

# operation tags (a Conflict names the one that failed)
COLLECTION_TAG: Final = "knowledge.collection"
COLLECTION_NAME_TAG: Final = "knowledge.collection-name"
ARTIFACT_TAG: Final = "knowledge.artifact"
ARTIFACT_NAME_TAG: Final = "knowledge.artifact-name"
EDGE_TAG: Final = "knowledge.relationship"
RUN_TAG: Final = "knowledge.run"
STEP_TAG: Final = "knowledge.step"


def partition(ident: str) -> str:
    """The partition of a collection or an artifact (an artifact's id starts with
    its collection's, so one collection's partitions share a prefix)."""
    return _PARTITION + ident


def id_of(pk: str) -> str:
    """The collection or artifact id of a partition key from :func:`partition`."""
    return pk[len(_PARTITION) :]


def collection_prefix(cid: str) -> str:
    """The partition-key prefix of everything one collection holds."""
    return _PARTITION + cid


def name_pk(name: str) -> str:
    """The partition of a collection name (a digest: fixed width, so it is a prefix of
    no other name's partition)."""
    return "knowledge.cn#" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:32]


def artifact_id(cid: str, part: str) -> str:
    return f"{cid}.{part}"


def relationship_key(rid: str) -> tuple[str, str] | None:
    """Where the relationship ``rid`` is kept (its source's partition), or None if
    ``rid`` cannot be a relationship id."""
    source, dot, part = rid.rpartition(".")
    if not dot or not source or not part.startswith("rel_"):
        return None
    return partition(source), REL + part


def context_pk(pid: str) -> str:
    return f"knowledge.ctx#{pid}"


def name_sk(name: str) -> str:
    return NAME + name


def revision_sk(revision: int) -> str:
    return f"{REVISION}{revision:010d}"


def edge_sk(direction: str, rel_type: str, other: str) -> str:
    """The sort key of a relationship copy: ``o#`` or ``i#``, its type, the other end."""
    return f"{direction}{rel_type}#{other}"


def digest_index(digest: str) -> str:
    return f"knowledge.digest#{digest}"


def type_index(artifact_type: str) -> str:
    return f"knowledge.type#{artifact_type}"


def rel_type_index(rel_type: str) -> str:
    return f"knowledge.rel-type#{rel_type}"


def history_index(entity_id: str) -> str:
    return f"knowledge.changes-of#{entity_id}"


def runs_index(status: str) -> str:
    return f"knowledge.runs#{status}"


# --------------------------------------------------------------------------- metadata index

MAX_INDEXED_KEYS: Final = 32
"""Indexable keys one artifact's metadata may have (each is an item of its own)."""
MAX_INDEX_BYTES: Final = 512
"""A key and value are indexed when their canonical JSON is at most this long."""


def index_value(value: Any) -> Any:
    """The form of an indexable value in the index, or None if ``value`` is not
    indexable. Numbers that are equal compare equal (``1 == 1.0``); booleans are
    not numbers; ``null`` is a value like any other."""
    t = type(value)
    if t is str or t is bool or value is None or t is int:
        return (value,)
    if t is float:
        return (int(value),) if value.is_integer() and abs(value) < 2**53 else (value,)
    return None


def metadata_index(metadata: dict[str, Any]) -> dict[str, str]:
    """The indexed keys of ``metadata`` and their index partitions.

    A top-level key is indexed when its value is a string, number, boolean or
    null and ``[key, value]`` is at most :data:`MAX_INDEX_BYTES` of canonical
    JSON; nested values and long strings are stored but not indexed.
    """
    out: dict[str, str] = {}
    for key, value in metadata.items():
        form = index_value(value)
        if form is None or not key.isprintable():
            continue
        text = _json.encode([key, form[0]])
        if len(text.encode("utf-8", "surrogatepass")) <= MAX_INDEX_BYTES:
            out[key] = "knowledge.meta#" + text
    return out
