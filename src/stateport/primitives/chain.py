"""Hash chains: a length-prefixed canonical encoding, link hashes, verification.

A chain is a sequence of links numbered 1, 2, 3, ... Each link has named
fields, the hash of the link before it (``prev_hash``; :data:`GENESIS`, 32 zero
bytes, for link 1) and its own hash::

    hash = SHA-256( encode_fields(fields) || prev_hash )

``encode_fields`` is a byte encoding anyone can reimplement from this
description (see docs/decisions/0016-audit-chain.md). For each field, in order::

    u32(len(name)) name  tag  value

where ``u32`` is a 4-byte big-endian unsigned length, ``name`` the field name in
UTF-8, and ``tag`` one byte saying how the value follows:

=====  ==============  =====================================================
tag    value           bytes after the tag
=====  ==============  =====================================================
0x00   None            nothing
0x01   int             u32(len(d)) d, d = the decimal digits (ASCII, ``-`` sign)
0x02   str             u32(len(s)) s, s = UTF-8
0x03   bytes           u32(len(b)) b
0x04   list of str     u32(count), then u32(len(s)) s for each string
=====  ==============  =====================================================

Every value carries its length, so no two different field lists encode to the
same bytes. Verification (:class:`ChainVerifier`) walks the links in order and
reports the first one that is missing, out of place, malformed, or whose hash
or ``prev_hash`` does not match; at the end it compares the last link with the
chain's stored head (which lives outside the links, so a truncated tail is
seen) and, optionally, with a head exported earlier (so a chain rewritten or
truncated together with its stored head is seen too).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from ..digest import is_digest_hex
from ..errors import ValidationError

__all__ = [
    "GENESIS",
    "HASH_SIZE",
    "ChainBreak",
    "ChainCodec",
    "ChainHead",
    "ChainVerification",
    "ChainVerifier",
    "FieldValue",
    "encode_fields",
    "link_hash",
    "parse_hash",
]

HASH_SIZE: Final = 32
GENESIS: Final = bytes(HASH_SIZE)
"""The ``prev_hash`` of the first link: 32 zero bytes."""

FieldValue = None | int | str | bytes | Sequence[str]
"""What a field may hold: None, an int, a str, bytes, or a list of str."""

_U32 = struct.Struct(">I").pack
_NONE: Final = b"\x00"
_INT: Final = b"\x01"
_STR: Final = b"\x02"
_BYTES: Final = b"\x03"
_LIST: Final = b"\x04"
_MAX_LEN: Final = 2**32 - 1


def _prefix(name: str) -> bytes:
    raw = name.encode("utf-8")
    return _U32(len(raw)) + raw


def _value(value: Any, parts: list[bytes]) -> None:
    t = type(value)
    if value is None:
        parts.append(_NONE)
    elif t is str:
        raw = value.encode("utf-8")
        parts.append(_STR + _U32(len(raw)) + raw)
    elif t is int:
        raw = str(value).encode("ascii")
        parts.append(_INT + _U32(len(raw)) + raw)
    elif t is bytes:
        if len(value) > _MAX_LEN:
            raise ValidationError("a bytes field is longer than 2**32 - 1")
        parts.append(_BYTES + _U32(len(value)) + value)
    elif t is list or t is tuple:
        parts.append(_LIST + _U32(len(value)))
        for s in value:
            if type(s) is not str:
                raise ValidationError(f"a list field holds only str, got {type(s).__name__}")
            raw = s.encode("utf-8")
            parts.append(_U32(len(raw)) + raw)
    else:
        raise ValidationError(
            f"a chain field is None, int, str, bytes or a list of str, got {t.__name__}"
        )


def encode_fields(fields: Sequence[tuple[str, FieldValue]]) -> bytes:
    """The canonical bytes of ``fields`` (name, value pairs, in order); see the module doc."""
    parts: list[bytes] = []
    for name, value in fields:
        if type(name) is not str or not name:
            raise ValidationError(f"a field name is a non-empty str, got {name!r}")
        parts.append(_prefix(name))
        _value(value, parts)
    return b"".join(parts)


def link_hash(encoded: bytes, prev_hash: bytes) -> bytes:
    """``SHA-256(encoded || prev_hash)``: the hash of a link whose fields encode to ``encoded``."""
    if type(prev_hash) is not bytes or len(prev_hash) != HASH_SIZE:
        raise ValidationError(f"prev_hash must be {HASH_SIZE} bytes")
    return hashlib.sha256(encoded + prev_hash).digest()


class ChainCodec:
    """The encoding of one kind of link: a fixed list of field names.

    Precomputes each name's prefix (with each tag), so :meth:`encode` costs one
    pass over the values. ``codec.encode(values)`` equals
    ``encode_fields(list(zip(codec.names, values)))``.
    """

    __slots__ = ("_heads", "names")

    def __init__(self, names: Sequence[str]) -> None:
        if not names or any(type(n) is not str or not n for n in names):
            raise ValueError("a codec needs non-empty str field names")
        self.names: tuple[str, ...] = tuple(names)
        self._heads = tuple(
            (p + _STR, p + _INT, p + _NONE, p) for p in (_prefix(n) for n in self.names)
        )

    def encode(self, values: Sequence[FieldValue]) -> bytes:
        """The canonical bytes of ``values``, one per name, in order."""
        if len(values) != len(self._heads):
            raise ValidationError(f"{len(self.names)} values expected, got {len(values)}")
        parts: list[bytes] = []
        extend = parts.extend
        u32 = _U32
        for (p_str, p_int, p_none, p), value in zip(self._heads, values, strict=True):
            t = type(value)
            # the common cases inline; the rest (and every error) in _value
            if t is str:
                raw = value.encode("utf-8")  # type: ignore[union-attr]
                extend((p_str, u32(len(raw)), raw))
            elif t is int:
                raw = b"%d" % value  # type: ignore[str-format]
                extend((p_int, u32(len(raw)), raw))
            elif value is None:
                parts.append(p_none)
            elif t is list:
                parts.append(p + _LIST + u32(len(value)))  # type: ignore[arg-type]
                for s in value:  # type: ignore[union-attr]
                    if type(s) is not str:
                        raise ValidationError("a list field holds only str")
                    raw = s.encode("utf-8")
                    extend((u32(len(raw)), raw))
            else:
                parts.append(p)
                _value(value, parts)
        return b"".join(parts)

    def hash(self, values: Sequence[FieldValue], prev_hash: bytes) -> bytes:
        """The link hash of ``values`` after ``prev_hash``."""
        return link_hash(self.encode(values), prev_hash)


# --------------------------------------------------------------------------- heads


@dataclass(frozen=True, slots=True)
class ChainHead:
    """Where a chain stands: how many links, and the hash of the last one.

    An empty chain's head is ``ChainHead(0, GENESIS)``. Export it (``to_dict``)
    to sign it off; a later verification checks that the chain still contains
    that link with that hash.
    """

    count: int
    hash: bytes

    def __post_init__(self) -> None:
        if type(self.count) is not int or self.count < 0:
            raise ValidationError(f"a chain head count is an int >= 0, got {self.count!r}")
        if type(self.hash) is not bytes or len(self.hash) != HASH_SIZE:
            raise ValidationError(f"a chain head hash is {HASH_SIZE} bytes")
        if self.count == 0 and self.hash != GENESIS:
            raise ValidationError("an empty chain's head hash is the genesis hash (zeros)")

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "hash": self.hash.hex()}

    @classmethod
    def from_dict(cls, data: Any) -> ChainHead:
        """Parse what :meth:`to_dict` wrote; :class:`ValidationError` if malformed."""
        if not isinstance(data, dict):
            raise ValidationError("a chain head is an object with 'count' and 'hash'")
        count, digest = data.get("count"), data.get("hash")
        if type(count) is not int or type(digest) is not str:
            raise ValidationError("a chain head has an int 'count' and a hex 'hash'")
        return cls(count, parse_hash(digest, "hash"))


def parse_hash(text: Any, what: str) -> bytes:
    """A 64-digit lowercase hex hash as bytes; :class:`ValidationError` otherwise."""
    if type(text) is not str or not is_digest_hex(text.lower()):
        raise ValidationError(f"{what} must be {2 * HASH_SIZE} hex digits")
    if not is_digest_hex(text):
        raise ValidationError(f"{what} must be lowercase hex")
    return bytes.fromhex(text)


# --------------------------------------------------------------------------- verification


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first broken link: its number and what is wrong with it."""

    seq: int
    reason: str


