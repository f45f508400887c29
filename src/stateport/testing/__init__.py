"""The conformance suite, shipped with the package so any backend can prove itself.

Every class here runs through whole stores opened by URL, so one hook serves
them all: :meth:`StoreConformance.store_url`, a URL naming a fresh, empty store
on each call. The engine suite adds a few abstract hooks about the engine's
own life (:class:`EngineConformance`). :func:`conformance_classes` builds one
pytest class per suite for an engine, so a backend's test module is::

    from stateport.testing import conformance_classes

    class MyEngine:
        def store_url(self) -> str: ...
        # and the hooks of EngineConformance: catalogue, record_unknown_migration,
        # driver_errors, drop_item_table, check_consistency

    globals().update(conformance_classes("MyEngine", MyEngine))

Tests that need a capability the engine does not declare
(:class:`~stateport.ports.Capability`) skip with the reason. No async pytest
plugin is needed.
"""

from .blob import BlobPortConformance
from .council import CouncilRepositoryConformance
from .engine import DriverErrors, EngineConformance
from .knowledge import KnowledgeRepositoryConformance
from .ledger import LedgerPatternConformance
from .model import TableModelConformance
from .releases import CasStoreConformance, ReleaseRegistryConformance
from .runs import RunLedgerConformance
from .snapshot import SnapshotConformance
from .store import StoreConformance
from .suites import conformance_classes, suites
from .table import TablePortConformance, increment, table_of
from .toolkit import ToolkitConformance
from .work import WorkStoreConformance

__all__ = [
    "BlobPortConformance",
    "CasStoreConformance",
    "CouncilRepositoryConformance",
    "DriverErrors",
    "EngineConformance",
    "KnowledgeRepositoryConformance",
    "LedgerPatternConformance",
    "ReleaseRegistryConformance",
    "RunLedgerConformance",
    "SnapshotConformance",
    "StoreConformance",
    "TableModelConformance",
    "TablePortConformance",
    "ToolkitConformance",
    "WorkStoreConformance",
    "conformance_classes",
    "increment",
    "suites",
    "table_of",
]
