"""Scoring a candidate scan: how well its kept frames show objects in part (docs/labels.md#coverage)
and how many of its pairs of frames fall in the 6–35 % overlap band, as ``multispa prepare`` would
find them on low-resolution depth images of the room's boxes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from multispa.scenes.types import Intrinsics
from multispa.synth.raycast import BoxSet, render_view
from multispa.synth.scan_plan import STRUCTURAL_TARGETS
from multispa.synth.world import PlacedObject, assemble_boxes, index_parts


@dataclass(frozen=True)
class ScoreWorld:
    """What ``partial_view_score`` needs about the room's objects.

    Attributes:
        boxes: every object part as a box (``BoxSet``), for depth images.
        points: ``(P, 3)`` float64 mesh vertices (an even subsample of the objects' and of the
            room's), world, metres.
        owner: ``(P,)`` int64 position of each point's object in the object list, −1 for the
            room.
        along: ``(P, 3)`` float64 each point's coordinate along world z and its object's
            length and width axes (0 for the room), metres.
        need: ``(O,)`` int64 points that must be visible for the object to count as seen (the
            5 % object visibility rule on the subsample).
        sizes: ``(O, 3)`` float64 height, length and width, metres.
        askable: ``(O, 3)`` bool, whether a size question could be asked about that dimension
            (the label is unique, not a window, and both the dimension and the largest one are
            at least 0.1 m).
    """

    boxes: BoxSet
    points: np.ndarray
    owner: np.ndarray
    along: np.ndarray
    need: np.ndarray
    sizes: np.ndarray
    askable: np.ndarray


SCORE_POINTS = 30000
"""Most object mesh vertices used to score a candidate scan (as many again of the room's)."""


def score_world(
    objects: Sequence[PlacedObject], vertices: np.ndarray, vertex_object: np.ndarray
) -> ScoreWorld:
    """The ``ScoreWorld`` of placed objects whose mesh vertices ``(V, 3)`` belong to the
    objects at positions ``vertex_object`` ``(V,)`` (−1: the room)."""
    models = [obj.model for obj in objects]
    index = index_parts(models)
    world_from_objects = np.stack([obj.world_from_object for obj in objects])
    boxes = assemble_boxes(models, world_from_objects, index)
    own = np.flatnonzero(vertex_object >= 0)
    own = own[:: max(1, int(np.ceil(own.size / SCORE_POINTS)))]
    room = np.flatnonzero(vertex_object < 0)
    room = room[:: max(1, int(np.ceil(room.size / SCORE_POINTS)))]
    picked = np.concatenate([own, room])
    owner = np.where(vertex_object[picked] >= 0, vertex_object[picked], -1).astype(np.int64)
    points = np.asarray(vertices[picked], dtype=np.float64)
    axes = np.stack(
        [
            np.stack([np.array([0.0, 0.0, 1.0]), obj.world_from_object[:3, 0],
                      obj.world_from_object[:3, 1]])
            for obj in objects
        ]
    )  # fmt: skip
    along = np.einsum("pai,pi->pa", axes[np.maximum(owner, 0)], points) * (owner >= 0)[:, None]
    need = np.maximum(1, np.bincount(owner[owner >= 0], minlength=len(objects)) // 20)
    sizes = np.array([[o.model.height_m, o.model.length_m, o.model.width_m] for o in objects])
    counts = Counter(obj.model.label for obj in objects)
    unique = np.array(
        [counts[o.model.label] == 1 and o.model.label not in STRUCTURAL_TARGETS for o in objects]
    )
    askable = unique[:, None] & (sizes >= 0.1) & (sizes.max(axis=1, keepdims=True) >= 0.1)
    return ScoreWorld(boxes, points, owner, along, need, sizes, askable)


SCORE_DEPTH_SIZE = (80, 60)
"""Resolution of the depth images candidate scans are scored with (nominal ScanNet cameras)."""


def _score_cameras() -> tuple[Intrinsics, Intrinsics]:
    """Nominal ScanNet colour and depth cameras, at the scoring resolution."""
    width, height = SCORE_DEPTH_SIZE
    sx, sy = width / 640, height / 480
    depth = Intrinsics(577.6 * sx, 578.7 * sy, 319.0 * sx, 242.0 * sy, width, height)
    sx, sy = width / 1296, height / 968
    color = Intrinsics(1170.0 * sx, 1167.0 * sy, 647.0 * sx, 484.0 * sy, width, height)
    return color, depth


def view_extents(
    world: ScoreWorld, poses: np.ndarray, room_max: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Which objects each view sees and how far along each axis, as ``multispa prepare``
    would find them (docs/labels.md#visibility, #coverage) on a low-resolution depth image.

    Args:
        world: the objects (``score_world``).
        poses: ``(K, 4, 4)`` world_from_cam.
        room_max: ``(3,)`` room corner.

    Returns:
        ``seen`` ``(O, K)`` bool and ``lo``, ``hi`` ``(O, K, 3)`` float64 extents (metres,
        along z and each object's length and width axes; NaN where not seen), and the visible
        points ``(K, P)`` bool.
    """
    color, depth = _score_cameras()
    count = world.sizes.shape[0]
    visible = np.zeros((poses.shape[0], world.points.shape[0]), dtype=bool)
    seen = np.zeros((count, poses.shape[0]), dtype=bool)
    lo = np.full((count, poses.shape[0], 3), np.nan)
    hi = np.full((count, poses.shape[0], 3), np.nan)
    for k, pose in enumerate(poses):
        depth_m = render_view(pose, depth, world.boxes, np.zeros(3), room_max).depth_m
        cam = (world.points - pose[:3, 3]) @ pose[:3, :3]
        z = cam[:, 2]
        front = z > 1e-6
        x = np.where(front, cam[:, 0] / np.where(front, z, 1.0), 0.0)
        y = np.where(front, cam[:, 1] / np.where(front, z, 1.0), 0.0)
        u, v = x * color.fx + color.cx, y * color.fy + color.cy
        ok = front & (u >= 0) & (u < color.width) & (v >= 0) & (v < color.height)
        ud = np.floor(x * depth.fx + depth.cx + 0.5).astype(np.int64)
        vd = np.floor(y * depth.fy + depth.cy + 0.5).astype(np.int64)
        ok &= (ud >= 0) & (ud < depth.width) & (vd >= 0) & (vd < depth.height)
        index = np.flatnonzero(ok)
        measured = depth_m[vd[index], ud[index]].astype(np.float64)
        near = (measured > 0) & (
            np.abs(z[index] - measured) <= np.maximum(0.05, 0.05 * z[index])
        )
        index = index[near]
        visible[k, index] = True
        index = index[world.owner[index] >= 0]
        owner = world.owner[index]
        seen[:, k] = np.bincount(owner, minlength=count) >= world.need
        low = np.full((count, 3), np.inf)
        high = np.full((count, 3), -np.inf)
        np.minimum.at(low, owner, world.along[index])
        np.maximum.at(high, owner, world.along[index])
        lo[seen[:, k], k] = low[seen[:, k]]
        hi[seen[:, k], k] = high[seen[:, k]]
    return seen, lo, hi, visible


def covering_pair_counts(
    seen: np.ndarray, lo: np.ndarray, hi: np.ndarray, sizes: np.ndarray
) -> np.ndarray:
    """Minimal covering pairs (docs/labels.md#coverage, 90 %) per object and axis: ``(O, 3)`` int64.

    Args:
        seen: ``(O, K)`` bool; lo, hi: ``(O, K, 3)`` extents; sizes: ``(O, 3)`` box extents.
    """
    counts = np.zeros(sizes.shape, dtype=np.int64)
    for o in range(sizes.shape[0]):
        frames = np.flatnonzero(seen[o])
        if frames.size < 2:
            continue
        for a in range(3):
            low, high = lo[o, frames, a], hi[o, frames, a]
            need = 0.9 * sizes[o, a]
            alone = high - low >= need
            low, high = low[~alone], high[~alone]
            span = np.maximum(high[:, None], high[None]) - np.minimum(low[:, None], low[None])
            counts[o, a] = int(np.count_nonzero(np.triu(span >= need, 1)))
    return counts


BAND_SHARE = (0.3, 0.2)
"""Share of pairs of kept frames wanted in the 6–35 % overlap band (camera movement pairs), for
scans of 4 s or less and longer ones: about what the random walks this path replaced had."""


@dataclass(frozen=True)
class ScanScore:
    """How well the kept frames of a candidate scan suit the benchmark.

    Attributes:
        objects: ``(3,)`` int64 askable objects with a minimal covering pair, per dimension
            (height, length, width).
        pairs: ``(3,)`` int64 minimal covering pairs per dimension (at most 10 per object).
        band: share of the pairs of frames whose overlap (IoU of visible points,
        docs/labels.md#overlap) is
            in 6–35 %.
    """

    objects: np.ndarray
    pairs: np.ndarray
    band: float

    def value(self, band_share: float) -> float:
        """Above all (100 points each), every dimension having some object with a minimal
        covering pair; then up to 50 points for the band (full at ``band_share``), and up to 3
        such objects (2 points each) and 10 pairs (0.4 points each) per dimension."""
        return float(
            100.0 * np.count_nonzero(self.objects) + 2.0 * np.minimum(self.objects, 3).sum()
            + 0.4 * np.minimum(self.pairs, 10).sum() + 50.0 * min(self.band / band_share, 1.0)
        )  # fmt: skip

    def enough(self, objects: int, pairs: int, band_share: float) -> bool:
        """Whether every dimension has ``objects`` objects and ``pairs`` pairs, and the band
        ``band_share``."""
        return bool(
            np.all(self.objects >= objects) and np.all(self.pairs >= pairs)
            and self.band >= band_share
        )  # fmt: skip


def partial_view_score(world: ScoreWorld, poses: np.ndarray, room_max: np.ndarray) -> ScanScore:
    """Score views ``(K, 4, 4)`` (``ScanScore``)."""
    seen, lo, hi, visible = view_extents(world, poses, room_max)
    pairs = np.minimum(covering_pair_counts(seen, lo, hi, world.sizes), 10) * world.askable
    counts = visible.astype(np.float64)
    shared = counts @ counts.T
    sizes = counts.sum(axis=1)
    union = sizes[:, None] + sizes[None, :] - shared
    upper = np.triu(np.ones_like(shared, dtype=bool), 1) & (union > 0)
    overlap = 100.0 * shared[upper] / union[upper]
    band = np.count_nonzero((overlap >= 6.0) & (overlap <= 35.0)) / max(1, overlap.size)
    return ScanScore(np.count_nonzero(pairs, axis=0), pairs.sum(axis=0), float(band))
