"""The 12 rows of the paper's Table 2, the benchmark-subtask key and the paper's figures
(docs/metrics.md#table-2-rows, #reference-rows).

A row pools the items of its benchmark subtasks (``correct / items`` over all of them); the
Average is the unweighted mean of the 12 row accuracies. The reference figures are the paper's
printed accuracies in percent; the paper's benchmark items were never released, so they are a
reference level, not an exact target.

The nine N-view subtasks (:data:`NVIEW_SUBTASKS`, an extension beyond the paper) are in no row:
reports show them in a table of their own (:data:`NVIEW_NAMES`) with the **N-view average**, the
unweighted mean of their nine accuracies, beside the paper's 12 rows and Average, which they do
not change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from multispa.tasks.templates import BENCHMARK_SUBTASKS, NVIEW_SUBTASKS, SUBTASKS

__all__ = [
    "NVIEW_GROUP",
    "NVIEW_NAMES",
    "NVIEW_SUBTASKS",
    "OTHER_PUBLISHED_AVERAGES",
    "PAPER_SUBTASKS",
    "REFERENCE_AVERAGES",
    "REFERENCE_MODELS",
    "REFERENCE_NOTES",
    "REFERENCE_ROWS",
    "ROWS",
    "ROW_BY_KEY",
    "ROW_OF_SUBTASK",
    "Row",
    "benchmark_key",
]

_SOURCE_SUFFIX = {"tapvid3d/adt": "adt", "tapvid3d/pstudio": "pstudio"}


@dataclass(frozen=True)
class Row:
    """One row of Table 2.

    Attributes:
        key: stable snake_case id, e.g. ``"depth_comparison"``.
        name: the display name, e.g. ``"Depth Perception – Comparison"``.
        short_name: the paper's short form, e.g. ``"Depth – Comparison"``.
        subtasks: the benchmark-subtask keys pooled into the row.
    """

    key: str
    name: str
    short_name: str
    subtasks: tuple[str, ...]


def _object_movement(quantity: str) -> tuple[str, ...]:
    return tuple(
        f"object_movement_{quantity}_{ref}:{src}"
        for ref in ("coord", "dot")
        for src in ("adt", "pstudio")
    )


ROWS: tuple[Row, ...] = (
    Row("depth_comparison", "Depth Perception – Comparison", "Depth – Comparison",
        ("depth_comparison_dot", "depth_comparison_coord")),
    Row("depth_value", "Depth Perception – Value", "Depth – Value",
        ("depth_estimation_dot", "depth_estimation_coord")),
    Row("correspondence_coordinate", "Visual Correspondence – Coordinate",
        "Vis. Corr. – Coordinate", ("correspondence_coord",)),
    Row("correspondence_mcq", "Visual Correspondence – MCQ", "Vis. Corr. – MCQ",
        ("correspondence_mcq_dot",)),
    Row("camera_orientation_direction", "Camera Orientation – Direction",
        "Cam. Orient. – Direction", ("camera_yaw_direction", "camera_pitch_direction")),
    Row("camera_orientation_degree", "Camera Orientation – Degree", "Cam. Orient. – Degree",
        ("camera_yaw_degree", "camera_pitch_degree")),
    Row("camera_translation_direction", "Camera Translation – Direction",
        "Cam. Transl. – Direction",
        ("camera_x_direction", "camera_y_direction", "camera_z_direction")),
    Row("camera_translation_distance", "Camera Translation – Distance",
        "Cam. Transl. – Distance", ("camera_translation_distance",)),
    Row("camera_translation_vector", "Camera Translation – Vector", "Cam. Transl. – Vector",
        ("camera_translation_vector",)),
    Row("object_movement_distance", "Object Movement – Distance", "Obj. Mov. – Distance",
        _object_movement("distance")),
    Row("object_movement_vector", "Object Movement – Vector", "Obj. Mov. – Vector",
        _object_movement("vector")),
    Row("object_perception_size", "Object Perception – Size", "Obj. Perception – Size",
        ("object_size_height", "object_size_width", "object_size_length")),
)
ROW_BY_KEY: Mapping[str, Row] = MappingProxyType({row.key: row for row in ROWS})
ROW_OF_SUBTASK: Mapping[str, str] = MappingProxyType(
    {subtask: row.key for row in ROWS for subtask in row.subtasks}
)
#: The paper's 26 benchmark-subtask keys (those of the 12 rows), in canonical order.
PAPER_SUBTASKS: tuple[str, ...] = tuple(k for k in BENCHMARK_SUBTASKS if k not in NVIEW_SUBTASKS)
if sorted(ROW_OF_SUBTASK) != sorted(PAPER_SUBTASKS):  # pragma: no cover - table slip
    raise RuntimeError("metrics.rows: the 12 rows must cover the 26 benchmark-subtask keys")

#: Group id of the N-view keys where a row key is expected (e.g. VLMEvalKit's ``l2-category``).
NVIEW_GROUP = "nview"
#: Display names of the N-view subtasks, in table order.
NVIEW_NAMES: Mapping[str, str] = MappingProxyType({
    "nview_object_count": "Object count",
    "nview_object_abs_distance": "Object distance – Absolute",
    "nview_object_rel_distance": "Object distance – Relative",
    "nview_rel_direction_easy": "Relative direction – Easy",
    "nview_rel_direction_medium": "Relative direction – Medium",
    "nview_rel_direction_hard": "Relative direction – Hard",
    "nview_appearance_order": "Appearance order",
    "nview_camera_path_length": "Camera path length",
    "nview_nearest_view": "Nearest view",
})
if tuple(NVIEW_NAMES) != NVIEW_SUBTASKS:  # pragma: no cover - table slip
    raise RuntimeError("metrics.rows: NVIEW_NAMES must list the N-view subtasks in order")


def benchmark_key(record: Mapping[str, Any]) -> str:
    """The benchmark-subtask key: ``subtask``, or ``subtask:adt`` / ``subtask:pstudio`` for
    TAPVid-3D records (from ``meta.source`` ``"tapvid3d/adt"`` / ``"tapvid3d/pstudio"``).

    Raises:
        ValueError: an object-movement record whose ``meta.source`` is not a TAPVid-3D subset.
    """
    subtask = record["subtask"]
    spec = SUBTASKS.get(subtask)
    if spec is None or spec.family != "object_movement":
        return subtask
    source = (record.get("meta") or {}).get("source")
    suffix = _SOURCE_SUFFIX.get(source)  # type: ignore[arg-type]
    if suffix is None:
        raise ValueError(
            f"record {record.get('id')}: subtask {subtask} needs meta.source in "
            f"{sorted(_SOURCE_SUFFIX)}, found {source!r}"
        )
    return f"{subtask}:{suffix}"


# ------------------------------------------------------------------------ reference figures

REFERENCE_MODELS: tuple[str, ...] = ("Multi-SpatialMLLM", "InternVL2-8B", "GPT-4o")

_TABLE2: dict[str, tuple[float, ...]] = {  # in ROWS order, accuracy %
    "Multi-SpatialMLLM": (74.00, 75.33, 49.00, 90.00, 90.83, 45.50, 85.89, 42.33, 18.00, 40.42,
                          12.92, 49.11),
    "InternVL2-8B": (49.50, 3.34, 1.67, 33.33, 48.17, 3.34, 52.33, 14.33, 0.33, 8.84, 2.50,
                     27.45),
    "GPT-4o": (54.84, 22.50, 2.00, 67.67, 58.84, 17.50, 54.78, 13.67, 0.00, 8.92, 5.25, 40.44),
}
REFERENCE_ROWS: Mapping[str, Mapping[str, float]] = MappingProxyType({
    model: MappingProxyType(dict(zip((row.key for row in ROWS), values, strict=True)))
    for model, values in _TABLE2.items()
})
REFERENCE_AVERAGES: Mapping[str, float] = MappingProxyType(
    {"Multi-SpatialMLLM": 56.11, "InternVL2-8B": 20.43, "GPT-4o": 28.87}
)
OTHER_PUBLISHED_AVERAGES: Mapping[str, float] = MappingProxyType({
    "InternVL2-26B": 21.36,
    "Claude-3.5-Sonnet": 27.50,
    "Gemini-2.0-Flash": 30.31,
    "SpatialRGPT": 16.24,
})
REFERENCE_NOTES: tuple[str, ...] = (
    "Reference rows are the paper's Table 2 (accuracy %); Multi-SpatialMLLM is InternVL2-8B "
    "with LLM LoRA.",
    "The paper's benchmark items were never released; the project regenerates its own, so "
    "these figures are a reference level, not an exact target.",
    "Other averages printed by the paper: InternVL2-26B 21.36, Claude-3.5-Sonnet 27.50, "
    "Gemini-2.0-Flash 30.31.",
    "SpatialRGPT is printed as 16.24, but the mean of its printed rows is 19.23.",
)
