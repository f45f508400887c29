"""The knowledge repository's partitions, read back from the SQLite file itself.

A snapshot or copy scopes by partition-key prefix, so the layout must make the
prefixes exact: every item of the repository under ``knowledge.``, and every
item one collection holds under ``knowledge.c#<collection id>``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import stateport
from stateport.domains.knowledge import ContextReference, Provenance
from stateport.domains.knowledge.keys import collection_prefix


def test_every_item_is_under_the_repository_and_its_collection(tmp_path: Path) -> None:
    db = tmp_path / "k.db"

    async def fill() -> tuple[str, str]:
        async with stateport.open(f"sqlite:///{db}") as sp:
            k = sp.knowledge
            one = await k.create_collection("one")
            two = await k.create_collection("two")
            run = await k.create_run("op")
            a = await k.create_artifact(one.id, "a", b"a", artifact_type="t", metadata={"m": 1})
            b = await k.create_artifact(
                two.id, "b", b"b", artifact_type="t", provenance=Provenance(run_id=run.id)
            )
            await k.update_artifact(a.id, content=b"a2", metadata={"m": 2})
            await k.create_relationship(a.id, "cites", b.id)
            await k.create_relationship(b.id, "cites", a.id)
            await k.rename_collection(two.id, "deux")
            await k.create_context_package("p", [ContextReference.artifact(a.id)])
            return one.id, two.id

    one, two = asyncio.run(fill())
    with sqlite3.connect(db) as conn:
        pks = [pk for (pk,) in conn.execute("SELECT DISTINCT pk FROM sp_items")]
    assert pks and all(pk.startswith("knowledge.") for pk in pks), pks
    by_collection = {
        c: [pk for pk in pks if pk.startswith(collection_prefix(c))] for c in (one, two)
    }
    # a collection's partition, and one per artifact (records, revisions, copies)
    assert len(by_collection[one]) == 2 and len(by_collection[two]) == 2
    rest = set(pks) - {pk for found in by_collection.values() for pk in found}
    assert {pk.split("#")[0] for pk in rest} == {
        "knowledge.log",  # the change feed
        "knowledge.cn",  # the two collection names
        "knowledge.run",  # the operation run
        "knowledge.ctx",  # the context package
    }
    assert len([pk for pk in rest if pk.startswith("knowledge.cn#")]) == 2
