"""Primitives written once on the table port, shared by the domain stores.

The concurrency toolkit every store builds on:

* :func:`retrying` with :class:`Retry`, :func:`moved_on` and :class:`Backoff` —
  the one optimistic retry loop (bounded, jittered backoff);
* :class:`StateMachine` — the one way to declare and enforce states;
* :class:`IdAllocator` — increasing integer ids that are never reused;
* :class:`BoundedCache` — the one thread-safe bounded cache.

The structures:

* :class:`Ledger` — ordered, sequenced, stateful streams (runs, council runs,
  audit trails);
* :class:`RefRegistry` — named pointers with an append-only history (releases);
* :mod:`~stateport.primitives.chain` — hash chains: a length-prefixed canonical
  encoding, link hashes and verification against a head (audit trails).

They import the ports only, never a backend. See
docs/decisions/0018-concurrency-toolkit.md.
"""

from .._cache import BoundedCache
from .._retry import OPTIMISTIC, Backoff, Retry, moved_on, retrying
from .chain import (
    GENESIS,
    ChainCodec,
    ChainHead,
    ChainVerification,
    ChainVerifier,
    encode_fields,
    link_hash,
)
from .ids import ID_TAG, IdAllocator
from .ledger import Entry, Ledger
from .machine import StateMachine
from .refs import Ref, RefRegistry

__all__ = [
    "GENESIS",
    "ID_TAG",
    "OPTIMISTIC",
    "Backoff",
    "BoundedCache",
    "ChainCodec",
    "ChainHead",
    "ChainVerification",
    "ChainVerifier",
    "Entry",
    "IdAllocator",
    "Ledger",
    "Ref",
    "RefRegistry",
    "Retry",
    "StateMachine",
    "encode_fields",
    "link_hash",
    "moved_on",
    "retrying",
]
