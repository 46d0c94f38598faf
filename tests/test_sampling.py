"""Tests of the pooled samplers (docs/labels.md#pair-sampler, #depth-quotas, #track-pairs)."""

from __future__ import annotations

import numpy as np
import pytest

from multispa.errors import ConfigError, ShapeError
from multispa.tasks.sampling import (
    NUM_OVERLAP_BINS,
    OVERLAP_EDGES,
    _redistribute,
    bin_quotas,
    depth_image_quota,
    distance_binned_pairs,
    overlap_bins,
    reversed_copies,
    stratified_pair_sample,
    stratified_pair_sample_with_stats,
)

# ---------------------------------------------------------------- overlap bins and quotas


def test_overlap_edges_are_6_to_35() -> None:
    assert OVERLAP_EDGES.tolist() == list(range(6, 36))
    assert NUM_OVERLAP_BINS == 29


def test_overlap_bins_boundaries() -> None:
    inside = [5.999, 6.0, 6.5, 7.0, 7.0001, 8.0, 8.0001, 20.0, 20.5, 34.9999, 35.0, 35.0001]
    values = np.array([*inside, 0.0, -1.0, 100.0, np.nan])
    expected = [-1, 0, 0, 0, 1, 1, 2, 13, 14, 28, 28, -1, -1, -1, -1, -1]
    assert overlap_bins(values).tolist() == expected
    assert overlap_bins(values).dtype == np.int64
    # float32 input (as stored in the pair tables) bins the same way on exact edges
    assert overlap_bins(np.array([6, 7, 8, 35, 36], dtype=np.float32)).tolist() == [0, 0, 1, 28, -1]


def test_overlap_bins_every_integer_edge_closes_its_bin() -> None:
    edges = np.arange(7, 36, dtype=np.float64)
    assert overlap_bins(edges).tolist() == list(range(29))
    assert overlap_bins(edges + 1e-9).tolist()[:-1] == list(range(1, 29))


def test_overlap_bins_rejects_bad_shape() -> None:
    with pytest.raises(ShapeError):
        overlap_bins(np.zeros((3, 2)))


def test_bin_quotas_n300_first_ten_bins_get_eleven() -> None:
    quotas = bin_quotas(300)
    assert quotas.tolist() == [11] * 10 + [10] * 19
    assert quotas.sum() == 300


@pytest.mark.parametrize(
    ("n", "expected"),
    [(0, [0] * 29), (5, [1] * 5 + [0] * 24), (29, [1] * 29), (59, [3] + [2] * 28)],
)
def test_bin_quotas_arithmetic(n: int, expected: list[int]) -> None:
    assert bin_quotas(n).tolist() == expected


def test_bin_quotas_rejects_negative() -> None:
    with pytest.raises(ConfigError, match="non-negative"):
        bin_quotas(-1)


# ---------------------------------------------------------------- stratified sampler


def _candidates(populations: dict[int, int], rng: np.random.Generator) -> np.ndarray:
    """Overlap values with the given population per bin (random values inside each bin)."""
    values = []
    for b, count in populations.items():
        lo = 6.0 if b == 0 else 6.0 + b
        values.extend(rng.uniform(lo + 1e-6, 7.0 + b, size=count).tolist())
    values.extend([0.5, 5.9, 35.5, 80.0])  # outside [6, 35]: never chosen
    return rng.permutation(np.array(values))


def test_carry_over_hand_built() -> None:
    # n = 58: quota 2 per bin. Bin 1 is empty, bin 0 has 1, bin 2 has 3, bin 5 has 10,
    # every other bin has 2. Visit order: 1 (pop 0), 0 (pop 1), 3, 4, 6, …, 28 (pop 2, by
    # index), 2 (pop 3), 5 (pop 10).
    #   bin 1: want 2, take 0, carry 2      bin 0: want 4, take 1, carry 3
    #   pop-2 bins: want 5, take 2, carry 3 bin 2: want 5, take 3, carry 2
    #   bin 5: want 4, take 4, carry 0      total 0 + 1 + 25·2 + 3 + 4 = 58
    populations = {b: 2 for b in range(29)}
    populations.update({0: 1, 1: 0, 2: 3, 5: 10})
    overlap = _candidates(populations, np.random.default_rng(7))
    result = stratified_pair_sample_with_stats(overlap, 58, np.random.default_rng(1))

    expected_taken = [2] * 29
    expected_taken[0], expected_taken[1], expected_taken[2], expected_taken[5] = 1, 0, 3, 4
    assert result.taken.tolist() == expected_taken
    assert result.population.tolist() == [populations[b] for b in range(29)]
    assert result.quota.tolist() == [2] * 29
    assert result.visit_order.tolist() == [1, 0, 3, 4, *range(6, 29), 2, 5]
    assert result.indices.size == 58
    # the chosen indices really come from those bins
    chosen_bins = overlap_bins(overlap[result.indices])
    assert np.bincount(chosen_bins, minlength=29).tolist() == expected_taken


