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

:class:`AuditWriter` appends: every entry is written in one transaction with the
change it records, and its evidence references are checked against stored
evidence first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Final

from ... import _time
from ..._retry import Retry, retrying
from ...errors import Conflict, IntegrityError, NotFound, ValidationError
from ...ports.table import Item, KeyRange, Op, Put
from ...primitives.chain import (
    GENESIS,
    ChainCodec,
    ChainHead,
    ChainVerification,
    ChainVerifier,
    parse_hash,
)
from ...primitives.ledger import LEDGER_TAGS, Ledger
from .layout import (
    EVIDENCE_INDEXED,
    FEATURE_SK,
    WP_PREFIX,
    Explain,
    evidence_by_wp,
    evidence_ref_key,
    evidence_ref_pk,
    explained,
    feature_pk,
)
from .models import AuditEntry

__all__ = [
    "AUDIT_FIELDS",
    "AUDIT_SCHEMA",
    "CODEC",
    "ENTRY_ATTRS",
    "AuditWriter",
    "Prepare",
    "audit_id",
    "entry_attrs",
    "entry_fields",
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


# --------------------------------------------------------------------------- appending

Prepare = Callable[[], Awaitable[tuple[dict[str, Any], Sequence[Op]] | None]]
"""Reads what a change needs; returns the fields of its audit entry (``wp_id``,
``wp_sequence``, ``timestamp``, ``actor``, ``transition``, ``evidence_refs``) and
the change's operations, conditioned on what it read and tagged, or None when
there is nothing to change."""

_INDEX_BATCH: Final = 50


def entry_fields(
    *,
    timestamp: str,
    actor: str,
    transition: str,
    evidence_refs: Sequence[str] = (),
    wp: tuple[int | None, int | None] = (None, None),
) -> dict[str, Any]:
    """The fields of a new entry (for :data:`Prepare`); ``wp`` is (id, sequence)."""
    return {
        "wp_id": wp[0],
        "wp_sequence": wp[1],
        "timestamp": timestamp,
        "actor": actor,
        "transition": transition,
        "evidence_refs": tuple(evidence_refs),
    }


class AuditWriter:
    """Appends entries to the features' audit chains (the ledger ``work.audit``).

    An entry is written in one transaction with the change it records: the
    entry, the chain head and the change's operations commit together or not
    at all. Its ``evidence_refs`` must each be the artifact URL of evidence
    stored for the same feature (:class:`NotFound` otherwise).
    """

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.table = ledger.table

    def open_ops(self, fid: int, first: dict[str, Any] | None = None) -> list[Op]:
        """The operations that create feature ``fid``'s chain: empty, or holding
        ``first`` (the fields of an entry) as entry 1."""
        stream = str(fid)
        ops: list[Op] = [Put(evidence_ref_pk(fid), EVIDENCE_INDEXED, {})]
        if first is None:
            head = {"feature_id": fid, "count": 0, "hash": GENESIS.hex()}
            return [*ops, self.ledger.create_op(stream, head)]
        attrs = entry_attrs(feature_id=fid, seq=1, prev_hash=GENESIS, **first)
        head = {"feature_id": fid, "count": 1, "hash": attrs["hash"]}
        return [*ops, self.ledger.create_op(stream, head), self.ledger.entry_op(stream, 1, attrs)]

    async def head(self, fid: int) -> ChainHead:
        """The head of feature ``fid``'s chain.

        Raises :class:`NotFound` for an unknown feature and
        :class:`IntegrityError` when the head is missing or malformed.
        """
        item = await self.ledger.head(str(fid))
        if item is None:
            if await self.table.get(feature_pk(fid), FEATURE_SK) is None:
                raise NotFound(f"no feature {fid}")
            raise IntegrityError(f"the audit chain head of feature {fid} is missing")
        head = head_of(item.attrs)
        if head is None:
            raise IntegrityError(f"the audit chain head of feature {fid} is malformed")
        return head

    async def entry_ops(self, fid: int, fields: dict[str, Any]) -> list[Op]:
        """The operations that append ``fields`` as the next entry of ``fid``'s chain,
        for a transaction the caller runs (and runs again, with new operations,
        when one of these fails: their tags are in ``LEDGER_TAGS``)."""
        head = await self.head(fid)
        await self._check_position(fid, head.count)
        await self.require_evidence(fid, fields["evidence_refs"])
        seq = head.count + 1
        attrs = entry_attrs(feature_id=fid, seq=seq, prev_hash=head.hash, **fields)
        return self.ledger.append_ops(
            str(fid),
            seq,
            [attrs],
            head_set={"count": seq, "hash": attrs["hash"]},
            expect_prev={"hash": head.hash.hex()} if seq > 1 else None,
        )

    async def append(
        self,
        fid: int,
        prepare: Prepare,
        *,
        retry_on: Sequence[str] = (),
        explain: Explain | None = None,
        prev_hash: bytes | None = None,
        expect_hash: bytes | None = None,
    ) -> dict[str, Any] | None:
        """Append the entry ``prepare()`` describes, with its operations; return the
        entry's stored attributes and ``seq`` (None if ``prepare`` found nothing to do).

        ``prepare`` runs again whenever the chain moved or one of its operations
        tagged with one of ``retry_on`` failed (its record changed since it was
        read), so a state machine it checks holds under any concurrency; a
        conflict of an operation whose tag ``explain`` maps raises the error it
        maps to, and any other conflict reaches the caller. With ``prev_hash`` the
        append is refused (:class:`Conflict`) unless that is the chain's head;
        with ``expect_hash`` (:class:`ValidationError`) unless it is the new
        entry's hash. :class:`IntegrityError` if the head and the entries
        disagree; :class:`NotFound` for an unknown feature or evidence.
        """
        stream = str(fid)

        async def attempt() -> dict[str, Any] | None:
            head = await self.head(fid)
            if prev_hash is not None and prev_hash != head.hash:
                raise Conflict(
                    f"prev_hash {prev_hash.hex()[:16]}... is not the head of feature {fid}'s "
                    f"audit chain ({head.hash.hex()[:16]}..., {head.count} entries)",
                    key=(self.ledger.pk(stream), "head"),
                    condition="prev_hash == head",
                )
            change = await prepare()
            if change is None:
                return None
            fields, ops = change
            await self.require_evidence(fid, fields["evidence_refs"])
            seq = head.count + 1
            attrs = entry_attrs(feature_id=fid, seq=seq, prev_hash=head.hash, **fields)
            if expect_hash is not None and expect_hash.hex() != attrs["hash"]:
                raise ValidationError(
                    "the entry's hash does not match its fields: leave hash empty and the "
                    "store computes it (see docs/decisions/0016-audit-chain.md)"
                )
            try:
                await self.ledger.append(
                    stream,
                    [attrs],
                    first_seq=seq,
                    expect_prev={"hash": head.hash.hex()} if seq > 1 else None,
                    head_set={"count": seq, "hash": attrs["hash"]},
                    extra_ops=ops,
                )
            except Conflict as e:
                if e.tag in LEDGER_TAGS:
                    await self._check_position(fid, head.count)
                    raise Retry("another entry was appended first") from None
                if e.tag is not None and e.tag in retry_on:
                    raise Retry(e.tag) from None
                raise explained(e, explain) from None
            return {**attrs, "seq": seq}

        return await retrying(attempt, what=f"the audit chain of feature {fid}")

    async def _check_position(self, fid: int, count: int) -> None:
        """IntegrityError if the head still records ``count`` entries but the stored
        entries end elsewhere (a damaged chain: no append can succeed)."""
        stream = str(fid)
        head = head_of((await self.ledger.require_head(stream)).attrs)
        if head is None or head.count != count:
            return  # the chain moved: try again
        latest = await self.ledger.latest(stream)
        if (0 if latest is None else latest.seq) != count:
            raise IntegrityError(
                f"the audit chain of feature {fid} is damaged: its head records {count} "
                "entries but the stored entries end elsewhere; run  stateport audit verify"
            )

    async def require_evidence(self, fid: int, refs: Sequence[str]) -> None:
        """:class:`NotFound` unless each of ``refs`` is the artifact URL of evidence
        stored for a work package of feature ``fid``."""
        if not refs:
            return
        missing = await self._unknown(fid, list(dict.fromkeys(refs)))
        if missing and await self._index_evidence(fid):
            missing = await self._unknown(fid, missing)
        if missing:
            raise NotFound(
                f"evidence reference {missing[0]!r} names no evidence of feature {fid}: an "
                "evidence reference is the artifact_url of evidence stored with "
                "create_evidence for one of the feature's work packages"
            )

    async def _unknown(self, fid: int, urls: list[str]) -> list[str]:
        found = await self.table.batch_get([evidence_ref_key(fid, u) for u in urls])
        return [u for u, item in zip(urls, found, strict=True) if item is None]

    async def _index_evidence(self, fid: int) -> bool:
        """Index the artifact URLs of evidence stored before references were indexed,
        once per feature; False if the feature's URLs were indexed already."""
        pk = evidence_ref_pk(fid)
        if await self.table.get(pk, EVIDENCE_INDEXED) is not None:
            return False
        keys: dict[tuple[str, str], str] = {}
        async for wp in self.table.query_all(feature_pk(fid), KeyRange.prefix(WP_PREFIX)):
            async for ev in self.table.query_all(evidence_by_wp(wp.attrs["id"]), index="gsi1"):
                keys[evidence_ref_key(fid, ev.attrs["artifact_url"])] = ev.attrs["artifact_url"]
        puts: list[Op] = [Put(k[0], k[1], {"artifact_url": u}) for k, u in keys.items()]
        for i in range(0, len(puts), _INDEX_BATCH):
            await self.table.transact(puts[i : i + _INDEX_BATCH])
        await self.table.put(pk, EVIDENCE_INDEXED, {})
        return True
