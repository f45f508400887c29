"""A backend module whose driver is not installed (for the missing-extra test)."""

import stateport_driver_that_is_not_installed  # type: ignore[import-not-found]  # noqa: F401


async def open_backend(url: object) -> None:
    raise AssertionError("never reached")
