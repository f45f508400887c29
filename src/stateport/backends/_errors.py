"""Driver errors to stateport errors: one table per backend.

A backend lists :class:`Rule` rows in order; the first whose ``matches`` accepts
a driver exception names the stateport error raised in its place, at the
backend boundary (``raise ERRORS.translate(e, where) from e``). A table rather
than an if-chain, so the conformance kit tests a backend's mapping row by row
(:meth:`stateport.testing.EngineConformance.driver_errors`): every row is shown
a driver error, and every driver error an engine can raise has a row, the last
one (``fallback``) catching what no other row names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import EngineError, StateportError

__all__ = ["ErrorMap", "Rule"]


@dataclass(frozen=True, slots=True)
class Rule:
    """One row: which driver errors it takes, and what the caller sees instead."""

    name: str
    """What the row is about (``"busy"``, ``"credentials"``): how tests address it."""
    matches: Callable[[BaseException], bool]
    error: type[StateportError]
    message: str
    """Formatted with ``where`` (the store), ``detail`` (the driver's message) and
    ``kind`` (the driver exception's class name); says what to do next."""


def _always(e: BaseException) -> bool:
    return True


class ErrorMap:
    """A backend's rules, tried in order, then ``fallback``."""

    def __init__(
        self,
        driver: str,
        rules: Sequence[Rule],
        fallback: str = "{where}: {kind}: {detail}",
    ) -> None:
        self.driver = driver
        self.rules: tuple[Rule, ...] = (
            *rules,
            Rule("other", _always, EngineError, fallback),
        )
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError(f"{driver}: rule names must be distinct: {names}")

    def rule_for(self, e: BaseException) -> Rule:
        """The first row that takes ``e`` (the fallback when none does)."""
        return next(r for r in self.rules if r.matches(e))

    def translate(self, e: BaseException, where: str) -> StateportError:
        """The stateport error to raise ``from e`` (a stateport error passes unchanged)."""
        if isinstance(e, StateportError):
            return e
        rule = self.rule_for(e)
        detail = str(e).strip() or type(e).__name__
        return rule.error(rule.message.format(where=where, detail=detail, kind=type(e).__name__))
