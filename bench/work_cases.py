"""Work-tracking benchmarks: audit-chain verification and the ready set.

* ``audit_verify_100k`` — ``sp.work.verify_audit_chain`` over a 100,000-entry
  chain vs a hand-written loop over raw ``sqlite3`` rows that recomputes the
  same SHA-256 chain (same length-prefixed encoding, see
  docs/decisions/0016-audit-chain.md) and checks every link and the head.
* ``ready_wps_10k`` — ``sp.work.get_ready_wps`` on a feature with 10,000 work
  packages and 30,000 dependencies vs one hand-written SQL query on raw
  ``sqlite3`` (``NOT EXISTS`` over an indexed dependency table). Besides the
  ratio, each call must take under :data:`READY_LIMIT_S`.

Both sides hold the same data, built before the rounds (untimed); set-up checks
that both sides give the same answer.
"""

from __future__ import annotations

import gc
import hashlib
import json
import random
import sqlite3
import struct
import time
from typing import Any, ClassVar

from cases import WORK, SpeedCase, open_store, raw_connect, remove_db

from stateport.domains.work import Feature, WorkPackage, WpDependency, WpState
from stateport.domains.work import audit as work_audit

READY_LIMIT_S = 0.100

_U32 = struct.Struct(">I").pack


# --------------------------------------------------------------------------- audit chain

_RAW_AUDIT_DDL = (
    """
    CREATE TABLE audit_entries (
        id            INTEGER PRIMARY KEY,
        feature_id    INTEGER NOT NULL,
        seq           INTEGER NOT NULL,
        wp_id         INTEGER,
        wp_sequence   INTEGER,
        timestamp     TEXT NOT NULL,
        actor         TEXT NOT NULL,
        transition    TEXT NOT NULL,
        evidence_refs TEXT NOT NULL,
        prev_hash     BLOB NOT NULL,
        hash          BLOB NOT NULL,
        UNIQUE (feature_id, seq)
    )
    """,
    "CREATE TABLE chain_heads (feature_id INTEGER PRIMARY KEY, count INTEGER, hash BLOB)",
)


def _field(name: str) -> bytes:
    raw = name.encode()
    return _U32(len(raw)) + raw


# the encoding written out by hand, as a reader of the decision record would
_P = {n: _field(n) for n in work_audit.AUDIT_FIELDS}
_SCHEMA = (
    _P["schema"] + b"\x02" + _U32(len(work_audit.AUDIT_SCHEMA)) + work_audit.AUDIT_SCHEMA.encode()
)


def _int(name: str, v: int | None) -> bytes:
    if v is None:
        return _P[name] + b"\x00"
    d = str(v).encode()
    return _P[name] + b"\x01" + _U32(len(d)) + d


def _str(name: str, v: str) -> bytes:
    d = v.encode()
    return _P[name] + b"\x02" + _U32(len(d)) + d


def raw_verify(conn: sqlite3.Connection, feature_id: int) -> int:
    """Verify a chain from raw rows: every link, then the head. Returns the count."""
    prev = bytes(32)
    n = 0
    sha = hashlib.sha256
    rows = conn.execute(
        "SELECT id, seq, wp_id, wp_sequence, timestamp, actor, transition, evidence_refs,"
        " prev_hash, hash FROM audit_entries WHERE feature_id = ? ORDER BY seq",
        (feature_id,),
    )
    for ident, seq, wp_id, wp_seq, ts, actor, transition, refs_json, prev_hash, digest in rows:
        if seq != n + 1 or prev_hash != prev:
            raise AssertionError(f"broken at {seq}")
        refs = json.loads(refs_json)
        parts = [
            _SCHEMA,
            _int("id", ident),
            _int("feature_id", feature_id),
            _int("seq", seq),
            _int("wp_id", wp_id),
            _int("wp_sequence", wp_seq),
            _str("timestamp", ts),
            _str("actor", actor),
            _str("transition", transition),
            _P["evidence_refs"] + b"\x04" + _U32(len(refs)),
        ]
        for r in refs:
            d = r.encode()
            parts.append(_U32(len(d)) + d)
        parts.append(prev_hash)
        if sha(b"".join(parts)).digest() != digest:
            raise AssertionError(f"broken at {seq}")
        prev = digest
        n = seq
    head = conn.execute(
        "SELECT count, hash FROM chain_heads WHERE feature_id = ?", (feature_id,)
    ).fetchone()
    if head != (n, prev):
        raise AssertionError("head mismatch")
    return n


