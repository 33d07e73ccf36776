"""``roomactors.actors.__all__`` lists exactly the public names (anyio's habit)."""

from __future__ import annotations

import types

import roomactors.actors as actors


def test_all_is_complete_and_resolvable() -> None:
    public = {
        name
        for name, value in vars(actors).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and name != "annotations"
    }
    assert set(actors.__all__) == public
    assert len(actors.__all__) == len(set(actors.__all__))
