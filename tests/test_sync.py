"""The sync facade bridges to the async implementation."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

import stateport
from stateport import Conflict, KeyRange, NotExists, Put, ValidationError


def test_items_and_table(tmp_path: Path) -> None:
    with stateport.sync.open(f"sqlite:///{tmp_path}/s.db") as sp:
        sp.items.put({"pk": "p", "sk": "a", "v": 1})
        sp.items.put({"pk": "p", "sk": "b", "v": 2})
        assert sp.items.get("p", "a") == {"pk": "p", "sk": "a", "v": 1}
        assert [i["sk"] for i in sp.items.query("p")] == ["a", "b"]
        sp.items.delete("p", "a")
        assert sp.items.get("p", "a") is None
        item = sp.table.put("p", "c", {"v": 3}, condition=NotExists())
        assert item.version == 1
        with pytest.raises(Conflict):
            sp.table.transact([Put("p", "d", {}), Put("p", "c", {}, NotExists())])
        assert sp.table.get("p", "d") is None
        assert [i.sk for i in sp.table.query_all("p", KeyRange.prefix(""), page_size=1)] == [
            "b",
            "c",
        ]
        assert sp.schema_version().pending == 0


def test_blobs_stream_both_ways() -> None:
    with stateport.sync.open("memory://") as sp:
        d = sp.blobs.put(io.BytesIO(b"x" * 3_000_000))
        assert sp.blobs.get(d) == b"x" * 3_000_000
        with sp.blobs.open(d) as reader:
            assert reader.size == 3_000_000
            assert sum(len(c) for c in reader) == 3_000_000
        assert list(sp.blobs) == [d]
        assert list(sp.blobs.digests(page_size=1)) == [d]


def test_errors_are_the_same_types() -> None:
    with stateport.sync.open("memory://") as sp:
        with pytest.raises(ValidationError):
            sp.items.put({"sk": "no pk"})
        with pytest.raises(ValidationError):
            sp.blobs.get("not a digest")


def _bridge_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "stateport-sync"]


def test_bad_url_raises_and_leaves_no_thread() -> None:
    with pytest.raises(stateport.ConfigError):
        stateport.sync.open("nope://")
    assert _bridge_threads() == []


def test_close_is_idempotent_and_stops_its_threads(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    sp = stateport.sync.open(f"sqlite:///{tmp_path}/s.db")
    assert len(_bridge_threads()) == 1
    sp.items.put({"pk": "p", "sk": "s"})
    sp.blobs.put(b"x" * 3_000_000)  # through the worker thread
    workers = set(threading.enumerate()) - before
    assert len(workers) >= 2  # the bridge, and at least one helper
    sp.close()
    sp.close()
    assert _bridge_threads() == []
    assert [t for t in workers if t.is_alive()] == []


def test_usable_from_many_threads(tmp_path: Path) -> None:
    with stateport.sync.open(f"sqlite:///{tmp_path}/s.db") as sp:

        def work(n: int) -> None:
            for i in range(25):
                sp.items.put({"pk": "t", "sk": f"{n}-{i:02d}"})

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(sp.items.query("t")) == 100


def test_domain_stores_through_the_sync_facade() -> None:
    from stateport import ContentDigest, ReleaseMetadata, RunEvent, RunMetadata, RunSummary

    spec = ContentDigest.from_bytes(b"sync spec")
    with stateport.sync.open("memory://") as sp:
        run_id = sp.runs.create_run(spec, RunMetadata("sync-agent"))
        assert sp.runs.append_event(run_id, RunEvent("a")).seq == 1
        sp.runs.append_events(run_id, [RunEvent("b"), RunEvent("c")])
        sp.runs.complete_run(run_id, RunSummary(3, 1, True))
        assert [e.seq for e in sp.runs.watch_events(run_id)] == [1, 2, 3]
        sp.releases.promote("agent", spec, ReleaseMetadata("me"))
        assert sp.releases.current("agent").spec_digest == spec
        assert sp.cas.get(sp.cas.put(b"x")) == b"x"


def test_the_knowledge_repository_without_await() -> None:
    with stateport.sync.open("memory://") as sp:
        k = sp.knowledge
        col = k.create_collection("notes")
        art = k.create_artifact(col.id, "a", io.BytesIO(b"text"), artifact_type="note")
        k.update_artifact(art.id, content=b"text 2", expected_revision=1)
        with pytest.raises(Conflict):
            k.update_artifact(art.id, content=b"stale", expected_revision=1)
        with k.open_content(art.id, revision=1) as reader:
            assert b"".join(reader) == b"text"
        assert [c.seq for c in k.list_changes()] == [1, 2, 3]
        assert [a.id for a in k.query_artifacts(artifact_type="note").artifacts] == [art.id]
