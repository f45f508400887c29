"""The work-tracking conformance suite (``sp.work``) on every engine of this package."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

import stateport
from stateport.testing import WorkStoreConformance


class _TmpPath:
    tmp_path: Path

    @pytest.fixture(autouse=True)
    def _keep_tmp_path(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self._n = 0

    def fresh(self, name: str) -> Path:
        self._n += 1
        return self.tmp_path / f"{name}{self._n}"


class TestMemoryWork(WorkStoreConformance):
    def open_store(self) -> AbstractAsyncContextManager[stateport.Stateport]:
        return stateport.open("memory://")


class TestSqliteFileWork(_TmpPath, WorkStoreConformance):
    def open_store(self) -> AbstractAsyncContextManager[stateport.Stateport]:
        return stateport.open(f"sqlite:///{self.fresh('w')}.db")

    def shared_url(self) -> str:
        return f"sqlite:///{self.fresh('shared')}.db"


class TestSqliteDurableWork(_TmpPath, WorkStoreConformance):
    """durability=full: every write goes through the worker thread."""

    def open_store(self) -> AbstractAsyncContextManager[stateport.Stateport]:
        return stateport.open(f"sqlite:///{self.fresh('w')}.db?durability=full")


class TestSqliteMemoryWork(WorkStoreConformance):
    def open_store(self) -> AbstractAsyncContextManager[stateport.Stateport]:
        return stateport.open("sqlite://:memory:")
