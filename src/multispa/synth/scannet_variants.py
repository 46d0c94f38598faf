"""Real-download pitfalls built into the synthetic ScanNet data (rules (m), (n), (o), (p)).

With ``SynthConfig.variants`` (the default), the synthetic dataset holds what the real ScanNet
downloads do and the plain scenes do not:

- **room 0** (``scene0000_00``, always a training scene) gets two furniture labels that share
  their NYU40 class in the label map (``table`` and ``coffee table``, as in ScanNet's own map)
  and two **thin objects in front of walls**: a shelf plank sticking out of a wall and a 3-cm
  coat-rack pole about 0.2 m in front of one (their outlines are depth edges);
- a **rescan** of room 0, ``scene0000_01`` (same room and objects, its own camera path, axis
  alignment and intrinsics, in the same split), written as an already **thinned**
  ``posed_images`` export: only every :data:`EXPORT_STRIDE`-th frame, renumbered 0, 1, 2… as
  upstream's exporter does, with no ``.sens``; its ``segGroups`` list is written twice (the
  second copy with new object ids), as in the real ``scene0217_00``;
- the label map ``scannetv2-labels.combined.tsv`` at the ScanNet root, in the real file's
  column layout, for every label the writer uses.

This module holds the data and the small writers; :mod:`multispa.synth.scannet_rescan` writes
the rescan.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from multispa.scenes.types import Intrinsics
from multispa.synth.scannet_writer import format_matrix, intrinsics_matrix, write_bytes_atomic

#: The room whose scene carries the variant objects and is rescanned.
RESCANNED_ROOM = 0
#: Rescan suffix of the variant scan (``scene0000_01``).
RESCAN_SUFFIX = "_01"
#: Frames kept by the thinned export (every 5th frame of the stream, renumbered).
EXPORT_STRIDE = 5
#: Labels required in the rescanned room: they share an NYU40 class (rule (n)).
AMBIGUOUS_PAIR: tuple[str, str] = ("table", "coffee table")
#: Thin objects in front of walls in the rescanned room (rule (p)).
THIN_ITEMS: tuple[str, str] = ("shelf", "coat rack")
LABEL_MAP_NAME = "scannetv2-labels.combined.tsv"

#: Raw label → (NYU40 id, NYU40 class) for every label the synthetic writer uses.
NYU40: Mapping[str, tuple[int, str]] = {
    "wall": (1, "wall"),
    "floor": (2, "floor"),
    "cabinet": (3, "cabinet"),
    "bed": (4, "bed"),
    "chair": (5, "chair"),
    "office chair": (5, "chair"),
    "sofa": (6, "sofa"),
    "table": (7, "table"),
    "coffee table": (7, "table"),
    "door": (8, "door"),
    "window": (9, "window"),
    "bookshelf": (10, "bookshelf"),
    "picture": (11, "picture"),
    "desk": (14, "desk"),
    "shelf": (15, "shelves"),
    "ceiling": (22, "ceiling"),
    "refrigerator": (24, "refridgerator"),
    "whiteboard": (30, "whiteboard"),
    "nightstand": (32, "night stand"),
    "tv stand": (39, "otherfurniture"),
    "coat rack": (39, "otherfurniture"),
    "trash can": (40, "otherprop"),
}
_LABEL_MAP_HEADER = ("id", "raw_category", "category", "count", "nyu40id", "nyu40class")


def room_variant(scene_index: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Required furniture labels and thin wall items of room ``scene_index`` (none but room 0)."""
    if scene_index == RESCANNED_ROOM:
        return AMBIGUOUS_PAIR, THIN_ITEMS
    return (), ()


def rescan_id(scene_id: str) -> str:
    """``scene0000_00`` → ``scene0000_01``."""
    return scene_id.rsplit("_", 1)[0] + RESCAN_SUFFIX


def label_map_tsv() -> str:
    """The label map in ``scannetv2-labels.combined.tsv``'s layout (tab-separated, header)."""
    lines = ["\t".join(_LABEL_MAP_HEADER)]
    for number, (raw, (nyu40_id, nyu40_class)) in enumerate(sorted(NYU40.items()), start=1):
        lines.append("\t".join([str(number), raw, raw, "1", str(nyu40_id), nyu40_class]))
    return "\n".join(lines) + "\n"


def write_label_map(scannet_root: Path) -> Path:
    """Write the label map at the ScanNet root; returns its path."""
    path = Path(scannet_root) / LABEL_MAP_NAME
    write_bytes_atomic(path, label_map_tsv().encode("utf-8"))
    return path


def duplicated_groups(payload: Mapping[str, object]) -> dict[str, object]:
    """An aggregation payload whose ``segGroups`` list is repeated once, the copies renumbered
    after the originals (``objectId`` and ``id``), as in the real ``scene0217_00``."""
    groups = list(payload["segGroups"])  # type: ignore[call-overload]
    offset = len(groups)
    copies = [
        {**group, "id": int(group["id"]) + offset, "objectId": int(group["objectId"]) + offset}
        for group in groups
    ]
    return {**payload, "segGroups": groups + copies}


def write_posed_frame(
    folder: Path,
    position: int,
    jpeg: bytes,
    depth_mm: np.ndarray,
    raw_world_from_cam: np.ndarray,
) -> list[Path]:
    """One ``posed_images`` frame: ``<position:05d>.jpg``, ``.png`` (16-bit mm) and ``.txt``
    (the raw camera-to-world pose, 4 rows; ``-inf`` for a lost pose)."""
    stem = folder / f"{position:05d}"
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(depth_mm, dtype=np.uint16)).save(buffer, format="PNG")
    rows = np.asarray(raw_world_from_cam, dtype=np.float64)
    pose = "".join(" ".join(repr(float(v)) for v in row) + "\n" for row in rows)
    paths = [stem.with_suffix(".jpg"), stem.with_suffix(".png"), stem.with_suffix(".txt")]
    write_bytes_atomic(paths[0], jpeg)
    write_bytes_atomic(paths[1], buffer.getvalue())
    write_bytes_atomic(paths[2], pose.encode("ascii"))
    return paths


def write_posed_intrinsic(folder: Path, color: Intrinsics) -> Path:
    """``intrinsic.txt``: the 4×4 **colour** intrinsics, one row per line."""
    numbers = format_matrix(intrinsics_matrix(color)).split()
    text = "".join(" ".join(numbers[4 * r : 4 * r + 4]) + "\n" for r in range(4))
    path = Path(folder) / "intrinsic.txt"
    write_bytes_atomic(path, text.encode("ascii"))
    return path


def exported_frames(num_frames: int) -> Sequence[int]:
    """Original indices of the frames a thinned export keeps: every :data:`EXPORT_STRIDE`-th."""
    return range(0, num_frames, EXPORT_STRIDE)
