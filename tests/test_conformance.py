"""The conformance suite, run against every backend of this package."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

import stateport
from stateport.ports import BlobPort, TablePort
from stateport.testing import (
    BlobPortConformance,
    CasStoreConformance,
    CouncilRepositoryConformance,
    KnowledgeRepositoryConformance,
    ReleaseRegistryConformance,
    RunLedgerConformance,
    StoreConformance,
    TablePortConformance,
    ToolkitConformance,
    WorkStoreConformance,
    table_of,
)


def _flag(portable: bool) -> str:
    return "true" if portable else "false"


class _TmpPath:
    tmp_path: Path

    @pytest.fixture(autouse=True)
    def _keep_tmp_path(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self._n = 0

    def fresh(self, name: str) -> Path:
        self._n += 1
        return self.tmp_path / f"{name}{self._n}"


class TestMemoryTable(TablePortConformance):
    def open_table(self, *, portable: bool = True) -> AbstractAsyncContextManager[TablePort]:
        return table_of(f"memory://?portable={_flag(portable)}")


class TestSqliteFileTable(_TmpPath, TablePortConformance):
    def open_table(self, *, portable: bool = True) -> AbstractAsyncContextManager[TablePort]:
        return table_of(f"sqlite:///{self.fresh('t')}.db?portable={_flag(portable)}")

    def shared_url(self) -> str:
        return f"sqlite:///{self.fresh('shared')}.db"


class TestSqliteDurableTable(_TmpPath, TablePortConformance):
    """durability=full sends every write to the worker thread: the other path."""

    def open_table(self, *, portable: bool = True) -> AbstractAsyncContextManager[TablePort]:
        return table_of(
            f"sqlite:///{self.fresh('t')}.db?durability=full&portable={_flag(portable)}"
        )


class TestSqliteMemoryTable(TablePortConformance):
    def open_table(self, *, portable: bool = True) -> AbstractAsyncContextManager[TablePort]:
        return table_of(f"sqlite://:memory:?portable={_flag(portable)}")


@asynccontextmanager
async def blobs_of(url: str) -> AsyncIterator[BlobPort]:
    async with stateport.open(url) as sp:
        yield sp.blobs


class TestMemoryBlobs(BlobPortConformance):
    def open_blobs(self) -> AbstractAsyncContextManager[BlobPort]:
        return blobs_of("memory://")


class TestSqliteBlobs(_TmpPath, BlobPortConformance):
    def open_blobs(self) -> AbstractAsyncContextManager[BlobPort]:
        return blobs_of(f"sqlite:///{self.fresh('b')}.db")


class TestFilesystemBlobs(_TmpPath, BlobPortConformance):
    def open_blobs(self) -> AbstractAsyncContextManager[BlobPort]:
        return blobs_of(f"memory://?blobs={self.fresh('objects')}")


class TestFilesystemDurableBlobs(_TmpPath, BlobPortConformance):
    def open_blobs(self) -> AbstractAsyncContextManager[BlobPort]:
        return blobs_of(f"sqlite:///{self.fresh('b')}.db?durability=full&blobs={self.fresh('o')}")


# ---------------------------------------------------------------- domain ports


class _MemoryStore:
    def open_store(self) -> AbstractAsyncContextManager[stateport.Stateport]:
        return stateport.open("memory://")


class _SqliteFileStore(_TmpPath):
    def open_store(self) -> AbstractAsyncContextManager[stateport.Stateport]:
        return stateport.open(f"sqlite:///{self.fresh('s')}.db")

    def shared_url(self) -> str:
        return f"sqlite:///{self.fresh('shared')}.db"


class _SqliteDurableStore(_TmpPath):
    """durability=full: every write goes through the worker thread."""

    def open_store(self) -> AbstractAsyncContextManager[stateport.Stateport]:
        return stateport.open(f"sqlite:///{self.fresh('d')}.db?durability=full")


class _SqliteMemoryStore:
    def open_store(self) -> AbstractAsyncContextManager[stateport.Stateport]:
        return stateport.open("sqlite://:memory:")


DOMAIN_SUITES: tuple[type[StoreConformance], ...] = (
    CasStoreConformance,
    CouncilRepositoryConformance,
    KnowledgeRepositoryConformance,
    ReleaseRegistryConformance,
    RunLedgerConformance,
    ToolkitConformance,
    WorkStoreConformance,
)
ENGINES: dict[str, type] = {
    "Memory": _MemoryStore,
    "SqliteFile": _SqliteFileStore,
    "SqliteDurable": _SqliteDurableStore,
    "SqliteMemory": _SqliteMemoryStore,
}

# TestMemoryRunLedger, TestSqliteFileRunLedger, ...: every domain suite on every engine
for _suite in DOMAIN_SUITES:
    for _engine, _mixin in ENGINES.items():
        _name = f"Test{_engine}{_suite.__name__.removesuffix('Conformance')}"
        globals()[_name] = type(_name, (_mixin, _suite), {"__module__": __name__})
