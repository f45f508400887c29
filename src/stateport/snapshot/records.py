"""Canonical records and the content digest of a store.

An item's record is the UTF-8 of the canonical JSON array
``[pk, sk, version, attributes]`` (sorted keys, compact separators, no ASCII
escaping: the encoding every engine stores attributes in). A blob's record is
its SHA-256 digest. The content digest of a store (or of a scope of it) is::

    items   = SHA-256( for each item in (pk, sk) order:  u32be(len(record)) || record )
    blobs   = SHA-256( for each blob in digest order:    the 32 bytes of its digest )
    content = SHA-256( b"stateport-content-v1\\x00" || items || blobs )

Key order is the order of the keys' UTF-8 bytes (Python's string order). So
the digest depends on what is stored and on nothing else: not on the engine,
its scan order, its schema tables or its staged uploads. Versions are part of
the content, because the domain stores rely on them. A blob enters by its
digest, which names its bytes; that the stored bytes still match their digest
is what ``stateport blobs verify`` checks (a copy checks it for every blob it
streams). See docs/decisions/0022-moving-state-between-engines.md.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Final

from .. import _json
from ..domains.registry import DOMAINS, Scope, domain_of
from ..errors import EngineError
from ..ports.table import Item, StoredItem

__all__ = [
    "ContentHasher",
    "StoreDigest",
    "item_record",
    "parse_record",
    "stored_record",
    "stored_records",
]

DIGEST_TAG: Final = b"stateport-content-v1\x00"
_quote = json.encoder.encode_basestring
_scan_value = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def item_record(item: Item) -> bytes:
    """The canonical record of ``item`` (see the module doc)."""
    text = f"[{_quote(item.pk)},{_quote(item.sk)},{item.version},{_json.encode(item.attrs)}]"
    return text.encode("utf-8")


def stored_record(item: StoredItem) -> bytes:
    """The canonical record of an item as stored: its canonical JSON is used as is."""
    return f"[{_quote(item.pk)},{_quote(item.sk)},{item.version},{item.data}]".encode()


def stored_records(items: list[StoredItem]) -> list[bytes]:
    """:func:`stored_record` of each item (one loop: this is the copy's hot path)."""
    q = _quote
    return [f"[{q(i.pk)},{q(i.sk)},{i.version},{i.data}]".encode() for i in items]


def parse_record(record: bytes) -> StoredItem:
    """The item of a record, its attributes left as text; ``ValueError`` if the
    record is not ``[pk, sk, version, {attributes}]``. Whether the text is
    canonical is for the caller to check (:func:`stored_record` gives it back
    byte for byte when it is)."""
    text = record.decode("utf-8")
    if not (text.startswith("[") and text.endswith("}]")):
        raise ValueError("a record is a JSON array ending with an object")
    values: list[object] = []
    at = 1
    for _ in range(3):
        try:
            value, at = _scan_value(text, at)
        except StopIteration as e:
            raise ValueError(f"no JSON value at {e.value}") from None
        if text[at : at + 1] != ",":
            raise ValueError(f"expected ',' at {at}")
        values.append(value)
        at += 1
    pk, sk, version = values
    if type(pk) is not str or type(sk) is not str or type(version) is not int:
        raise ValueError("a record starts with pk, sk (strings) and version (an integer)")
    return StoredItem(pk, sk, version, text[at:-1])


@dataclass(frozen=True, slots=True)
class StoreDigest:
    """The content digest of a store (or of a scope of it), with what it covers."""

    digest: str
    """The content digest: 64 lowercase hex characters."""
    items: int
    blobs: int
    by_domain: dict[str, int] = field(default_factory=dict)
    """Items per domain (and blobs under ``cas``), for the domains in scope."""
    scope: Scope = field(default_factory=Scope)

    def to_dict(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "items": self.items,
            "blobs": self.blobs,
            "by_domain": dict(self.by_domain),
            "scope": self.scope.describe(),
        }

    def __str__(self) -> str:
        return f"sha256:{self.digest}"


class ContentHasher:
    """Computes a :class:`StoreDigest` from records fed in canonical order.

    Items must come in strictly increasing ``(pk, sk)`` order and blobs in
    strictly increasing digest order; anything else is an :class:`EngineError`
    (a reader that broke its promise), since the digest would not be canonical.
    """

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self._items = hashlib.sha256()
        self._blobs = hashlib.sha256()
        self.items = 0
        self.blobs = 0
        self._last_key: tuple[str, str] | None = None
        self._last_blob = ""
        self._by_domain = {d.name: 0 for d in DOMAINS if d.name in scope.domains}
        self._last_pk = ""
        self._last_domain = ""

    def item(self, pk: str, sk: str, record: bytes) -> None:
        """Add the item under ``(pk, sk)``, whose record is ``record``."""
        key = (pk, sk)
        if self._last_key is not None and key <= self._last_key:
            raise EngineError(f"items out of key order: {key!r} after {self._last_key!r}")
        self._last_key = key
        self._items.update(len(record).to_bytes(4, "big"))
        self._items.update(record)
        self.items += 1
        if pk != self._last_pk:  # items come partition by partition
            self._last_pk, self._last_domain = pk, domain_of(pk)
        if self._last_domain in self._by_domain:
            self._by_domain[self._last_domain] += 1

    def page(self, items: list[StoredItem], records: list[bytes]) -> None:
        """:meth:`item` of each item of a page and its record (one loop: the hot path)."""
        update = self._items.update
        counts = self._by_domain
        last = self._last_key
        last_pk, last_sk = ("", "") if last is None else last
        domain = self._last_domain
        for item, record in zip(items, records, strict=True):
            pk, sk = item.pk, item.sk
            if pk != last_pk or last is None:
                if last is not None and pk < last_pk:
                    raise EngineError(f"items out of key order: {pk!r} after {last_pk!r}")
                last_pk, domain, last = pk, domain_of(pk), (pk, sk)
            elif sk <= last_sk:
                raise EngineError(f"items out of key order: {(pk, sk)!r} after {last!r}")
            last_sk = sk
            update(len(record).to_bytes(4, "big"))
            update(record)
            if domain in counts:
                counts[domain] += 1
        if items:
            self._last_key = (last_pk, last_sk)
            self._last_pk, self._last_domain = last_pk, domain
        self.items += len(items)

    def blob(self, digest: str) -> None:
        """Add the blob whose hex digest is ``digest``."""
        if digest <= self._last_blob:
            raise EngineError(f"blobs out of digest order: {digest} after {self._last_blob}")
        self._last_blob = digest
        self._blobs.update(bytes.fromhex(digest))
        self.blobs += 1
        if "cas" in self._by_domain:
            self._by_domain["cas"] += 1

    def result(self) -> StoreDigest:
        """The digest of everything added so far."""
        content = hashlib.sha256(DIGEST_TAG + self._items.digest() + self._blobs.digest())
        return StoreDigest(
            content.hexdigest(), self.items, self.blobs, dict(self._by_domain), self.scope
        )
