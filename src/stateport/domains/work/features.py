"""Features: a unique slug, a state machine, and an audit entry for every change.

A feature may start in any state; moving it follows :data:`FEATURE_STATES`
(any step forward, naming the states skipped in its audit entry, or one step
back before DONE). Every change is one transaction with its audit entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from ... import _time
from ...errors import NotFound, ValidationError
from ...ports.table import Item, NotExists, Op, Put
from .core import KEEP, TITLE, Keep, WorkCore, check_actor, check_type
from .layout import (
    ALL_FEATURES,
    FEATURE_SK,
    FEATURE_TAG,
    GRAPH_SK,
    SLUG_TAG,
    conflict,
    feature_of,
    feature_pk,
    id20,
    slug_pk,
    state_gsi,
)
from .models import (
    FEATURE_ORDER,
    FEATURE_STATES,
    Feature,
    FeatureState,
    check_enum,
    check_id,
    check_name,
    check_strings,
    check_text,
    move_text,
)
from .writer import entry_fields

__all__ = ["CREATOR", "Features"]

CREATOR: Final = "system"
"""The actor of the first audit entry of a record created in a later state, when
the caller names none."""

_MAX_SPEC_HASH: Final = 64


def _check_spec_hash(value: Any) -> str | None:
    """A spec hash as stored (hex), from None or 1 to 64 bytes."""
    if value is None:
        return None
    if type(value) is not bytes or not 1 <= len(value) <= _MAX_SPEC_HASH:
        raise ValidationError(
            f"spec_hash must be None or 1 to {_MAX_SPEC_HASH} bytes, got {value!r}"
        )
    return value.hex()


class Features(WorkCore):
    """Create, look up, move and edit features."""

    async def create_feature(self, feature: Feature, *, actor: str = CREATOR) -> int:
        """Store a new feature; return its id (ids count up from 1).

        The feature starts in ``feature.state``. Created in a later state than
        SPECIFY, its audit trail starts with an entry by ``actor`` saying so
        (``"created in PLAN (skipped SPECIFY)"``), in the same transaction.

        Raises :class:`Conflict` if the slug is taken and
        :class:`ValidationError` for a malformed feature.
        """
        check_type(feature, Feature, "feature")
        slug = check_name(feature.slug, "slug")
        name = check_text(feature.friendly_name, "friendly_name", limit=TITLE)
        branch = check_name(feature.target_branch, "target_branch")
        state = check_enum(FeatureState, feature.state, "state")
        spec_hash = _check_spec_hash(feature.spec_hash)
        who = check_actor(actor)
        now = _time.to_text(_time.now())
        first = None
        if state is not FeatureState.SPECIFY:
            first = entry_fields(
                timestamp=now, actor=who, transition=move_text(FEATURE_ORDER, None, state)
            )

        def build(fid: int) -> list[Op]:
            attrs = {
                "id": fid,
                "slug": slug,
                "friendly_name": name,
                "state": state.value,
                "target_branch": branch,
                "spec_hash": spec_hash,
                "created_at": now,
                "updated_at": now,
                "gsi1pk": state_gsi(state.value),
                "gsi1sk": id20(fid),
                "gsi2pk": ALL_FEATURES,
                "gsi2sk": id20(fid),
            }
            pk = feature_pk(fid)
            return [
                Put(slug_pk(slug), "slug", {"feature_id": fid}, NotExists(), tag=SLUG_TAG),
                Put(pk, FEATURE_SK, attrs, NotExists()),
                Put(pk, GRAPH_SK, {"edges": 0}, NotExists()),
                *self._chain.open_ops(fid, first),
            ]

        taken = conflict(f"a feature with slug {slug!r} already exists")
        return await self._create("feature", build, explain={SLUG_TAG: taken})

    async def get_feature_by_slug(self, slug: str) -> Feature | None:
        """The feature with this slug, or None. :class:`ValidationError` for a malformed slug."""
        check_name(slug, "slug")
        claim = await self.table.get(slug_pk(slug), "slug")
        if claim is None:
            return None
        return await self.get_feature_by_id(int(claim.attrs["feature_id"]))

    async def get_feature_by_id(self, id: int) -> Feature | None:
        """The feature with this id, or None. :class:`ValidationError` for a malformed id."""
        check_id(id, "feature id")
        item = await self.table.get(feature_pk(id), FEATURE_SK)
        return None if item is None else feature_of(item.attrs)

    async def require_feature(self, ref: int | str) -> Feature:
        """The feature with this id or slug; :class:`NotFound` if there is none."""
        found = (
            await self.get_feature_by_slug(ref)
            if isinstance(ref, str)
            else await self.get_feature_by_id(ref)
        )
        if found is None:
            raise NotFound(f"no feature {ref!r}")
        return found

    async def update_feature_state(
        self,
        id: int,
        state: FeatureState | str,
        *,
        actor: str,
        evidence_refs: Sequence[str] = (),
    ) -> None:
        """Move a feature to ``state``, writing its audit entry in the same transaction.

        Raises :class:`InvalidTransition` unless :data:`FEATURE_STATES` allows
        the move, :class:`NotFound` for an unknown feature or an evidence
        reference that names no evidence of the feature, and
        :class:`ValidationError` for malformed input.
        """
        fid = check_id(id, "feature id")
        target = check_enum(FeatureState, state, "state")
        who = check_actor(actor)
        refs = check_strings(evidence_refs, "evidence_refs")

        def decide(item: Item) -> tuple[dict[str, Any], str]:
            current = FeatureState(item.attrs["state"])
            FEATURE_STATES.check(current, target, subject=f"feature {item.attrs['slug']!r}")
            changes = {"state": target.value, "gsi1pk": state_gsi(target.value)}
            return changes, move_text(FEATURE_ORDER, current, target)

        await self._audited_update(
            fid,
            (feature_pk(fid), FEATURE_SK),
            lambda: self._feature_item(fid),
            decide,
            actor=who,
            evidence_refs=refs,
            tag=FEATURE_TAG,
        )

    async def update_feature(
        self,
        id: int,
        *,
        actor: str,
        spec_hash: bytes | Keep | None = KEEP,
        evidence_refs: Sequence[str] = (),
    ) -> Feature:
        """Change a feature's ``spec_hash`` (None clears it); return the feature.

        The change and its audit entry (``'set spec_hash="..."'``) are one
        transaction; setting the value already stored writes nothing. Raises
        :class:`NotFound` for an unknown feature (or evidence reference) and
        :class:`ValidationError` for malformed input.
        """
        fid = check_id(id, "feature id")
        who = check_actor(actor)
        refs = check_strings(evidence_refs, "evidence_refs")
        wanted: dict[str, Any] = {}
        if spec_hash is not KEEP:
            wanted["spec_hash"] = _check_spec_hash(spec_hash)
        await self._audited_update(
            fid,
            (feature_pk(fid), FEATURE_SK),
            lambda: self._feature_item(fid),
            self._edits(wanted),
            actor=who,
            evidence_refs=refs,
            tag=FEATURE_TAG,
        )
        return feature_of((await self._feature_item(fid)).attrs)

    async def list_features_by_state(self, state: FeatureState | str) -> list[Feature]:
        """Features in ``state``, by id. :class:`ValidationError` for an unknown state."""
        st = check_enum(FeatureState, state, "state")
        return [
            feature_of(i.attrs)
            async for i in self.table.query_all(state_gsi(st.value), index="gsi1")
        ]

    async def list_all_features(self) -> list[Feature]:
        """Every feature, by id."""
        return [feature_of(i.attrs) async for i in self.table.query_all(ALL_FEATURES, index="gsi2")]
