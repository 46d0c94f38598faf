"""The planning prologue every task family shares (stage 1 of ``multispa.tasks.base``).

Before its own eligibility rules and samplers, each family's :meth:`TaskFamily.plan
<multispa.tasks.base.TaskFamily.plan>` does the same things:

- keeps the family's subtasks that ``quotas`` names, in the family's order (nothing named:
  nothing planned, no cache read);
- compiles their templates, so that a bad template file fails before any generation;
- reads the units in ``unit_id`` order (the order the pipeline passes them in, made explicit so
  that a plan never depends on its caller's order);
- draws each subtask's pooled selection from ``rng_for(seed, "plan", split, subtask)``.

:class:`PlannedFamily` does this once in ``plan`` and hands the result, a :class:`PlanRequest`,
to the family's :meth:`PlannedFamily.plan_selections`, which holds the family's own logic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from multispa.tasks.base import CacheUnit, GenerateSettings, Selection, rng_for
from multispa.tasks.templates import compiled_templates

__all__ = ["PlanRequest", "PlannedFamily", "prepare_plan"]


@dataclass(frozen=True)
class PlanRequest:
    """One family's planning inputs for a split, after the common prologue.

    Attributes:
        split: ``"train"`` or ``"val"``.
        units: the split's cache units of the family's dataset, sorted by ``unit_id``.
        subtasks: the family's subtasks named in ``quotas``, in the family's order; their
            templates compile.
        quotas: records wanted per subtask (None: no cap).
        seed: master seed.
        settings: family options.
    """

    split: str
    units: list[CacheUnit]
    subtasks: list[str]
    quotas: Mapping[str, int | None]
    seed: int
    settings: GenerateSettings

    @property
    def benchmark(self) -> bool:
        """True for the val split (benchmark-mode parameters, docs/labels.md#benchmark-pool)."""
        return self.split == "val"

    def rng(self, subtask: str) -> np.random.Generator:
        """The subtask's pooled planning generator: ``rng_for(seed, "plan", split, subtask)``."""
        return rng_for(self.seed, "plan", self.split, subtask)


def prepare_plan(
    subtasks: Sequence[str],
    split: str,
    units: Sequence[CacheUnit],
    quotas: Mapping[str, int | None],
    seed: int,
    settings: GenerateSettings,
) -> PlanRequest:
    """The common prologue: wanted subtasks (templates compiled) and units in ``unit_id`` order.

    Args:
        subtasks: all subtasks of the family, in its order.
        split, units, quotas, seed, settings: as given to ``TaskFamily.plan``.

    Raises:
        ConfigError: a wanted subtask's template file is malformed (ValueError: a wanted
            subtask is not a known subtask name).
    """
    wanted = [subtask for subtask in subtasks if subtask in quotas]
    for subtask in wanted:  # a bad template file fails here, before any generation
        compiled_templates(subtask)
    ordered = sorted(units, key=lambda unit: unit.unit_id)
    return PlanRequest(split, ordered, wanted, quotas, seed, settings)


class PlannedFamily:
    """Base of the task families: :meth:`plan` runs the prologue, then the family's rules."""

    family: ClassVar[str]
    subtasks: ClassVar[tuple[str, ...]]
    dataset: ClassVar[str]  # "scannet" or "tapvid3d": which cache units it reads

    def plan(
        self,
        split: str,
        units: Sequence[CacheUnit],
        quotas: Mapping[str, int | None],
        seed: int,
        settings: GenerateSettings,
    ) -> tuple[list[Selection], dict[str, int]]:
        """``TaskFamily.plan``: :func:`prepare_plan`, then :meth:`plan_selections`.

        Nothing is planned (and no cache is read) when ``quotas`` names none of the subtasks.
        """
        request = prepare_plan(self.subtasks, split, units, quotas, seed, settings)
        if not request.subtasks:
            return [], {}
        return self.plan_selections(request)

    def plan_selections(self, request: PlanRequest) -> tuple[list[Selection], dict[str, int]]:
        """The family's own planning of ``request.subtasks`` (see ``TaskFamily.plan``)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement plan_selections")
