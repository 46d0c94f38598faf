"""Run the doctests of every multispa.geometry module (they document exact integer examples)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "transforms",
    "camera",
    "coords",
    "visibility",
    "overlap",
    "angles",
    "boxes",
    "coverage",
    "rigid",
    "static_poses",
    "view_coverage",
    "proximity",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(f"multispa.geometry.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0
    if name != "visibility":
        assert result.attempted > 0