def test_carry_lost_when_candidates_run_out() -> None:
    overlap = _candidates({3: 4, 10: 2}, np.random.default_rng(0))
    indices = stratified_pair_sample(overlap, 300, np.random.default_rng(0))
    assert indices.size == 6
    assert np.sort(overlap_bins(overlap[indices])).tolist() == [3, 3, 3, 3, 10, 10]


def test_stratified_sample_validity_and_determinism() -> None:
    rng = np.random.default_rng(3)
    overlap = rng.uniform(0.0, 45.0, size=20_000)
    indices = stratified_pair_sample(overlap, 300, np.random.default_rng(11))
    assert indices.dtype == np.int64
    assert indices.size == 300
    assert np.unique(indices).size == 300
    assert np.all((overlap[indices] >= 6.0) & (overlap[indices] <= 35.0))
    # every bin is well populated: the taken counts are exactly the quotas
    counts = np.bincount(overlap_bins(overlap[indices]), minlength=29)
    assert counts.tolist() == bin_quotas(300).tolist()
    # deterministic for a seed, shuffled (not in bin or index order)
    again = stratified_pair_sample(overlap, 300, np.random.default_rng(11))
    assert np.array_equal(indices, again)
    assert not np.all(np.diff(indices) > 0)
    assert not np.all(np.diff(overlap_bins(overlap[indices])) >= 0)
    other = stratified_pair_sample(overlap, 300, np.random.default_rng(12))
    assert not np.array_equal(np.sort(indices), np.sort(other))


def test_stratified_sample_empty_and_zero() -> None:
    assert stratified_pair_sample(np.zeros(0), 300, np.random.default_rng(0)).size == 0
    assert stratified_pair_sample(np.array([10.0, 20.0]), 0, np.random.default_rng(0)).size == 0
    outside = np.array([1.0, 2.0, 40.0])
    assert stratified_pair_sample(outside, 10, np.random.default_rng(0)).size == 0
    with pytest.raises(ConfigError):
        stratified_pair_sample(np.array([10.0]), -3, np.random.default_rng(0))


def test_stratified_sample_uniform_within_bin() -> None:
    # Every bin holds 4 candidates and yields 1 (n = 29): each candidate is chosen with
    # probability 1/4. Over 400 seeds the expected count is 100 (sd ≈ 8.7).
    overlap = np.repeat(np.arange(29) + 6.5, 4)
    counts = np.zeros(overlap.size, dtype=np.int64)
    for seed in range(400):
        indices = stratified_pair_sample(overlap, 29, np.random.default_rng(seed))
        assert np.bincount(overlap_bins(overlap[indices]), minlength=29).tolist() == [1] * 29
        counts[indices] += 1
    assert counts.min() >= 60
    assert counts.max() <= 140


# ---------------------------------------------------------------- depth quotas


def test_depth_quota_q1_one_image_in_n_random_scenes() -> None:
    n_valid = [5, 0, 3, 7, 2]
    seen_scenes: set[int] = set()
    for seed in range(40):
        chosen = depth_image_quota(n_valid, 3, np.random.default_rng(seed))
        assert len(chosen) == 5
        sizes = [c.size for c in chosen]
        assert sum(sizes) == 3
        assert max(sizes) == 1
        assert sizes[1] == 0  # no valid image: never chosen
        for s, positions in enumerate(chosen):
            assert positions.dtype == np.int64
            assert np.all((positions >= 0) & (positions < n_valid[s]))
            if positions.size:
                seen_scenes.add(s)
    assert seen_scenes == {0, 2, 3, 4}


