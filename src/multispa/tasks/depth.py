"""Depth perception family (docs/labels.md#depth; rules (a), (e)): one ScanNet image per record.

Subtasks:

- ``depth_estimation_dot`` / ``depth_estimation_coord``: one visible vertex, marked by a dot or
  referenced by its normalised coordinate; the answer is its camera-frame depth
  ``r(1000·z)`` mm, computed from the mesh vertex and the aligned pose (not the sensor).
- ``depth_comparison_dot`` / ``depth_comparison_coord``: two distinct visible vertices with a
  depth gap ``>= max(0.1 m, 0.05·max(z_A, z_B))`` and a pixel separation ``>= 0.05·W`` (rule (e),
  up to 20 attempts); ``closer`` or ``farther`` is asked with probability ½; the answer is the
  letter (dot) or the coordinate of the chosen point (coord). Each attempt is two independent
  uniform draws, so the letter assignment (dot) and the order of mention (coord) are random.

Planning: per subtask, images are drawn by :func:`multispa.tasks.sampling.depth_image_quota` over
the split's scenes, counting only kept frames with at least one visible vertex. Selections hold
``frames=(frame,)`` and no ``extra``.

Every point is also off depth edges (rule (p): its depth pixel's 8 neighbours hold valid sensor
depths within the visibility tolerance of its depth, read from the cache's
``visibility_off_edge.npy``); candidates refused for this alone are counted as
``<subtask>:depth_edge``. Marked points lie at least one marker radius from the border
(docs/labels.md#markers); coordinate-referenced points only need to be visible (hence in bounds).

This module also holds what the correspondence family shares: :class:`SceneFrames` (per-unit
access to a scene cache: bit-packed visible sets, projections, decoded frames),
:class:`VisibleSet` (rank lookup in a bit-packed vertex set), :class:`UniformDraws` (uniform
draws from a visible set restricted by a rule, without projecting the whole set) and
:func:`generate_in_frame_order`.

Throughput notes: a record never unpacks or projects a frame's whole visible set. A uniform
visible vertex is the ``j``-th set bit of the frame's packed row for a uniform rank ``j``
(prefix popcounts), and rules such as the marker margin are applied by rejection, which keeps the
draw uniform over the vertices passing the rule; the exact set is enumerated only when rejection
keeps failing. Decoded frames are shared by all records of a unit that mark them, with the
eviction that is optimal for the known processing order
(:class:`multispa.tasks.markers.DecodedFrames`), and drawn on in place. Records are assembled by
:class:`multispa.tasks.records.RecordMaker` (template indices drawn from a hash of the seed and
the record id; the record's ``rng`` only samples points, the question and the marker colour).
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
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
from multispa.tasks.base import CacheUnit, Selection, UnitContext
from multispa.tasks.markers import DecodedFrames, inside_margin, marker_radius
from multispa.tasks.planning import PlannedFamily, PlanRequest
from multispa.tasks.records import FrameImages, RecordMaker, pixel_points
from multispa.tasks.sampling import depth_image_quota

__all__ = [
    "COMPARISON_ATTEMPTS",
    "MIN_DEPTH_GAP_M",
    "MIN_SEPARATION_FRACTION",
    "REL_DEPTH_GAP",
    "DepthFamily",
    "SceneFrames",
    "UniformDraws",
    "VisibleSet",
    "comparison_pairs_ok",
    "generate_in_frame_order",
    "valid_frames",
]

#: Rule (e): minimum absolute depth gap, metres.
MIN_DEPTH_GAP_M = 0.1
#: Rule (e): minimum depth gap relative to the farther point's depth.
REL_DEPTH_GAP = 0.05
#: Rule (e) (and (f)): minimum pixel separation as a fraction of the image width.
MIN_SEPARATION_FRACTION = 0.05
#: Attempts at drawing a valid comparison pair before the image is skipped.
COMPARISON_ATTEMPTS = 20
#: Decoded frames kept in memory per unit (about 3.8 MB each at 1296×968).
_IMAGE_SLOTS = 8
#: Visible sets kept in memory per unit (``2·ceil(P/64)`` words each).
_VISIBLE_SLOTS = 16
_BIT_SHIFTS = np.arange(64, dtype=np.uint64)


class VisibleSet:
    """A set of mesh vertices, bit-packed, with rank lookup (the visible set ``V_i`` of a frame).

    Vertex ``v`` is bit ``v & 63`` (least significant first) of word ``v >> 6``, as in the
    cache's ``visibility.npy``; "rank ``j``" is the ``j``-th vertex of the set in ascending order
    (0-based).

    Attributes:
        words: ``(W,)`` uint64 packed set (bits of vertices ``>= P`` cleared).
        cumulative: ``(W,)`` int64 inclusive prefix popcount of ``words``.
        count: number of vertices in the set.
    """

    def __init__(self, words: np.ndarray, num_vertices: int) -> None:
        packed = np.array(words, dtype=np.uint64).reshape(-1)
        tail = int(num_vertices) - 64 * (packed.size - 1)
        if packed.size and tail < 64:
            packed[-1] &= np.uint64((1 << max(tail, 0)) - 1)
        self.words = packed
        self.num_vertices = int(num_vertices)
        self.cumulative = np.cumsum(np.bitwise_count(packed), dtype=np.int64)
        self.count = int(self.cumulative[-1]) if packed.size else 0

    def vertices_at(self, ranks: np.ndarray) -> np.ndarray:
        """Vertex indices ``(N,)`` int64 of the given ranks ``(N,)`` (each in ``[0, count)``)."""
        ranks = np.asarray(ranks, dtype=np.int64).reshape(-1)
        word = np.searchsorted(self.cumulative, ranks, side="right")
        bits = (self.words[word][:, None] >> _BIT_SHIFTS) & np.uint64(1)
        seen = np.cumsum(bits, axis=1, dtype=np.int64)
        before = self.cumulative[word] - seen[:, -1]
        position = np.argmax(seen > (ranks - before)[:, None], axis=1)
        return word.astype(np.int64) * 64 + position

    def contains(self, vertex: np.ndarray) -> np.ndarray:
        """Membership ``(N,)`` bool of vertex indices ``(N,)`` (each in ``[0, P)``)."""
        vertex = np.asarray(vertex, dtype=np.int64)
        word = self.words[vertex >> 6]
        return ((word >> (vertex & 63).astype(np.uint64)) & np.uint64(1)).astype(bool)

    def vertices(self) -> np.ndarray:
        """All vertex indices ``(K,)`` int64, ascending."""
        bits = np.unpackbits(self.words.astype("<u8").view(np.uint8), bitorder="little")
        return np.flatnonzero(bits[: self.num_vertices]).astype(np.int64)

    def intersection(self, other: VisibleSet) -> VisibleSet:
        """Vertices in both sets."""
        return VisibleSet(self.words & other.words, self.num_vertices)

    def difference(self, other: VisibleSet) -> VisibleSet:
        """Vertices in this set and not in ``other``."""
        return VisibleSet(self.words & ~other.words, self.num_vertices)


class UniformDraws:
    """Independent uniform draws from ``{v in base : accept(v) and edge(v)}``, in a fixed order.

    Rejection sampling: batches of uniform ranks of ``base`` are drawn with ``rng``, the vertices
    ``accept`` or ``edge`` rejects are dropped, and the accepted ones are returned in draw order
    (each one is uniform over the accepted set, independently). Once ``max_draws`` ranks have
    been drawn, the accepted set is enumerated exactly and later draws come from it directly
    (still uniform); an empty accepted set ends the stream. The result is a function of ``rng``'s
    state and the sets only.

    ``edge`` is rule (p) (points off depth edges), kept apart from ``accept`` so that its
    rejections can be counted: :attr:`edge_rejections` is the number of drawn candidates that
    ``accept`` took and ``edge`` refused, among the draws up to the last one returned (what
    trying the candidates one by one would have rejected).

    Args:
        rng: the record's generator.
        base: the set to draw from.
        accept: ``(N,)`` int64 vertices → ``(N,)`` bool, or None to accept every vertex.
        edge: ``(N,)`` int64 vertices → ``(N,)`` bool, True when off depth edges, or None.
        batch: ranks drawn per rejection round (at least twice the number still needed).
        max_draws: ranks drawn by rejection before the exact enumeration.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        base: VisibleSet,
        accept: Callable[[np.ndarray], np.ndarray] | None = None,
        *,
        edge: Callable[[np.ndarray], np.ndarray] | None = None,
        batch: int = 16,
        max_draws: int = 512,
    ) -> None:
        self._rng = rng
        self._base = base
        self._accept = accept
        self._edge = edge
        self._batch = batch
        self._max_draws = max_draws
        self._drawn = 0
        self._exact: np.ndarray | None = None if base.count else np.zeros(0, dtype=np.int64)
        self.edge_rejections = 0

    def _passing(self, vertex: np.ndarray, needed: int) -> np.ndarray:
        """The first ``needed`` candidates of a batch that pass both rules, in draw order."""
        ok = self._accept(vertex) if self._accept is not None else np.ones(vertex.size, bool)
        if self._edge is not None:
            rows = np.flatnonzero(ok)
            off_edge = self._edge(vertex[rows])
            kept = rows[off_edge]
            end = int(kept[needed - 1]) if kept.size >= needed else vertex.size
            refused = rows[~off_edge]
            self.edge_rejections += int(np.searchsorted(refused, end))
            ok[refused] = False
        return vertex[ok][:needed]

    def take(self, n: int) -> np.ndarray:
        """The next ``n`` draws, ``(n,)`` int64 vertex indices; ``(0,)`` if the set is empty."""
        parts: list[np.ndarray] = []
        needed = n
        filtered = self._accept is not None or self._edge is not None
        while needed > 0:
            if self._exact is None and self._drawn >= self._max_draws:
                everything = self._base.vertices()
                if self._accept is not None:
                    everything = everything[self._accept(everything)]
                if self._edge is not None:
                    everything = everything[self._edge(everything)]
                self._exact = everything
            if self._exact is not None:
                if self._exact.size == 0:
                    return np.zeros(0, dtype=np.int64)
                parts.append(self._exact[self._rng.integers(self._exact.size, size=needed)])
                break
            size = max(self._batch, 2 * needed) if filtered else needed
            vertex = self._base.vertices_at(self._rng.integers(self._base.count, size=size))
            self._drawn += size
            if filtered:
                vertex = self._passing(vertex, needed)
            parts.append(vertex)
            needed -= vertex.size
        if len(parts) == 1:
            return parts[0]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


