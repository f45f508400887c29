"""The one bounded, thread-safe cache of the package.

Stores keep small facts they learnt from the engine (the last sequence number
of a stream, the version of an open head, where a work package lives, a
compiled statement) so that the next call skips a read. Every such cache is a
:class:`BoundedCache`: a store is shared by tasks, threads and event loops, and
a cache that a concurrent writer can corrupt turns a committed write into an
error (evicting from a plain ``dict`` in two threads at once raises
``KeyError``).

Reads take no lock: a ``dict`` lookup is atomic. Every change (insert, evict,
replace, drop) holds the cache's lock, so eviction never races another change.
Eviction drops the entry written longest ago (a put moves its key to the end).

A cache only ever *saves* reads: whoever uses one must stay correct when an
entry is missing, stale (checked by a condition that the engine enforces) or
evicted at any moment.

It sits beside :mod:`stateport._json` at the bottom of the package because
backends (compiled SQL) and primitives (ledgers) both use it; the primitives
re-export it.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar, overload

__all__ = ["BoundedCache"]

K = TypeVar("K")
V = TypeVar("V")
_MISSING = object()


class BoundedCache(Generic[K, V]):
    """A mapping of at most ``max_size`` entries, safe to share between threads."""

    __slots__ = ("_data", "_lock", "max_size")

    def __init__(self, max_size: int) -> None:
        if type(max_size) is not int or max_size < 1:
            raise ValueError(f"a cache holds at least one entry, got max_size={max_size!r}")
        self.max_size = max_size
        self._data: dict[K, V] = {}
        self._lock = threading.Lock()

    @overload
    def get(self, key: K) -> V | None: ...

    @overload
    def get(self, key: K, default: V) -> V: ...

    def get(self, key: K, default: V | None = None) -> V | None:
        """The value kept for ``key``, else ``default``."""
        return self._data.get(key, default)

    def put(self, key: K, value: V) -> None:
        """Keep ``value`` for ``key``, forgetting the oldest entry when full."""
        with self._lock:
            data = self._data
            if data.pop(key, _MISSING) is _MISSING and len(data) >= self.max_size:
                del data[next(iter(data))]
            data[key] = value

    def replace(self, key: K, expected: V, value: V) -> bool:
        """Put ``value`` only if ``key`` still holds ``expected`` (the same object).

        For read-modify-write on a cached value: build the new value from the
        one read, then keep it unless another thread changed the entry first.
        """
        with self._lock:
            if self._data.get(key, _MISSING) is not expected:
                return False
            self._data[key] = value
            return True

    def discard(self, key: K) -> None:
        """Forget ``key`` (nothing happens if it is not kept)."""
        with self._lock:
            self._data.pop(key, None)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._data.clear()

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"<BoundedCache {len(self._data)}/{self.max_size}>"
