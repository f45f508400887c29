"""Conformance tests for the knowledge repository (``sp.knowledge``).

The source's acceptance criteria, on every engine: collections, artifacts and
revisions (old and new digests, compare-and-set), relationships with valid
endpoints and bounded traversal, change records written with every mutation
in commit order, queries in a deterministic order with cursors, workflow runs
with enforced status machines and manifests that round-trip exactly, context
references reported dangling when their target goes, data that survives
reopening, and concurrent writers (threads with their own event loops, and
processes where the engine allows) that never lose an update or leave a
relationship pointing at nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest

from ..digest import ContentDigest
from ..domains.knowledge import (
    ArtifactRef,
    ChangeKind,
    ChangeRecord,
    ContextReference,
    Direction,
    InputBundle,
    KnowledgeRepository,
    OperationStatus,
    Provenance,
    ReferenceKind,
    RunManifest,
)
from ..errors import Conflict, InvalidTransition, NotFound, ValidationError
from ..ports.engine import Capability
from ._support import async_test, in_processes, in_threads, needs
from .store import StoreConformance

if TYPE_CHECKING:
    from ..store import Stateport

__all__ = ["KnowledgeRepositoryConformance"]

META = {"lang": "en", "score": 0.5, "tags": ["a", "b"], "nested": {"k": [1, {"z": None}]}}


async def _state(sp: Stateport) -> tuple[int, list[str], list[str]]:
    """What a failed call must leave unchanged: the change feed, the blobs, the runs."""
    k = sp.knowledge
    runs = [r.id for r in (await k.list_runs(limit=10_000)).runs]
    return await k.last_change(), [d.as_str() async for d in sp.blobs.digests()], runs


async def _collection(k: KnowledgeRepository, name: str = "docs") -> str:
    return (await k.create_collection(name)).id


async def _artifact(
    k: KnowledgeRepository, cid: str, name: str, content: bytes = b"", **kw: Any
) -> str:
    kw.setdefault("artifact_type", "note")
    return (await k.create_artifact(cid, name, content or name.encode(), **kw)).id


async def _held(k: KnowledgeRepository, cid: str) -> int:
    """How many artifacts the collection holds."""
    return len((await k.list_artifacts(cid, limit=10_000)).artifacts)


def _kinds(changes: list[ChangeRecord]) -> list[str]:
    return [c.kind.value for c in changes]


def _worker(url: str, cid: str, contested: str, worker: int, times: int) -> None:
    """One process: a compare-and-set from revision 1 (losing is fine), then creates."""
    import stateport

    async def main() -> None:
        async with stateport.open(url) as sp:
            k = sp.knowledge
            with contextlib.suppress(Conflict):  # all but one lose: that is the point
                await k.update_artifact(
                    contested, content=f"w{worker}".encode(), expected_revision=1
                )
            for i in range(times):
                await k.create_artifact(
                    cid, f"w{worker}-{i}", b"x", artifact_type="note", metadata={"w": worker}
                )

    asyncio.run(main())


class KnowledgeRepositoryConformance(StoreConformance):
    """What every engine must show for ``sp.knowledge``."""

    # ------------------------------------------------------------ collections

    @async_test
    async def test_collections_are_created_found_listed_and_renamed(self) -> None:
        async with self.open_store() as sp:
            k = sp.knowledge
            b = await k.create_collection("beta", description="second", metadata={"x": [1]})
            a = await k.create_collection("alpha")
            assert (b.name, b.description, b.metadata) == ("beta", "second", {"x": [1]})
            assert await k.get_collection(b.id) == b
            assert await k.find_collection("alpha") == a
            assert await k.find_collection("gamma") is None
            assert [c.name for c in await k.list_collections()] == ["alpha", "beta"]
            renamed = await k.rename_collection(b.id, "aardvark", actor="ada")
            assert renamed.name == "aardvark" and renamed.id == b.id
            assert [c.name for c in await k.list_collections()] == ["aardvark", "alpha"]
            assert await k.find_collection("beta") is None
            assert (await k.create_collection("beta")).name == "beta"  # the old name is free
            with pytest.raises(Conflict, match="already exists"):
                await k.rename_collection(a.id, "aardvark")
            with pytest.raises(NotFound):
                await k.get_collection("col_missing")
            changes = await k.list_changes()
            assert _kinds(changes) == [
                "collection.created",
                "collection.created",
                "collection.renamed",
                "collection.created",
            ]
            assert changes[2].details == {"old_name": "beta", "name": "aardvark"}
            assert changes[2].actor == "ada"

    @async_test
    async def test_duplicate_collection_name_is_a_conflict_and_writes_nothing(self) -> None:
        async with self.open_store() as sp:
            await sp.knowledge.create_collection("docs")
            before = await _state(sp)
            with pytest.raises(Conflict, match="'docs' already exists"):
                await sp.knowledge.create_collection("docs")
            assert await _state(sp) == before
            assert len(await sp.knowledge.list_collections()) == 1

    @async_test
    async def test_deleting_a_collection_that_holds_artifacts_needs_cascade(self) -> None:
        async with self.open_store() as sp:
            k = sp.knowledge
            cid = await _collection(k)
            other = await _collection(k, "other")
            a1 = await _artifact(k, cid, "one")
            a2 = await _artifact(k, cid, "two")
            outside = await _artifact(k, other, "outside")
            await k.create_relationship(a1, "cites", outside)
            assert await _held(k, cid) == 2
            before = await _state(sp)
            with pytest.raises(Conflict, match="holds artifacts"):
                await k.delete_collection(cid)
            assert await _state(sp) == before
            assert await k.delete_collection(cid, cascade=True, actor="ops") == 2
            with pytest.raises(NotFound):
                await k.get_collection(cid)
            assert await k.find_collection("docs") is None
            for aid in (a1, a2):
                with pytest.raises(NotFound):
                    await k.get_artifact(aid)
            assert await k.list_relationships(outside) == []
            tail = await k.list_changes(after=before[0])
            assert sorted(_kinds(tail[:-1])) == sorted(
                ["relationship.deleted", "artifact.deleted", "artifact.deleted"]
            )
            assert tail[-1].kind is ChangeKind.COLLECTION_DELETED and tail[-1].entity_id == cid
            assert {c.actor for c in tail} == {"ops"}
            assert await _held(k, other) == 1
            empty = await _collection(k, "empty")
            assert await k.delete_collection(empty) == 0
            with pytest.raises(NotFound):
                await k.delete_collection(empty)

    # ------------------------------------------------------------ artifacts

    @async_test
    async def test_artifact_round_trips_exactly(self) -> None:
        async with self.open_store() as sp:
            k = sp.knowledge
            cid = await _collection(k)
            run = await k.create_run("ingest")
            before = datetime.now(UTC)
            content = "héllo wörld\n".encode()
            meta = {**META, "unicode": "日本語 ☃", "big": 10**30, "neg": -0.25, "flag": False}
            prov = Provenance(
                actor="ada", run_id=run.id, source_uris=("https://x.test/a", "s3://b/c")
            )
            art = await k.create_artifact(
                cid,
                "greeting",
                content,
                artifact_type="note",
                media_type="text/plain; charset=utf-8",
                metadata=meta,
                provenance=prov,
            )
            assert art.collection_id == cid and art.name == "greeting"
            assert art.artifact_type == "note" and art.media_type == "text/plain; charset=utf-8"
            assert art.digest == ContentDigest(hashlib.sha256(content).hexdigest())
            assert art.size == len(content) and art.revision == 1
            assert art.metadata == meta and art.provenance == prov
            assert before - timedelta(seconds=1) <= art.created_at == art.updated_at
            assert await k.get_artifact(art.id) == art
            assert await k.find_artifact(cid, "greeting") == art
            assert await k.find_artifact(cid, "nothing") is None
            assert await k.read_content(art.id) == content
            assert await sp.blobs.get(art.digest) == content
            async with k.open_content(art.id) as reader:
                assert reader.size == len(content)
                assert b"".join([c async for c in reader]) == content
            assert await _held(k, cid) == 1

    @async_test
    async def test_content_streams_from_files_and_iterables(self) -> None:
        async with self.open_store() as sp:
            k = sp.knowledge
            cid = await _collection(k)
            data = bytes(range(256)) * 9000  # over two chunks

            async def chunks() -> AsyncIterator[bytes]:
                for i in range(0, len(data), 100_000):
                    yield data[i : i + 100_000]

            from_file = await k.create_artifact(cid, "f", io.BytesIO(data), artifact_type="bin")
            from_iter = await k.create_artifact(
                cid, "i", [data[:10], data[10:]], artifact_type="bin"
            )
            from_async = await k.create_artifact(cid, "a", chunks(), artifact_type="bin")
            for art in (from_file, from_iter, from_async):
                assert art.size == len(data)
                assert art.digest == ContentDigest.from_bytes(data)
                assert await k.read_content(art.id) == data

    @async_test
    async def test_equal_content_is_stored_once(self) -> None:
        async with self.open_store() as sp:
            k = sp.knowledge
            cid = await _collection(k)
            a = await k.create_artifact(cid, "a", b"same bytes", artifact_type="t")
            b = await k.create_artifact(cid, "b", b"same bytes", artifact_type="t")
            assert a.digest == b.digest and a.id != b.id
            assert [d async for d in sp.blobs.digests()] == [a.digest]

    @async_test
    async def test_duplicate_artifact_name_is_a_conflict_and_writes_nothing(self) -> None:
        async with self.open_store() as sp:
            k = sp.knowledge
            cid = await _collection(k)
            other = await _collection(k, "other")
            first = await _artifact(k, cid, "dup", b"first")
            before = await _state(sp)
            for _ in range(2):  # the same answer every time
                with pytest.raises(Conflict, match="already has an artifact named 'dup'"):
                    await k.create_artifact(cid, "dup", b"second", artifact_type="note")
            assert await _state(sp) == before
            assert (await k.list_artifacts(cid)).artifacts[0].id == first
            await _artifact(k, other, "dup")  # names are unique per collection

    @async_test
    async def test_listing_a_collection_is_by_name_with_cursors(self) -> None:
        async with self.open_store() as sp:
            k = sp.knowledge
            cid = await _collection(k)
            names = [f"n{i:02d}" for i in range(23)]
            for name in reversed(names):
                await _artifact(k, cid, name)
            seen: list[str] = []
            cursor: str | None = None
            while True:
                page = await k.list_artifacts(cid, limit=5, cursor=cursor)
                seen.extend(a.name for a in page.artifacts)
                if page.cursor is None:
                    break
                cursor = page.cursor
            assert seen == names
            assert (await k.list_artifacts("col_unknown")).artifacts == []

    @async_test
    async def test_updates_make_revisions_with_old_and_new_digests(self) -> None:
        async with self.open_store() as sp:
            k = sp.knowledge
            cid = await _collection(k)
            art = await k.create_artifact(
                cid, "doc", b"v1", artifact_type="note", metadata={"v": 1}
            )
            v2 = await k.update_artifact(art.id, content=b"v2", actor="bob")
            v3 = await k.update_artifact(art.id, metadata={"v": 3}, media_type="text/markdown")
            assert (v2.revision, v3.revision) == (2, 3)
            assert v3.digest == v2.digest == ContentDigest.from_bytes(b"v2")
            assert v3.metadata == {"v": 3} and v3.media_type == "text/markdown"
            assert v2.metadata == {"v": 1}
            assert await k.get_artifact(art.id) == v3
            revs = await k.list_revisions(art.id)
            assert [r.revision for r in revs] == [1, 2, 3]
            assert [r.old_digest for r in revs] == [None, art.digest, v2.digest]
            assert [r.digest for r in revs] == [art.digest, v2.digest, v2.digest]
            assert [r.metadata for r in revs] == [{"v": 1}, {"v": 1}, {"v": 3}]
            assert revs[1].actor == "bob"
            assert await k.get_revision(art.id, 2) == revs[1]
            assert await k.read_content(art.id, 1) == b"v1"
            assert await k.read_content(art.id) == b"v2"
            with pytest.raises(NotFound):
                await k.get_revision(art.id, 4)
            updates = [
                c for c in await k.entity_changes(art.id) if c.kind is ChangeKind.ARTIFACT_UPDATED
            ]
            assert [(c.revision, c.old_digest, c.new_digest) for c in updates] == [
                (2, art.digest, v2.digest),
                (3, v2.digest, v2.digest),
            ]

    @async_test
    async def test_expected_revision_is_a_compare_and_set(self) -> None:
        async with self.open_store() as sp:
            k = sp.knowledge
            cid = await _collection(k)
            aid = await _artifact(k, cid, "doc", b"v1")
            await k.update_artifact(aid, content=b"v2", expected_revision=1)
            before = await _state(sp)
            with pytest.raises(Conflict, match="at revision 2, not 1"):
                await k.update_artifact(aid, content=b"stale", expected_revision=1)
            assert await _state(sp) == before  # the stale content was not even stored
            assert (await k.get_artifact(aid)).revision == 2
            assert (await k.update_artifact(aid, content=b"v3", expected_revision=2)).revision == 3

    @async_test
    async def test_deleted_artifact_leaves_every_query_and_stays_traceable(self) -> None:
        async with self.open_store() as sp:
            k = sp.knowledge
            cid = await _collection(k)
            gone = await k.create_artifact(
                cid, "gone", b"bye", artifact_type="memo", metadata={"topic": "x"}
            )
            kept = await _artifact(
                k, cid, "kept", b"bye", artifact_type="memo", metadata={"topic": "x"}
            )
            await k.update_artifact(gone.id, content=b"bye 2")
            await k.delete_artifact(gone.id, actor="cleaner")
            with pytest.raises(NotFound):
                await k.get_artifact(gone.id)
            with pytest.raises(NotFound):
                await k.read_content(gone.id)
            with pytest.raises(NotFound):
                await k.update_artifact(gone.id, content=b"x")
            with pytest.raises(NotFound):
                await k.delete_artifact(gone.id)
            assert await k.find_artifact(cid, "gone") is None
            assert [a.id for a in (await k.list_artifacts(cid)).artifacts] == [kept]
            for query in (
                {"artifact_type": "memo"},
                {"metadata": {"topic": "x"}},
                {"digest": gone.digest},
            ):
                assert [a.id for a in (await k.query_artifacts(**query)).artifacts] == [kept]
            assert (
                await k.query_artifacts(digest=ContentDigest.from_bytes(b"bye 2"))
            ).artifacts == []
            assert await _held(k, cid) == 1
            # traceable: history, every revision's content, the deletion record
            assert [r.revision for r in await k.list_revisions(gone.id)] == [1, 2]
            assert await k.read_content(gone.id, 1) == b"bye"
            history = await k.entity_changes(gone.id)
            assert _kinds(history) == ["artifact.created", "artifact.updated", "artifact.deleted"]
            deletion = history[-1]
            assert deletion.old_digest == ContentDigest.from_bytes(b"bye 2")
            assert deletion.new_digest is None and deletion.actor == "cleaner"
            assert deletion.revision == 2 and deletion.details["name"] == "gone"
            again = await _artifact(k, cid, "gone", b"new")  # the name is free again
            assert again != gone.id

    @async_test
    async def test_deleting_a_related_artifact_needs_cascade(self) -> None:
        async with self.open_store() as sp:
            k = sp.knowledge
            cid = await _collection(k)
            hub = await _artifact(k, cid, "hub")
            spokes = [await _artifact(k, cid, f"s{i}") for i in range(30)]
            for i, s in enumerate(spokes):
                if i % 2:
                    await k.create_relationship(hub, "links", s)
                else:
                    await k.create_relationship(s, "links", hub)
            await k.create_relationship(hub, "self", hub)
            before = await _state(sp)
            with pytest.raises(Conflict, match="has relationships"):
                await k.delete_artifact(hub)
            assert await _state(sp) == before
            await k.delete_artifact(hub, cascade=True)
            tail = await k.list_changes(after=before[0], limit=1000)
            assert _kinds(tail) == ["relationship.deleted"] * 31 + ["artifact.deleted"]
            for s in spokes:
                assert await k.list_relationships(s) == []
            await k.delete_artifact(spokes[0])  # no relationship left to refuse it

    # ------------------------------------------------------------ relationships

    @async_test
    async def test_relationships_are_typed_listed_and_unique(self) -> None:
        async with self.open_store() as sp:
            k = sp.knowledge
            cid = await _collection(k)
            a, b, c = [await _artifact(k, cid, n) for n in "abc"]
            r1 = await k.create_relationship(a, "cites", b, metadata={"page": 3}, actor="ada")
            r2 = await k.create_relationship(a, "cites", c)
            r3 = await k.create_relationship(c, "derived_from", a)
            assert (r1.source_id, r1.rel_type, r1.target_id) == (a, "cites", b)
            assert r1.metadata == {"page": 3} and r1.actor == "ada"
            assert await k.get_relationship(r1.id) == r1
            before = await _state(sp)
            with pytest.raises(Conflict, match="already related"):
                await k.create_relationship(a, "cites", b)
            with pytest.raises(NotFound):
                await k.create_relationship(a, "cites", "art_missing")
            with pytest.raises(NotFound):
                await k.create_relationship("art_missing", "cites", a)
            assert await _state(sp) == before
            await k.create_relationship(b, "cites", a)  # the other direction is another one
            out = await k.list_relationships(a, direction="out")
            assert {r.id for r in out} == {r1.id, r2.id}
            assert [r.target_id for r in out] == sorted([b, c], key=lambda x: (cid, x))
            assert [r.id for r in await k.list_relationships(a, direction=Direction.IN)][
                -1
            ] == r3.id
            assert {r.source_id for r in await k.list_relationships(a, direction="in")} == {b, c}
            assert len(await k.list_relationships(a)) == 4
            assert [r.id for r in await k.list_relationships(a, rel_type="derived_from")] == [r3.id]
            by_type = await k.list_relationships(rel_type="cites")
            assert [(r.source_id, r.target_id) for r in by_type] == sorted([(a, b), (a, c), (b, a)])
            assert await k.list_relationships("art_missing") == []
            await k.delete_relationship(r1.id, actor="ada")
            with pytest.raises(NotFound):
                await k.get_relationship(r1.id)
            with pytest.raises(NotFound):
                await k.delete_relationship(r1.id)
            assert {r.target_id for r in await k.list_relationships(a, direction="out")} == {c}
            history = await k.entity_changes(b)
            assert _kinds(history) == [
                "artifact.created",
                "relationship.created",
                "relationship.created",
                "relationship.deleted",
            ]
            assert history[-1].entity_id == r1.id and history[-1].details["target"] == b

    @async_test
    async def test_traversal_is_bounded_and_ends_on_cycles(self) -> None:
        async with self.open_store() as sp:
            k = sp.knowledge
            cid = await _collection(k)
            a, b, c, d, e = [await _artifact(k, cid, n) for n in "abcde"]
            for src, tgt in ((a, b), (b, c), (c, a), (c, d)):
                await k.create_relationship(src, "next", tgt)
            await k.create_relationship(a, "other", e)
            await k.create_relationship(a, "next", a)
            found = await k.traverse(a, depth=10, rel_types=["next"])
            assert [(n.artifact_id, n.depth) for n in found] == [(b, 1), (c, 2), (d, 3)]
            assert found[1].via.source_id == b and found[1].via.target_id == c
            assert [n.artifact_id for n in await k.traverse(a, depth=1)] == sorted(
                [b, e], key=lambda x: ("next" if x == b else "other", x)
            )
            assert [n.artifact_id for n in await k.traverse(a, depth=2, rel_types=["next"])] == [
                b,
                c,
            ]
            back = await k.traverse(d, depth=10, direction="in")
            assert [(n.artifact_id, n.depth) for n in back] == [(c, 1), (b, 2), (a, 3)]
            assert {n.artifact_id for n in await k.traverse(b, depth=1, direction="both")} == {a, c}
            assert len(await k.traverse(a, depth=10, limit=2)) == 2
            assert await k.traverse("art_missing") == []

    # ------------------------------------------------------------ change records

    @async_test
    async def test_every_mutation_writes_one_change_record_in_commit_order(self) -> None:
        async with self.open_store() as sp:
            k = sp.knowledge
            assert await k.list_changes() == [] and await k.last_change() == 0
            cid = await _collection(k)
            a = await _artifact(k, cid, "a", b"one", actor="ada")
            b = await _artifact(k, cid, "b")
            rel = await k.create_relationship(a, "cites", b)
            await k.update_artifact(a, content=b"two")
            await k.rename_collection(cid, "renamed")
            await k.delete_relationship(rel.id)
            await k.delete_artifact(b)
            changes = await k.list_changes()
            assert [c.seq for c in changes] == list(range(1, 9))
            assert _kinds(changes) == [
                "collection.created",
                "artifact.created",
                "artifact.created",
                "relationship.created",
                "artifact.updated",
                "collection.renamed",
                "relationship.deleted",
                "artifact.deleted",
            ]
            created = changes[1]
            assert created.entity_id == a and created.artifact_id == a
            assert created.collection_id == cid and created.revision == 1
            assert created.old_digest is None
            assert created.new_digest == ContentDigest.from_bytes(b"one")
            assert created.actor == "ada" and isinstance(created.at, datetime)
            assert await k.list_changes(after=3, limit=2) == changes[3:5]
            assert await k.list_changes(after=8) == []
            assert await k.last_change() == 8
            assert _kinds(await k.entity_changes(rel.id)) == [
                "relationship.created",
                "relationship.deleted",
            ]
            assert _kinds(await k.entity_changes(cid)) == [
                "collection.created",
                "collection.renamed",
            ]
            assert await k.entity_changes("art_never") == []

    @async_test
    async def test_watching_the_feed_sees_new_changes(self) -> None:
        async with self.open_store() as sp:
            k = sp.knowledge
            cid = await _collection(k)
            seen: list[ChangeRecord] = []

            async def follow() -> None:
                async for record in k.watch_changes(after=1, poll_interval=0.05):
                    seen.append(record)
                    if len(seen) == 3:
                        return

            task = asyncio.ensure_future(follow())
            for name in "xyz":
                await _artifact(k, cid, name)
            await asyncio.wait_for(task, 30)
            assert [c.seq for c in seen] == [2, 3, 4]
            assert [c.details["name"] for c in seen] == ["x", "y", "z"]

    @async_test
    async def test_concurrent_writers_number_changes_without_gaps(self) -> None:
        async with self.open_store() as sp:
            k = sp.knowledge
            cid = await _collection(k)

            async def work(worker: int) -> list[str]:
                return [await _artifact(k, cid, f"w{worker}-{i}") for i in range(8)]

            made = [a for batch in await in_threads(work, 4) for a in batch]
            changes = await k.list_changes(limit=1000)
            assert [c.seq for c in changes] == list(range(1, 34))
            assert sorted(c.entity_id for c in changes[1:]) == sorted(made)
            assert await _held(k, cid) == 32

    @needs(Capability.MULTI_PROCESS)
    def test_processes_keep_the_feed_gapless_and_one_compare_and_set_wins(self) -> None:
        url = self.store_url()
        import stateport

        async def setup() -> tuple[str, str]:
            async with stateport.open(url) as sp:
                cid = await _collection(sp.knowledge)
                return cid, await _artifact(sp.knowledge, cid, "contested", b"v1")

        cid, contested = asyncio.run(setup())
        in_processes(_worker, [(url, cid, contested, w, 10) for w in range(3)])

        async def check() -> None:
            async with stateport.open(url) as sp:
                k = sp.knowledge
                changes = await k.list_changes(limit=1000)
                assert [c.seq for c in changes] == list(range(1, 34))
                assert await _held(k, cid) == 31
                for w in range(3):
                    page = await k.query_artifacts(cid, metadata={"w": w}, limit=100)
                    assert sorted(a.name for a in page.artifacts) == sorted(
                        f"w{w}-{i}" for i in range(10)
                    )
                assert (await k.get_artifact(contested)).revision == 2
                assert [r.revision for r in await k.list_revisions(contested)] == [1, 2]
                assert (await k.read_content(contested)).startswith(b"w")

        asyncio.run(check())

    # ------------------------------------------------------------ queries

    @async_test
    async def test_queries_by_type_digest_and_metadata(self) -> None:
        async with self.open_store() as sp:
            k = sp.knowledge
            c1 = await _collection(k, "one")
            c2 = await _collection(k, "two")
            made: dict[str, str] = {}
            for cid, prefix in ((c1, "p"), (c2, "q")):
                for i in range(6):
                    made[f"{prefix}{i}"] = await _artifact(
                        k,
                        cid,
                        f"{prefix}{i}",
                        b"shared" if i < 2 else f"{prefix}{i}".encode(),
                        artifact_type="even" if i % 2 == 0 else "odd",
                        metadata={
                            "i": i,
                            "lang": "en" if i < 3 else "de",
                            "big": i < 4,
                            "deep": {"i": i},
                        },
                    )

            def order(*names: str) -> list[str]:
                ids = {made[n]: (c1 if n[0] == "p" else c2) for n in names}
                return sorted(ids, key=lambda a: (ids[a], a))

            async def ids(collection_id: str | None = None, **filters: Any) -> list[str]:
                page = await k.query_artifacts(collection_id, **filters)
                return [a.id for a in page.artifacts]

            assert await ids(artifact_type="even") == order("p0", "p2", "p4", "q0", "q2", "q4")
            assert await ids(c2, artifact_type="odd") == order("q1", "q3", "q5")
            shared = ContentDigest.from_bytes(b"shared")
            assert await ids(digest=shared) == order("p0", "p1", "q0", "q1")
            assert await ids(digest=shared.as_str().upper()) == order("p0", "p1", "q0", "q1")
            assert await ids(metadata={"lang": "en"}) == order("p0", "p1", "p2", "q0", "q1", "q2")
            assert await ids(metadata={"lang": "en", "big": True, "i": 2}) == order("p2", "q2")
            assert await ids(c1, metadata={"i": 4.0}) == order("p4")  # 4.0 == 4
            assert await ids(metadata={"big": 1}) == []  # booleans are not numbers
            assert await ids(artifact_type="odd", metadata={"lang": "de"}, digest=None) == order(
                "p3", "p5", "q3", "q5"
            )
            assert await ids(artifact_type="nothing") == []
            bad: list[dict[str, Any]] = [
                {},
                {"collection_id": c1},
                {"metadata": {"deep": {"i": 1}}},  # nested: stored, not indexed
                {"metadata": {"lang": "x" * 600}},
                {"metadata": {}},
                {"rel_type": "cites"},
                {"related_to": made["p0"]},
                {"related_to": made["p0"], "rel_type": "x", "direction": "both"},
                {"digest": "not-a-digest"},
                {"artifact_type": "even", "limit": 0},
            ]
            for filters in bad:
                with pytest.raises(ValidationError):
                    await k.query_artifacts(**filters)
                    pytest.fail(f"accepted {filters}")

    @async_test
    async def test_query_pages_are_deterministic_and_complete(self) -> None:
        async with self.open_store() as sp:
            k = sp.knowledge
            cid = await _collection(k)
            other = await _collection(k, "other")
            for i in range(25):
                await _artifact(
                    k, cid if i % 3 else other, f"a{i}", metadata={"kind": "x", "m": i % 2}
                )
            whole = await k.query_artifacts(metadata={"kind": "x"}, limit=100)
            assert whole.cursor is None and len(whole.artifacts) == 25
            for size in (1, 7, 25):
                seen = []
                cursor: str | None = None
                while True:
                    page = await k.query_artifacts(
                        metadata={"kind": "x"}, limit=size, cursor=cursor
                    )
                    assert len(page.artifacts) == size or page.cursor is None
                    seen.extend(page.artifacts)
                    if page.cursor is None:
                        break
                    cursor = page.cursor
                assert seen == whole.artifacts
            first = await k.query_artifacts(metadata={"kind": "x", "m": 1}, limit=3)
            assert first.cursor is not None
            rest = await k.query_artifacts(
                metadata={"kind": "x", "m": 1}, limit=100, cursor=first.cursor
            )
            assert [a.metadata["m"] for a in first.artifacts + rest.artifacts] == [1] * 12
            with pytest.raises(ValidationError, match="cursor"):
                await k.query_artifacts(metadata={"kind": "y"}, cursor=first.cursor)
            with pytest.raises(ValidationError, match="cursor"):
                await k.query_artifacts(metadata={"kind": "x"}, cursor="garbage")

    @async_test
    async def test_query_by_relationship(self) -> None:
        async with self.open_store() as sp:
            k = sp.knowledge
            c1 = await _collection(k, "one")
            c2 = await _collection(k, "two")
            paper = await _artifact(k, c1, "paper")
            cited = [
                await _artifact(
                    k, c1 if i % 2 else c2, f"c{i}", artifact_type="ref" if i < 3 else "note"
                )
                for i in range(5)
            ]
            for target in cited:
                await k.create_relationship(paper, "cites", target)
            await k.create_relationship(cited[0], "cites", paper)

            async def ids(collection_id: str | None = None, **filters: Any) -> set[str]:
                page = await k.query_artifacts(collection_id, **filters)
                return {a.id for a in page.artifacts}

            assert await ids(related_to=paper, rel_type="cites") == set(cited)
            assert await ids(related_to=paper, rel_type="cites", artifact_type="ref") == set(
                cited[:3]
            )
            assert await ids(c1, related_to=paper, rel_type="cites") == {cited[1], cited[3]}
            assert await ids(related_to=paper, rel_type="cites", direction="in") == {cited[0]}
            assert await ids(related_to=paper, rel_type="other") == set()
            await k.delete_artifact(cited[4], cascade=True)
            assert await ids(related_to=paper, rel_type="cites") == set(cited[:4])

    @async_test
    async def test_queries_agree_with_filtering_everything(self) -> None:
        """Random artifacts, relationships and filters (a fixed seed): every query,
        paged, returns exactly what filtering all artifacts by hand returns."""
        rng = random.Random(1414)
        async with self.open_store() as sp:
            k = sp.knowledge
            cids = [await _collection(k, f"c{i}") for i in range(3)]
            hubs: list[str] = []
            made: list[Any] = []
            for i in range(45):
                art = await k.create_artifact(
                    rng.choice(cids),
                    f"a{i}",
                    rng.choice([b"x", b"y", f"{i}".encode()]),
                    artifact_type=rng.choice(["t1", "t2", "t3"]),
                    metadata={"p": rng.randrange(3), "q": rng.choice(["u", "v"]), "i": i},
                )
                made.append(art)
                if i < 3:
                    hubs.append(art.id)
            edges = {(h, t.id) for h in hubs for t in made if rng.random() < 0.4}
            for h, t in sorted(edges):
                await k.create_relationship(h, "r", t)
            for gone in rng.sample(made[3:], 5):
                await k.delete_artifact(gone.id, cascade=True)
                made.remove(gone)
                edges = {(h, t) for h, t in edges if t != gone.id}
            for _ in range(25):
                filters: dict[str, Any] = {}
                if rng.random() < 0.5:
                    filters["artifact_type"] = rng.choice(["t1", "t2", "t3"])
                if rng.random() < 0.3:
                    filters["digest"] = ContentDigest.from_bytes(rng.choice([b"x", b"y"]))
                if rng.random() < 0.6:
                    keys = rng.sample(["p", "q"], rng.randrange(1, 3))
                    filters["metadata"] = {
                        key: rng.randrange(3) if key == "p" else rng.choice(["u", "v"])
                        for key in keys
                    }
                if rng.random() < 0.4 or not filters:
                    filters["related_to"] = rng.choice(hubs)
                    filters["rel_type"] = "r"
                scope = rng.choice([None, *cids])

                def wanted(a: Any, f: dict[str, Any] = filters, c: str | None = scope) -> bool:
                    return (
                        (c is None or a.collection_id == c)
                        and a.artifact_type == f.get("artifact_type", a.artifact_type)
                        and a.digest == f.get("digest", a.digest)
                        and all(a.metadata[key] == v for key, v in f.get("metadata", {}).items())
                        and ("related_to" not in f or (f["related_to"], a.id) in edges)
                    )

                expected = sorted(
                    (a.id for a in made if wanted(a)),
                    key=lambda x: next((a.collection_id, a.id) for a in made if a.id == x),
                )
                got: list[str] = []
                cursor: str | None = None
                while True:
                    page = await k.query_artifacts(
                        scope, limit=rng.randrange(2, 9), cursor=cursor, **filters
                    )
                    got.extend(a.id for a in page.artifacts)
                    if page.cursor is None:
                        break
                    cursor = page.cursor
                assert got == expected, (filters, scope)

    @async_test
    async def test_metadata_beyond_the_index_limit_is_refused(self) -> None:
        async with self.open_store() as sp:
            k = sp.knowledge
            cid = await _collection(k)
            before = await _state(sp)
            wide = {f"k{i}": i for i in range(33)}
            with pytest.raises(ValidationError, match="indexable keys"):
                await k.create_artifact(cid, "wide", b"x", artifact_type="t", metadata=wide)
            assert await _state(sp) == before
            nested = {"fields": wide, **{f"k{i}": i for i in range(32)}}
            art = await k.create_artifact(cid, "ok", b"x", artifact_type="t", metadata=nested)
            assert art.metadata == nested
            with pytest.raises(ValidationError, match="indexable keys"):
                await k.update_artifact(art.id, metadata=wide)
            assert (await k.get_artifact(art.id)).revision == 1
            # 32 indexed keys out, 32 others in: one transaction, within 100 operations
            other = {f"j{i}": str(i) for i in range(32)}
            await k.update_artifact(art.id, metadata=other)
            assert (await k.query_artifacts(metadata={"k5": 5})).artifacts == []
            found = await k.query_artifacts(metadata={"j5": "5", "j31": "31"})
            assert [a.id for a in found.artifacts] == [art.id]

    # ------------------------------------------------------------ workflow

    @async_test
    async def test_runs_and_steps_follow_their_status_machine(self) -> None:
        async with self.open_store() as sp:
            k = sp.knowledge
            cid = await _collection(k)
            src = await k.create_artifact(cid, "src", b"x", artifact_type="t")
            inputs = InputBundle((ArtifactRef(src.id, 1),), {"why": "test"})
            run = await k.create_run("summarize", inputs=inputs, metadata={"m": 1}, actor="ada")
            assert run.status is OperationStatus.PENDING and run.inputs == inputs
            assert run.started_at is None and run.finished_at is None
            assert await k.get_run(run.id) == run
            s1 = await k.add_step(run.id, "fetch", metadata={"url": "x"})
            s2 = await k.add_step(run.id, "write")
            assert (s1.seq, s2.seq, s1.status) == (1, 2, OperationStatus.PENDING)
            with pytest.raises(InvalidTransition, match="pending: it cannot become succeeded"):
                await k.set_step_status(run.id, 1, "succeeded")
            with pytest.raises(InvalidTransition):
                await k.set_run_status(run.id, "succeeded")
            running = await k.set_run_status(run.id, "running")
            assert running.status is OperationStatus.RUNNING and running.started_at is not None
            await k.set_step_status(run.id, 1, "running")
            done = await k.set_step_status(run.id, 1, OperationStatus.SUCCEEDED, output={"n": 3})
            assert done.output == {"n": 3} and done.finished_at is not None
            with pytest.raises(InvalidTransition, match="succeeded is final"):
                await k.set_step_status(run.id, 1, "failed")
            failed = await k.set_run_status(run.id, "failed", error="disk full")
            assert failed.status is OperationStatus.FAILED and failed.error == "disk full"
            assert failed.finished_at is not None
            assert await k.get_run(run.id) == failed
            with pytest.raises(InvalidTransition):
                await k.add_step(run.id, "late")
            with pytest.raises(InvalidTransition, match="steps are final"):
                await k.set_step_status(run.id, 2, "cancelled")
            with pytest.raises(InvalidTransition):
                await k.set_run_status(run.id, "running")
            steps = await k.list_steps(run.id)
            assert [(s.seq, s.name, s.status) for s in steps] == [
                (1, "fetch", OperationStatus.SUCCEEDED),
                (2, "write", OperationStatus.PENDING),
            ]
            assert steps[0].metadata == {"url": "x"}
            with pytest.raises(NotFound):
                await k.set_step_status(run.id, 9, "running")
            with pytest.raises(NotFound):
                await k.get_run("run_missing")
            with pytest.raises(NotFound):
                await k.add_step("run_missing", "x")
            with pytest.raises(NotFound):
                await k.create_run("x", inputs=InputBundle((ArtifactRef(src.id, 2),)))
            with pytest.raises(Conflict):
                await k.create_run("again", run_id=run.id)
            assert await k.list_steps("run_missing") == []

    @async_test
    async def test_runs_list_newest_first_and_by_status(self) -> None:
        async with self.open_store() as sp:
            k = sp.knowledge
            ids = [(await k.create_run(f"op{i}", run_id=f"r{i}")).id for i in range(5)]
            await k.set_run_status("r1", "running")
            await k.set_run_status("r3", "cancelled")
            listed = await k.list_runs(limit=100)
            assert [r.id for r in listed.runs] == list(reversed(ids))
            assert [r.id for r in (await k.list_runs(status="pending")).runs] == ["r4", "r2", "r0"]
            assert [r.id for r in (await k.list_runs(status="running")).runs] == ["r1"]
            first = await k.list_runs(limit=2)
            rest = await k.list_runs(limit=10, cursor=first.cursor)
            assert [r.id for r in first.runs + rest.runs] == list(reversed(ids))

    @async_test
    async def test_manifests_round_trip_and_outputs_link_to_their_run(self) -> None:
        async with self.open_store() as sp:
            k = sp.knowledge
            cid = await _collection(k)
            src = await _artifact(k, cid, "src")
            run = await k.create_run("derive", inputs=InputBundle((ArtifactRef(src, 1),)))
            await k.set_run_status(run.id, "running")
            outs = [
                await k.create_artifact(
                    cid, f"out{i}", b"o", artifact_type="t", provenance=Provenance(run_id=run.id)
                )
                for i in range(3)
            ]
            assert all(o.provenance.run_id == run.id for o in outs)
            assert {a.id for a in await k.list_run_outputs(run.id)} == {o.id for o in outs}
            with pytest.raises(NotFound, match="operation run"):
                await k.create_artifact(
                    cid, "orphan", b"o", artifact_type="t", provenance=Provenance(run_id="run_nope")
                )
            t0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
            manifest = RunManifest(
                run_id=run.id,
                inputs=(ArtifactRef(src, 1),),
                outputs=tuple(ArtifactRef(o.id, 1) for o in outs),
                diagnostics={"warnings": ["w1", "w2"], "tokens": 1234, "ratio": 0.75, "ok": None},
                created_at=t0,
                started_at=t0 + timedelta(seconds=1),
                finished_at=t0.astimezone(timezone(timedelta(hours=2))) + timedelta(minutes=5),
                metadata={"model": "m1"},
            )
            assert await k.get_manifest(run.id) is None
            stored = await k.save_manifest(manifest)
            assert stored == manifest  # the same instants, whatever the zone given
            assert await k.get_manifest(run.id) == manifest
            with pytest.raises(NotFound):
                await k.save_manifest(RunManifest(run_id="run_nope"))
            with pytest.raises(NotFound):
                await k.save_manifest(RunManifest(run_id=run.id, outputs=(ArtifactRef(src, 5),)))
            with pytest.raises(NotFound):
                await k.get_manifest("run_nope")
            await k.delete_artifact(outs[0].id)
            assert {a.id for a in await k.list_run_outputs(run.id)} == {outs[1].id, outs[2].id}
            assert await k.get_manifest(run.id) == manifest  # a record: unchanged

    # ------------------------------------------------------------ context references

    @async_test
    async def test_context_packages_report_dangling_references(self) -> None:
        async with self.open_store() as sp:
            k = sp.knowledge
            cid = await _collection(k)
            a = await _artifact(k, cid, "a")
            b = await _artifact(k, cid, "b")
            await k.update_artifact(a, content=b"a2")
            rel = await k.create_relationship(a, "cites", b)
            run = await k.create_run("op")
            when = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
            refs = [
                ContextReference.artifact(a),
                ContextReference.artifact(a, revision=1),
                ContextReference.artifact(b),
                ContextReference.relationship(rel.id),
                ContextReference.run(run.id),
                ContextReference.external(
                    "phase-memory", "mem://episode/42", recorded_at=when, metadata={"score": 0.9}
                ),
            ]
            pkg = await k.create_context_package("briefing", refs, metadata={"for": "agent"})
            assert pkg.references == tuple(refs) and pkg.dangling == ()
            assert await k.get_context_package(pkg.id) == pkg
            external = pkg.references[-1]
            assert (external.kind, external.source_system, external.target) == (
                ReferenceKind.EXTERNAL,
                "phase-memory",
                "mem://episode/42",
            )
            assert external.recorded_at == when and external.metadata == {"score": 0.9}
            await k.delete_artifact(b, cascade=True)
            read = await k.get_context_package(pkg.id)
            assert read.references == tuple(refs)  # kept, never dropped
            assert [(d.index, d.reference) for d in read.dangling] == [(2, refs[2]), (3, refs[3])]
            assert "deleted" in read.dangling[0].reason
            assert rel.id in read.dangling[1].reason
            packages, cursor = await k.list_context_packages()
            assert [p.id for p in packages] == [pkg.id] and cursor is None
            assert packages[0].dangling == read.dangling
            before = await _state(sp)
            with pytest.raises(NotFound):
                await k.create_context_package("bad", [ContextReference.artifact(b)])
            with pytest.raises(NotFound):
                await k.create_context_package("bad", [ContextReference.artifact(a, revision=3)])
            with pytest.raises(NotFound):
                await k.create_context_package("bad", [ContextReference.run("run_nope")])
            assert await _state(sp) == before
            await k.delete_context_package(pkg.id)
            with pytest.raises(NotFound):
                await k.get_context_package(pkg.id)
            assert (await k.get_artifact(a)).revision == 2  # what it referred to is untouched

    # ------------------------------------------------------------ concurrency

    @async_test
    async def test_concurrent_compare_and_set_one_wins(self) -> None:
        async with self.open_store() as sp:
            k = sp.knowledge
            cid = await _collection(k)
            aid = await _artifact(k, cid, "contested", b"v1")

            async def work(worker: int) -> bool:
                try:
                    await k.update_artifact(aid, content=f"w{worker}".encode(), expected_revision=1)
                except Conflict:
                    return False
                return True

            won = await in_threads(work, 4)
            assert won.count(True) == 1
            art = await k.get_artifact(aid)
            assert art.revision == 2
            assert await k.read_content(aid) == f"w{won.index(True)}".encode()
            assert [r.revision for r in await k.list_revisions(aid)] == [1, 2]
            updates = [c for c in await k.list_changes() if c.kind is ChangeKind.ARTIFACT_UPDATED]
            assert len(updates) == 1

    @async_test
    async def test_concurrent_updates_without_expectation_lose_nothing(self) -> None:
        async with self.open_store() as sp:
            k = sp.knowledge
            cid = await _collection(k)
            aid = await _artifact(k, cid, "busy")

            async def work(worker: int) -> list[int]:
                return [
                    (await k.update_artifact(aid, metadata={"w": worker, "i": i})).revision
                    for i in range(5)
                ]

            revisions = sorted(r for rs in await in_threads(work, 4) for r in rs)
            assert revisions == list(range(2, 22))
            history = await k.list_revisions(aid)
            assert [r.revision for r in history] == list(range(1, 22))
            assert sorted((r.metadata["w"], r.metadata["i"]) for r in history[1:]) == sorted(
                (w, i) for w in range(4) for i in range(5)
            )

    @async_test
    async def test_concurrent_creates_of_one_name_one_wins(self) -> None:
        async with self.open_store() as sp:
            k = sp.knowledge
            cid = await _collection(k)

            async def work(worker: int) -> bool:
                try:
                    await k.create_artifact(cid, "same", f"{worker}".encode(), artifact_type="t")
                except Conflict:
                    return False
                return True

            assert (await in_threads(work, 4)).count(True) == 1
            assert await _held(k, cid) == 1

    @async_test
    async def test_relating_and_deleting_at_once_never_leaves_a_dangling_relationship(self) -> None:
        async with self.open_store() as sp:
            k = sp.knowledge
            cid = await _collection(k)
            hub = await _artifact(k, cid, "hub")
            targets = [await _artifact(k, cid, f"t{i}") for i in range(6)]

            async def work(worker: int) -> None:
                for t in targets:
                    try:
                        if worker % 2:
                            await k.delete_artifact(t)
                        else:
                            await k.create_relationship(hub, f"r{worker}", t)
                    except (Conflict, NotFound):
                        pass

            await in_threads(work, 4)
            for rel in await k.list_relationships(hub):
                target = await k.get_artifact(rel.target_id)  # never NotFound
                assert target.id in targets
            live = {a.id for a in (await k.list_artifacts(cid, limit=100)).artifacts}
            for t in targets:
                if t not in live:
                    assert await k.list_relationships(t) == []

    # ------------------------------------------------------------ durability

    @needs(Capability.PERSISTENT)
    def test_everything_survives_close_and_reopen(self) -> None:
        url = self.store_url()
        import stateport

        async def snapshot(k: KnowledgeRepository, ids: dict[str, str]) -> list[Any]:
            return [
                await k.list_collections(),
                (await k.list_artifacts(ids["cid"])).artifacts,
                await k.list_revisions(ids["a"]),
                await k.read_content(ids["a"], 1),
                await k.list_relationships(ids["a"]),
                await k.list_changes(limit=1000),
                await k.get_run(ids["run"]),
                await k.list_steps(ids["run"]),
                await k.get_manifest(ids["run"]),
                await k.list_run_outputs(ids["run"]),
                await k.get_context_package(ids["pkg"]),
                (await k.query_artifacts(metadata={"lang": "en"})).artifacts,
            ]

        async def write() -> tuple[dict[str, str], list[Any]]:
            async with stateport.open(url) as sp:
                k = sp.knowledge
                cid = await _collection(k)
                run = await k.create_run("op")
                await k.set_run_status(run.id, "running")
                await k.add_step(run.id, "s1")
                await k.set_step_status(run.id, 1, "running")
                a = await _artifact(k, cid, "a", b"one", metadata=META)
                b = await _artifact(k, cid, "b", provenance=Provenance(run_id=run.id))
                await k.update_artifact(a, content=b"two")
                await k.create_relationship(a, "cites", b, metadata={"n": 1})
                await k.save_manifest(RunManifest(run.id, outputs=(ArtifactRef(b, 1),)))
                await k.set_run_status(run.id, "succeeded")
                pkg = await k.create_context_package("p", [ContextReference.artifact(a, 1)])
                ids = {"cid": cid, "a": a, "run": run.id, "pkg": pkg.id}
                return ids, await snapshot(k, ids)

        async def read(ids: dict[str, str]) -> list[Any]:
            async with stateport.open(url) as sp:
                return await snapshot(sp.knowledge, ids)

        ids, before = asyncio.run(write())
        assert asyncio.run(read(ids)) == before

        async def more() -> None:  # the reopened store carries on where it was
            async with stateport.open(url) as sp:
                k = sp.knowledge
                with pytest.raises(InvalidTransition):
                    await k.set_run_status(ids["run"], "running")
                art = await k.update_artifact(ids["a"], content=b"three", expected_revision=2)
                assert art.revision == 3
                assert (await k.list_changes(after=len(before[5])))[0].seq == len(before[5]) + 1

        asyncio.run(more())

    # ------------------------------------------------------------ bad input

    @async_test
    async def test_bad_input_is_rejected_and_writes_nothing(self) -> None:
        async with self.open_store() as sp:
            k: Any = sp.knowledge  # the calls below break the types on purpose
            wrong: Any = "u"
            long_uris = tuple(f"https://example.test/{i}/" + "x" * 2000 for i in range(20))
            cid = await _collection(k)
            aid = await _artifact(k, cid, "a")
            run = await k.create_run("op")
            before = await _state(sp)
            bad_calls: list[Any] = [
                lambda: k.create_collection(""),
                lambda: k.create_collection(" padded "),
                lambda: k.create_collection("x", metadata=[1]),
                lambda: k.create_collection("x", metadata={"s": {1}}),
                lambda: k.create_collection("x", description=3),
                lambda: k.create_collection("x", actor=""),
                lambda: k.get_collection("has#hash"),
                lambda: k.rename_collection(cid, ""),
                lambda: k.delete_collection(cid, cascade="yes"),
                lambda: k.create_artifact(cid, "n", "text", artifact_type="t"),
                lambda: k.create_artifact(cid, "n", b"x", artifact_type=""),
                lambda: k.create_artifact(cid, "n", b"x", artifact_type="a#b"),
                lambda: k.create_artifact(cid, "n", b"x", artifact_type="t", media_type="plain"),
                lambda: k.create_artifact(
                    cid, "n", b"x", artifact_type="t", metadata={"n": float("nan")}
                ),
                lambda: k.create_artifact(
                    cid, "n", b"x", artifact_type="t", metadata={"x": "y" * 70_000}
                ),
                lambda: k.create_artifact(
                    cid, "n", b"x", artifact_type="t", provenance={"actor": "a"}
                ),
                lambda: k.create_artifact(
                    cid, "n", b"x", artifact_type="t", provenance=Provenance(source_uris=wrong)
                ),
                lambda: k.create_artifact(
                    cid, "n", b"x", artifact_type="t", provenance=Provenance(run_id="")
                ),
                lambda: k.create_artifact(cid, "n", 12, artifact_type="t"),
                lambda: k.create_artifact(
                    cid, "n", b"x", artifact_type="t", provenance=Provenance(source_uris=long_uris)
                ),
                lambda: k.create_artifact(cid, "n", {"a": b"x"}, artifact_type="t"),
                lambda: k.create_artifact(cid, "\x00", b"x", artifact_type="t"),
                lambda: k.create_artifact(None, "n", b"x", artifact_type="t"),
                lambda: k.update_artifact(aid),
                lambda: k.update_artifact(aid, content="text"),
                lambda: k.update_artifact(aid, metadata=[]),
                lambda: k.update_artifact(aid, content=b"x", expected_revision=0),
                lambda: k.update_artifact(aid, content=b"x", expected_revision=True),
                lambda: k.delete_artifact(aid, cascade=1),
                lambda: k.get_revision(aid, 0),
                lambda: k.list_artifacts(cid, limit=0),
                lambda: k.list_artifacts(cid, cursor="garbage"),
                lambda: k.create_relationship(aid, "", aid),
                lambda: k.create_relationship(aid, "t", aid, metadata="m"),
                lambda: k.list_relationships(),
                lambda: k.list_relationships(aid, direction="sideways"),
                lambda: k.traverse(aid, depth=0),
                lambda: k.traverse(aid, depth=99),
                lambda: k.traverse(aid, rel_types="cites"),
                lambda: k.list_changes(after=-1),
                lambda: k.list_changes(limit=0),
                lambda: k.entity_changes(""),
                lambda: k.create_run(""),
                lambda: k.create_run("op", inputs=[ArtifactRef(aid, 1)]),
                lambda: k.create_run("op", inputs=InputBundle((ArtifactRef(aid, 0),))),
                lambda: k.create_run("op", inputs=InputBundle(wrong)),
                lambda: k.create_run("op", run_id="bad id"),
                lambda: k.set_run_status(run.id, "done"),
                lambda: k.set_run_status(run.id, "running", error="no"),
                lambda: k.add_step(run.id, ""),
                lambda: k.set_step_status(run.id, 0, "running"),
                lambda: k.set_step_status(run.id, 1, "running", output={1, 2}),
                lambda: k.list_runs(status="nope"),
                lambda: k.list_runs(cursor="garbage"),
                lambda: k.save_manifest({"run_id": run.id}),
                lambda: k.save_manifest(RunManifest(run.id, created_at=datetime(2026, 1, 1))),
                lambda: k.save_manifest(RunManifest(run.id, diagnostics=object())),
                lambda: k.create_context_package("p", ContextReference.artifact(aid)),
                lambda: k.create_context_package("p", ["art_x"]),
                lambda: k.create_context_package("p", [ContextReference.artifact(aid, 0)]),
                lambda: k.create_context_package(
                    "p", [ContextReference(ReferenceKind.RUN, run.id, 2)]
                ),
                lambda: k.create_context_package("p", [ContextReference.external("", "u")]),
                lambda: k.create_context_package(
                    "p", [ContextReference.external("s", "u", recorded_at=datetime(2026, 1, 1))]
                ),
                lambda: k.create_context_package("p", [ContextReference.artifact(aid)] * 1001),
                lambda: k.get_context_package(""),
            ]
            for i, call in enumerate(bad_calls):
                with pytest.raises(ValidationError):
                    await call()
                    pytest.fail(f"bad call {i} was accepted")
            assert await _state(sp) == before
            assert (await k.get_artifact(aid)).revision == 1
            assert [c.name for c in await k.list_collections()] == ["docs"]
            assert (await k.list_context_packages())[0] == []
