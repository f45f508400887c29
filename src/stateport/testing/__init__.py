"""The conformance suite, shipped with the package so any backend can prove itself.

Subclass the classes here in a pytest module and implement their one factory
hook; every test becomes an ordinary pytest item run against your engine::

    from contextlib import asynccontextmanager
    from stateport.testing import TablePortConformance, table_of

    class TestMyTable(TablePortConformance):
        def open_table(self, *, portable=True):
            return table_of(f"mydb://test?portable={str(portable).lower()}")

No async pytest plugin is needed. Tests that need a capability the engine lacks
skip with the reason.
"""

from .blob import BlobPortConformance
from .table import TablePortConformance, increment, table_of

__all__ = ["BlobPortConformance", "TablePortConformance", "increment", "table_of"]
