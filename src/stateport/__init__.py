"""stateport: durable, backend-agnostic state for agent, workflow and knowledge systems.

Open a store by URL and use its ports::

    import stateport

    async with stateport.open("sqlite:///state.db") as sp:
        await sp.items.put({"pk": "dialogue#1", "sk": "meta", "title": "Hello"})
        digest = await sp.cas.put(b"some bytes")
        run_id = await sp.runs.create_run(digest, stateport.RunMetadata("my-agent"))
        await sp.runs.append_event(run_id, stateport.RunEvent("started"))

``stateport.sync.open`` gives the same API with blocking calls. Errors are in
:mod:`stateport.errors`; the engine ports in :mod:`stateport.ports`; the
conformance suite for backends in :mod:`stateport.testing`.
"""

from . import errors, sync
from .backends import register_backend
from .config import DEFAULT_URL, resolve_url
from .digest import ContentDigest
from .domains.cas import CasStore
from .domains.council import (
    CouncilRepository,
    CouncilRewind,
    CouncilRun,
    CouncilRunEvent,
    CouncilRunStatus,
)
from .domains.items import ItemStore
from .domains.registry import Scope
from .domains.releases import ReleaseMetadata, ReleaseRecord, ReleaseRegistry
from .domains.runs import (
    RunEvent,
    RunId,
    RunLedger,
    RunMetadata,
    RunPage,
    RunRecord,
    RunStatus,
    RunSummary,
)
from .errors import (
    ConfigError,
    Conflict,
    EngineError,
    IntegrityError,
    InvalidTransition,
    NoPreviousRelease,
    NotFound,
    StateportError,
    Unavailable,
    Unsupported,
    ValidationError,
)
from .ports.table import (
    AttrEquals,
    Check,
    Delete,
    Exists,
    Item,
    KeyRange,
    NotExists,
    Page,
    Put,
    Update,
    VersionEquals,
)
from .snapshot import MoveSummary, StoreDigest
from .store import Stateport, copy, open

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_URL",
    "AttrEquals",
    "CasStore",
    "Check",
    "ConfigError",
    "Conflict",
    "ContentDigest",
    "CouncilRepository",
    "CouncilRewind",
    "CouncilRun",
    "CouncilRunEvent",
    "CouncilRunStatus",
    "Delete",
    "EngineError",
    "Exists",
    "IntegrityError",
    "InvalidTransition",
    "Item",
    "ItemStore",
    "KeyRange",
    "MoveSummary",
    "NoPreviousRelease",
    "NotExists",
    "NotFound",
    "Page",
    "Put",
    "ReleaseMetadata",
    "ReleaseRecord",
    "ReleaseRegistry",
    "RunEvent",
    "RunId",
    "RunLedger",
    "RunMetadata",
    "RunPage",
    "RunRecord",
    "RunStatus",
    "RunSummary",
    "Scope",
    "Stateport",
    "StateportError",
    "StoreDigest",
    "Unavailable",
    "Unsupported",
    "Update",
    "ValidationError",
    "VersionEquals",
    "__version__",
    "copy",
    "errors",
    "open",
    "register_backend",
    "resolve_url",
    "sync",
]
