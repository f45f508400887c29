"""Every suite of the kit, and the pytest classes that run them on one engine."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable

from .store import StoreConformance

__all__ = ["conformance_classes", "suites"]


def suites() -> list[type[StoreConformance]]:
    """Every conformance class defined in :mod:`stateport.testing`, by name.

    Found by walking the subclasses of :class:`StoreConformance` after importing
    every module of the package, so a suite added later is found without a list
    to update.
    """
    package = importlib.import_module(__package__ or "stateport.testing")
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
    found: set[type[StoreConformance]] = set()
    todo = list(StoreConformance.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith(package.__name__ + "."):
            found.add(cls)
    return sorted(found, key=lambda c: c.__name__)


def conformance_classes(
    engine: str, *hooks: type, only: Iterable[type[StoreConformance]] | None = None
) -> dict[str, type]:
    """``Test<engine><Suite>`` classes running each suite (or those in ``only``) with
    ``hooks`` (classes providing ``store_url`` and, for the engine suite, its hooks).

    Put them in a test module's namespace: ``globals().update(conformance_classes(...))``.
    """
    classes: dict[str, type] = {}
    for suite in suites() if only is None else list(only):
        name = f"Test{engine}{suite.__name__.removesuffix('Conformance')}"
        module = hooks[0].__module__ if hooks else suite.__module__
        classes[name] = type(name, (*hooks, suite), {"__module__": module})
    return classes
