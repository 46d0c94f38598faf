"""The planning prologue shared by the task families (multispa.tasks.planning)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from multispa.tasks import registry
from multispa.tasks.base import CacheUnit, GenerateSettings, Selection, rng_for
from multispa.tasks.planning import PlannedFamily, PlanRequest, prepare_plan
from multispa.tasks.templates import FAMILIES


def _units(tmp_path: Path) -> list[CacheUnit]:
    names = ["scannet/scene0002_00", "scannet/scene0000_00", "scannet/scene0001_00"]
    return [CacheUnit(name, tmp_path / name, "train") for name in names]


class _Recording(PlannedFamily):
    """A family that records the requests it is given and plans one selection per unit."""

    family: ClassVar[str] = "camera_movement"
    subtasks: ClassVar[tuple[str, ...]] = ("camera_x_direction", "camera_y_direction")
    dataset: ClassVar[str] = "scannet"

    def __init__(self) -> None:
        self.requests: list[PlanRequest] = []

    def plan_selections(self, request: PlanRequest) -> tuple[list[Selection], dict[str, int]]:
        self.requests.append(request)
        chosen = [Selection(s, u.unit_id, (0, 5)) for s in request.subtasks for u in request.units]
        return chosen, {"camera_x_direction:dead_zone": 2}


def test_prepare_plan_keeps_family_order_and_sorts_units(tmp_path: Path) -> None:
    units = _units(tmp_path)
    quotas = {"camera_yaw_degree": None, "camera_x_direction": 4, "depth_estimation_dot": 1}
    order = ("camera_x_direction", "camera_y_direction", "camera_yaw_degree")
    request = prepare_plan(order, "val", units, quotas, 9, GenerateSettings())
    assert request.subtasks == ["camera_x_direction", "camera_yaw_degree"]
    assert [u.unit_id for u in request.units] == [
        "scannet/scene0000_00", "scannet/scene0001_00", "scannet/scene0002_00",
    ]
    assert units[0].unit_id == "scannet/scene0002_00"  # the input is not reordered
    assert request.benchmark and request.quotas is quotas and request.seed == 9
    # The pooled generator is rng_for(seed, "plan", split, subtask), fresh on every call.
    expected = rng_for(9, "plan", "val", "camera_yaw_degree").integers(0, 2**32, 4)
    assert np.array_equal(request.rng("camera_yaw_degree").integers(0, 2**32, 4), expected)
    assert np.array_equal(request.rng("camera_yaw_degree").integers(0, 2**32, 4), expected)
    other = request.rng("camera_x_direction").integers(0, 2**32, 4)
    assert not np.array_equal(other, expected)


def test_prepare_plan_checks_templates_of_wanted_subtasks_only(tmp_path: Path) -> None:
    units = _units(tmp_path)
    settings = GenerateSettings()
    # An unknown name that is not wanted is never compiled ...
    request = prepare_plan(("camera_x_direction", "no_such_subtask"), "train", units,
                           {"camera_x_direction": 1}, 0, settings)
    assert request.subtasks == ["camera_x_direction"] and not request.benchmark
    # ... a wanted one fails before any planning.
    with pytest.raises(ValueError, match="no_such_subtask"):
        prepare_plan(("no_such_subtask",), "train", units, {"no_such_subtask": 1}, 0, settings)


def test_planned_family_runs_the_prologue_then_its_own_rules(tmp_path: Path) -> None:
    family = _Recording()
    units = _units(tmp_path)
    selections, dropped = family.plan(
        "train", units, {"camera_y_direction": 3}, 4, GenerateSettings()
    )
    assert [s.unit_id for s in selections] == sorted(u.unit_id for u in units)
    assert {s.subtask for s in selections} == {"camera_y_direction"}
    assert dropped == {"camera_x_direction:dead_zone": 2}
    assert len(family.requests) == 1 and family.requests[0].split == "train"
    # No subtask of the family in the quotas: nothing planned, the family is not called.
    assert family.plan("train", units, {"depth_estimation_dot": 3}, 4, GenerateSettings()) == (
        [], {},
    )
    assert len(family.requests) == 1


def test_every_family_uses_the_shared_prologue() -> None:
    for name in FAMILIES:
        family = registry.family(name)
        assert isinstance(family, PlannedFamily)
        assert type(family).plan is PlannedFamily.plan  # only plan_selections is its own
        assert type(family).plan_selections is not PlannedFamily.plan_selections
        # Nothing wanted: no cache is read (the units do not exist).
        missing = [CacheUnit(f"{family.dataset}/x", Path("/nonexistent/x"), "train")]
        assert family.plan("train", missing, {}, 0, GenerateSettings()) == ([], {})