class AuditVerify100k(SpeedCase):
    """``verify_audit_chain`` over 100,000 entries vs a raw select + SHA-256 loop."""

    name = "audit_verify_100k"
    unit = "verify"
    target = 0.5
    ops = 1
    quick_ops = 1
    entries: ClassVar[int] = 100_000
    quick_entries: ClassVar[int] = 10_000

    db = WORK / "audit.db"
    raw_db = WORK / "audit-raw.db"

    @property
    def items_per_op(self) -> int:  # type: ignore[override]
        return self.quick_entries if self.quick else self.entries

    def setup(self) -> None:
        n = self.items_per_op
        remove_db(self.db)
        self.sp = self.runner.run(open_store(f"sqlite:///{self.db}"))
        self.log(f"{self.name}: writing a chain of {n} entries on each side (untimed)")
        rows = self.runner.run(self._build(n))
        self.conn = raw_connect(self.raw_db, None)
        for ddl in _RAW_AUDIT_DDL:
            self.conn.execute(ddl)
        self.conn.execute("BEGIN")
        self.conn.executemany(
            "INSERT INTO audit_entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    work_audit.audit_id(self.fid, seq),
                    self.fid,
                    seq,
                    a["wp_id"],
                    a["wp_sequence"],
                    a["timestamp"],
                    a["actor"],
                    a["transition"],
                    json.dumps(a["evidence_refs"]),
                    bytes.fromhex(a["prev_hash"]),
                    bytes.fromhex(a["hash"]),
                )
                for seq, a in enumerate(rows, 1)
            ),
        )
        last = rows[-1]
        self.conn.execute(
            "INSERT INTO chain_heads VALUES (?, ?, ?)",
            (self.fid, len(rows), bytes.fromhex(last["hash"])),
        )
        self.conn.execute("COMMIT")
        self.ours(1)  # warm, and check both sides agree
        if raw_verify(self.conn, self.fid) != n:
            raise AssertionError("the raw chain does not verify")

    async def _build(self, n: int) -> list[dict[str, Any]]:
        """A feature whose chain has ``n`` entries, appended through the chain's own
        path (the Ledger primitive, 90 entries per transaction, head moved with them)."""
        work = self.sp.work
        self.fid = fid = await work.create_feature(
            Feature(slug="bench-audit", friendly_name="Audit benchmark")
        )
        rng = random.Random(5)
        prev = bytes(32)
        rows: list[dict[str, Any]] = []
        batch: list[dict[str, Any]] = []
        ledger = work._ledger  # the store's own ledger: bulk set-up of the same rows
        for seq in range(1, n + 1):
            wp = rng.randrange(1, 200) if seq % 3 else None
            a = work_audit.entry_attrs(
                feature_id=fid,
                seq=seq,
                wp_id=wp,
                wp_sequence=wp,
                timestamp=f"2026-11-22T01:{seq // 60000 % 60:02d}:{seq // 1000 % 60:02d}"
                f".{seq:06d}Z",
                actor=f"agent-{seq % 7}",
                transition=f"WP{wp:02d}: PLANNED -> DOING" if wp else "SPECIFY -> PLAN",
                evidence_refs=(f"pr/{seq}",) if seq % 2 else (),
                prev_hash=prev,
            )
            prev = bytes.fromhex(a["hash"])
            rows.append(a)
            batch.append(a)
            if len(batch) == 90 or seq == n:
                first = seq - len(batch) + 1
                await ledger.append(
                    str(fid),
                    batch,
                    first_seq=first,
                    expect_prev={"hash": batch[0]["prev_hash"]} if first > 1 else None,
                    head_set={"count": seq, "hash": a["hash"]},
                )
                batch = []
        return rows

    def teardown(self) -> None:
        self.runner.run(self.sp.aclose())
        self.conn.close()
        remove_db(self.db)
        remove_db(self.raw_db)

    def ours(self, n: int) -> float:
        return self.runner.run(self._verify(n))

    async def _verify(self, n: int) -> float:
        verify = self.sp.work.verify_audit_chain
        gc.collect()
        started = time.perf_counter()
        for _ in range(n):
            result = await verify(self.fid)
            if not result.ok or result.checked != self.items_per_op:
                raise AssertionError(result.describe())
        return time.perf_counter() - started

    def baseline(self, n: int) -> float:
        gc.collect()
        started = time.perf_counter()
        for _ in range(n):
            raw_verify(self.conn, self.fid)
        return time.perf_counter() - started


