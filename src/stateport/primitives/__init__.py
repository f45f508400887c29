"""Primitives written once on the table port, shared by the domain stores.

* :class:`Ledger` — ordered, sequenced, stateful streams (runs, council runs,
  audit trails);
* :class:`RefRegistry` — named pointers with an append-only history (releases).

They import the ports only, never a backend.
"""

from .ledger import Entry, HeadChange, Ledger
from .refs import Ref, RefRegistry

__all__ = ["Entry", "HeadChange", "Ledger", "Ref", "RefRegistry"]