def test_depth_quota_q1_with_fewer_eligible_scenes_than_n() -> None:
    chosen = depth_image_quota([0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1], 5, np.random.default_rng(0))
    assert [c.size for c in chosen] == [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    assert chosen[10].tolist() == [0]


def test_depth_quota_all_images_when_supply_is_short() -> None:
    # q = 10 // 3 + 1 = 4: takes [1, 4, 2], shortfall 3 + 2 = 5, scene 1 has 1 spare → [1, 5, 2].
    chosen = depth_image_quota([1, 5, 2], 10, np.random.default_rng(0))
    assert [c.tolist() for c in chosen] == [[0], [0, 1, 2, 3, 4], [0, 1]]


def test_redistribute_round_robin_in_scene_order() -> None:
    take = np.array([1, 3, 1, 3, 3])
    spare = np.array([0, 3, 0, 3, 3])
    # one full round (+1 to scenes 1, 3, 4), then the partial round starts at scene 1
    assert _redistribute(take, spare, 4).tolist() == [1, 5, 1, 4, 4]
    assert _redistribute(take, spare, 7).tolist() == [1, 6, 1, 5, 5]
    assert _redistribute(take, spare, 100).tolist() == [1, 6, 1, 6, 6]
    assert _redistribute(take, spare, 0).tolist() == [1, 3, 1, 3, 3]
    # uneven spares: scenes drop out of the rounds when exhausted
    assert _redistribute(np.array([2, 2, 2]), np.array([1, 5, 2]), 6).tolist() == [3, 5, 4]


def test_depth_quota_redistribution_then_random_cut() -> None:
    # S = 5, n = 14, q = 3: takes [1, 3, 1, 3, 3] (11), shortfall 2 + 2 = 4 → [1, 5, 1, 4, 4]
    # (15 candidates, hand-computed above) → a random 14 are kept: one candidate dropped.
    n_valid = [1, 6, 1, 6, 6]
    before_cut = np.array([1, 5, 1, 4, 4])
    dropped_from: set[int] = set()
    for seed in range(30):
        chosen = depth_image_quota(n_valid, 14, np.random.default_rng(seed))
        sizes = np.array([c.size for c in chosen])
        assert sizes.sum() == 14
        diff = before_cut - sizes
        assert sorted(diff.tolist()) == [0, 0, 0, 0, 1]
        dropped_from.add(int(np.argmax(diff)))
        for s, positions in enumerate(chosen):
            assert np.unique(positions).size == positions.size
            assert np.all(np.diff(positions) > 0)
            assert np.all((positions >= 0) & (positions < n_valid[s]))
    assert len(dropped_from) >= 3


def test_depth_quota_large_scenes_and_determinism() -> None:
    n_valid = [50, 200, 7, 120]
    a = depth_image_quota(n_valid, 100, np.random.default_rng(5))
    b = depth_image_quota(n_valid, 100, np.random.default_rng(5))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    sizes = [c.size for c in a]
    assert sum(sizes) == 100
    # q = 26: scene 2 offers all its 7 images (the final random cut may drop some)
    assert all(size <= count for size, count in zip(sizes, n_valid, strict=True))
    assert depth_image_quota([], 10, np.random.default_rng(0)) == []
    assert [c.size for c in depth_image_quota([3, 3], 0, np.random.default_rng(0))] == [0, 0]
    with pytest.raises(ConfigError, match=r"n_valid_per_scene\[1\]"):
        depth_image_quota([3, -1], 4, np.random.default_rng(0))


# ---------------------------------------------------------------- distance-binned pairs

# Visible frames 1, 4, 5, 7, 8, 9 lie on a line parallel to x at A = {0, 0.1}, M = {4.6},
# B = {10.1, 10.2, 10.3}; the other frames are invisible (NaN positions).
_LINE_FRAMES = [1, 4, 5, 7, 8, 9]
_LINE_X = [0.0, 0.1, 4.6, 10.1, 10.2, 10.3]


def _line_track(x_by_frame: dict[int, float], num_frames: int = 10) -> tuple[np.ndarray, ...]:
    visible = np.zeros(num_frames, dtype=bool)
    positions = np.full((num_frames, 3), np.nan)
    for frame, x in x_by_frame.items():
        visible[frame] = True
        positions[frame] = (x, 2.0, -1.0)
    return visible, positions


def _reference_bins(
    visible: np.ndarray, positions: np.ndarray
) -> tuple[dict[tuple[int, int], int], np.ndarray]:
    """Independent binning with np.histogram: pair → bin (-1 static), and bin populations."""
    frames = np.flatnonzero(visible)
    pairs = [(int(a), int(b)) for i, a in enumerate(frames) for b in frames[i + 1 :]]
    dist = np.array([np.linalg.norm(positions[b] - positions[a]) for a, b in pairs])
    moving = dist >= 0.01
    _, edges = np.histogram(dist[moving], bins=10)
    bins = np.clip(np.searchsorted(edges, dist, side="right") - 1, 0, 9)
    bins[~moving] = -1
    population = np.bincount(bins[moving], minlength=10)
    return dict(zip(pairs, bins.tolist(), strict=True)), population


def test_distance_pairs_middle_bin_of_two_caps_every_bin() -> None:
    # Moving pairs: A–A and B–B (0.1 … 0.2) in bin 0 (4 pairs), M–A (4.5, 4.6) in bin 4 (2),
    # M–B (5.5 … 5.7) in bin 5 (3), A–B (10.0 … 10.3) in bin 9 (6). With P = 30 the quota is
    # max(1, min(2, 30)) = 2, so bins 0, 4, 5, 9 yield 2 each.
    visible, positions = _line_track(dict(zip(_LINE_FRAMES, _LINE_X, strict=True)))
    reference, population = _reference_bins(visible, positions)
    assert population.tolist() == [4, 0, 0, 0, 2, 3, 0, 0, 0, 6]
    pairs = distance_binned_pairs(visible, positions, np.random.default_rng(0), pairs_per_bin=30)
    assert len(pairs) == 8
    assert np.bincount([reference[p] for p in pairs], minlength=10).tolist() == [
        2, 0, 0, 0, 2, 2, 0, 0, 0, 2,
    ]  # fmt: skip
    # M–A pairs are the whole of bin 4: both are always taken
    assert (1, 5) in pairs
    assert (4, 5) in pairs
    assert pairs == sorted(pairs)
    assert all(f1 < f2 and visible[f1] and visible[f2] for f1, f2 in pairs)
    assert len(set(pairs)) == len(pairs)


def test_distance_pairs_static_kept_once() -> None:
    # Frames 1, 2, 3 within 5 mm of each other (3 static pairs), frames 6 and 8 far away.
    x = {1: 0.0, 2: 0.004, 3: 0.008, 6: 1.0, 8: 3.0}
    visible, positions = _line_track(x)
    reference, _ = _reference_bins(visible, positions)
    static_pairs = {p for p, b in reference.items() if b == -1}
    assert static_pairs == {(1, 2), (1, 3), (2, 3)}
    chosen_static: set[tuple[int, int]] = set()
    for seed in range(30):
        pairs = distance_binned_pairs(visible, positions, np.random.default_rng(seed),
                                      pairs_per_bin=30)  # fmt: skip
        in_static = [p for p in pairs if p in static_pairs]
        assert len(in_static) == 1
        chosen_static.update(in_static)
    assert chosen_static == static_pairs
    # a fully static track yields exactly one pair
    still = {f: 0.0 for f in range(0, 10, 2)}
    visible, positions = _line_track(still)
    pairs = distance_binned_pairs(visible, positions, np.random.default_rng(0), pairs_per_bin=30)
    assert len(pairs) == 1
    assert pairs[0][0] < pairs[0][1]


def test_distance_pairs_follow_the_n_rule_on_a_random_track() -> None:
    rng = np.random.default_rng(4)
    num_frames = 300
    positions = np.cumsum(rng.normal(scale=0.02, size=(num_frames, 3)), axis=0)
    visible = rng.random(num_frames) < 0.8
    positions[~visible] = np.nan
    reference, population = _reference_bins(visible, positions)
    for pairs_per_bin in (1, 30, 10_000):
        pairs = distance_binned_pairs(visible, positions, np.random.default_rng(9),
                                      pairs_per_bin=pairs_per_bin)  # fmt: skip
        n = max(1, min(int(population[4]), pairs_per_bin))
        counts = np.bincount([reference[p] + 1 for p in pairs], minlength=11)
        assert counts[0] == 1  # one static pair (the random walk has some)
        assert counts[1:].tolist() == np.minimum(population, n).tolist()
        assert all(visible[a] and visible[b] and a < b for a, b in pairs)
        assert len(set(pairs)) == len(pairs)
    assert population[4] < 10_000  # the last case takes whole bins up to population[4]


def test_distance_pairs_constant_quota_across_calls() -> None:
    # Rule (i): a track with a tiny middle bin must not lower the quota of later tracks.
    rng = np.random.default_rng(2)
    num_frames = 120
    big = np.cumsum(rng.normal(scale=0.05, size=(num_frames, 3)), axis=0)
    big_visible = np.ones(num_frames, dtype=bool)
    small_visible, small_positions = _line_track(dict(zip(_LINE_FRAMES, _LINE_X, strict=True)))

    alone = distance_binned_pairs(big_visible, big, np.random.default_rng(8), pairs_per_bin=30)
    distance_binned_pairs(small_visible, small_positions, np.random.default_rng(8),
                          pairs_per_bin=30)  # fmt: skip
    after = distance_binned_pairs(big_visible, big, np.random.default_rng(8), pairs_per_bin=30)
    assert after == alone
    reference, population = _reference_bins(big_visible, big)
    assert population[4] >= 30  # so the quota is the full P = 30
    moving = [p for p in alone if reference[p] >= 0]
    assert np.bincount([reference[p] for p in moving], minlength=10).tolist() == (
        np.minimum(population, 30).tolist()
    )


def test_distance_pairs_degenerate_inputs() -> None:
    rng = np.random.default_rng(0)
    visible, positions = _line_track({3: 1.0})
    assert distance_binned_pairs(visible, positions, rng, pairs_per_bin=30) == []
    visible, positions = _line_track({})
    assert distance_binned_pairs(visible, positions, rng, pairs_per_bin=30) == []
    # two frames, one moving pair: it is taken
    visible, positions = _line_track({2: 0.0, 7: 0.5})
    assert distance_binned_pairs(visible, positions, rng, pairs_per_bin=1) == [(2, 7)]
    with pytest.raises(ConfigError, match="pairs_per_bin"):
        distance_binned_pairs(visible, positions, rng, pairs_per_bin=0)
    with pytest.raises(ShapeError):
        distance_binned_pairs(visible, positions[:, :2], rng, pairs_per_bin=1)
    with pytest.raises(ConfigError, match="frames"):
        distance_binned_pairs(visible[:5], positions, rng, pairs_per_bin=1)
    positions[2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        distance_binned_pairs(visible, positions, rng, pairs_per_bin=1)


def test_distance_pairs_deterministic() -> None:
    rng = np.random.default_rng(6)
    positions = np.cumsum(rng.normal(scale=0.03, size=(80, 3)), axis=0)
    visible = np.ones(80, dtype=bool)
    a = distance_binned_pairs(visible, positions, np.random.default_rng(1), pairs_per_bin=5)
    b = distance_binned_pairs(visible, positions, np.random.default_rng(1), pairs_per_bin=5)
    c = distance_binned_pairs(visible, positions, np.random.default_rng(2), pairs_per_bin=5)
    assert a == b
    assert a != c
    assert all(isinstance(f, int) for pair in a for f in pair)


# ---------------------------------------------------------------- reversed copies


def test_reversed_copies() -> None:
    pairs = [(i, i + 3) for i in range(30)]
    copies = reversed_copies(pairs, 0.05, np.random.default_rng(0))
    assert len(copies) == 2  # r(1.5) = 2
    assert all((b, a) in pairs for a, b in copies)
    assert len(reversed_copies(pairs[:20], 0.05, np.random.default_rng(0))) == 1
    assert reversed_copies(pairs[:9], 0.05, np.random.default_rng(0)) == []  # r(0.45) = 0
    assert reversed_copies([], 0.05, np.random.default_rng(0)) == []
    everything = reversed_copies(pairs, 1.0, np.random.default_rng(0))
    assert everything == [(b, a) for a, b in pairs]
    with pytest.raises(ConfigError):
        reversed_copies(pairs, 1.5, np.random.default_rng(0))