class SceneFrames:
    """Per-unit access to a ScanNet scene cache for point-sampling families.

    Holds the memory-mapped cache, maps original frame indices to positions, and keeps a small LRU
    cache of :class:`VisibleSet` and a cache of decoded colour frames (RGB Pillow images, shared:
    draw on them only through :meth:`annotated`) whose eviction follows :meth:`schedule` when
    given.
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
        self._vertices = np.asarray(self.cache.vertices)
        self._cam_from_world = invert_rigid(np.asarray(self.cache.world_from_cam))
        self._visible: OrderedDict[int, VisibleSet] = OrderedDict()
        self._off_edge: OrderedDict[int, VisibleSet] = OrderedDict()
        self.frames = DecodedFrames(
            self.cache.image_path, (self.width, self.height), self.radius, slots=_IMAGE_SLOTS
        )

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the colour frames, pixels."""
        return self.width, self.height

    @property
    def min_separation_px(self) -> float:
        """``0.05·W`` pixels (rules (e), (f))."""
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
        cam_from_world = self._cam_from_world[self.position(frame)]
        points_world = self._vertices[np.asarray(vertex, dtype=np.int64).reshape(-1)]
        return project_points(apply_transform(cam_from_world, points_world), self.intrinsics)

    def inside(self, frame: int, vertex: np.ndarray) -> np.ndarray:
        """Whether each vertex ``(N,)`` projects inside ``frame``'s marker margin: ``(N,)`` bool."""
        uv_px, _ = self.project(frame, vertex)
        return inside_margin(uv_px, self.width, self.height, self.radius)

    def visible(self, frame: int) -> VisibleSet:
        """The visible set ``V_i`` of ``frame`` (LRU-cached)."""
        return self._packed_set(self._visible, self.cache.visibility, frame)

    def off_edge(self, frame: int) -> VisibleSet:
        """The vertices of ``V_i`` off depth edges in ``frame`` (rule (p); LRU-cached)."""
        return self._packed_set(self._off_edge, self.cache.visibility_off_edge, frame)

    def _packed_set(
        self, slots: OrderedDict[int, VisibleSet], packed: np.ndarray, frame: int
    ) -> VisibleSet:
        frame = int(frame)
        found = slots.get(frame)
        if found is not None:
            slots.move_to_end(frame)
            return found
        found = VisibleSet(packed[self.position(frame)], self._vertices.shape[0])
        slots[frame] = found
        if len(slots) > _VISIBLE_SLOTS:
            slots.popitem(last=False)
        return found

    def schedule(self, uses: Sequence[Sequence[int]]) -> None:
        """Declare the frames each upcoming step decodes, in processing order (for eviction).

        With a schedule, the decoded frame evicted is the one needed again the latest (Belady's
        rule, optimal for a known sequence); without one, the least recently used.
        """
        self.frames.schedule(uses)

    def advance(self, step: int) -> None:
        """Mark the start of step ``step`` of the :meth:`schedule` (frames no longer needed are
        released)."""
        self.frames.advance(step)

    @property
    def decoded(self) -> int:
        """Frames decoded so far (for tests and benchmarks)."""
        return self.frames.decoded

    def image(self, frame: int) -> Image.Image:
        """Decoded colour frame, RGB, full resolution (cached and shared: do not modify it)."""
        return self.frames.image(frame)

    def annotated(
        self,
        frame: int,
        points_px: np.ndarray,
        rng: np.random.Generator,
        labels: Sequence[str] | None = None,
    ) -> contextlib.AbstractContextManager[tuple[str, Image.Image]]:
        """Choose a contrasting palette colour and draw the dots on ``frame``, within a block.

        See :meth:`multispa.tasks.markers.DecodedFrames.annotated`: the decoded frame itself is
        drawn on and restored when the block exits (save it inside the block).

        Args:
            frame: original frame index.
            points_px: ``(N, 2)`` pixel coordinates of the dots.
            rng: the record's generator (one draw for the colour choice).
            labels: letters beside the dots, or None.

        Yields:
            the colour word and the annotated RGB image.
        """
        return self.frames.annotated(frame, points_px, rng, labels)


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


