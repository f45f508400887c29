"""JSON values: validation, canonical encoding and engine-independent equality.

Attributes stored through the table port are JSON values: ``None``, ``bool``,
``int``, ``float`` (finite), ``str``, ``list`` and ``dict`` with ``str`` keys.
Anything else (tuples, sets, bytes, NaN, non-string keys, lone surrogates) is
rejected with :class:`~stateport.errors.ValidationError` instead of being
silently coerced the way :func:`json.dumps` would.

The canonical encoding (sorted keys, compact separators, UTF-8) is the one form
that is measured for size limits and fed to hashes, so a value always has one
byte representation.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from .errors import ValidationError

JSON = None | bool | int | float | str | list["JSON"] | dict[str, "JSON"]
"""A JSON-compatible value."""

# DynamoDB numbers carry at most 38 significant digits; portable mode keeps
# integers inside that range so data written locally loads there unchanged.
PORTABLE_INT_LIMIT = 10**38

_encoder = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":")
)
# The C encoder, built once: JSONEncoder.encode() rebuilds it on every call,
# which costs more than encoding a small item. Values reaching it have passed
# check_json (no cycles, nothing exotic), so its circular-reference check is off.
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_fast_encode = (
    _c_make_encoder(
        None,  # markers: no cycle check
        _encoder.default,
        json.encoder.encode_basestring,
        None,  # indent
        ":",
        ",",
        True,  # sort_keys
        False,  # skipkeys
        False,  # allow_nan
    )
    if _c_make_encoder is not None
    else None
)
_decoder = json.JSONDecoder()
_scan: Callable[[str, int], tuple[Any, int]] = _decoder.scan_once  # type: ignore[attr-defined]

MAX_DEPTH = 32
"""How deeply lists and dicts may nest (DynamoDB's limit; it also stops cycles)."""


def check_json(value: Any, *, portable: bool, where: str = "value") -> None:
    """Raise ValidationError unless ``value`` is a JSON value (see module doc)."""
    limit = PORTABLE_INT_LIMIT if portable else None
    t = type(value)
    if t is dict or t is list:
        if _valid_container(value, 1, limit):
            return
    elif _valid_scalar(value, t, limit):
        return
    _explain(value, portable=portable, where=where)


def _valid_scalar(v: Any, t: type, limit: int | None) -> bool:
    if t is str or t is bool or v is None:
        return True
    if t is int:
        return limit is None or -limit < v < limit
    if t is float:
        return math.isfinite(v)
    return False


def _valid_container(c: dict[Any, Any] | list[Any], depth: int, limit: int | None) -> bool:
    """The fast check of a dict or list at ``depth``: True if valid; False sends the
    caller to :func:`_explain`. Scalars are checked inline (this is a hot path)."""
    if depth > MAX_DEPTH + 1:
        return False
    if type(c) is dict:
        for k in c:
            if type(k) is not str:
                return False
        values: Any = c.values()
    else:
        values = c
    for v in values:
        t = type(v)
        if t is str or t is bool or v is None:
            continue
        if t is dict or t is list:
            if not _valid_container(v, depth + 1, limit):
                return False
        elif t is int:
            if limit is not None and not -limit < v < limit:
                return False
        elif t is not float or not math.isfinite(v):
            return False
    return True


def _explain(value: Any, *, portable: bool, where: str) -> None:
    """Raise the ValidationError for an invalid ``value``, naming where it goes wrong."""
    # paths are only spelled out on error: (value, parent entry, key, depth) chains
    stack: list[tuple[Any, Any, Any, int]] = [(value, None, where, 0)]
    while stack:
        entry = stack.pop()
        v = entry[0]
        t = type(v)
        if t is str or t is bool or v is None:
            continue
        if t is int:
            if portable and not -PORTABLE_INT_LIMIT < v < PORTABLE_INT_LIMIT:
                raise ValidationError(
                    f"{_path(entry)}: integer {v} has more than 38 digits; DynamoDB cannot "
                    "store it (open the store with portable=false to allow it on other engines)"
                )
            continue
        if t is float:
            if not math.isfinite(v):
                raise ValidationError(f"{_path(entry)}: {v!r} is not a JSON number")
            continue
        if t is list or t is dict:
            depth = entry[3] + 1
            if depth > MAX_DEPTH + 1:  # the outermost container is the item, not a level
                raise ValidationError(
                    f"{_path(entry)}: nested more than {MAX_DEPTH} levels deep (or contains itself)"
                )
        if t is list:
            stack.extend((item, entry, i, depth) for i, item in enumerate(v))
            continue
        if t is dict:
            for k, item in v.items():
                if type(k) is not str:
                    raise ValidationError(
                        f"{_path(entry)}: key {k!r} is a {type(k).__name__}; "
                        "JSON object keys must be str"
                    )
                stack.append((item, entry, k, depth))
            continue
        raise ValidationError(
            f"{_path(entry)}: {t.__name__} is not a JSON value "
            "(use None, bool, int, float, str, list or dict with str keys)"
        )
    raise AssertionError(f"{where}: the fast JSON check and the explanation disagree")


def _path(entry: tuple[Any, Any, Any, int]) -> str:
    parts: list[str] = []
    while entry is not None:
        _, parent, key, _ = entry
        parts.append(f"[{key}]" if type(key) is int else (f".{key}" if parent else str(key)))
        entry = parent
    return "".join(reversed(parts))


def encode(value: Any) -> str:
    """Canonical JSON text of a value that passed :func:`check_json`."""
    if _fast_encode is None or type(value) is not dict:
        return _encoder.encode(value)
    return "".join(_fast_encode(value, 0))


def encode_bytes(value: Any) -> bytes:
    """Canonical UTF-8 bytes; ValidationError for strings with lone surrogates."""
    text = encode(value)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValidationError(f"string is not valid Unicode (lone surrogate): {e}") from e


def decode(text: str | bytes) -> Any:
    """Decode JSON text produced by :func:`encode`."""
    if not isinstance(text, str):
        text = text.decode("utf-8")
    # canonical text has no surrounding whitespace: scan it directly (the
    # general decode() first matches whitespace at both ends)
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        return _decoder.decode(text)  # raises the JSONDecodeError
    if end != len(text):
        return _decoder.decode(text)
    return value


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values as every engine sees it.

    Numbers compare by value (``1 == 1.0``), but booleans are not numbers
    (``True != 1``), and containers compare element-wise.
    """
    ta, tb = type(a), type(b)
    if ta is bool or tb is bool:
        return ta is tb and a == b
    if ta in (int, float) and tb in (int, float):
        return bool(a == b)
    if ta is not tb:
        return False
    if ta is list:
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if ta is dict:
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def as_mapping(value: Any, what: str) -> Mapping[str, Any]:
    """Return ``value`` if it is a dict, else raise ValidationError."""
    if not isinstance(value, dict):
        raise ValidationError(f"{what} must be a dict, got {type(value).__name__}")
    return value
