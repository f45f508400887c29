"""The one error tree of stateport.

Every error a caller can see from stateport is a subclass of
:class:`StateportError`. Backends translate their driver's exceptions at the
backend boundary (``raise Unavailable(...) from e``), so no ``sqlite3`` or other
driver exception ever reaches a caller, and the in-memory backend raises exactly
the same classes as the real engines.

::

    StateportError
    ├── NotFound            the addressed thing does not exist
    ├── Conflict            a condition failed (names which operation and why)
    ├── InvalidTransition   a state machine refused the move
    │   └── NoPreviousRelease   a rollback has nothing further back
    ├── IntegrityError      stored data fails verification (digest, chain, ...)
    ├── ValidationError     bad input, rejected before anything was written
    ├── Unsupported         the engine lacks the capability asked for
    ├── Unavailable         the engine is unreachable, or busy past its timeout
    ├── ConfigError         bad URL, missing driver extra, schema too new, ...
    └── EngineError         any other failure reported by the engine

Every public entry point validates its input before touching the engine: a
:class:`ValidationError` means nothing was written.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "Conflict",
    "EngineError",
    "IntegrityError",
    "InvalidTransition",
    "NoPreviousRelease",
    "NotFound",
    "StateportError",
    "Unavailable",
    "Unsupported",
    "ValidationError",
]


class StateportError(Exception):
    """Base class of every error raised by stateport."""


class NotFound(StateportError):
    """The addressed item, blob or record does not exist."""


class Conflict(StateportError):
    """A write condition failed; nothing of the operation (or transaction) was applied.

    ``op_index`` is the position of the failing operation in the transaction
    (0 for a single operation), ``key`` its ``(pk, sk)`` where it has one,
    ``condition`` a short description of the condition that did not hold, and
    ``tag`` the name the caller gave the operation (``Put(..., tag="head")``),
    so a store tells which of its checks failed by name rather than by position.
    """

    def __init__(
        self,
        message: str,
        *,
        op_index: int | None = None,
        key: tuple[str, str] | None = None,
        condition: str | None = None,
        tag: str | None = None,
    ) -> None:
        super().__init__(message)
        self.op_index = op_index
        self.key = key
        self.condition = condition
        self.tag = tag


class InvalidTransition(StateportError):
    """A state machine does not allow the requested transition."""


class NoPreviousRelease(InvalidTransition):
    """A rollback found no earlier release to go back to."""


class IntegrityError(StateportError):
    """Stored data fails verification: a digest mismatch, a broken chain, a corrupt file."""


class ValidationError(StateportError, ValueError):
    """Bad input: rejected before anything was written."""


class Unsupported(StateportError):
    """The engine does not provide the capability this call needs."""


class Unavailable(StateportError):
    """The engine is unreachable, or stayed busy past its configured timeout.

    Retrying later may succeed; nothing of the failed call was applied.
    """


class ConfigError(StateportError):
    """The configuration is unusable: a malformed URL, an unknown scheme, a
    missing driver extra, a database written by a newer schema, ..."""


class EngineError(StateportError):
    """Any other failure reported by the engine (disk full, I/O error, ...)."""