def comparison_pairs_ok(
    uv_a_px: np.ndarray,
    uv_b_px: np.ndarray,
    z_a_m: np.ndarray,
    z_b_m: np.ndarray,
    min_separation_px: float,
) -> np.ndarray:
    """Rule (e) for ``N`` candidate pairs: depth gap and pixel separation.

    Args:
        uv_a_px, uv_b_px: ``(N, 2)`` pixel coordinates of each pair's two points.
        z_a_m, z_b_m: ``(N,)`` their camera-frame depths, metres.
        min_separation_px: ``0.05·W``.

    Returns:
        ``(N,)`` bool.
    """
    z_a, z_b = np.asarray(z_a_m, dtype=np.float64), np.asarray(z_b_m, dtype=np.float64)
    needed_m = np.maximum(MIN_DEPTH_GAP_M, REL_DEPTH_GAP * np.maximum(z_a, z_b))
    delta = np.asarray(uv_a_px, dtype=np.float64) - np.asarray(uv_b_px, dtype=np.float64)
    separation_px = np.hypot(delta[:, 0], delta[:, 1])
    return (np.abs(z_a - z_b) >= needed_m) & (separation_px >= min_separation_px)


def generate_in_frame_order(
    selections: Sequence[Selection],
    make: Callable[[Selection], dict[str, Any] | None],
    scene: SceneFrames | None = None,
) -> Iterator[dict[str, Any]]:
    """Run ``make`` over selections grouped by frames (decoded-frame reuse), yield in input order.

    Selections are processed sorted by their sorted frames (then frames, then input position);
    with ``scene``, the frames of the dot subtasks (the ones that decode) are declared to
    :meth:`SceneFrames.schedule`. Each record depends only on its own selection (per-record RNG),
    so the processing order does not change any record.
    """
    order = sorted(
        range(len(selections)),
        key=lambda i: (sorted(selections[i].frames), selections[i].frames, i),
    )
    if scene is not None:
        scene.schedule(
            [
                selections[i].frames if selections[i].subtask.endswith("_dot") else ()
                for i in order
            ]
        )
    made: dict[int, dict[str, Any]] = {}
    for step, i in enumerate(order):
        if scene is not None:
            scene.advance(step)
        record = make(selections[i])
        if record is not None:
            made[i] = record
    for i in range(len(selections)):
        if i in made:
            yield made[i]


