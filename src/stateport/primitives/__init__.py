"""Primitives written once on the table port, shared by the domain stores.

* :class:`Ledger` — ordered, sequenced, stateful streams (runs, council runs,
  audit trails);
* :class:`RefRegistry` — named pointers with an append-only history (releases);
* :mod:`~stateport.primitives.chain` — hash chains: a length-prefixed canonical
  encoding, link hashes and verification against a head (audit trails).

They import the ports only, never a backend.
"""

from .chain import (
    GENESIS,
    ChainCodec,
    ChainHead,
    ChainVerification,
    ChainVerifier,
    encode_fields,
    link_hash,
)
from .ledger import Entry, Ledger
from .refs import Ref, RefRegistry

__all__ = [
    "GENESIS",
    "ChainCodec",
    "ChainHead",
    "ChainVerification",
    "ChainVerifier",
    "Entry",
    "Ledger",
    "Ref",
    "RefRegistry",
    "encode_fields",
    "link_hash",
]
