"""``sp.work``: the work-tracking port (the source ``StoragePort``) on the table port.

:class:`WorkStore` is the one public class; its methods come from one module per
concept, each a part built on :class:`~stateport.domains.work.core.WorkCore`:

=====================  ==================================================
:mod:`.features`       features: slugs, the state machine, edits
:mod:`.packages`       work packages: creation, states, edits, listing
:mod:`.dependencies`   dependencies, the ready set, the execution order
:mod:`.trail`          the audit trail: entries, reading, verification
:mod:`.evidence`       evidence by package and by requirement
:mod:`.governance`     policy rules, metrics, governance contracts
:mod:`.sync`           sync mappings, device nodes and vector clocks
=====================  ==================================================

The layout of the records and the tags of their operations are in
:mod:`.layout`; the audit chain's format is :mod:`.audit`, and how an entry is
written with the change it records is
:class:`~stateport.domains.work.writer.AuditWriter`. See
docs/decisions/0015-work-tracking.md and docs/decisions/0019-work-store-in-parts.md.
"""

from __future__ import annotations

from ...ports.table import TablePort
from .dependencies import Dependencies, DependencyCycle
from .evidence import EvidenceLog
from .features import Features
from .governance import Governance
from .layout import MAX_DEPENDENCIES, SHARD_SIZE
from .packages import WorkPackages
from .sync import SyncAndDevices
from .trail import AuditTrail

__all__ = ["MAX_DEPENDENCIES", "SHARD_SIZE", "DependencyCycle", "WorkStore"]


class WorkStore(
    Features, WorkPackages, Dependencies, AuditTrail, EvidenceLog, Governance, SyncAndDevices
):
    """Features, work packages, dependencies, the audit chain, evidence, policies,
    metrics, governance contracts, sync mappings and device nodes.

    Method names and types follow the source ``StoragePort``. State changes and
    edits take a keyword ``actor`` (required) and write their audit entry in the
    same transaction. Lookups with an optional result return None for an
    unknown id (also when the feature they are under is unknown); lists under
    an unknown parent are empty; changes to an unknown id raise
    :class:`~stateport.errors.NotFound`.
    """

    def __init__(self, table: TablePort) -> None:
        super().__init__(table)
