"""The snapshot file: one documented, deterministic, checksummed format.

::

    file      = MAGIC header item* blob* manifest end
    MAGIC     = 89 53 50 53 4E 41 50 0D 0A 1A 0A   ("\\x89SPSNAP\\r\\n\\x1a\\n")
    frame     = kind (1 ASCII byte) | length (u32, big-endian) | payload
                | CRC-32 of kind, length and payload (u32, big-endian)
    header    = frame "H": canonical JSON {"format": 1, "scope": {"domains": [...],
                "prefixes": [...]}}
    item      = frame "I": the item's canonical record, [pk, sk, version, attributes]
                (see records.py); items in strictly increasing (pk, sk) order
    blob      = frame "B": canonical JSON [digest, size], then its bytes in frames
                "C" of exactly 1 MiB, the last one shorter (none for an empty
                blob); blobs in strictly increasing digest order
    manifest  = frame "M": canonical JSON {"format", "scope", "items", "blobs",
                "blob_bytes", "by_domain", "digest"}: counts and the content digest
    end       = frame "E": the SHA-256 of every byte of the file before this frame

Nothing follows the end frame. The same content always gives the same bytes:
no timestamps, canonical JSON, canonical order, fixed chunking. A reader checks
every frame's CRC as it goes (so damage is reported where it is), the order and
the uniqueness of keys and digests, each blob's size and SHA-256, the
manifest's counts and digest against what it read, and the whole file's
SHA-256; any failure is an :class:`IntegrityError` naming the byte offset.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Final

from .. import _json
from ..digest import is_digest_hex
from ..domains.registry import Scope
from ..errors import IntegrityError, StateportError, Unsupported
from ..ports.blob import CHUNK_SIZE
from ..ports.table import Item, StoredItem
from .records import ContentHasher, StoreDigest, parse_record, stored_record

__all__ = ["FORMAT", "MAGIC", "Manifest", "SnapshotWriter", "read_snapshot"]

MAGIC: Final = b"\x89SPSNAP\r\n\x1a\n"
FORMAT: Final = 1
_SMALL: Final = 1024 * 1024  # header and manifest frames are at most this long
_MAX_ITEM: Final = 1 << 31  # no engine stores an item this large


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a snapshot holds: its scope, counts and content digest."""

    scope: Scope
    digest: StoreDigest
    blob_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "scope": self.scope.describe(),
            "items": self.digest.items,
            "blobs": self.digest.blobs,
            "blob_bytes": self.blob_bytes,
            "by_domain": self.digest.by_domain,
            "digest": self.digest.digest,
        }


def _frame(kind: bytes, payload: bytes) -> bytes:
    head = kind + len(payload).to_bytes(4, "big")
    crc = zlib.crc32(payload, zlib.crc32(head))
    return head + payload + crc.to_bytes(4, "big")


class SnapshotWriter:
    """Builds the bytes of a snapshot in order; the caller writes them out.

    Each method returns the bytes to append; :meth:`finish` returns the last
    ones (manifest and end) and the :class:`Manifest`.
    """

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self._hasher = ContentHasher(scope)
        self._file = hashlib.sha256()
        self.blob_bytes = 0
        self.size = 0

    def _out(self, data: bytes) -> bytes:
        self._file.update(data)
        self.size += len(data)
        return data

    def start(self) -> bytes:
        header = _json.encode({"format": FORMAT, "scope": self.scope.describe()})
        return self._out(MAGIC + _frame(b"H", header.encode("utf-8")))

    def page(self, items: list[StoredItem], records: list[bytes]) -> bytes:
        """The frames of a page of items (and their records) in canonical order."""
        self._hasher.page(items, records)
        return self._out(b"".join([_frame(b"I", record) for record in records]))

    def blob(self, digest: str, size: int) -> bytes:
        self._hasher.blob(digest)
        self.blob_bytes += size
        return self._out(_frame(b"B", _json.encode([digest, size]).encode("ascii")))

    def chunk(self, data: bytes) -> bytes:
        return self._out(_frame(b"C", data))

    def finish(self) -> tuple[bytes, Manifest]:
        manifest = Manifest(self.scope, self._hasher.result(), self.blob_bytes)
        tail = self._out(_frame(b"M", _json.encode(manifest.to_dict()).encode("utf-8")))
        end = _frame(b"E", self._file.digest())
        self.size += len(end)
        return tail + end, manifest


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class Header:
    scope: Scope