@dataclass(frozen=True, slots=True)
class ChainVerification:
    """The outcome of verifying a chain.

    ``ok`` when every link and the heads check out; otherwise ``broken`` is the
    first broken link. ``checked`` counts the links verified before the break
    (all of them when ``ok``); ``head`` is where the intact prefix ends.
    """

    ok: bool
    checked: int
    head: ChainHead
    broken: ChainBreak | None = None

    def __bool__(self) -> bool:
        return self.ok

    def describe(self) -> str:
        if self.ok:
            return f"intact: {self.checked} entries, head {self.head.hash.hex()[:16]}"
        assert self.broken is not None
        return f"broken at entry {self.broken.seq}: {self.broken.reason}"


class ChainVerifier:
    """Verifies links fed in order and stops at the first break.

    For each stored link, in storage order, call ``feed(seq, encoded,
    prev_hash, hash)`` with its number, its encoded fields and its stored
    hashes (hex); it returns False once the chain is broken.
    :meth:`fail` records a break the caller found (a malformed link, say);
    :meth:`finish` compares the end of the chain with the stored head and, when
    given, with ``expected``, a head exported earlier: the chain must still
    hold that link with that hash (it may have grown since).
    """

    __slots__ = ("_at", "_broken", "_count", "_last", "_last_hex", "_want")

    def __init__(self, expected: ChainHead | None = None) -> None:
        self._count = 0
        self._last = GENESIS
        self._last_hex = GENESIS.hex()
        self._broken: ChainBreak | None = None
        self._want = expected
        self._at: bytes | None = GENESIS if expected is not None and expected.count == 0 else None

    @property
    def count(self) -> int:
        """How many links have checked out so far."""
        return self._count

    def fail(self, seq: int, reason: str) -> bool:
        """Record a break at ``seq`` (the first one recorded wins); return False."""
        if self._broken is None:
            self._broken = ChainBreak(seq, reason)
        return False

    def feed(self, seq: int, encoded: bytes, prev_hash: str, stored_hash: str) -> bool:
        """Check the next link: its number, its ``prev_hash`` and its ``hash``.

        The hashes are given as stored: 64 lowercase hex digits. Any other
        spelling of the same bytes (upper case, spaces) is a break, since it is
        a change to the stored entry.
        """
        if self._broken is not None:
            return False
        expected = self._count + 1
        if seq != expected:
            if seq > expected:
                return self.fail(expected, f"missing: the next stored entry is {seq}")
            return self.fail(seq, f"out of place: entry {seq} found after entry {self._count}")
        if prev_hash != self._last_hex:
            return self.fail(seq, "prev_hash does not match the hash of the entry before")
        digest = hashlib.sha256(encoded + self._last)
        if digest.hexdigest() != stored_hash:
            return self.fail(seq, "hash does not match the entry's fields")
        self._count = seq
        self._last = raw = digest.digest()
        self._last_hex = stored_hash
        if self._want is not None and seq == self._want.count:
            self._at = raw
        return True

    def finish(self, stored_head: ChainHead | None) -> ChainVerification:
        """The verdict, given the chain's stored head (None when it is missing)."""
        n = self._count
        if self._broken is None:
            if stored_head is None:
                self.fail(n + 1, "the chain head is missing")
            elif stored_head.count > n:
                self.fail(
                    n + 1,
                    f"missing: the head records {stored_head.count} entries, "
                    f"{n} are stored (truncated)",
                )
            elif stored_head.count < n:
                self.fail(
                    stored_head.count + 1,
                    f"the head records {stored_head.count} entries, {n} are stored",
                )
            elif stored_head.hash != self._last:
                self.fail(n, "the head's hash differs from the last entry's hash")
        want = self._want
        if self._broken is None and want is not None:
            if want.count > n:
                self.fail(
                    n + 1,
                    f"missing: the exported head records {want.count} entries, "
                    f"{n} are stored (truncated)",
                )
            elif self._at != want.hash:
                self.fail(want.count, "differs from the exported head (rewritten)")
        head = ChainHead(n, self._last)
        if self._broken is not None:
            return ChainVerification(False, n, head, self._broken)
        return ChainVerification(True, n, head)
