"""Content digests: lowercase hex SHA-256, validated on construction."""

from __future__ import annotations

import hashlib
from typing import Final

from .errors import ValidationError

__all__ = ["ContentDigest", "DigestLike"]

_HEX: Final = frozenset("0123456789abcdef")


def is_digest_hex(text: str) -> bool:
    """Whether ``text`` is a digest's canonical form: 64 lowercase hex characters."""
    return len(text) == 64 and _HEX.issuperset(text)


class ContentDigest:
    """The SHA-256 digest of a blob, as 64 lowercase hex characters.

    ``ContentDigest(text)`` accepts upper- or lowercase hex and stores it
    lowercased; anything else raises :class:`~stateport.errors.ValidationError`.
    Instances are immutable, hashable, and compare equal to other digests of the
    same value (not to plain strings: use :meth:`as_str`).
    """

    __slots__ = ("_hex",)
    _hex: str

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise ValidationError(f"a digest must be a str, got {type(value).__name__}")
        lowered = value.lower()
        if not is_digest_hex(lowered):
            shown = value if len(value) <= 80 else value[:77] + "..."
            raise ValidationError(
                f"invalid digest {shown!r}: expected 64 hex characters (a SHA-256 digest)"
            )
        object.__setattr__(self, "_hex", lowered)

    @classmethod
    def from_bytes(cls, data: bytes) -> ContentDigest:
        """The digest of ``data``."""
        return cls._trusted(hashlib.sha256(data).hexdigest())

    @classmethod
    def of(cls, value: DigestLike) -> ContentDigest:
        """Coerce a digest or its hex string (validating the string)."""
        return value if isinstance(value, ContentDigest) else cls(value)

    @classmethod
    def _trusted(cls, hexdigest: str) -> ContentDigest:
        d = object.__new__(cls)
        object.__setattr__(d, "_hex", hexdigest)
        return d

    def as_str(self) -> str:
        """The full 64-character hex string."""
        return self._hex

    def short(self) -> str:
        """The first 12 hex characters, for display."""
        return self._hex[:12]

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("ContentDigest is immutable")

    def __str__(self) -> str:
        return self._hex

    def __repr__(self) -> str:
        return f"ContentDigest({self._hex!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ContentDigest) and other._hex == self._hex

    def __lt__(self, other: ContentDigest) -> bool:
        return self._hex < other._hex

    def __hash__(self) -> int:
        return hash(self._hex)

    def __reduce__(self) -> tuple[type[ContentDigest], tuple[str]]:
        return (ContentDigest, (self._hex,))


DigestLike = ContentDigest | str