@dataclass(frozen=True, slots=True)
class BlobStart:
    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class Chunk:
    data: bytes


ItemRecord = tuple[StoredItem, bytes, Item | None]
"""An item of a snapshot: as stored, its record, and (when decoded) the item."""

Event = Header | ItemRecord | BlobStart | Chunk | Manifest
"""What :func:`read_snapshot` yields: the header, each item, each blob's start
and chunks, and last the manifest (once everything is checked)."""


class _Frames:
    def __init__(self, f: BinaryIO, name: str) -> None:
        self._f = f
        self._name = name
        try:
            self._size: int | None = os.fstat(f.fileno()).st_size
        except (OSError, AttributeError, ValueError):  # not a file: no size to check against
            self._size = None
        self._max = {
            b"H": _SMALL,
            b"M": _SMALL,
            b"I": _MAX_ITEM,
            b"B": 256,
            b"C": CHUNK_SIZE,
            b"E": 32,
        }
        self.offset = 0
        self.file = hashlib.sha256()

    def fail(self, what: str, at: int | None = None) -> IntegrityError:
        where = self.offset if at is None else at
        return IntegrityError(f"snapshot {self._name} is damaged at byte {where}: {what}")

    def read(self, n: int) -> bytes:
        data = self._f.read(n)
        if len(data) != n:
            raise self.fail("the file ends early (truncated)", self.offset + len(data))
        self.offset += n
        return data

    def magic(self) -> None:
        data = self._f.read(len(MAGIC))
        if data != MAGIC:
            raise IntegrityError(
                f"{self._name} is not a stateport snapshot (or its first bytes are damaged)"
            )
        self.offset = len(MAGIC)
        self.file.update(data)

    def next(self) -> tuple[bytes, bytes]:
        start = self.offset
        head = self.read(5)
        kind = head[:1]
        limit = self._max.get(kind)
        if limit is None:
            raise self.fail(f"unknown frame kind {kind!r}", start)
        length = int.from_bytes(head[1:], "big")
        if length > limit or (self._size is not None and self.offset + length > self._size):
            raise self.fail(f"a frame of kind {kind.decode()} claims {length} bytes", start)
        payload = self.read(length)
        crc = self.read(4)
        if zlib.crc32(payload, zlib.crc32(head)).to_bytes(4, "big") != crc:
            raise self.fail(f"the checksum of the {kind.decode()} frame does not match", start)
        if kind != b"E":
            self.file.update(head)
            self.file.update(payload)
            self.file.update(crc)
        return kind, payload

    def at_end(self) -> bool:
        return self._f.read(1) == b""


def _json_of(frames: _Frames, payload: bytes, what: str) -> Any:
    try:
        return _json.decode(payload)
    except (ValueError, UnicodeDecodeError) as e:
        raise frames.fail(f"the {what} is not valid JSON: {e}") from e


def _scope_of(frames: _Frames, raw: Any) -> Scope:
    try:
        return Scope.checked(raw["domains"], raw["prefixes"])
    except (StateportError, TypeError, KeyError) as e:
        raise frames.fail(f"the scope {raw!r} is not valid: {e}") from e


