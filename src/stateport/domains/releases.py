"""The release registry (``sp.releases``): which spec is live under each name.

The source's ``ReleaseRegistry`` port, on the
:class:`~stateport.primitives.RefRegistry` primitive. History is append-only and
ordered by a per-name counter (``seq``), never by timestamps. Every promote and
every rollback appends a record.

Rollback is *undo*: it goes back to the release that was live before the
current one became live. Each record remembers that earlier record (``back``);
a rollback re-appends what ``back`` points at and inherits *its* ``back``, so
repeated rollbacks walk further into the past (P3 → P2 → P1) instead of
toggling between the last two, and a rollback after a new promote returns to
what was live before that promote. When nothing is further back,
:class:`~stateport.errors.NoPreviousRelease`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from .. import _json, _time
from ..digest import ContentDigest, DigestLike
from ..errors import NoPreviousRelease, NotFound, ValidationError
from ..ports.table import TablePort
from ..primitives.refs import Ref, RefRegistry

__all__ = ["ReleaseMetadata", "ReleaseRecord", "ReleaseRegistry"]

_MAX_NAME: Final = 256


@dataclass(frozen=True, slots=True)
class ReleaseMetadata:
    """Who promoted a release, and why."""

    promoted_by: str
    version_label: str | None = None
    notes: str | None = None


@dataclass(frozen=True, slots=True)
class ReleaseRecord:
    """One record of a name's history.

    ``seq`` is its position in the history (1, 2, ...); ``action`` is
    ``"promote"`` or ``"rollback"``; for a rollback, ``restores`` is the
    ``seq`` of the record whose release it made live again.
    """

    name: str
    spec_digest: ContentDigest
    metadata: ReleaseMetadata
    created_at: datetime
    seq: int
    action: Literal["promote", "rollback"]
    restores: int | None = None


class ReleaseRegistry:
    """``sp.releases``: promote, rollback, current and history per name."""

    def __init__(self, table: TablePort) -> None:
        self._refs = RefRegistry(table, "release", noun="release")
        self._portable = table.capabilities.portable

    async def promote(
        self, name: str, spec_digest: DigestLike, metadata: ReleaseMetadata
    ) -> ReleaseRecord:
        """Make ``spec_digest`` the live release of ``name``; return the new record."""
        _check_name(name)
        spec = ContentDigest.of(spec_digest)
        meta = self._check_metadata(metadata)

        async def decide(current: Ref | None) -> dict[str, Any]:
            return {
                "action": "promote",
                "spec": spec.as_str(),
                "meta": meta,
                "created": _time.to_text(_time.now()),
                "back": None if current is None else current.seq,
            }

        return _record(name, await self._refs.move(name, decide))

    async def rollback(self, name: str) -> ReleaseRecord:
        """Make the release live before the current one live again; return the record.

        ``NotFound`` for an unknown name; ``NoPreviousRelease`` when nothing
        is further back.
        """
        _check_name(name)

        async def decide(current: Ref | None) -> dict[str, Any]:
            if current is None:
                raise NotFound(f"no release named {name!r}")
            back = current.attrs["back"]
            if back is None:
                raise NoPreviousRelease(f"{name!r} has no release before {_describe(current)}")
            target = await self._refs.entry(name, back)
            if target is None:  # history is append-only: only tampering gets here
                raise NotFound(f"release {name!r} #{back} is missing from its history")
            return {
                "action": "rollback",
                "spec": target.attrs["spec"],
                "meta": target.attrs["meta"],
                "created": _time.to_text(_time.now()),
                "back": target.attrs["back"],
                "restores": target.seq,
            }

        return _record(name, await self._refs.move(name, decide))

    async def current(self, name: str) -> ReleaseRecord | None:
        """The live release of ``name``, or None for an unknown name."""
        _check_name(name)
        ref = await self._refs.current(name)
        return None if ref is None else _record(name, ref)

    async def history(self, name: str) -> list[ReleaseRecord]:
        """Every record of ``name``, newest first (empty for an unknown name)."""
        _check_name(name)
        return [_record(name, ref) for ref in await self._refs.history(name)]

    async def list_releases(self) -> list[ReleaseRecord]:
        """The live release of every name, by name."""
        return [_record(name, ref) for name, ref in await self._refs.names()]

    def _check_metadata(self, metadata: Any) -> dict[str, Any]:
        if not isinstance(metadata, ReleaseMetadata):
            raise ValidationError(
                f"metadata must be a ReleaseMetadata, got {type(metadata).__name__}"
            )
        if type(metadata.promoted_by) is not str or not metadata.promoted_by:
            raise ValidationError("metadata.promoted_by must be a non-empty str")
        for field in ("version_label", "notes"):
            value = getattr(metadata, field)
            if value is not None and type(value) is not str:
                raise ValidationError(f"metadata.{field} must be a str or None")
        data = {
            "promoted_by": metadata.promoted_by,
            "version_label": metadata.version_label,
            "notes": metadata.notes,
        }
        _json.check_json(data, portable=self._portable, where="metadata")
        return data


def _check_name(name: Any) -> None:
    if type(name) is not str or not name.strip():
        raise ValidationError(f"a release name is a non-empty str, got {name!r}")
    if len(name) > _MAX_NAME or not name.isprintable():
        raise ValidationError(
            f"a release name is printable and at most {_MAX_NAME} characters: {name[:40]!r}"
        )


def _describe(ref: Ref) -> str:
    return f"#{ref.seq} ({ContentDigest(ref.attrs['spec']).short()})"


def _record(name: str, ref: Ref) -> ReleaseRecord:
    a = ref.attrs
    m = a["meta"]
    return ReleaseRecord(
        name=name,
        spec_digest=ContentDigest(a["spec"]),
        metadata=ReleaseMetadata(m["promoted_by"], m.get("version_label"), m.get("notes")),
        created_at=_time.from_text(a["created"]),
        seq=ref.seq,
        action=a["action"],
        restores=a.get("restores"),
    )