# --------------------------------------------------------------------------- ready set

_RAW_WP_DDL = (
    """
    CREATE TABLE work_packages (
        id          INTEGER PRIMARY KEY,
        feature_id  INTEGER NOT NULL,
        sequence    INTEGER NOT NULL,
        title       TEXT NOT NULL,
        state       TEXT NOT NULL,
        agent_id    TEXT,
        pr_url      TEXT,
        file_scope  TEXT NOT NULL,
        acceptance_criteria TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL
    )
    """,
    "CREATE INDEX work_packages_feature ON work_packages (feature_id, sequence)",
    """
    CREATE TABLE wp_dependencies (
        wp_id      INTEGER NOT NULL,
        depends_on INTEGER NOT NULL,
        dep_type   TEXT NOT NULL,
        PRIMARY KEY (wp_id, depends_on)
    ) WITHOUT ROWID
    """,
)

READY_SQL = """
SELECT w.id, w.feature_id, w.sequence, w.title, w.state, w.agent_id, w.pr_url,
       w.file_scope, w.acceptance_criteria, w.created_at, w.updated_at
FROM work_packages w
WHERE w.feature_id = ? AND w.state = 'PLANNED'
  AND NOT EXISTS (
      SELECT 1 FROM wp_dependencies d JOIN work_packages x ON x.id = d.depends_on
      WHERE d.wp_id = w.id AND x.state <> 'DONE')
ORDER BY w.sequence
"""


