"""Knowledge repository benchmarks (``sp.knowledge``).

* ``knowledge_create_4k`` — ``create_artifact`` of 4 KiB of new content on SQLite
  vs raw ``sqlite3`` doing the equivalent writes in one transaction: the
  content row (by SHA-256, ``INSERT OR IGNORE``), the artifact row and the
  change row, with the hash, the JSON and the timestamp computed inside the
  timed loop as stateport does.
* ``knowledge_query_100k`` — ``query_artifacts(metadata={"batch": b})``
  returning 10 of 100,000 artifacts vs the same query on a repository of
  10,000: the "baseline" is stateport itself on the small repository, so the
  ratio reads how much slower the query gets as the repository grows (target
  >= 0.67, i.e. at most 1.5x the time at 10k); besides, the median query at
  100k must take under :data:`QUERY_LIMIT_S`.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from cases import WORK, SpeedCase, open_store, raw_connect, remove_db

QUERY_LIMIT_S = 0.010
CONTENT = 4096

_RAW_DDL = (
    "CREATE TABLE contents (digest TEXT PRIMARY KEY, size INTEGER NOT NULL, data BLOB NOT NULL)"
    " WITHOUT ROWID",
    """
    CREATE TABLE artifacts (
        id TEXT PRIMARY KEY, collection TEXT NOT NULL, name TEXT NOT NULL,
        type TEXT NOT NULL, revision INTEGER NOT NULL, digest TEXT NOT NULL,
        size INTEGER NOT NULL, media_type TEXT NOT NULL, metadata TEXT NOT NULL,
        provenance TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL,
        UNIQUE (collection, name)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE changes (
        seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, entity TEXT NOT NULL,
        collection TEXT, artifact TEXT, revision INTEGER, old TEXT, new TEXT,
        actor TEXT, at TEXT NOT NULL, details TEXT NOT NULL
    )
    """,
)


def _meta(i: int) -> dict[str, Any]:
    return {"topic": f"topic-{i % 50}"}


def _stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class CreateArtifact4k(SpeedCase):
    """``create_artifact`` (4 KiB) vs raw ``sqlite3``: content, artifact and change rows."""

    name = "knowledge_create_4k"
    unit = "artifact"
    target = 0.4
    ops = 2000
    quick_ops = 300
    warm_ops = 2000

    db = WORK / "knowledge.db"
    raw_db = WORK / "knowledge-raw.db"

    def setup(self) -> None:
        remove_db(self.db)
        self.sp = self.runner.run(open_store(f"sqlite:///{self.db}"))
        self.cid = self.runner.run(self.sp.knowledge.create_collection("bench")).id
        self.conn = raw_connect(self.raw_db, None)
        for ddl in _RAW_DDL:
            self.conn.execute(ddl)
        self._next = {"ours": 0, "baseline": 0}
        self.log(f"{self.name}: warming both sides, {self.warm} artifacts each (untimed)")
        self.ours(self.warm)
        self.baseline(self.warm)

    def teardown(self) -> None:
        self.runner.run(self.sp.aclose())
        self.conn.close()
        remove_db(self.db)
        remove_db(self.raw_db)

    def _inputs(self, side: str, n: int) -> list[tuple[int, bytes]]:
        """New content for each of the side's next ``n`` artifacts (never seen before)."""
        first = self._next[side]
        self._next[side] += n
        return [(i, os.urandom(CONTENT)) for i in range(first, first + n)]

    def ours(self, n: int) -> float:
        return self.runner.run(self._create(self._inputs("ours", n)))

    async def _create(self, inputs: list[tuple[int, bytes]]) -> float:
        create, cid = self.sp.knowledge.create_artifact, self.cid
        gc.collect()
        started = time.perf_counter()
        for i, content in inputs:
            await create(
                cid, f"doc-{i:08d}", content, artifact_type="doc", media_type="text/plain",
                metadata=_meta(i), actor="bench",
            )  # fmt: skip
        return time.perf_counter() - started

    def baseline(self, n: int) -> float:
        inputs = self._inputs("baseline", n)
        execute = self.conn.execute
        sha256, dumps = hashlib.sha256, json.dumps
        gc.collect()
        started = time.perf_counter()
        for i, content in inputs:
            digest = sha256(content).hexdigest()
            aid = f"art_{uuid.uuid4().hex}"
            name = f"doc-{i:08d}"
            now = _stamp()
            meta = dumps(_meta(i), sort_keys=True, separators=(",", ":"))
            prov = dumps({"actor": "bench", "run": None, "uris": []}, separators=(",", ":"))
            details = dumps({"name": name, "type": "doc"}, separators=(",", ":"))
            execute("BEGIN IMMEDIATE")
            execute(
                "INSERT OR IGNORE INTO contents (digest, size, data) VALUES (?, ?, ?)",
                (digest, len(content), content),
            )
            execute(
                "INSERT INTO artifacts VALUES (?, ?, ?, 'doc', 1, ?, ?, 'text/plain', ?, ?, ?, ?)",
                (aid, "col-1", name, digest, len(content), meta, prov, now, now),
            )
            execute(
                "INSERT INTO changes (kind, entity, collection, artifact, revision, new, actor,"
                " at, details) VALUES ('artifact.created', ?, 'col-1', ?, 1, ?, 'bench', ?, ?)",
                (aid, aid, digest, now, details),
            )
            execute("COMMIT")
        return time.perf_counter() - started


class MetadataQueryFlat(SpeedCase):
    """``query_artifacts`` by one metadata key: 10 of 100,000 artifacts vs 10 of 10,000."""

    name = "knowledge_query_100k"
    unit = "query"
    target = 0.67  # 1 / 1.5, rounded up
    ops = 500
    quick_ops = 100
    warm_ops = 200
    max_seconds_per_op: ClassVar[float] = QUERY_LIMIT_S
    small_size = 10_000
    big_size = 100_000
    quick_big_size = 20_000
    per_batch = 10

    def setup(self) -> None:
        big = self.quick_big_size if self.quick else self.big_size
        self.latencies: list[float] = []
        self.stores = {}
        for side, size in (("baseline", self.small_size), ("ours", big)):
            db = WORK / f"knowledge-{size}.db"
            remove_db(db)
            sp = self.runner.run(open_store(f"sqlite:///{db}"))
            self.stores[side] = (sp, size, db)
            started = time.perf_counter()
            self.runner.run(self._fill(sp, size))
            self.log(
                f"{self.name}: {size:,} artifacts stored in {time.perf_counter() - started:.1f} s"
            )
        for side, (sp, _, _) in self.stores.items():
            found = self.runner.run(sp.knowledge.query_artifacts(metadata={"batch": 7}, limit=50))
            if len(found.artifacts) != self.per_batch:
                raise AssertionError(
                    f"{side}: {len(found.artifacts)} results, not {self.per_batch}"
                )
        self.log(f"{self.name}: warming both sides, {self.warm} queries each (untimed)")
        self.baseline(self.warm)
        self.ours(self.warm)
        self.latencies.clear()

    async def _fill(self, sp: Any, size: int) -> None:
        k = sp.knowledge
        cid = (await k.create_collection("bench")).id
        for i in range(size):
            await k.create_artifact(
                cid, f"doc-{i:08d}", i.to_bytes(8, "big"), artifact_type="doc",
                metadata={"batch": i // self.per_batch, "kind": "doc", "n": i},
            )  # fmt: skip
            if i and i % 20_000 == 0:
                self.log(f"{self.name}: {i:,} of {size:,} artifacts stored")

    def teardown(self) -> None:
        for sp, _, db in self.stores.values():
            self.runner.run(sp.aclose())
            remove_db(db)

    async def _query(self, side: str, n: int) -> float:
        sp, size, _ = self.stores[side]
        query = sp.knowledge.query_artifacts
        rng = random.Random(n)
        batches = [rng.randrange(size // self.per_batch) for _ in range(n)]
        keep = self.latencies if side == "ours" else None
        clock = time.perf_counter
        gc.collect()
        started = clock()
        for b in batches:
            t = clock()
            page = await query(metadata={"batch": b}, limit=50)
            if keep is not None:
                keep.append(clock() - t)
            if len(page.artifacts) != self.per_batch:
                raise AssertionError(f"batch {b}: {len(page.artifacts)} results")
        return clock() - started

    def ours(self, n: int) -> float:
        return self.runner.run(self._query("ours", n))

    def baseline(self, n: int) -> float:
        return self.runner.run(self._query("baseline", n))


KNOWLEDGE_CASES: tuple[type[SpeedCase], ...] = (CreateArtifact4k, MetadataQueryFlat)

__all__ = ["KNOWLEDGE_CASES"]
