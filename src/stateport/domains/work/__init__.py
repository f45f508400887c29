"""Work tracking: the source ``StoragePort`` (features, work packages, dependencies,
a hash-chained audit trail, evidence, policies, metrics, governance contracts,
sync mappings and device nodes), written once on the table port.

Use it as ``sp.work``. See docs/decisions/0015-work-tracking.md and
docs/decisions/0016-audit-chain.md.
"""

from .audit import AUDIT_FIELDS, AUDIT_SCHEMA
from .core import KEEP
from .features import CREATOR
from .models import (
    FEATURE_STATES,
    FEATURE_TRANSITIONS,
    WP_STATES,
    WP_TRANSITIONS,
    AuditEntry,
    ClockOrder,
    DependencyType,
    DeviceNode,
    Evidence,
    Feature,
    FeatureState,
    GovernanceContract,
    Metric,
    PolicyRule,
    SyncDirection,
    SyncMapping,
    VectorClock,
    WorkPackage,
    WpDependency,
    WpState,
)
from .store import MAX_DEPENDENCIES, SHARD_SIZE, DependencyCycle, WorkStore

__all__ = [
    "AUDIT_FIELDS",
    "AUDIT_SCHEMA",
    "CREATOR",
    "FEATURE_STATES",
    "FEATURE_TRANSITIONS",
    "KEEP",
    "MAX_DEPENDENCIES",
    "SHARD_SIZE",
    "WP_STATES",
    "WP_TRANSITIONS",
    "AuditEntry",
    "ClockOrder",
    "DependencyCycle",
    "DependencyType",
    "DeviceNode",
    "Evidence",
    "Feature",
    "FeatureState",
    "GovernanceContract",
    "Metric",
    "PolicyRule",
    "SyncDirection",
    "SyncMapping",
    "VectorClock",
    "WorkPackage",
    "WorkStore",
    "WpDependency",
    "WpState",
]
