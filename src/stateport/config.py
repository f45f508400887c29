"""Where the store is: ``--url``, else ``STATEPORT_URL``, else ``[storage] url`` in
``./stateport.toml``, else ``sqlite:///./.stateport/state.db``."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from .errors import ConfigError

__all__ = ["DEFAULT_URL", "ENV_VAR", "resolve_url"]

DEFAULT_URL: Final = "sqlite:///./.stateport/state.db"
ENV_VAR: Final = "STATEPORT_URL"
CONFIG_FILE: Final = "stateport.toml"


def resolve_url(
    explicit: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> tuple[str, str]:
    """Return ``(url, where it came from)`` by the precedence in the module doc."""
    if explicit is not None:  # an empty string is a bad URL, not "use the default"
        return explicit, "--url"
    env = os.environ if environ is None else environ
    if env.get(ENV_VAR):
        return env[ENV_VAR], ENV_VAR
    path = Path(cwd if cwd is not None else Path.cwd()) / CONFIG_FILE
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"cannot read {path}: {e}") from e
        storage = data.get("storage")
        if storage is not None:
            url = storage.get("url") if isinstance(storage, dict) else None
            if not isinstance(url, str) or not url:
                raise ConfigError(
                    f'{path}: [storage] needs url = "..." (e.g. url = "sqlite:///./state.db")'
                )
            return url, str(path)
    return DEFAULT_URL, "default"
