"""The public API: every name a submodule exports publicly is in its package's
``__all__``, and every name in ``__all__`` exists (as anyio checks its own)."""

from __future__ import annotations

import importlib
import logging

import pytest

PACKAGES = ["roomactors", "roomactors.engineio", "roomactors.socketio", "roomactors.actors", "roomactors.web"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_exist_and_are_reexported(name: str) -> None:
    module = importlib.import_module(name)
    assert isinstance(module.__all__, tuple | list)
    missing = [attr for attr in module.__all__ if not hasattr(module, attr)]
    assert not missing
    reexported = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_") and getattr(value, "__module__", "").startswith("roomactors.")
    }
    assert reexported <= set(module.__all__), reexported - set(module.__all__)


def test_the_library_does_not_configure_logging() -> None:
    importlib.import_module("roomactors")
    handlers = logging.getLogger("roomactors").handlers
    assert [type(h) for h in handlers] == [logging.NullHandler]
    assert not logging.getLogger().handlers or all(
        type(h).__module__.startswith("_pytest") for h in logging.getLogger().handlers
    )
