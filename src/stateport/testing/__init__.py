"""The conformance suite, shipped with the package so any backend can prove itself.

Subclass the classes here in a pytest module and implement their one factory
hook; every test becomes an ordinary pytest item run against your engine::

    from contextlib import asynccontextmanager
    from stateport.testing import TablePortConformance, table_of

    class TestMyTable(TablePortConformance):
        def open_table(self, *, portable=True):
            return table_of(f"mydb://test?portable={str(portable).lower()}")

The domain ports (runs, releases, CAS, council, work tracking, knowledge, ...) are tested through a
whole store: subclass e.g. :class:`RunLedgerConformance` and implement
:meth:`StoreConformance.open_store` (and ``shared_url`` for the multi-process
tests). No async pytest plugin is needed. Tests that need a capability the
engine lacks skip with the reason.
"""

from .blob import BlobPortConformance
from .council import CouncilRepositoryConformance
from .knowledge import KnowledgeRepositoryConformance
from .releases import CasStoreConformance, ReleaseRegistryConformance
from .runs import RunLedgerConformance
from .store import StoreConformance
from .table import TablePortConformance, increment, table_of
from .toolkit import ToolkitConformance
from .work import WorkStoreConformance

__all__ = [
    "BlobPortConformance",
    "CasStoreConformance",
    "CouncilRepositoryConformance",
    "KnowledgeRepositoryConformance",
    "ReleaseRegistryConformance",
    "RunLedgerConformance",
    "StoreConformance",
    "TablePortConformance",
    "ToolkitConformance",
    "WorkStoreConformance",
    "increment",
    "table_of",
]
