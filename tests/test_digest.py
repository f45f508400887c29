from __future__ import annotations

import hashlib
import pickle

import pytest

from stateport import ContentDigest, ValidationError


def test_from_bytes_and_short() -> None:
    d = ContentDigest.from_bytes(b"abc")
    assert d.as_str() == hashlib.sha256(b"abc").hexdigest()
    assert str(d) == d.as_str()
    assert d.short() == d.as_str()[:12]
    assert repr(d) == f"ContentDigest({d.as_str()!r})"


def test_validation_lowercases() -> None:
    hexd = hashlib.sha256(b"x").hexdigest()
    assert ContentDigest(hexd.upper()) == ContentDigest(hexd)
    assert ContentDigest(hexd.upper()).as_str() == hexd


@pytest.mark.parametrize(
    "bad", ["", "a" * 63, "a" * 65, "z" * 64, "ab" * 31 + "é1", None, 5, b"a" * 64]
)
def test_invalid_digests(bad: object) -> None:
    with pytest.raises(ValidationError):
        ContentDigest(bad)  # type: ignore[arg-type]


def test_value_semantics() -> None:
    a, b = ContentDigest.from_bytes(b"1"), ContentDigest.from_bytes(b"1")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != a.as_str()
    assert sorted([ContentDigest("f" * 64), ContentDigest("0" * 64)])[0] == ContentDigest("0" * 64)
    with pytest.raises(AttributeError):
        a._hex = "0" * 64  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(a)) == a
    assert ContentDigest.of(a) is a and ContentDigest.of(a.as_str()) == a