class DepthFamily(PlannedFamily):
    """Depth estimation and comparison on single ScanNet frames."""

    family: ClassVar[str] = "depth"
    subtasks: ClassVar[tuple[str, ...]] = (
        "depth_estimation_dot",
        "depth_estimation_coord",
        "depth_comparison_dot",
        "depth_comparison_coord",
    )
    dataset: ClassVar[str] = "scannet"

    def plan_selections(self, request: PlanRequest) -> tuple[list[Selection], dict[str, int]]:
        """Images per subtask by the depth quota (docs/labels.md#depth-quotas; ``None``: every
        valid image of the split)."""
        frames = [valid_frames(unit) for unit in request.units]
        counts = [int(f.size) for f in frames]
        selections: list[Selection] = []
        dropped: dict[str, int] = {}
        for subtask in request.subtasks:
            wanted = request.quotas[subtask]
            n = sum(counts) if wanted is None else int(wanted)
            chosen = depth_image_quota(counts, n, request.rng(subtask))
            for unit, unit_frames, picks in zip(request.units, frames, chosen, strict=True):
                selections.extend(
                    Selection(subtask, unit.unit_id, (int(unit_frames[p]),)) for p in picks
                )
        return selections, dropped

    def generate(self, ctx: UnitContext, selections: Sequence[Selection]) -> Iterator[dict]:
        """Records of one unit's selections, in their order (skips counted in ``ctx``)."""
        if not selections:
            return iter(())
        scene = SceneFrames(ctx.unit)
        makers = RecordMakers(ctx)

        def make(selection: Selection) -> dict[str, Any] | None:
            if selection.subtask.startswith("depth_estimation"):
                return _estimation(ctx, scene, selection, makers)
            if selection.subtask.startswith("depth_comparison"):
                return _comparison(ctx, scene, selection, makers)
            raise ValueError(f"DepthFamily: unknown subtask {selection.subtask!r}")

        return generate_in_frame_order(selections, make, scene)


