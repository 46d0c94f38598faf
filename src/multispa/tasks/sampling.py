"""Pooled samplers: overlap-stratified pairs, depth-image quotas, distance-binned pairs.

Pure functions over numpy arrays; every random choice uses the ``numpy.random.Generator``
passed in (no global state), so a call is deterministic for a given generator state.

- :func:`stratified_pair_sample` — docs/labels.md#pair-sampler steps 2–5 (binning, quotas,
  carry-over, shuffle); the caller filters eligibility first (step 1) and orients the pairs (the
  swap of step 5).
- :func:`depth_image_quota` — docs/labels.md#depth-quotas: per-scene quotas with the project's
  round-robin redistribution of small scenes' shortfall.
- :func:`distance_binned_pairs` — docs/labels.md#track-pairs steps 2–4 for one track;
  :func:`reversed_copies` is the 5 % training augmentation of step 5.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from multispa.errors import ConfigError
from multispa.geometry.coords import round_half_away_int
from multispa.geometry.transforms import expect_shape

__all__ = [
    "NUM_DISTANCE_BINS",
    "NUM_OVERLAP_BINS",
    "OVERLAP_EDGES",
    "StratifiedSample",
    "bin_quotas",
    "depth_image_quota",
    "distance_binned_pairs",
    "overlap_bins",
    "reversed_copies",
    "stratified_pair_sample",
    "stratified_pair_sample_with_stats",
]

#: Overlap bin edges in percent: 6, 7, …, 35 (30 edges, 29 bins ``[6, 7], (7, 8], …, (34, 35]``).
OVERLAP_EDGES: np.ndarray = np.arange(6, 36, dtype=np.float64)
NUM_OVERLAP_BINS = len(OVERLAP_EDGES) - 1  # 29
#: Equal-width displacement bins (track pairs, step 4); the quota reads the population of bin 4.
NUM_DISTANCE_BINS = 10
_QUOTA_BIN = 4
_CHUNK = 1 << 22


def _check_count(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ConfigError(f"{name}: expected a non-negative integer, found {value!r}")
    return int(value)


def _overlap_codes(overlap_pct: np.ndarray) -> np.ndarray:
    """:func:`overlap_bins` as ``int8`` computed in chunks (the pooled train table is ~1e8 rows)."""
    expect_shape(overlap_pct, "(K,)", "overlap_pct")
    values = np.asarray(overlap_pct)
    codes = np.empty(values.shape[0], dtype=np.int8)
    for start in range(0, values.shape[0], _CHUNK):
        chunk = values[start : start + _CHUNK].astype(np.float64, copy=False)
        # side="left": index i with edges[i-1] < x <= edges[i]; bin = i - 1, and x == 6 joins bin 0.
        index = np.searchsorted(OVERLAP_EDGES, chunk, side="left") - 1
        index = np.maximum(index, 0)
        inside = (chunk >= OVERLAP_EDGES[0]) & (chunk <= OVERLAP_EDGES[-1])  # False for NaN
        codes[start : start + _CHUNK] = np.where(inside, index, -1)
    return codes


def overlap_bins(overlap_pct: np.ndarray) -> np.ndarray:
    """Overlap bin of each candidate pair (docs/labels.md#pair-sampler step 2).

    Bins are ``[6, 7]`` (index 0), ``(7, 8]`` (1), …, ``(34, 35]`` (28): closed on the right, and
    the first bin also closed on the left. So 6.0 and 7.0 fall in bin 0, 7.0001 in bin 1, 35.0 in
    bin 28.

    Args:
        overlap_pct: ``(K,)`` float overlap (IoU of visible vertices), percent.

    Returns:
        ``(K,)`` int64 bin index 0..28; -1 for values outside ``[6, 35]`` (and NaN).

    >>> overlap_bins(np.array([5.99, 6.0, 7.0, 7.0001, 35.0, 35.01])).tolist()
    [-1, 0, 0, 1, 28, -1]
    """
    return _overlap_codes(overlap_pct).astype(np.int64)


def bin_quotas(n: int, bins: int = NUM_OVERLAP_BINS) -> np.ndarray:
    """Split ``n`` over ``bins`` bins: ``n // bins`` each, plus one for each of the first
    ``n % bins`` bins by index.

    Returns:
        ``(bins,)`` int64 quotas summing to ``n``.

    >>> bin_quotas(300)[:12].tolist()
    [11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 10, 10]
    """
    n = _check_count(n, "n")
    bins = _check_count(bins, "bins")
    if bins == 0:
        raise ConfigError("bins: expected at least one bin, found 0")
    quotas = np.full(bins, n // bins, dtype=np.int64)
    quotas[: n % bins] += 1
    return quotas


@dataclass(frozen=True)
class StratifiedSample:
    """Result of :func:`stratified_pair_sample_with_stats`.

    Attributes:
        indices: ``(M,)`` int64 chosen candidate indices, shuffled; ``M <= n``.
        population: ``(29,)`` int64 eligible candidates per overlap bin.
        quota: ``(29,)`` int64 nominal quota per bin (:func:`bin_quotas`).
        taken: ``(29,)`` int64 candidates chosen per bin (quota plus carry, capped by population).
        visit_order: ``(29,)`` int64 bin indices in the order they were visited.
    """

    indices: np.ndarray
    population: np.ndarray
    quota: np.ndarray
    taken: np.ndarray
    visit_order: np.ndarray


def stratified_pair_sample_with_stats(
    overlap_pct: np.ndarray, n: int, rng: np.random.Generator
) -> StratifiedSample:
    """The overlap-stratified pair sampler (docs/labels.md#pair-sampler steps 2–5, no swap).

    Bins the candidates by :func:`overlap_bins` (those outside ``[6, 35]`` are never chosen),
    gives each of the 29 bins the quota :func:`bin_quotas` ``(n)`` (empty bins included), visits
    the bins in ascending population (ties by bin index), lets each yield
    ``min(population, quota + carry)`` members drawn uniformly without replacement and carries any
    shortfall to the next visited bin, then shuffles the chosen indices with ``rng``. If the
    candidates run out, fewer than ``n`` are returned.

    Random draws happen in visit order (one ``choice`` per non-empty take), then one permutation.

    Args:
        overlap_pct: ``(K,)`` float overlap of every eligible candidate pair, percent, pooled over
            the split's scenes in canonical order.
        n: number of pairs wanted, ``>= 0``.
        rng: the task's generator.

    Returns:
        a :class:`StratifiedSample`; ``indices`` index the candidate arrays.
    """
    n = _check_count(n, "n")
    codes = _overlap_codes(overlap_pct)
    quota = bin_quotas(n)
    # int8 keys make the stable argsort a linear-time radix sort; members of each bin stay in
    # ascending candidate order.
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes.astype(np.int64) + 1, minlength=NUM_OVERLAP_BINS + 1)
    starts = np.cumsum(counts) - counts  # start of each code (-1, 0, …, 28) in ``order``
    population = counts[1:].astype(np.int64)
    visit_order = np.argsort(population, kind="stable").astype(np.int64)

    taken = np.zeros(NUM_OVERLAP_BINS, dtype=np.int64)
    chosen: list[np.ndarray] = []
    carry = 0
    for b in visit_order:
        want = int(quota[b]) + carry
        take = min(int(population[b]), want)
        carry = want - take
        taken[b] = take
        if take > 0:
            members = order[starts[b + 1] : starts[b + 1] + population[b]]
            chosen.append(rng.choice(members, size=take, replace=False))
    indices = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    indices = rng.permutation(indices.astype(np.int64, copy=False))
    return StratifiedSample(
        indices=indices,
        population=population,
        quota=quota,
        taken=taken,
        visit_order=visit_order,
    )


def stratified_pair_sample(
    overlap_pct: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Indices chosen by the pair sampler (see :func:`stratified_pair_sample_with_stats`).

    Args:
        overlap_pct: ``(K,)`` float overlap of every eligible candidate, percent.
        n: number of pairs wanted.
        rng: the task's generator.

    Returns:
        ``(M,)`` int64 distinct indices into the candidate arrays, shuffled; ``M = min(n,
        number of candidates in [6, 35])``.
    """
    return stratified_pair_sample_with_stats(overlap_pct, n, rng).indices


def _redistribute(take: np.ndarray, spare: np.ndarray, shortfall: int) -> np.ndarray:
    """Give ``shortfall`` extra images round-robin, in scene order, to scenes with spare images.

    Each round gives one image to every scene that still has a spare one, in order; the last,
    partial round stops after ``shortfall`` scenes. Whole rounds are applied in bulk.
    """
    take = take.copy()
    spare = spare.copy()
    while shortfall > 0:
        active = np.flatnonzero(spare > 0)
        if active.size == 0:
            break
        if active.size > shortfall:
            lucky = active[:shortfall]
            take[lucky] += 1
            spare[lucky] -= 1
            break
        rounds = min(int(spare[active].min()), shortfall // active.size)
        take[active] += rounds
        spare[active] -= rounds
        shortfall -= rounds * active.size
    return take


def depth_image_quota(
    n_valid_per_scene: Sequence[int], n: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Images per scene for the depth tasks (docs/labels.md#depth-quotas).

    With ``S`` scenes, ``q = n // S + 1``:

    - ``q == 1`` (``n < S``, the benchmark case): ``n`` random scenes among those with at least one
      image get one uniformly drawn image each (all of them if fewer than ``n`` have images).
    - otherwise every scene gets ``min(q, n_valid)`` images; the total shortfall of the small
      scenes, ``Σ (q − min(q, n_valid))``, is redistributed one image at a time, round-robin in
      the given scene order, to scenes with unused images; each scene's images are then drawn
      uniformly without replacement, and if more than ``n`` candidates result, a uniformly random
      ``n`` of them are kept.

    Random draws: the scene choice (``q == 1``) or the per-scene draws in scene order, then the
    final cut.

    Args:
        n_valid_per_scene: number of valid (kept) frames of each scene, in a deterministic order.
        n: number of images wanted (the subtask quota), ``>= 0``.
        rng: the planner's generator.

    Returns:
        one ``(m_s,)`` int64 array per scene, in the given order: the chosen kept-frame positions
        (``0 <= position < n_valid``), distinct and sorted ascending; ``Σ m_s = min(n, Σ n_valid)``.
    """
    n = _check_count(n, "n")
    counts = np.array(
        [_check_count(c, f"n_valid_per_scene[{i}]") for i, c in enumerate(n_valid_per_scene)],
        dtype=np.int64,
    )
    num_scenes = counts.shape[0]
    empty = [np.zeros(0, dtype=np.int64) for _ in range(num_scenes)]
    if num_scenes == 0 or n == 0:
        return empty
    q = n // num_scenes + 1
    if q == 1:
        with_images = np.flatnonzero(counts > 0)
        scenes = rng.choice(with_images, size=min(n, with_images.size), replace=False)
        for s in np.sort(scenes):
            empty[s] = np.array([rng.integers(counts[s])], dtype=np.int64)
        return empty

    take = np.minimum(counts, q)
    shortfall = int((q - take).sum())
    take = _redistribute(take, counts - take, shortfall)
    per_scene = [
        np.sort(rng.choice(int(counts[s]), size=int(take[s]), replace=False)).astype(np.int64)
        for s in range(num_scenes)
    ]
    total = int(take.sum())
    if total > n:
        scene_of = np.repeat(np.arange(num_scenes), take)
        keep = np.zeros(total, dtype=bool)
        keep[rng.choice(total, size=n, replace=False)] = True
        flat = np.concatenate(per_scene)
        per_scene = [flat[keep & (scene_of == s)] for s in range(num_scenes)]
    return per_scene


def distance_binned_pairs(
    frames_visible: np.ndarray,
    positions: np.ndarray,
    rng: np.random.Generator,
    *,
    pairs_per_bin: int,
    static_eps_m: float = 0.01,
) -> list[tuple[int, int]]:
    """Frame pairs of one track, binned by world displacement (docs/labels.md#track-pairs, 2–4).

    1. Every pair ``f1 < f2`` of frames where the track is visible (at least two are needed).
    2. ``‖d‖ = ‖X[f2] − X[f1]‖``. Of the static pairs (``‖d‖ < static_eps_m``) one is kept at
       random.
    3. The moving pairs go into 10 equal-width bins over ``[min, max]`` of ``‖d‖`` (the last bin
       closed; if ``max == min`` they all go into bin 0). The per-bin quota is
       ``n = max(1, min(population of bin 4, pairs_per_bin))`` and each bin yields
       ``min(n, population)`` pairs drawn uniformly without replacement.

    ``pairs_per_bin`` is a run constant (rule (i)): nothing is remembered between calls.
    Random draws: the static choice (if any static pair), then one ``choice`` per non-empty bin
    in bin order.

    Args:
        frames_visible: ``(T,)`` bool, the track visible and in bounds in frame t.
        positions: ``(T, 3)`` float world positions of the track, metres (only visible frames are
            read, so invisible frames may hold NaN).
        rng: the clip's generator.
        pairs_per_bin: P, ``>= 1`` (30 for training, 1 for the benchmark pool).
        static_eps_m: displacement below which a pair is static, metres.

    Returns:
        the chosen pairs ``(f1, f2)`` with ``f1 < f2``, sorted ascending (by ``f1``, then ``f2``).
    """
    expect_shape(frames_visible, "(T,)", "frames_visible")
    expect_shape(positions, "(T, 3)", "positions")
    if np.shape(frames_visible)[0] != np.shape(positions)[0]:
        raise ConfigError(
            f"distance_binned_pairs: frames_visible has {np.shape(frames_visible)[0]} frames, "
            f"positions has {np.shape(positions)[0]}"
        )
    pairs_per_bin = _check_count(pairs_per_bin, "pairs_per_bin")
    if pairs_per_bin < 1:
        raise ConfigError("pairs_per_bin: expected at least 1, found 0")
    frames = np.flatnonzero(np.asarray(frames_visible, dtype=bool))
    if frames.size < 2:
        return []
    xyz = np.asarray(positions, dtype=np.float64)[frames]
    if not np.all(np.isfinite(xyz)):
        raise ValueError("distance_binned_pairs: positions of visible frames hold NaN or inf")

    first, second = np.triu_indices(frames.size, k=1)
    distance_m = np.linalg.norm(xyz[second] - xyz[first], axis=1)
    chosen: list[np.ndarray] = []

    static = np.flatnonzero(distance_m < static_eps_m)
    if static.size:
        chosen.append(np.array([static[rng.integers(static.size)]], dtype=np.int64))

    moving = np.flatnonzero(distance_m >= static_eps_m)
    if moving.size:
        d = distance_m[moving]
        lo, hi = float(d.min()), float(d.max())
        if hi > lo:
            bins = np.floor((d - lo) * NUM_DISTANCE_BINS / (hi - lo)).astype(np.int64)
            bins = np.clip(bins, 0, NUM_DISTANCE_BINS - 1)
        else:
            bins = np.zeros(d.size, dtype=np.int64)
        order = np.argsort(bins, kind="stable")
        population = np.bincount(bins, minlength=NUM_DISTANCE_BINS)
        starts = np.cumsum(population) - population
        quota = max(1, min(int(population[_QUOTA_BIN]), pairs_per_bin))
        for b in range(NUM_DISTANCE_BINS):
            take = min(quota, int(population[b]))
            if take:
                members = moving[order[starts[b] : starts[b] + population[b]]]
                chosen.append(rng.choice(members, size=take, replace=False))

    if not chosen:
        return []
    picked = np.sort(np.concatenate(chosen))  # pair indices are already in (f1, f2) order
    return [(int(frames[first[k]]), int(frames[second[k]])) for k in picked]


def reversed_copies(
    pairs: Sequence[tuple[int, int]], fraction: float, rng: np.random.Generator
) -> list[tuple[int, int]]:
    """Reversed copies ``(f2, f1)`` of a random ``fraction`` of ``pairs``
    (docs/labels.md#track-pairs, 5).

    The number of copies is ``r(fraction · len(pairs))`` (half away from zero); they are drawn
    uniformly without replacement and returned in the order of ``pairs``. The caller appends them.

    Args:
        pairs: ``(f1, f2)`` frame pairs.
        fraction: share to reverse, in ``[0, 1]`` (0.05 for training).
        rng: the clip's generator.

    Returns:
        the reversed pairs.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"fraction: expected a value in [0, 1], found {fraction!r}")
    count = min(len(pairs), round_half_away_int(fraction * len(pairs)))
    if count == 0:
        return []
    picked = np.sort(rng.choice(len(pairs), size=count, replace=False))
    return [(int(pairs[k][1]), int(pairs[k][0])) for k in picked]