def read_snapshot(f: BinaryIO, name: str, *, decode: bool = True) -> Iterator[Event]:
    """Read and check a snapshot from ``f``, yielding its contents in order.

    Every check of the module doc is made; with ``decode`` (the default), each
    item's attributes are also decoded and checked to be in canonical form,
    and the item comes decoded too (without, they are left as text: for a
    reader that already checked the same file). A failure raises
    :class:`IntegrityError` (:class:`Unsupported` for a newer format) at the
    point it is found, so a consumer must not treat what it received as sound
    until the generator has finished: the :class:`Manifest` comes last, after
    every check has passed.
    """
    frames = _Frames(f, name)
    frames.magic()
    kind, payload = frames.next()
    if kind != b"H":
        raise frames.fail("the header frame is missing")
    header = _json_of(frames, payload, "header")
    if not isinstance(header, dict) or "format" not in header or "scope" not in header:
        raise frames.fail("the header is malformed")
    if header["format"] != FORMAT:
        raise Unsupported(
            f"snapshot {name} has format {header['format']!r}; this stateport reads format "
            f"{FORMAT}: upgrade stateport to import it"
        )
    scope = _scope_of(frames, header["scope"])
    yield Header(scope)
    hasher = ContentHasher(scope)
    blob_bytes = 0
    kind, payload = frames.next()
    while kind == b"I":
        stored, item = _item_of(frames, payload, scope, decode)
        try:
            hasher.item(stored.pk, stored.sk, payload)
        except StateportError as e:
            raise frames.fail(f"an item is out of order: {e}") from e
        yield stored, payload, item
        kind, payload = frames.next()
    while kind == b"B":
        digest, size = _blob_of(frames, payload)
        try:
            hasher.blob(digest)
        except StateportError as e:
            raise frames.fail(f"a blob is out of order: {e}") from e
        yield BlobStart(digest, size)
        content = hashlib.sha256()
        left = size
        while left:
            kind, payload = frames.next()
            if kind != b"C" or len(payload) != min(left, CHUNK_SIZE):
                raise frames.fail(f"blob {digest[:12]}: its bytes are missing or misframed")
            content.update(payload)
            left -= len(payload)
            yield Chunk(payload)
        if content.hexdigest() != digest:
            raise frames.fail(f"blob {digest[:12]}: its bytes do not match its digest")
        blob_bytes += size
        kind, payload = frames.next()
    if kind != b"M":
        raise frames.fail(f"unexpected frame {kind.decode()} where the manifest belongs")
    raw = _json_of(frames, payload, "manifest")
    found = hasher.result()
    expected = Manifest(scope, found, blob_bytes).to_dict()
    if raw != expected:
        raise frames.fail(
            "the manifest does not match the contents (counts or content digest differ)"
        )
    file_digest = frames.file.digest()
    kind, payload = frames.next()
    if kind != b"E":
        raise frames.fail("the end frame is missing")
    if payload != file_digest:
        raise frames.fail("the file's SHA-256 does not match its end frame")
    if not frames.at_end():
        raise frames.fail("bytes follow the end frame", frames.offset)
    yield Manifest(scope, found, blob_bytes)


def _item_of(
    frames: _Frames, record: bytes, scope: Scope, decode: bool
) -> tuple[StoredItem, Item | None]:
    try:
        stored = parse_record(record)
    except (ValueError, UnicodeDecodeError) as e:
        raise frames.fail(f"an item record is not [pk, sk, version, attributes]: {e}") from e
    key = (stored.pk, stored.sk)
    if not scope.contains(stored.pk):
        raise frames.fail(f"item {key!r} lies outside the snapshot's scope")
    if not decode:
        return stored, None
    attrs = _json_of(frames, stored.data.encode("utf-8"), f"attributes of item {key!r}")
    if type(attrs) is not dict:
        raise frames.fail(f"the attributes of item {key!r} are not a JSON object")
    item = Item(stored.pk, stored.sk, attrs, stored.version)
    try:
        canonical = stored_record(StoredItem(stored.pk, stored.sk, stored.version,
                                             _json.encode(attrs)))  # fmt: skip
    except (ValueError, TypeError) as e:
        raise frames.fail(f"item {key!r} cannot be encoded: {e}") from e
    if canonical != record:
        raise frames.fail(f"item {key!r} is not in canonical form")
    return stored, item


def _blob_of(frames: _Frames, payload: bytes) -> tuple[str, int]:
    raw = _json_of(frames, payload, "blob header")
    if (
        not isinstance(raw, list)
        or len(raw) != 2
        or type(raw[0]) is not str
        or not is_digest_hex(raw[0])
        or type(raw[1]) is not int
        or raw[1] < 0
    ):
        raise frames.fail("a blob header is not [digest, size]")
    return raw[0], raw[1]