def _draws(
    scene: SceneFrames, frame: int, rng: np.random.Generator, marked: bool
) -> UniformDraws:
    """Uniform draws from ``V_i`` off depth edges (rule (p)), restricted to the marker margin
    when the points are marked."""
    accept = (lambda vertex: scene.inside(frame, vertex)) if marked else None
    return UniformDraws(rng, scene.visible(frame), accept, edge=scene.off_edge(frame).contains)


class RecordMakers(dict[str, RecordMaker]):
    """Per subtask, the :class:`~multispa.tasks.records.RecordMaker` of one unit (made on first
    use), and the unit's frame links (:class:`~multispa.tasks.records.FrameImages`)."""

    def __init__(self, ctx: UnitContext) -> None:
        super().__init__()
        self._ctx = ctx
        self.frame_image = FrameImages(ctx)

    def __missing__(self, subtask: str) -> RecordMaker:
        ctx = self._ctx
        maker = self[subtask] = RecordMaker(
            seed=ctx.seed, split=ctx.split, subtask=subtask, source=ctx.unit.source,
            scene_or_clip=ctx.unit.name,
        )
        return maker


def _finish(
    ctx: UnitContext,
    scene: SceneFrames,
    selection: Selection,
    rng: np.random.Generator,
    makers: RecordMakers,
    *,
    uv_px: np.ndarray,
    gt: Any,
    fields: dict[str, str],
    labels: Sequence[str] | None,
    variant: str | None,
    meta: dict[str, Any],
) -> dict[str, Any]:
    """Id, image (annotated for dot subtasks), prompt and record of a one-image depth sample.

    Template indices come from the record id (:class:`~multispa.tasks.records.RecordMaker`);
    ``rng`` is used only by the marker colour choice.
    """
    subtask = selection.subtask
    make = makers[subtask]
    frame = int(selection.frames[0])
    points = pixel_points([uv_px.tolist()])
    rid = make.ids([frame], points, ask=variant)
    if subtask.endswith("_dot"):
        with scene.annotated(frame, uv_px, rng, labels) as (colour, drawn):
            image = ctx.write_annotated(rid, subtask, 0, drawn)
        if labels is None:
            fields = {**fields, "marker": colour}
    else:
        image = makers.frame_image(frame)
    fields = {**fields, "answer": format_answer(make.spec.answer_type, gt)}
    return make(
        rid,
        frames=[frame],
        images=[image],
        width_list=[scene.width],
        height_list=[scene.height],
        fields=fields,
        gt=gt,
        points=points,
        meta=meta,
        variant=variant,
    )


