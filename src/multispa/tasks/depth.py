"""Depth perception family (spec §4.1, §5.3; rules 8a, 8e): one ScanNet image per record.

Subtasks:

- ``depth_estimation_dot`` / ``depth_estimation_coord``: one visible vertex, marked by a dot or
  referenced by its normalised coordinate; the answer is its camera-frame depth
  ``r(1000·z)`` mm, computed from the mesh vertex and the aligned pose (not the sensor).
- ``depth_comparison_dot`` / ``depth_comparison_coord``: two distinct visible vertices with a
  depth gap ``>= max(0.1 m, 0.05·max(z_A, z_B))`` and a pixel separation ``>= 0.05·W`` (rule 8e,
  up to 20 attempts); ``closer`` or ``farther`` is asked with probability ½; the answer is the
  letter (dot, letters assigned at random) or the coordinate of the chosen point (coord, random
  order of mention).

Planning: per subtask, images are drawn by :func:`multispa.tasks.sampling.depth_image_quota` over
the split's scenes, counting only kept frames with at least one visible vertex. Selections hold
``frames=(frame,)`` and no ``extra``.

Marked points lie at least one marker radius from the border (spec §4.0); coordinate-referenced
points only need to be visible (hence in bounds).

This module also holds :class:`SceneFrames`, the per-unit access to visible-vertex projections
and decoded frames shared with the correspondence family.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from multispa.cache.files import read_npy
from multispa.cache.scannet_cache import ScanNetCache, load_scannet_cache
from multispa.errors import CacheError
from multispa.geometry.camera import project_points
from multispa.geometry.coords import pixels_to_norm1000
from multispa.geometry.transforms import apply_transform, invert_rigid
from multispa.tasks.answers import format_answer, format_coord, metres_to_mm
from multispa.tasks.base import CacheUnit, GenerateSettings, Selection, UnitContext, rng_for
from multispa.tasks.markers import choose_marker_colour, draw_dots, inside_margin, marker_radius
from multispa.tasks.records import build_record, record_id
from multispa.tasks.sampling import depth_image_quota
from multispa.tasks.templates import SUBTASKS, render_prompt

__all__ = [
    "COMPARISON_ATTEMPTS",
    "MIN_DEPTH_GAP_M",
    "MIN_SEPARATION_FRACTION",
    "REL_DEPTH_GAP",
    "DepthFamily",
    "FrameView",
    "SceneFrames",
    "comparison_pair_ok",
    "generate_in_frame_order",
    "valid_frames",
]

#: Rule 8e: minimum absolute depth gap, metres.
MIN_DEPTH_GAP_M = 0.1
#: Rule 8e: minimum depth gap relative to the farther point's depth.
REL_DEPTH_GAP = 0.05
#: Rule 8e (and 8f): minimum pixel separation as a fraction of the image width.
MIN_SEPARATION_FRACTION = 0.05
#: Attempts at drawing a valid comparison pair before the image is skipped.
COMPARISON_ATTEMPTS = 20
#: Decoded frames kept in memory per unit (selections are processed in frame order).
_IMAGE_SLOTS = 4
_VIEW_SLOTS = 8


@dataclass(frozen=True)
class FrameView:
    """The visible vertices of one kept frame, projected into its colour image.

    Attributes:
        frame: original frame index.
        position: row in the cache's kept-frame arrays.
        vertex: ``(K,)`` int32 visible vertex indices, ascending (``V_i``).
        uv_px: ``(K, 2)`` float64 colour-image pixel coordinates ``(u, v)``.
        z_m: ``(K,)`` float64 camera-frame depth, metres (from the mesh vertex).
    """

    frame: int
    position: int
    vertex: np.ndarray
    uv_px: np.ndarray
    z_m: np.ndarray


class SceneFrames:
    """Per-unit access to a ScanNet scene cache for point-sampling families.

    Holds the memory-mapped cache, maps original frame indices to positions, and keeps small LRU
    caches of :class:`FrameView` and of decoded colour frames (``(H, W, 3)`` uint8, read-only).
    """

    def __init__(self, unit: CacheUnit) -> None:
        self.unit = unit
        self.cache: ScanNetCache = load_scannet_cache(unit.path)
        intrinsics = self.cache.color_intrinsics
        self.intrinsics = intrinsics
        self.width = int(intrinsics.width)
        self.height = int(intrinsics.height)
        self.radius = marker_radius(self.width, "scannet")
        self._position = {int(f): i for i, f in enumerate(self.cache.frame_index.tolist())}
        self._views: OrderedDict[int, FrameView] = OrderedDict()
        self._images: OrderedDict[int, np.ndarray] = OrderedDict()

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the colour frames, pixels."""
        return self.width, self.height

    @property
    def min_separation_px(self) -> float:
        """``0.05·W`` pixels (rules 8e, 8f)."""
        return MIN_SEPARATION_FRACTION * self.width

    def position(self, frame: int) -> int:
        """Kept-frame row of original frame ``frame``; CacheError if the cache lacks it."""
        try:
            return self._position[int(frame)]
        except KeyError:
            raise CacheError(
                f"{self.unit.path / 'frame_index.npy'}: frame {frame} is not a kept frame of "
                f"{self.unit.unit_id} (selection and cache disagree)"
            ) from None

    def project(self, frame: int, vertex: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project mesh vertices into ``frame``'s colour image.

        Args:
            frame: original frame index.
            vertex: ``(N,)`` vertex indices.

        Returns:
            ``uv_px`` ``(N, 2)`` float64 pixels and ``z_m`` ``(N,)`` float64 camera-frame depth.
        """
        world_from_cam = np.asarray(self.cache.world_from_cam[self.position(frame)])
        points_world = np.asarray(self.cache.vertices[np.asarray(vertex, dtype=np.int64)])
        points_cam = apply_transform(invert_rigid(world_from_cam), points_world)
        return project_points(points_cam, self.intrinsics)

    def view(self, frame: int) -> FrameView:
        """The visible vertices of ``frame`` with their projections (LRU-cached)."""
        frame = int(frame)
        if frame in self._views:
            self._views.move_to_end(frame)
            return self._views[frame]
        position = self.position(frame)
        vertex = self.cache.visible_vertex_indices(position)
        uv_px, z_m = self.project(frame, vertex)
        view = FrameView(frame, position, vertex, uv_px, z_m)
        self._views[frame] = view
        if len(self._views) > _VIEW_SLOTS:
            self._views.popitem(last=False)
        return view

    def image(self, frame: int) -> np.ndarray:
        """Decoded colour frame ``(H, W, 3)`` uint8 (read-only; LRU-cached)."""
        frame = int(frame)
        if frame in self._images:
            self._images.move_to_end(frame)
            return self._images[frame]
        path = self.cache.image_path(frame)
        try:
            with Image.open(path) as handle:
                pixels = np.asarray(handle.convert("RGB"))
        except OSError as error:
            raise CacheError(f"{path}: cannot decode the cached colour frame ({error})") from None
        if pixels.shape[:2] != (self.height, self.width):
            raise CacheError(
                f"{path}: image is {pixels.shape[1]}x{pixels.shape[0]}, colour intrinsics say "
                f"{self.width}x{self.height}"
            )
        pixels.flags.writeable = False
        self._images[frame] = pixels
        if len(self._images) > _IMAGE_SLOTS:
            self._images.popitem(last=False)
        return pixels

    def annotate(
        self,
        frame: int,
        points_px: np.ndarray,
        rng: np.random.Generator,
        labels: Sequence[str] | None = None,
    ) -> tuple[str, Image.Image]:
        """Choose a contrasting palette colour and draw the dots on a copy of ``frame``.

        Args:
            frame: original frame index.
            points_px: ``(N, 2)`` pixel coordinates of the dots.
            rng: the record's generator (one draw for the colour choice).
            labels: letters beside the dots, or None.

        Returns:
            the colour word and the annotated RGB image.
        """
        pixels = self.image(frame)
        colour = choose_marker_colour(pixels, points_px, self.radius, rng)
        drawn = draw_dots(Image.fromarray(pixels), points_px, colour.rgb, self.radius, labels)
        return colour.name, drawn


def valid_frames(unit: CacheUnit) -> np.ndarray:
    """Original indices ``(F_valid,)`` int64 of the unit's kept frames with ``|V_i| >= 1``."""
    frame_index = read_npy(unit.path / "frame_index.npy")
    counts = read_npy(unit.path / "visible_counts.npy")
    if frame_index.shape != counts.shape:
        raise CacheError(
            f"{unit.path}: frame_index.npy has shape {frame_index.shape} but visible_counts.npy "
            f"has {counts.shape}"
        )
    return np.asarray(frame_index[np.asarray(counts) > 0], dtype=np.int64)


def comparison_pair_ok(
    uv_px: np.ndarray, z_m: np.ndarray, min_separation_px: float
) -> bool:
    """Rule 8e for two points: depth gap and pixel separation.

    Args:
        uv_px: ``(2, 2)`` pixel coordinates of the two points.
        z_m: ``(2,)`` camera-frame depths, metres.
        min_separation_px: ``0.05·W``.
    """
    gap_m = abs(float(z_m[0]) - float(z_m[1]))
    needed_m = max(MIN_DEPTH_GAP_M, REL_DEPTH_GAP * max(float(z_m[0]), float(z_m[1])))
    separation_px = float(np.hypot(*(np.asarray(uv_px[0]) - np.asarray(uv_px[1]))))
    return gap_m >= needed_m and separation_px >= min_separation_px


def generate_in_frame_order(
    selections: Sequence[Selection], make: Callable[[Selection], dict[str, Any] | None]
) -> Iterator[dict[str, Any]]:
    """Run ``make`` over selections sorted by frames (decoded-image reuse), yield in input order.

    Each record depends only on its own selection (per-record RNG), so the processing order does
    not change any record.
    """
    order = sorted(range(len(selections)), key=lambda i: (selections[i].frames, i))
    made: dict[int, dict[str, Any]] = {}
    for i in order:
        record = make(selections[i])
        if record is not None:
            made[i] = record
    for i in range(len(selections)):
        if i in made:
            yield made[i]


class DepthFamily:
    """Depth estimation and comparison on single ScanNet frames (spec §4.1)."""

    family: ClassVar[str] = "depth"
    subtasks: ClassVar[tuple[str, ...]] = (
        "depth_estimation_dot",
        "depth_estimation_coord",
        "depth_comparison_dot",
        "depth_comparison_coord",
    )
    dataset: ClassVar[str] = "scannet"

    def plan(
        self,
        split: str,
        units: Sequence[CacheUnit],
        quotas: Mapping[str, int | None],
        seed: int,
        settings: GenerateSettings,
    ) -> tuple[list[Selection], dict[str, int]]:
        """Images per subtask by the §5.3 quota (``None``: every valid image of the split)."""
        frames = [valid_frames(unit) for unit in units]
        counts = [int(f.size) for f in frames]
        selections: list[Selection] = []
        dropped: dict[str, int] = {}
        for subtask in self.subtasks:
            if subtask not in quotas:
                continue
            wanted = quotas[subtask]
            n = sum(counts) if wanted is None else int(wanted)
            rng = rng_for(seed, "plan", split, subtask)
            chosen = depth_image_quota(counts, n, rng)
            for unit, unit_frames, picks in zip(units, frames, chosen, strict=True):
                selections.extend(
                    Selection(subtask, unit.unit_id, (int(unit_frames[p]),)) for p in picks
                )
        return selections, dropped

    def generate(self, ctx: UnitContext, selections: Sequence[Selection]) -> Iterator[dict]:
        """Records of one unit's selections, in their order (skips counted in ``ctx``)."""
        if not selections:
            return iter(())
        scene = SceneFrames(ctx.unit)

        def make(selection: Selection) -> dict[str, Any] | None:
            if selection.subtask.startswith("depth_estimation"):
                return _estimation(ctx, scene, selection)
            if selection.subtask.startswith("depth_comparison"):
                return _comparison(ctx, scene, selection)
            raise ValueError(f"DepthFamily: unknown subtask {selection.subtask!r}")

        return generate_in_frame_order(selections, make)


def _candidates(scene: SceneFrames, view: FrameView, marked: bool) -> np.ndarray:
    """Rows of ``view`` usable as a point: inside the marker margin when marked, else all."""
    if not marked:
        return np.arange(view.vertex.size)
    return np.flatnonzero(inside_margin(view.uv_px, scene.width, scene.height, scene.radius))


def _finish(
    ctx: UnitContext,
    scene: SceneFrames,
    selection: Selection,
    rng: np.random.Generator,
    *,
    uv_px: np.ndarray,
    gt: Any,
    fields: dict[str, str],
    labels: Sequence[str] | None,
    variant: str | None,
    meta: dict[str, Any],
) -> dict[str, Any]:
    """Id, image (annotated for dot subtasks), prompt and record of a one-image depth sample."""
    subtask = selection.subtask
    frame = selection.frames[0]
    points = [uv_px.tolist()]
    rid = record_id(
        split=ctx.split,
        subtask=subtask,
        source=ctx.unit.source,
        scene_or_clip=ctx.unit.name,
        frames=selection.frames,
        points=points,
        ask=variant,
    )
    if subtask.endswith("_dot"):
        colour, drawn = scene.annotate(frame, uv_px, rng, labels)
        image = ctx.write_annotated(rid, subtask, 0, drawn)
        if labels is None:
            fields = {**fields, "marker": colour}
    else:
        image = ctx.frame_image(frame)
    fields = {**fields, "answer": format_answer(SUBTASKS[subtask].answer_type, gt)}
    prompt = render_prompt(subtask, rng=rng, fields=fields, variant=variant, num_images=1)
    return build_record(
        record_id=rid,
        split=ctx.split,
        subtask=subtask,
        source=ctx.unit.source,
        scene_or_clip=ctx.unit.name,
        frames=selection.frames,
        images=[image],
        sizes=[scene.size],
        prompt=prompt,
        gt=gt,
        points=points,
        meta=meta,
    )


def _estimation(
    ctx: UnitContext, scene: SceneFrames, selection: Selection
) -> dict[str, Any] | None:
    """One vertex uniformly from ``V_i`` (inside the margin if marked); gt ``r(1000·z)`` mm."""
    rng = ctx.rng(selection)
    marked = selection.subtask.endswith("_dot")
    view = scene.view(selection.frames[0])
    rows = _candidates(scene, view, marked)
    if rows.size == 0:
        ctx.skip(f"{selection.subtask}:no_point_in_margin")
        return None
    row = int(rows[rng.integers(rows.size)])
    uv_px = view.uv_px[row : row + 1]
    depth_mm = metres_to_mm(float(view.z_m[row]))
    fields: dict[str, str] = {}
    if not marked:
        x, y = pixels_to_norm1000(uv_px[0], scene.width, scene.height).tolist()
        fields["point"] = format_coord(x, y)
    meta = {"depth_mm": [depth_mm], "vertex": [int(view.vertex[row])]}
    return _finish(ctx, scene, selection, rng, uv_px=uv_px, gt=depth_mm, fields=fields,
                   labels=None, variant=None, meta=meta)


def _comparison(
    ctx: UnitContext, scene: SceneFrames, selection: Selection
) -> dict[str, Any] | None:
    """Two vertices passing rule 8e (20 attempts); ask closer/farther; letters or mention order."""
    rng = ctx.rng(selection)
    marked = selection.subtask.endswith("_dot")
    view = scene.view(selection.frames[0])
    rows = _candidates(scene, view, marked)
    if rows.size < 2:
        ctx.skip(f"{selection.subtask}:no_valid_pair")
        return None
    pair: np.ndarray | None = None
    for _ in range(COMPARISON_ATTEMPTS):
        attempt = rows[rng.choice(rows.size, size=2, replace=False)]
        if comparison_pair_ok(view.uv_px[attempt], view.z_m[attempt], scene.min_separation_px):
            pair = attempt
            break
    if pair is None:
        ctx.skip(f"{selection.subtask}:no_valid_pair")
        return None
    ask = "closer" if rng.random() < 0.5 else "farther"
    pair = pair[rng.permutation(2)]  # letter order (dot) or order of mention (coord)
    uv_px = view.uv_px[pair]
    z_m = view.z_m[pair]
    target = int(np.argmin(z_m)) if ask == "closer" else int(np.argmax(z_m))
    meta = {
        "ask": ask,
        "depth_mm": [metres_to_mm(float(z)) for z in z_m],
        "vertex": [int(v) for v in view.vertex[pair]],
    }
    if marked:
        return _finish(ctx, scene, selection, rng, uv_px=uv_px, gt="AB"[target], fields={},
                       labels=["A", "B"], variant=ask, meta=meta)
    xy = pixels_to_norm1000(uv_px, scene.width, scene.height).tolist()
    fields = {"point_a": format_coord(*xy[0]), "point_b": format_coord(*xy[1])}
    return _finish(ctx, scene, selection, rng, uv_px=uv_px, gt=[int(v) for v in xy[target]],
                   fields=fields, labels=None, variant=ask, meta=meta)
