"""The audit chain of a feature: how entries are stored, hashed and verified.

Entry ``seq`` of feature ``F`` is stored at ``("work.audit#F", "e#<seq, 20 digits>")``
with these attributes (and no others)::

    wp_id, wp_sequence, timestamp, actor, transition, evidence_refs, prev_hash, hash

Its ``feature_id`` and ``seq`` are those of its key, and its ``id`` is
``feature_id * 2**32 + seq``: derived, so they cannot disagree with the key.

``prev_hash`` and ``hash`` are 64 lowercase hex digits. The hash is
``SHA-256(encode_fields(FIELDS) || prev_hash)`` (see
:mod:`stateport.primitives.chain` and docs/decisions/0016-audit-chain.md) with
the fields, in this order::

    schema         "stateport.audit.v1"
    id             int     feature_id * 2**32 + seq
    feature_id     int
    seq            int
    wp_id          int or None
    wp_sequence    int or None
    timestamp      str     as stored: 2026-11-22T01:02:03.000004Z
    actor          str
    transition     str
    evidence_refs  list of str

The chain head, ``("work.audit#F", "head")``, holds ``count`` and ``hash`` (of the
last entry): it lives outside the entries so a truncated tail is detected.

Appending (an entry in one transaction with the change it records) is
:class:`~stateport.domains.work.writer.AuditWriter`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Final

from ... import _time
from ...errors import ValidationError
from ...ports.table import Item
from ...primitives.chain import (
    ChainCodec,
    ChainHead,
    ChainVerification,
    ChainVerifier,
    parse_hash,
)
from .models import AuditEntry

__all__ = [
    "AUDIT_FIELDS",
    "AUDIT_SCHEMA",
    "CODEC",
    "ENTRY_ATTRS",
    "audit_id",
    "entry_attrs",
    "entry_of",
    "head_of",
    "verify_pages",
]

AUDIT_SCHEMA: Final = "stateport.audit.v1"
AUDIT_FIELDS: Final = (
    "schema",
    "id",
    "feature_id",
    "seq",
    "wp_id",
    "wp_sequence",
    "timestamp",
    "actor",
    "transition",
    "evidence_refs",
)
CODEC: Final = ChainCodec(AUDIT_FIELDS)
ENTRY_ATTRS: Final = frozenset((*AUDIT_FIELDS[4:], "prev_hash", "hash"))
_N_ATTRS: Final = len(ENTRY_ATTRS)
_SEQ_BITS: Final = 32


def audit_id(feature_id: int, seq: int) -> int:
    """The id of entry ``seq`` of a feature: unique without a shared counter."""
    return (feature_id << _SEQ_BITS) | seq


def entry_attrs(
    *,
    feature_id: int,
    seq: int,
    wp_id: int | None,
    wp_sequence: int | None,
    timestamp: str,
    actor: str,
    transition: str,
    evidence_refs: tuple[str, ...],
    prev_hash: bytes,
) -> dict[str, Any]:
    """The stored attributes of a new entry, its hash computed."""
    if seq >= 1 << _SEQ_BITS:
        raise ValidationError("an audit chain holds at most 2**32 - 1 entries")
    ident = audit_id(feature_id, seq)
    refs = list(evidence_refs)
    digest = CODEC.hash(
        (
            AUDIT_SCHEMA,
            ident,
            feature_id,
            seq,
            wp_id,
            wp_sequence,
            timestamp,
            actor,
            transition,
            refs,
        ),
        prev_hash,
    )
    return {
        "wp_id": wp_id,
        "wp_sequence": wp_sequence,
        "timestamp": timestamp,
        "actor": actor,
        "transition": transition,
        "evidence_refs": refs,
        "prev_hash": prev_hash.hex(),
        "hash": digest.hex(),
    }


def entry_of(feature_id: int, seq: int, attrs: dict[str, Any]) -> AuditEntry:
    """The :class:`AuditEntry` stored as entry ``seq`` of the feature's chain."""
    return AuditEntry(
        id=audit_id(feature_id, seq),
        seq=seq,
        feature_id=feature_id,
        wp_id=attrs["wp_id"],
        wp_sequence=attrs["wp_sequence"],
        timestamp=_time.from_text(attrs["timestamp"]),
        actor=attrs["actor"],
        transition=attrs["transition"],
        evidence_refs=tuple(attrs["evidence_refs"]),
        prev_hash=bytes.fromhex(attrs["prev_hash"]),
        hash=bytes.fromhex(attrs["hash"]),
    )


def head_of(attrs: dict[str, Any] | None) -> ChainHead | None:
    """The chain head recorded in the head item (None if absent or malformed)."""
    if attrs is None:
        return None
    try:
        return ChainHead(attrs["count"], parse_hash(attrs["hash"], "hash"))
    except (KeyError, ValidationError):
        return None


async def verify_pages(
    feature_id: int,
    pages: AsyncIterator[list[Item]],
    stored_head: ChainHead | None,
    expected: ChainHead | None = None,
) -> ChainVerification:
    """Verify one feature's chain from its entry items, given page by page in key order.

    Each entry must carry exactly :data:`ENTRY_ATTRS` (its number comes from its
    key); the codec rejects values of the wrong type; the verifier checks the
    links and the heads.
    """
    v = ChainVerifier(expected)
    encode = CODEC.encode
    feed = v.feed
    keys = ENTRY_ATTRS
    n_attrs = _N_ATTRS
    schema = AUDIT_SCHEMA
    base = feature_id << _SEQ_BITS
    async for page in pages:
        for item in page:
            a = item.attrs
            try:
                seq = int(item.sk[2:])
            except ValueError:
                v.fail(v.count + 1, f"an entry has a malformed key {item.sk!r}")
                return v.finish(stored_head)
            try:
                if len(a) != n_attrs:
                    raise KeyError  # with every expected name present, no others
                encoded = encode(
                    (
                        schema,
                        base | seq,
                        feature_id,
                        seq,
                        a["wp_id"],
                        a["wp_sequence"],
                        a["timestamp"],
                        a["actor"],
                        a["transition"],
                        a["evidence_refs"],
                    )
                )
                prev, digest = a["prev_hash"], a["hash"]
            except KeyError:
                extra = sorted(a.keys() - keys)
                missing = sorted(keys - a.keys())
                what = (
                    f"unexpected attributes {extra}" if extra else f"missing attributes {missing}"
                )
                v.fail(seq, f"malformed: {what}")
                return v.finish(stored_head)
            except (ValidationError, TypeError) as e:
                v.fail(seq, f"malformed: {e}")
                return v.finish(stored_head)
            if not feed(seq, encoded, prev, digest):
                return v.finish(stored_head)
    return v.finish(stored_head)
