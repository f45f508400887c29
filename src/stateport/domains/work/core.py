"""What the parts of the work store share: the table, the audit chain, ids, and
where each work package lives.

:class:`WorkCore` is the base of every part (features, work packages,
dependencies, the audit trail, evidence, governance, sync and devices); the
public :class:`~stateport.domains.work.WorkStore` combines the parts. Each part
adds its own state in ``__init__`` (calling ``super().__init__``) and reaches
the others only through what is defined here.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Final

from ... import _time
from ..._cache import BoundedCache
from ...errors import Conflict, IntegrityError, NotFound, ValidationError
from ...ports.table import Check, Item, Op, TablePort, Update, VersionEquals
from ...primitives.chain import HASH_SIZE
from ...primitives.ids import IdAllocator
from ...primitives.ledger import Ledger
from .layout import (
    FEATURE_EXISTS_TAG,
    FEATURE_SK,
    IDS,
    WP_EXISTS_TAG,
    Explain,
    explained,
    feature_pk,
    wp_exists,
    wp_ptr,
    wp_sk,
)
from .models import MAX_SEQUENCE, check_name
from .writer import AuditWriter, entry_fields

__all__ = [
    "KEEP",
    "Keep",
    "WorkCore",
    "check_actor",
    "check_age",
    "check_hash",
    "check_sequence",
    "check_type",
    "check_when",
    "edit_text",
]

TITLE: Final = 1000
"""The longest title, name or external id (characters)."""

_WHERE_CACHE: Final = 65536

Build = Callable[[int], Sequence[Op] | Awaitable[Sequence[Op]]]


class Keep(Enum):
    """The type of :data:`KEEP`."""

    KEEP = "KEEP"

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Final = Keep.KEEP
"""The default of an edit's fields: keep the stored value."""


class WorkCore:
    """The state and helpers every part of the work store uses."""

    def __init__(self, table: TablePort) -> None:
        self.table = table
        self._ledger = Ledger(table, "work.audit", noun="audit chain")
        self._chain = AuditWriter(self._ledger)
        self._ids = IdAllocator(table, IDS)
        # a package never moves: wp id -> (feature id, sequence), safe to keep
        self._where: BoundedCache[int, tuple[int, int]] = BoundedCache(_WHERE_CACHE)

    async def _create(
        self,
        kind: str,
        build: Build,
        *,
        explain: Explain,
        retry_on: Sequence[str] = (),
    ) -> int:
        """Take the next id of ``kind`` and write ``build(id)`` with it, atomically.

        A conflict of an operation tagged with one of ``retry_on`` runs ``build``
        again; one tagged in ``explain`` raises the error it maps to.
        """
        try:
            return await self._ids.create(kind, build, retry_on=retry_on, what=f"the {kind} ids")
        except Conflict as e:
            raise explained(e, explain) from None

    @staticmethod
    def _no_feature(fid: int) -> Explain:
        return {FEATURE_EXISTS_TAG: lambda e: NotFound(f"no feature {fid}")}

    @staticmethod
    def _no_wp(wp_id: int | None) -> Explain:
        return {WP_EXISTS_TAG: lambda e: NotFound(f"no work package {wp_id}")}

    async def _audited_update(
        self,
        fid: int,
        key: tuple[str, str],
        read: Callable[[], Awaitable[Item]],
        decide: Callable[[Item], tuple[dict[str, Any], str] | None],
        *,
        actor: str,
        evidence_refs: Sequence[str],
        tag: str,
        wp: tuple[int | None, int | None] = (None, None),
        also: Callable[[Item, dict[str, Any]], Sequence[Op]] | None = None,
        explain: Explain | None = None,
    ) -> None:
        """Update the record at ``key`` and append the audit entry of the change to
        feature ``fid``'s chain, in one transaction.

        ``decide(item)`` sees the record as ``read()`` returns it and returns
        the attributes to set with the entry's transition text, or None when
        there is nothing to change (nothing is written); it may raise to refuse
        (a state machine's :class:`~stateport.errors.InvalidTransition`).
        ``also(item, changes)`` adds operations. The update is conditioned on
        the version read and tagged ``tag``: if the record changed meanwhile,
        it is read and decided again, so the decision holds under any
        concurrency.
        """

        async def prepare() -> tuple[dict[str, Any], Sequence[Op]] | None:
            item = await read()
            decided = decide(item)
            if decided is None:
                return None
            changes, transition = decided
            now = _time.to_text(_time.now())
            ops: list[Op] = [
                Update(
                    *key,
                    {**changes, "updated_at": now},
                    condition=VersionEquals(item.version),
                    tag=tag,
                )
            ]
            if also is not None:
                ops.extend(also(item, changes))
            entry = entry_fields(
                timestamp=now,
                actor=actor,
                transition=transition,
                evidence_refs=evidence_refs,
                wp=wp,
            )
            return entry, ops

        await self._chain.append(fid, prepare, retry_on=(tag,), explain=explain)

    @staticmethod
    def _edits(wanted: Mapping[str, Any], label: str = "") -> Callable[[Item], Any]:
        """For :meth:`_audited_update`: set the ``wanted`` values that differ from the
        stored ones, named ``'<label>set name=value, ...'``."""

        def decide(item: Item) -> tuple[dict[str, Any], str] | None:
            changes = {k: v for k, v in wanted.items() if item.attrs.get(k) != v}
            return (changes, edit_text(label, changes)) if changes else None

        return decide

    async def _feature_item(self, fid: int) -> Item:
        """The stored feature; :class:`NotFound` if there is none."""
        item = await self.table.get(feature_pk(fid), FEATURE_SK)
        if item is None:
            raise NotFound(f"no feature {fid}")
        return item

    async def _locate(self, wp_id: int) -> tuple[int, int]:
        """(feature id, sequence) of a work package; :class:`NotFound` if there is none."""
        hit = self._where.get(wp_id)
        if hit is not None:
            return hit
        item = await self.table.get(wp_ptr(wp_id), "wp")
        if item is None:
            raise NotFound(f"no work package {wp_id}")
        where = (int(item.attrs["feature_id"]), int(item.attrs["sequence"]))
        self._where.put(wp_id, where)
        return where

    async def _wp_item(self, wp_id: int) -> Item:
        """The stored work package; :class:`NotFound` if there is none."""
        fid, seq = await self._locate(wp_id)
        item = await self.table.get(feature_pk(fid), wp_sk(seq))
        if item is None:
            raise IntegrityError(f"work package {wp_id} is indexed but its record is missing")
        return item

    async def _wp_check(self, wp_id: int, fid: int | None = None) -> tuple[int, Check]:
        """(its feature id, the check that it exists) for work package ``wp_id``.

        :class:`NotFound` if there is none; :class:`ValidationError` if it is
        not a package of feature ``fid`` (when given).
        """
        owner, _ = await self._locate(wp_id)
        if fid is not None and owner != fid:
            raise ValidationError(f"work package {wp_id} belongs to feature {owner}, not {fid}")
        return owner, wp_exists(wp_id)