def _estimation(
    ctx: UnitContext, scene: SceneFrames, selection: Selection, makers: RecordMakers
) -> dict[str, Any] | None:
    """One vertex uniformly from ``V_i`` (inside the margin if marked); gt ``r(1000·z)`` mm."""
    rng = ctx.rng(selection)
    marked = selection.subtask.endswith("_dot")
    frame = selection.frames[0]
    draws = _draws(scene, frame, rng, marked)
    vertex = draws.take(1)
    ctx.skip(f"{selection.subtask}:depth_edge", draws.edge_rejections)
    if vertex.size == 0:
        ctx.skip(f"{selection.subtask}:no_eligible_point")
        return None
    uv_px, z_m = scene.project(frame, vertex)
    depth_mm = metres_to_mm(float(z_m[0]))
    fields: dict[str, str] = {}
    if not marked:
        x, y = pixels_to_norm1000(uv_px[0], scene.width, scene.height).tolist()
        fields["point"] = format_coord(x, y)
    meta = {"depth_mm": [depth_mm], "vertex": [int(vertex[0])]}
    return _finish(ctx, scene, selection, rng, makers, uv_px=uv_px, gt=depth_mm, fields=fields,
                   labels=None, variant=None, meta=meta)


def _comparison(
    ctx: UnitContext, scene: SceneFrames, selection: Selection, makers: RecordMakers
) -> dict[str, Any] | None:
    """Two vertices passing rule (e) (20 attempts); ask closer/farther; letters or mention order.

    Attempt ``k`` is the draws ``2k`` and ``2k + 1`` of :class:`UniformDraws` (independent and
    uniform, so the first point is equally likely to be either; a repeated vertex fails the
    separation rule). All attempts' points are drawn and tested at once; the first passing pair
    is used, as if they were tried one by one.
    """
    rng = ctx.rng(selection)
    marked = selection.subtask.endswith("_dot")
    frame = selection.frames[0]
    draws = _draws(scene, frame, rng, marked)
    vertex = draws.take(2 * COMPARISON_ATTEMPTS)
    ctx.skip(f"{selection.subtask}:depth_edge", draws.edge_rejections)
    if vertex.size == 0:
        ctx.skip(f"{selection.subtask}:no_valid_pair")
        return None
    uv_all, z_all = scene.project(frame, vertex)
    ok = comparison_pairs_ok(
        uv_all[0::2], uv_all[1::2], z_all[0::2], z_all[1::2], scene.min_separation_px
    )
    ok &= vertex[0::2] != vertex[1::2]
    passing = np.flatnonzero(ok)
    if passing.size == 0:
        ctx.skip(f"{selection.subtask}:no_valid_pair")
        return None
    pair = slice(2 * int(passing[0]), 2 * int(passing[0]) + 2)
    ask = "closer" if rng.random() < 0.5 else "farther"
    uv_px, z_m = uv_all[pair], z_all[pair]
    target = int(np.argmin(z_m)) if ask == "closer" else int(np.argmax(z_m))
    meta = {
        "ask": ask,
        "depth_mm": [metres_to_mm(float(z)) for z in z_m],
        "vertex": [int(v) for v in vertex[pair]],
    }
    if marked:
        return _finish(ctx, scene, selection, rng, makers, uv_px=uv_px, gt="AB"[target], fields={},
                       labels=["A", "B"], variant=ask, meta=meta)
    xy = pixels_to_norm1000(uv_px, scene.width, scene.height).tolist()
    fields = {"point_a": format_coord(*xy[0]), "point_b": format_coord(*xy[1])}
    return _finish(ctx, scene, selection, rng, makers, uv_px=uv_px, gt=[int(v) for v in xy[target]],
                   fields=fields, labels=None, variant=ask, meta=meta)
