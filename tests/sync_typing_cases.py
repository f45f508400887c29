"""Calls through stateport.sync, type-checked (never run) by tests/test_sync_types.py.

``assert_type`` proves a blocking method returns what the async one awaits to;
each line ending in ``# error: CODE`` must be a mypy error of that code, and no
other line may be one. At least one call per store, and one per kind of
crossing (blocking, iterating, entering, plain, store).
"""

# ruff: noqa: B018, F841 (expressions here exist to be type-checked)

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any, assert_type

import stateport.sync
from stateport import (
    ContentDigest,
    CouncilRun,
    Item,
    NotExists,
    Page,
    ReleaseRecord,
    RunEvent,
    RunId,
    RunMetadata,
)
from stateport.domains.knowledge import Collection
from stateport.domains.work import Feature
from stateport.ports import SchemaStatus
from stateport.sync import SyncBlobReader, SyncRunLedger, SyncStateport, SyncWatch

D = ContentDigest.from_bytes(b"x")


def calls(sp: SyncStateport) -> None:
    # blocking: the async method's parameters and awaited result
    assert_type(sp.table.get("p", "s"), Item | None)
    assert_type(sp.table.put("p", "s", {"v": 1}, condition=NotExists()), Item)
    assert_type(sp.table.query("p", limit=5), Page)
    assert_type(sp.items.get("p", "s"), dict[str, Any] | None)
    assert_type(sp.blobs.put(b"x"), ContentDigest)
    assert_type(sp.cas.get(D), bytes)
    assert_type(sp.runs.create_run(D, RunMetadata("agent"), run_id="r1"), RunId)
    assert_type(sp.runs.append_event("r1", RunEvent("k")), RunEvent)
    assert_type(sp.releases.current("agent"), ReleaseRecord | None)
    assert_type(sp.council.list_runs(), list[CouncilRun])
    assert_type(sp.work.get_feature_by_slug("001-x"), Feature | None)
    assert_type(sp.knowledge.list_collections(), list[Collection])
    assert_type(sp.schema_version(), SchemaStatus)
    assert_type(sp.engine.schema_version(), SchemaStatus)
    # iterating, entering, plain, store
    assert_type(sp.table.query_all("p"), Iterator[Item])
    assert_type(sp.runs.watch_events("r1", poll_interval=0.1), Iterator[RunEvent])
    assert_type(iter(sp.blobs), Iterator[ContentDigest])
    assert_type(sp.blobs.open(D), AbstractContextManager[SyncBlobReader])
    with sp.cas.open(D) as reader:
        assert_type(reader.size, int)
        assert_type(iter(reader), Iterator[bytes])
    with sp.table.watch("p") as watch:
        assert_type(watch, SyncWatch)
        assert_type(watch.wait(0.5), bool)
    assert_type(sp.blobs.location(), str)
    assert_type(sp.runs, SyncRunLedger)
    assert_type(sp.url, str)

    # what mypy must refuse
    sp.table.get("p", 1)  # error: arg-type
    sp.table.put("p", "s", {}, conditon=NotExists())  # error: call-arg
    sp.table.get("p")  # error: call-arg
    sp.runs.create_run("not", "metadata")  # error: arg-type
    sp.work.create_feature("001-x")  # error: arg-type
    sp.council.update_run_status("r", 3)  # error: arg-type
    sp.releases.promote("agent")  # error: call-arg
    sp.runs.no_such_method("r")  # error: attr-defined
    sp.dialogues  # error: attr-defined
    wrong: int = sp.items.get("p", "s")  # error: assignment
    sp.cas.put(b"x").no_such_attribute  # error: attr-defined


def opening() -> None:
    with stateport.sync.open("memory://") as sp:
        assert_type(sp, SyncStateport)
    stateport.sync.open(url=3)  # error: arg-type
