"""Store URLs, backend selection and configuration precedence."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import stateport
from stateport import ConfigError
from stateport.backends import open_engine, register_backend
from stateport.config import DEFAULT_URL, resolve_url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "required"),
        ("state.db", "no scheme"),
        ("nope://x", "unknown scheme 'nope'"),
        ("sqlite://host/x.db", "no host"),
        ("sqlite://", "no database path"),
        ("sqlite:///x.db?durability=sometimes", "durability='sometimes'"),
        ("sqlite:///x.db?busy_timeout=-5", "busy_timeout"),
        ("sqlite:///x.db?busy_timeout=soon", "busy_timeout"),
        ("sqlite:///x.db?portable=maybe", "not a boolean"),
        ("sqlite:///x.db?durabilty=full", "unknown parameter(s): durabilty"),
        ("sqlite:///x.db?portable=true&portable=false", "given twice"),
        ("memory://somewhere", "takes no location"),
        ("memory://?colour=blue", "unknown parameter"),
    ],
)
def test_bad_urls_are_config_errors_and_create_nothing(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        asyncio.run(open_engine(url))
    assert not Path("x.db").exists()


def test_missing_driver_names_the_extra() -> None:
    register_backend("fakedb", "_backend_needing_a_driver:open_backend", extra="fakedb")
    with pytest.raises(ConfigError, match=r"pip install 'stateport\[fakedb\]'"):
        asyncio.run(open_engine("fakedb://x"))


def test_missing_backend_module_is_not_blamed_on_an_extra() -> None:
    register_backend("ghostdb", "stateport_no_such_backend_module:open", extra="ghost")
    with pytest.raises(ConfigError, match="cannot be imported") as info:
        asyncio.run(open_engine("ghostdb://x"))
    assert "pip install" not in str(info.value)


def test_registered_backend_module_without_the_function() -> None:
    register_backend("halfdb", "stateport.errors:no_such_opener")
    with pytest.raises(ConfigError, match="does not exist"):
        asyncio.run(open_engine("halfdb://x"))


def test_register_backend_validates() -> None:
    with pytest.raises(ConfigError):
        register_backend("bad scheme", "x:y")
    with pytest.raises(ConfigError):
        register_backend("ok", "no-colon")


def test_resolution_order(tmp_path: Path) -> None:
    (tmp_path / "stateport.toml").write_text('[storage]\nurl = "sqlite:///from-toml.db"\n')
    env = {"STATEPORT_URL": "memory://"}
    assert resolve_url("sqlite:///cli.db", environ=env, cwd=tmp_path) == (
        "sqlite:///cli.db",
        "--url",
    )
    assert resolve_url(None, environ=env, cwd=tmp_path) == ("memory://", "STATEPORT_URL")
    url, source = resolve_url(None, environ={}, cwd=tmp_path)
    assert url == "sqlite:///from-toml.db" and source.endswith("stateport.toml")
    assert resolve_url(None, environ={}, cwd=tmp_path / "elsewhere") == (DEFAULT_URL, "default")


def test_toml_without_storage_section_falls_back(tmp_path: Path) -> None:
    (tmp_path / "stateport.toml").write_text("[other]\nx = 1\n")
    assert resolve_url(None, environ={}, cwd=tmp_path) == (DEFAULT_URL, "default")


@pytest.mark.parametrize(
    "text", ["[storage\nurl=", "[storage]\nurl = 5\n", "[storage]\nbackend = 'sqlite'\n"]
)
def test_bad_toml_is_a_config_error(tmp_path: Path, text: str) -> None:
    (tmp_path / "stateport.toml").write_text(text)
    with pytest.raises(ConfigError, match=r"stateport\.toml"):
        resolve_url(None, environ={}, cwd=tmp_path)


def test_open_uses_the_default_store_in_the_working_directory() -> None:
    async def main() -> None:
        async with stateport.open() as sp:
            assert sp.url == DEFAULT_URL
            await sp.items.put({"pk": "p", "sk": "s"})

    asyncio.run(main())
    assert Path(".stateport/state.db").is_file()


def test_open_reads_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STATEPORT_URL", f"sqlite:///{tmp_path}/env.db")

    async def main() -> None:
        async with stateport.open() as sp:
            assert sp.describe()["location"] == f"{tmp_path}/env.db"

    asyncio.run(main())


def test_passwords_never_appear_in_messages() -> None:
    import asyncio

    import stateport
    from stateport import ConfigError
    from stateport.url import redact

    secret = "s3cr3t-pw"
    assert redact(f"postgresql://user:{secret}@db:5432/x") == "postgresql://user:***@db:5432/x"
    assert redact("sqlite:///./a:b@c.db") == "sqlite:///./a:b@c.db"  # no netloc password
    for url in (
        f"postgresql://user:{secret}@db:5432/x?pool_max=0",
        f"postgresql://user:{secret}@db:5432/x?nonsense=1",
        f"nosuch://user:{secret}@db/x",
        f"postgresql://user:{secret}@db:5432/x?a=1&a=2",
    ):

        async def open_it(url: str = url) -> None:
            async with stateport.open(url):
                pass

        try:
            asyncio.run(open_it())
        except ConfigError as e:
            assert secret not in str(e), str(e)
        else:
            raise AssertionError(f"{url} opened")
