"""Where the knowledge repository keeps its items: the whole layout, in one place.

Every partition key starts with ``knowledge.``, so the repository is exactly
the partitions under that prefix (a snapshot or copy scoped by prefix takes it
whole, nothing else); content lives in the blob store, named by digest::

    knowledge.log#changes  / head, e#<seq:20>         the change feed (a Ledger)
        gsi1/gsi2/gsi3 = changes-of#<entity>, "c"      history of an entity (see below)
    knowledge.collections  / n#<name>                 unique collection names -> {id}
    knowledge.col#<C>      / meta                     the collection (+ its artifact count)
    knowledge.col#<C>      / n#<artifact name>        unique artifact names -> {id}
    knowledge.art#<A>      / meta                     the artifact at its current revision
        gsi1 = digest#<sha256>, "<C>#<A>"             query by content digest
        gsi2 = type#<artifact type>, "<C>#<A>"        query by artifact type
    knowledge.art#<A>      / r#<rev:10>               revision 1, 2, 3, ... (kept after deletion)
    knowledge.art#<A>      / m#<key>                  one indexed metadata key
        gsi1 = meta#<canonical [key, value]>, "<C>#<A>"
    knowledge.art#<A>      / o#<type>#<C'>#<A'>       relationship A -type-> A' (a copy)
    knowledge.art#<A>      / i#<type>#<C'>#<A'>       relationship A' -type-> A (a copy)
    knowledge.rel#<R>      / rel                      the relationship by id
        gsi1 = rel-type#<type>, "<source>#<target>"   relationships of one type
    knowledge.run#<U>      / head, e#<seq:20>         an operation run and its steps (a Ledger)
        gsi1 = runs, "<created>#<U>"                  runs, newest first
        gsi2 = runs#<status>, "<created>#<U>"         runs in one status, newest first
    knowledge.run#<U>      / manifest                 the run's manifest
    knowledge.run#<U>      / out#<A>                  an artifact the run produced
    knowledge.ctx#<P>      / pkg                      a context package
        gsi1 = contexts, "<created>#<P>"              packages, newest first

The secondary-index sort keys of artifacts are ``"<collection id>#<artifact
id>"`` and so are the relationship copies' sort keys after ``o#<type>#``: every
stream a query intersects is in that one order, and a collection is a prefix
of it. Change records of one entity share the index sort key ``"c"``, so the
index orders them by their own key, which is their sequence number.
"""

from __future__ import annotations

from typing import Any, Final

from ... import _json

PREFIX: Final = "knowledge."
"""Every partition key of the repository starts with this."""

FEED_KIND: Final = "knowledge.log"
FEED_STREAM: Final = "changes"
RUN_KIND: Final = "knowledge.run"

COLLECTIONS: Final = "knowledge.collections"
META: Final = "meta"
NAME: Final = "n#"
REVISION: Final = "r#"
INDEXED: Final = "m#"
OUT: Final = "o#"
IN: Final = "i#"
REL: Final = "rel"
MANIFEST: Final = "manifest"
OUTPUT: Final = "out#"
PACKAGE: Final = "pkg"

ALL_RUNS: Final = "knowledge.runs"
ALL_CONTEXTS: Final = "knowledge.contexts"
HISTORY_SK: Final = "c"

# operation tags (a Conflict names the one that failed)
COLLECTION_TAG: Final = "knowledge.collection"
COLLECTION_NAME_TAG: Final = "knowledge.collection-name"
ARTIFACT_TAG: Final = "knowledge.artifact"
ARTIFACT_NAME_TAG: Final = "knowledge.artifact-name"
EDGE_TAG: Final = "knowledge.relationship"
RUN_TAG: Final = "knowledge.run"
STEP_TAG: Final = "knowledge.step"


def collection_pk(cid: str) -> str:
    return f"knowledge.col#{cid}"


def artifact_pk(aid: str) -> str:
    return f"knowledge.art#{aid}"


def relationship_pk(rid: str) -> str:
    return f"knowledge.rel#{rid}"


def context_pk(pid: str) -> str:
    return f"knowledge.ctx#{pid}"


def name_sk(name: str) -> str:
    return NAME + name


def revision_sk(revision: int) -> str:
    return f"{REVISION}{revision:010d}"


def place(cid: str, aid: str) -> str:
    """An artifact's position in every query stream: its collection, then its id."""
    return f"{cid}#{aid}"


def edge_sk(direction: str, rel_type: str, cid: str, aid: str) -> str:
    """The sort key of a relationship copy: ``o#`` or ``i#``, its type, the other end."""
    return f"{direction}{rel_type}#{cid}#{aid}"


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
