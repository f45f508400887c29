"""Backends, chosen by URL scheme and imported lazily.

Each scheme maps to an import string ``"module:function"``; the function takes
a parsed :class:`~stateport.url.StoreURL` and returns an opened
:class:`~stateport.ports.Engine`. A backend whose driver is an optional extra
names that extra, so a missing driver gives the ``pip install`` that fixes it.
Third parties add schemes with :func:`register_backend`, and translate their
driver's errors with an :class:`ErrorMap` of :class:`Rule` rows, which the
conformance kit tests row by row.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..ports.engine import Engine
from ..url import StoreURL, parse_url, redact
from ._errors import ErrorMap, Rule

__all__ = [
    "BackendEntry",
    "ErrorMap",
    "Rule",
    "open_engine",
    "register_backend",
    "registered_schemes",
]


@dataclass(frozen=True, slots=True)
class BackendEntry:
    """How to open one URL scheme."""

    target: str
    """``"package.module:function"``; the function is ``async (StoreURL) -> Engine``."""
    extra: str | None = None
    """The ``stateport[extra]`` that installs the driver, if one is needed."""


_REGISTRY: dict[str, BackendEntry] = {
    "memory": BackendEntry("stateport.backends.memory:open_memory"),
    "sqlite": BackendEntry("stateport.backends.sqlite:open_sqlite"),
    "postgresql": BackendEntry("stateport.backends.postgres:open_postgres", "postgres"),
    "postgres": BackendEntry("stateport.backends.postgres:open_postgres", "postgres"),
}


def register_backend(scheme: str, target: str, *, extra: str | None = None) -> None:
    """Make ``scheme://`` URLs open through ``target`` (``"module:function"``)."""
    if not scheme.isidentifier() or ":" not in target:
        raise ConfigError(f"cannot register {scheme!r} -> {target!r}: expected 'module:function'")
    _REGISTRY[scheme.lower()] = BackendEntry(target, extra)


def registered_schemes() -> list[str]:
    return sorted(_REGISTRY)


def _load(scheme: str, entry: BackendEntry) -> Callable[[StoreURL], Awaitable[Engine]]:
    module_name, _, attr = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        missing = e.name or "a module"
        if entry.extra is not None and not module_name.startswith(missing):
            raise ConfigError(
                f"the {scheme}:// backend needs {missing!r}, which is not installed: "
                f"run  pip install 'stateport[{entry.extra}]'"
            ) from e
        raise ConfigError(f"the {scheme}:// backend {module_name!r} cannot be imported: {e}") from e
    opener: Any = getattr(module, attr, None)
    if opener is None:
        raise ConfigError(f"the {scheme}:// backend {entry.target!r} does not exist")
    return opener  # type: ignore[no-any-return]


async def open_engine(url: str | StoreURL, *, create: bool = True) -> Engine:
    """Open the engine a URL names (ConfigError for a bad URL or missing driver).

    With ``create=False`` a store that does not exist yet is a ConfigError
    instead of being created (for commands that only look).
    """
    parsed = url if isinstance(url, StoreURL) else parse_url(url)
    parsed.create = parsed.create and create
    entry = _REGISTRY.get(parsed.scheme)
    if entry is None:
        raise ConfigError(
            f"store URL {redact(parsed.raw)!r}: unknown scheme {parsed.scheme!r}; "
            f"known schemes: {', '.join(s + '://' for s in registered_schemes())}"
        )
    return await _load(parsed.scheme, entry)(parsed)
