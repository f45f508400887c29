from __future__ import annotations

import pytest

# the conformance kit's asserts explain their failures as the tests' own do
pytest.register_assert_rewrite("stateport.testing")


@pytest.fixture(autouse=True)
def _isolated_cwd(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never let a test touch the developer's ./.stateport or stateport.toml."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    monkeypatch.delenv("STATEPORT_URL", raising=False)
