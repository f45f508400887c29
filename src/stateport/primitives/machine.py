"""State machines: the one way a store declares and enforces its states.

A store declares its machine once, as data::

    RUNS = StateMachine("run", {
        RunStatus.RUNNING: {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED},
    })

and checks every change with :meth:`StateMachine.check` *inside* the decision
of a version-conditioned write (``Ledger.update_head``'s ``decide``, or an
attempt of :func:`~stateport.primitives.retrying`): if another writer moved the
state first, the condition fails, the decision runs again on the new state,
and the machine holds under any concurrency, on every engine.

A refused move raises :class:`~stateport.errors.InvalidTransition` naming the
subject, both states and the moves that are allowed, so the message says what
to do instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Generic, TypeVar

from ..errors import InvalidTransition

__all__ = ["StateMachine"]

S = TypeVar("S", bound=Enum)


class StateMachine(Generic[S]):
    """The states of one kind of record and the moves allowed between them.

    ``moves`` maps a state to the states it may move to; a state that is not a
    key (or maps to nothing) is final. With ``stay``, moving to the current
    state is allowed and changes nothing (:meth:`check` returns False).
    """

    __slots__ = ("_moves", "noun", "stay")

    def __init__(self, noun: str, moves: Mapping[S, Iterable[S]], *, stay: bool = False) -> None:
        self.noun = noun
        self.stay = stay
        self._moves: dict[S, frozenset[S]] = {s: frozenset(t) for s, t in moves.items()}
        for source, targets in self._moves.items():
            if source in targets:
                raise ValueError(f"{noun}: {source} moves to itself; declare stay=True instead")

    def allowed(self, current: S) -> frozenset[S]:
        """The states ``current`` may move to."""
        return self._moves.get(current, frozenset())

    def is_final(self, state: S) -> bool:
        """Whether nothing can follow ``state``."""
        return not self._moves.get(state)

    def can(self, current: S, target: S) -> bool:
        """Whether moving from ``current`` to ``target`` is allowed (or a no-op)."""
        return target in self.allowed(current) or (self.stay and target == current)

    def check(self, current: S, target: S, *, subject: str | None = None) -> bool:
        """Allow the move or raise :class:`InvalidTransition`.

        Returns True for a change, False for a no-op (``stay`` and ``target``
        is ``current``). ``subject`` names the record in the message
        (default: the noun).
        """
        if target in self.allowed(current):
            return True
        if target == current and self.stay:
            return False
        raise InvalidTransition(
            f"{subject or self.noun} is {_name(current)}: it cannot become "
            f"{_name(target)} ({self._options(current)})"
        )

    def _options(self, current: S) -> str:
        allowed = self.allowed(current)
        if not allowed:
            return f"{_name(current)} is final"
        return "allowed: " + ", ".join(sorted(_name(s) for s in allowed))

    def describe(self) -> str:
        """The machine as text, one line per state that has moves (for docs and help)."""
        return "\n".join(
            f"{_name(s)} -> {', '.join(sorted(_name(t) for t in targets))}"
            for s, targets in self._moves.items()
            if targets
        )

    def __repr__(self) -> str:
        return f"<StateMachine {self.noun}: {len(self._moves)} states with moves>"


def _name(state: Enum) -> str:
    return str(state.value)
