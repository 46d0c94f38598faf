"""Family name → task family class (imported lazily), and the default quotas
(docs/labels.md#quotas)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from multispa.errors import ConfigError
from multispa.tasks.base import TaskFamily
from multispa.tasks.templates import FAMILIES, NVIEW_SUBTASKS, SUBTASKS

_CLASSES: Mapping[str, str] = {
    "depth": "multispa.tasks.depth:DepthFamily",
    "correspondence": "multispa.tasks.correspondence:CorrespondenceFamily",
    "camera_movement": "multispa.tasks.camera_movement:CameraMovementFamily",
    "object_movement": "multispa.tasks.object_movement:ObjectMovementFamily",
    "object_size": "multispa.tasks.object_size:ObjectSizeFamily",
    "nview": "multispa.tasks.nview:NViewFamily",
}

#: Training quotas: the upstream engine's; None = keep every candidate.
TRAIN_QUOTAS: Mapping[str, int | None] = {
    "depth_estimation_dot": 500_000,
    "depth_estimation_coord": 500_000,
    "depth_comparison_dot": 500_000,
    "depth_comparison_coord": 500_000,
    "correspondence_mcq_dot": 500_000,
    "correspondence_coord": 1_000_000,
    "camera_x_direction": 1_000_000,
    "camera_y_direction": 1_000_000,
    "camera_z_direction": 1_000_000,
    "camera_yaw_direction": 1_000_000,
    "camera_pitch_direction": 1_000_000,
    "camera_yaw_degree": 1_000_000,
    "camera_pitch_degree": 1_000_000,
    "camera_translation_distance": 3_000_000,
    "camera_translation_vector": 3_000_000,
    "object_movement_distance_coord": None,
    "object_movement_distance_dot": None,
    "object_movement_vector_coord": None,
    "object_movement_vector_dot": None,
    "object_size_height": None,
    "object_size_width": None,
    "object_size_length": None,
    # N-view: every eligible question up to the per-view-set caps (multispa.tasks.nview).
    **{name: None for name in NVIEW_SUBTASKS},
}

#: Benchmark-pool size per benchmark-subtask key (docs/labels.md#benchmark-pool); object movement:
#: per source.
VAL_QUOTA = 300


def family(name: str) -> TaskFamily:
    """Instantiate the family ``name``."""
    if name not in _CLASSES:
        raise ConfigError(f"unknown task family {name!r}; known: {', '.join(FAMILIES)}")
    module_name, class_name = _CLASSES[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)()


def resolve_tasks(names: list[str] | None) -> dict[str, list[str]]:
    """Family → selected subtasks, from family and/or subtask names (all when None)."""
    if not names:
        return {f: [s for s, spec in SUBTASKS.items() if spec.family == f] for f in FAMILIES}
    chosen: dict[str, list[str]] = {}
    for name in names:
        if name in FAMILIES:
            subtasks = [s for s, spec in SUBTASKS.items() if spec.family == name]
        elif name in SUBTASKS:
            subtasks = [name]
        else:
            raise ConfigError(
                f"unknown task {name!r}: give a family ({', '.join(FAMILIES)}) or a subtask name"
            )
        family_name = SUBTASKS[subtasks[0]].family
        chosen.setdefault(family_name, [])
        chosen[family_name] += [s for s in subtasks if s not in chosen[family_name]]
    return {f: sorted(chosen[f], key=list(SUBTASKS).index) for f in FAMILIES if f in chosen}