def edit_text(prefix: str, changes: Mapping[str, Any]) -> str:
    """How an audit entry names an edit: ``'WP01: set pr_state="open", agent_id=null'``."""
    shown = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in changes.items())
    return f"{prefix}set {shown}"


# --------------------------------------------------------------------------- input checks


def check_type(value: Any, cls: type, what: str) -> None:
    """:class:`ValidationError` unless ``value`` is a ``cls``."""
    if not isinstance(value, cls):
        raise ValidationError(f"{what} must be a {cls.__name__}, got {type(value).__name__}")


def check_sequence(value: Any) -> int:
    """A work package's sequence: an int from 0 to 2**32 - 1."""
    if type(value) is not int or not 0 <= value <= MAX_SEQUENCE:
        raise ValidationError(f"sequence must be an int from 0 to 2**32 - 1, got {value!r}")
    return value


def check_when(value: Any, what: str) -> datetime | None:
    """None, or an aware datetime."""
    return None if value is None else _time.check_datetime(value, what)


def check_age(value: Any, what: str) -> timedelta:
    """A timedelta of zero or more."""
    if not isinstance(value, timedelta) or value < timedelta(0):
        raise ValidationError(f"{what} must be a timedelta >= 0, got {value!r}")
    return value


def check_hash(value: Any, what: str) -> bytes | None:
    """32 bytes (a SHA-256), or None for empty bytes."""
    if type(value) is not bytes:
        raise ValidationError(f"{what} must be bytes, got {type(value).__name__}")
    if not value:
        return None
    if len(value) != HASH_SIZE:
        raise ValidationError(
            f"{what} must be {HASH_SIZE} bytes (SHA-256) or empty, got {len(value)}"
        )
    return value


def check_actor(value: Any) -> str:
    """Who makes a change: a name (see :func:`~.models.check_name`)."""
    return check_name(value, "actor")