class ReadyWps10k(SpeedCase):
    """``get_ready_wps`` over 10,000 packages and 30,000 dependencies vs one SQL query."""

    name = "ready_wps_10k"
    unit = "call"
    target = 0.3
    ops = 20
    quick_ops = 5
    max_seconds_per_op: ClassVar[float] = READY_LIMIT_S

    packages: ClassVar[int] = 10_000
    deps_per_package: ClassVar[int] = 3
    done: ClassVar[int] = 4_000  # packages 1..done are DONE; 10% of the rest in progress

    db = WORK / "ready.db"
    raw_db = WORK / "ready-raw.db"

    def setup(self) -> None:
        remove_db(self.db)
        self.sp = self.runner.run(open_store(f"sqlite:///{self.db}"))
        self.log(
            f"{self.name}: building {self.packages} packages, "
            f"{self.packages * self.deps_per_package} dependencies on each side (untimed)"
        )
        started = time.perf_counter()
        self.runner.run(self._build())
        self.log(f"{self.name}: stateport side built in {time.perf_counter() - started:.1f} s")
        self._build_raw()
        ours = [wp.id for wp in self.runner.run(self.sp.work.get_ready_wps(self.fid))]
        raw = [row[0] for row in self.conn.execute(READY_SQL, (1,))]
        theirs = [self.ids[i] for i in raw]
        if ours != theirs or not ours:
            raise AssertionError(f"the sides disagree: {len(ours)} vs {len(theirs)} ready")
        self.log(f"{self.name}: {len(ours)} packages ready on both sides")

    def _plan(self) -> tuple[list[tuple[int, int]], dict[int, str]]:
        rng = random.Random(10)
        edges: set[tuple[int, int]] = set()
        for seq in range(2, self.packages + 1):
            window = range(max(1, seq - 200), seq)
            for b in rng.sample(window, min(self.deps_per_package, len(window))):
                edges.add((seq, b))
        while len(edges) < self.packages * self.deps_per_package:  # top up to exactly 30,000
            a = rng.randrange(300, self.packages + 1)
            edges.add((a, rng.randrange(a - 200, a)))
        states: dict[int, str] = {}
        for seq in range(1, self.packages + 1):
            if seq <= self.done:
                states[seq] = "DONE"
            else:
                r = rng.random()
                states[seq] = "DOING" if r < 0.05 else "FOR_REVIEW" if r < 0.1 else "PLANNED"
        return sorted(edges), states

    async def _build(self) -> None:
        work = self.sp.work
        self.fid = await work.create_feature(
            Feature(slug="bench-ready", friendly_name="Ready-set benchmark")
        )
        self.edges, self.states = self._plan()
        self.ids: dict[int, int] = {}  # sequence -> id, on our side
        for seq in range(1, self.packages + 1):
            self.ids[seq] = await work.create_work_package(
                WorkPackage(
                    feature_id=self.fid,
                    sequence=seq,
                    title=f"Work package {seq}",
                    file_scope=(f"src/module_{seq % 50}.py",),
                )
            )
        for a, b in self.edges:
            await work.add_wp_dependency(WpDependency(wp_id=self.ids[a], depends_on=self.ids[b]))
        path = {
            "DOING": [WpState.DOING],
            "FOR_REVIEW": [WpState.DOING, WpState.FOR_REVIEW],
            "DONE": [WpState.DOING, WpState.FOR_REVIEW, WpState.DONE],
        }
        for seq, state in self.states.items():
            for step in path.get(state, []):
                await work.update_wp_state(self.ids[seq], step, actor="bench")

    def _build_raw(self) -> None:
        self.conn = conn = raw_connect(self.raw_db, None)
        for ddl in _RAW_WP_DDL:
            conn.execute(ddl)
        conn.execute("BEGIN")
        now = "2026-11-22T01:02:03.000004Z"
        conn.executemany(
            "INSERT INTO work_packages VALUES (?, 1, ?, ?, ?, NULL, NULL, ?, '', ?, ?)",
            (
                (seq, seq, f"Work package {seq}", self.states[seq],
                 json.dumps([f"src/module_{seq % 50}.py"]), now, now)
                for seq in range(1, self.packages + 1)
            ),
        )  # fmt: skip
        conn.executemany("INSERT INTO wp_dependencies VALUES (?, ?, 'explicit')", self.edges)
        conn.execute("COMMIT")
        conn.execute("ANALYZE")

    def teardown(self) -> None:
        self.runner.run(self.sp.aclose())
        self.conn.close()
        remove_db(self.db)
        remove_db(self.raw_db)

    def ours(self, n: int) -> float:
        return self.runner.run(self._ready(n))

    async def _ready(self, n: int) -> float:
        ready = self.sp.work.get_ready_wps
        fid = self.fid
        gc.collect()
        started = time.perf_counter()
        for _ in range(n):
            await ready(fid)
        return time.perf_counter() - started

    def baseline(self, n: int) -> float:
        execute = self.conn.execute
        gc.collect()
        started = time.perf_counter()
        for _ in range(n):
            execute(READY_SQL, (1,)).fetchall()
        return time.perf_counter() - started


WORK_CASES: tuple[type[SpeedCase], ...] = (AuditVerify100k, ReadyWps10k)
