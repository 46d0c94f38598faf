"""Tests of multispa.geometry.coverage against an exhaustive search over frame subsets."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from multispa.geometry.coverage import axis_extents, minimal_covering_sets


def brute_minimal_sets(
    lo: np.ndarray, hi: np.ndarray, length: float, fraction: float, max_size: int
) -> set[tuple[int, ...]]:
    """Every covering set of at most ``max_size`` frames none of whose proper subsets covers."""
    threshold = fraction * length  # the same single float threshold as the code under test

    def covers(subset: tuple[int, ...]) -> bool:
        return max(hi[k] for k in subset) - min(lo[k] for k in subset) >= threshold

    minimal = set()
    for size in range(1, max_size + 1):
        for subset in combinations(range(lo.size), size):
            if not covers(subset):
                continue
            proper = (s for r in range(1, size) for s in combinations(subset, r))
            if not any(covers(s) for s in proper):
                minimal.add(subset)
    return minimal


def random_extents(
    rng: np.random.Generator, m: int, length: float
) -> tuple[np.ndarray, np.ndarray]:
    # extents snapped to a coarse grid so that exact ties with the threshold occur
    lo = np.round(rng.uniform(0.0, 0.7, m) * length * 20) / 20
    hi = np.minimum(lo + np.round(rng.uniform(0.0, 0.9, m) * length * 20) / 20, length)
    return lo, hi


@pytest.mark.parametrize("seed", range(12))
def test_matches_exhaustive_search_up_to_three_frames(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 14))
    length = float(rng.choice([1.0, 0.75, 2.3]))
    lo, hi = random_extents(rng, m, length)
    singletons, pairs = minimal_covering_sets(lo, hi, length)
    found = {(int(i),) for i in singletons} | {(int(i), int(j)) for i, j in pairs}
    brute = brute_minimal_sets(lo, hi, length, 0.9, max_size=3)
    assert all(len(s) <= 2 for s in brute)  # no minimal triple exists
    assert found == brute
    assert singletons.dtype == np.int64 and pairs.dtype == np.int64 and pairs.shape[1] == 2
    assert np.all(pairs[:, 0] < pairs[:, 1])
    assert pairs.tolist() == sorted(pairs.tolist())


def test_no_minimal_set_of_four_on_small_inputs() -> None:
    rng = np.random.default_rng(99)
    for _ in range(5):
        lo, hi = random_extents(rng, 7, 1.0)
        brute = brute_minimal_sets(lo, hi, 1.0, 0.8, max_size=4)
        singletons, pairs = minimal_covering_sets(lo, hi, 1.0, fraction=0.8)
        assert brute == {(int(i),) for i in singletons} | {(int(i), int(j)) for i, j in pairs}


def test_exact_threshold_and_hand_cases() -> None:
    lo = np.array([0.0, 0.1, 0.0, 0.5, 0.45])
    hi = np.array([0.9, 0.95, 0.5, 1.0, 0.95])
    singletons, pairs = minimal_covering_sets(lo, hi, 1.0)
    assert singletons.tolist() == [0]  # 0.9 − 0.0 >= 0.9 exactly; 0.85 does not
    assert pairs.tolist() == [[1, 2], [1, 3], [2, 3], [2, 4]]  # 1.0 − 0.1 == 0.9 in float64
    empty_s, empty_p = minimal_covering_sets(np.zeros(0), np.zeros(0), 1.0)
    assert empty_s.shape == (0,) and empty_p.shape == (0, 2)


def test_axis_extents() -> None:
    points = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 0.5], [2.0, -1.0, 2.0]], dtype=np.float32)
    axis = np.array([1.0, 1.0, 0.0]) / np.sqrt(2.0)
    lo, hi = axis_extents(points, axis)
    assert lo == pytest.approx(0.0) and hi == pytest.approx(np.sqrt(2.0))
    assert axis_extents(points, np.array([0.0, 0.0, 1.0])) == (0.0, 2.0)
    with pytest.raises(ValueError, match="no points"):
        axis_extents(np.zeros((0, 3)), axis)
