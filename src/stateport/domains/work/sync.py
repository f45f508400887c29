"""Sync mappings (features and packages mirrored on external trackers) and device
nodes with vector clocks (multi-device setups)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ... import _time
from ..._retry import moved_on, retrying
from ...errors import Conflict, NotFound
from ...ports.table import Exists, Item, KeyRange, NotExists, Op, Put, VersionEquals
from ...primitives.listing import order_key
from .core import TITLE, WorkCore, check_age, check_type, check_when
from .layout import (
    DEVICE_INDEX,
    DEVICE_TAG,
    SYNC_CLAIM_TAG,
    SYNC_INDEX,
    SYNC_TAG,
    conflict,
    device_of,
    device_pk,
    feature_exists,
    id20,
    mapping_of,
    sync_claim_pk,
    sync_pk,
)
from .models import (
    MAX_NAME,
    DeviceNode,
    SyncDirection,
    SyncMapping,
    VectorClock,
    check_enum,
    check_id,
    check_name,
    check_text,
)

__all__ = ["SyncAndDevices"]


class SyncAndDevices(WorkCore):
    """Sync mappings and device nodes."""

    # ---- sync mappings

    async def create_sync_mapping(self, mapping: SyncMapping) -> int:
        """Map a feature (or one of its packages) to an issue on an external platform;
        return the mapping's id.

        One mapping per feature (or package) and platform: a second is a
        :class:`Conflict`. Raises :class:`NotFound` for an unknown feature or
        package and :class:`ValidationError` for a malformed mapping.
        """
        check_type(mapping, SyncMapping, "sync mapping")
        fid = check_id(mapping.feature_id, "feature_id")
        platform = check_name(mapping.platform, "platform")
        ext_id = check_text(mapping.external_id, "external_id", limit=TITLE)
        url = check_text(mapping.external_url, "external_url", empty=True)
        state = check_text(mapping.external_state, "external_state", limit=MAX_NAME, empty=True)
        direction = check_enum(SyncDirection, mapping.sync_direction, "sync_direction")
        when = check_when(mapping.last_synced_at, "last_synced_at")
        wid = mapping.wp_id
        await self._feature_item(fid)
        ops: list[Op] = [feature_exists(fid)]
        claim_sk = platform
        if wid is not None:
            check_id(wid, "wp_id")
            _, check = await self._wp_check(wid, fid)
            ops.append(check)
            claim_sk = f"{platform}#wp#{wid}"
        stamp = _time.to_text(when or _time.now())

        def build(sid: int) -> list[Op]:
            attrs = {
                "id": sid,
                "feature_id": fid,
                "wp_id": wid,
                "platform": platform,
                "external_id": ext_id,
                "external_url": url,
                "external_state": state,
                "sync_direction": direction.value,
                "last_synced_at": stamp,
                "gsi1pk": SYNC_INDEX,
                "gsi1sk": order_key(stamp, id20(sid)),
            }
            return [
                Put(
                    sync_claim_pk(fid),
                    claim_sk,
                    {"mapping_id": sid},
                    NotExists(),
                    tag=SYNC_CLAIM_TAG,
                ),
                Put(sync_pk(sid), "mapping", attrs, NotExists()),
                *ops,
            ]

        target = f"work package {wid}" if wid is not None else f"feature {fid}"
        claimed = conflict(f"{target} already has a sync mapping for platform {platform!r}")
        return await self._create(
            "sync",
            build,
            explain={SYNC_CLAIM_TAG: claimed, **self._no_feature(fid), **self._no_wp(wid)},
        )

    async def get_sync_mapping(self, feature_id: int, platform: str) -> SyncMapping | None:
        """The feature-level mapping of ``feature_id`` on ``platform``, or None (also
        for an unknown feature). :class:`ValidationError` for malformed input."""
        fid = check_id(feature_id, "feature_id")
        name = check_name(platform, "platform")
        claim = await self.table.get(sync_claim_pk(fid), name)
        if claim is None:
            return None
        item = await self.table.get(sync_pk(claim.attrs["mapping_id"]), "mapping")
        return None if item is None else mapping_of(item.attrs)

    async def update_sync_mapping_state(
        self, mapping_id: int, external_state: str, last_synced_at: datetime
    ) -> None:
        """Record the external issue's state as of ``last_synced_at``.

        Raises :class:`NotFound` for an unknown mapping and
        :class:`ValidationError` for malformed input.
        """
        sid = check_id(mapping_id, "mapping_id")
        state = check_text(external_state, "external_state", limit=MAX_NAME, empty=True)
        when = _time.check_datetime(last_synced_at, "last_synced_at")
        stamp = _time.to_text(when)
        try:
            await self.table.update(
                sync_pk(sid),
                "mapping",
                set={
                    "external_state": state,
                    "last_synced_at": stamp,
                    "gsi1sk": order_key(stamp, id20(sid)),
                },
                condition=Exists(),
                tag=SYNC_TAG,
            )
        except Conflict as e:
            if e.tag == SYNC_TAG:
                raise NotFound(f"no sync mapping {sid}") from None
            raise

    async def list_stale_sync_mappings(self, older_than: timedelta) -> list[SyncMapping]:
        """Mappings last synced more than ``older_than`` ago, oldest first.
        :class:`ValidationError` for a negative or non-timedelta age."""
        before = KeyRange.lt(_ago(older_than, "older_than"))
        return [
            mapping_of(i.attrs)
            async for i in self.table.query_all(SYNC_INDEX, before, index="gsi1")
        ]

    # ---- devices

    async def upsert_device_node(self, node: DeviceNode) -> int:
        """Register a device or update it; return its id (kept across updates).

        The stored clock becomes the merge of the stored and the given clock, so
        it never moves backwards; ``last_seen`` defaults to now.
        :class:`ValidationError` for a malformed node.
        """
        check_type(node, DeviceNode, "device node")
        did = check_name(node.device_id, "device_id")
        name = check_text(node.name, "name", limit=MAX_NAME, empty=True)
        check_type(node.clock, VectorClock, "clock")
        seen = _time.to_text(check_when(node.last_seen, "last_seen") or _time.now())
        pk = device_pk(did)
        index = {"last_seen": seen, "gsi1sk": order_key(seen, did)}

        async def attempt() -> int:
            item = await self.table.get(pk, "device")
            if item is None:

                def build(ident: int) -> list[Op]:
                    attrs = {
                        "id": ident,
                        "device_id": did,
                        "name": name,
                        "clock": node.clock.to_dict(),
                        "gsi1pk": DEVICE_INDEX,
                        **index,
                    }
                    return [Put(pk, "device", attrs, NotExists(), tag=DEVICE_TAG)]

                with moved_on(DEVICE_TAG):  # registered meanwhile: update it instead
                    return await self._create("device", build, explain={})
            merged = VectorClock(item.attrs["clock"]).merge(node.clock)
            await self._set_device(item, {"name": name, "clock": merged.to_dict(), **index})
            return int(item.attrs["id"])

        return await retrying(attempt, what=f"device {did!r}")

    async def _set_device(self, item: Item, changes: dict[str, Any]) -> None:
        """Update the device ``item`` unless it changed since it was read (then Retry)."""
        with moved_on(DEVICE_TAG):
            await self.table.update(
                item.pk,
                item.sk,
                set=changes,
                condition=VersionEquals(item.version),
                tag=DEVICE_TAG,
            )

    async def list_active_devices(self, active_within: timedelta) -> list[DeviceNode]:
        """Devices seen within ``active_within`` of now, least recently seen first.
        :class:`ValidationError` for a negative or non-timedelta age."""
        since = KeyRange.gte(_ago(active_within, "active_within"))
        return [
            device_of(i.attrs)
            async for i in self.table.query_all(DEVICE_INDEX, since, index="gsi1")
        ]

    async def get_device_node(self, device_id: str) -> DeviceNode | None:
        """The device, or None. :class:`ValidationError` for a malformed id."""
        did = check_name(device_id, "device_id")
        item = await self.table.get(device_pk(did), "device")
        return None if item is None else device_of(item.attrs)

    async def update_device_clock(self, device_id: str, clock: VectorClock) -> VectorClock:
        """Merge ``clock`` into the device's clock; return the stored result.

        The update is version-guarded and retried, so under concurrent writers
        every counter only grows and no writer's counters are lost. Raises
        :class:`NotFound` for an unknown device and :class:`ValidationError`
        for malformed input.
        """
        did = check_name(device_id, "device_id")
        check_type(clock, VectorClock, "clock")
        pk = device_pk(did)

        async def attempt() -> VectorClock:
            item = await self.table.get(pk, "device")
            if item is None:
                raise NotFound(f"no device {did!r}")
            stored = VectorClock(item.attrs["clock"])
            merged = stored.merge(clock)
            if merged != stored:
                await self._set_device(item, {"clock": merged.to_dict()})
            return merged

        return await retrying(attempt, what=f"device {did!r}")


def _ago(age: timedelta, what: str) -> str:
    """The stored time of ``age`` ago (:class:`ValidationError` unless a timedelta >= 0)."""
    return _time.to_text(_time.now() - check_age(age, what))
