"""Store URLs: ``memory://``, ``sqlite:///path.db?durability=full``, ...

Parsing is strict: an unknown parameter or a bad value is a :class:`ConfigError`
that names the parameter, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from .errors import ConfigError

__all__ = ["StoreURL", "parse_url"]

_PASSWORD = re.compile(r"(://[^:/@]*:)[^@/]*@")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``: the form shown in messages."""
    return _PASSWORD.sub(r"\1***@", url)


@dataclass
class StoreURL:
    """A parsed store URL whose parameters are consumed as a backend reads them."""

    raw: str
    scheme: str
    netloc: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    create: bool = True
    """Whether opening may create the store (False: a missing store is a ConfigError)."""

    def fail(self, message: str) -> ConfigError:
        """A ConfigError about this URL (for backends reading their parameters)."""
        return ConfigError(f"store URL {redact(self.raw)!r}: {message}")

    def take_str(self, name: str, default: str | None = None) -> str | None:
        return self.params.pop(name, default)

    def take_bool(self, name: str, default: bool) -> bool:
        value = self.params.pop(name, None)
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise self.fail(f"{name}={value!r} is not a boolean (use true or false)")

    def take_int(self, name: str, default: int, *, minimum: int = 0) -> int:
        value = self.params.pop(name, None)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            number = minimum - 1
        if number < minimum:
            raise self.fail(f"{name}={value!r} must be an integer >= {minimum}")
        return number

    def take_choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.params.pop(name, default)
        if value not in choices:
            raise self.fail(f"{name}={value!r} must be one of {', '.join(choices)}")
        return value

    def finish(self) -> None:
        """Raise for any parameter no one consumed."""
        if self.params:
            raise self.fail(f"unknown parameter(s): {', '.join(sorted(self.params))}")


def parse_url(url: str) -> StoreURL:
    """Split ``url`` into scheme, location and parameters (ConfigError if malformed)."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError("a store URL is required, e.g. sqlite:///./state.db or memory://")
    if "://" not in url:
        raise ConfigError(
            f"store URL {redact(url)!r} has no scheme: write it as scheme://..., "
            "e.g. sqlite:///./state.db or memory://"
        )
    try:
        parts = urlsplit(url)
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as e:
        raise ConfigError(f"store URL {redact(url)!r} is malformed: {e}") from e
    params: dict[str, str] = {}
    for k, v in pairs:
        if k in params:
            raise ConfigError(f"store URL {redact(url)!r}: parameter {k!r} given twice")
        params[k] = v
    return StoreURL(url, parts.scheme.lower(), parts.netloc, parts.path, params)
