"""Tests of multispa.geometry.overlap against boolean brute force over every pair."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from multispa.errors import ShapeError
from multispa.geometry.overlap import (
    object_visibility_threshold,
    object_visible_counts,
    overlapping_pairs,
    pack_visibility,
    pack_visibility_csr,
    pairwise_intersections,
    pairwise_iou_pct,
    spatial_order,
    visible_counts,
)


def random_masks(rng: np.random.Generator, frames: int, points: int, blocky: bool) -> np.ndarray:
    masks = np.zeros((frames, points), dtype=bool)
    for f in range(frames):
        if blocky:
            start = int(rng.integers(0, points))
            width = int(rng.integers(0, points // 4 + 2))
            masks[f, start : start + width] = rng.random(min(width, points - start)) < 0.9
        else:
            masks[f] = rng.random(points) < rng.uniform(0.0, 0.3)
    masks[frames // 2] = False  # one empty frame
    return masks


def brute_intersections(masks: np.ndarray) -> np.ndarray:
    frames = masks.shape[0]
    out = np.zeros((frames, frames), dtype=np.int64)
    for i in range(frames):
        for j in range(frames):
            out[i, j] = int(np.sum(masks[i] & masks[j]))
    return out


@pytest.mark.parametrize("points", [1, 63, 64, 65, 1000, 5000])
@pytest.mark.parametrize("blocky", [False, True])
def test_intersections_match_brute_force(points: int, blocky: bool) -> None:
    rng = np.random.default_rng(points + blocky)
    masks = random_masks(rng, 17, points, blocky)
    packed = pack_visibility(masks)
    assert packed.dtype == np.uint64
    assert packed.shape == (17, (points + 63) // 64)
    expected = brute_intersections(masks)
    np.testing.assert_array_equal(visible_counts(packed), masks.sum(axis=1))
    for kwargs in (
        {},
        {"method": "dense"},
        {"method": "blocked"},
        {"method": "blocked", "block_words": 1},
        {"method": "blocked", "block_words": 3},
        {"method": "auto", "block_words": 2},
    ):
        result = pairwise_intersections(packed, **kwargs)
        assert result.dtype == np.int64
        np.testing.assert_array_equal(result, expected, err_msg=str(kwargs))


def test_pack_bit_layout_and_padding() -> None:
    masks = np.zeros((2, 70), dtype=bool)
    masks[0, [0, 63, 64, 69]] = True
    packed = pack_visibility(masks)
    assert packed[0].tolist() == [1 | (1 << 63), 1 | (1 << 5)]
    assert packed[1].tolist() == [0, 0]
    assert pack_visibility(np.zeros((3, 0), dtype=bool)).shape == (3, 0)
    assert pairwise_intersections(pack_visibility(np.zeros((0, 10), dtype=bool))).shape == (0, 0)


def test_pack_csr_matches_dense_packing() -> None:
    rng = np.random.default_rng(7)
    masks = random_masks(rng, 9, 333, blocky=False)
    rows = [np.flatnonzero(m) for m in masks]
    indptr = np.concatenate([[0], np.cumsum([r.size for r in rows])])
    indices = np.concatenate(rows).astype(np.int32)
    np.testing.assert_array_equal(pack_visibility_csr(indptr, indices, 333), pack_visibility(masks))
    with pytest.raises(ShapeError, match=r"indices: expected values in \[0, 300\)"):
        pack_visibility_csr(indptr, indices, 300)
    with pytest.raises(ShapeError, match="indptr"):
        pack_visibility_csr(indptr[:-1], indices, 333)


def test_iou_and_overlapping_pairs_match_exact_fractions() -> None:
    rng = np.random.default_rng(3)
    masks = random_masks(rng, 12, 700, blocky=True)
    packed = pack_visibility(masks)
    iou = pairwise_iou_pct(packed)
    i, j, overlap_pct = overlapping_pairs(packed)
    expected_pairs = []
    for a in range(12):
        for b in range(12):
            inter = int(np.sum(masks[a] & masks[b]))
            union = int(np.sum(masks[a] | masks[b]))
            exact = Fraction(100 * inter, union) if union else Fraction(0)
            assert iou[a, b] == pytest.approx(float(exact), rel=1e-14, abs=0)
            if a < b and inter > 0:
                expected_pairs.append((a, b, float(exact)))
    assert [(int(a), int(b)) for a, b in zip(i, j, strict=True)] == [p[:2] for p in expected_pairs]
    np.testing.assert_allclose(overlap_pct, [p[2] for p in expected_pairs], rtol=1e-14)
    assert np.all(overlap_pct > 0) and np.all(overlap_pct <= 100)
    empty = 6  # random_masks empties the middle frame: both-empty pair is 0, not NaN
    assert iou[empty, empty] == 0.0
    assert empty not in i.tolist() + j.tolist()
    # precomputed intersections give the same results
    inter = pairwise_intersections(packed, method="dense")
    np.testing.assert_array_equal(pairwise_iou_pct(packed, inter), iou)
    with pytest.raises(ShapeError):
        overlapping_pairs(packed, inter[:3])


def test_identical_frames_overlap_100() -> None:
    masks = np.zeros((3, 200), dtype=bool)
    masks[0, 10:50] = True
    masks[1, 10:50] = True
    masks[2, 40:60] = True
    i, j, overlap_pct = overlapping_pairs(pack_visibility(masks))
    assert i.tolist() == [0, 0, 1]
    assert j.tolist() == [1, 2, 2]
    assert overlap_pct.tolist() == [100.0, 100.0 * 10 / 50, 100.0 * 10 / 50]


def test_bad_method_rejected() -> None:
    packed = pack_visibility(np.ones((2, 5), dtype=bool))
    with pytest.raises(ValueError, match="method"):
        pairwise_intersections(packed, method="sparse")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="block_words"):
        pairwise_intersections(packed, block_words=0)


def test_object_visible_counts_match_loop() -> None:
    rng = np.random.default_rng(5)
    instance_ids = rng.integers(-1, 8, 500).astype(np.int32)
    visible = np.flatnonzero(rng.random(500) < 0.3)
    counts = object_visible_counts(visible, instance_ids, 8)
    assert counts.dtype == np.int64
    assert counts.tolist() == [int(np.sum(instance_ids[visible] == o)) for o in range(8)]
    assert object_visible_counts(np.array([], dtype=np.int64), instance_ids, 8).tolist() == [0] * 8
    with pytest.raises(ShapeError, match="expected ids below 5"):
        object_visible_counts(visible, instance_ids, 5)


def test_object_visibility_threshold_is_exact_floor() -> None:
    sizes = np.arange(0, 2001)
    expected = [max(1, int(Fraction(int(s)) * Fraction(5, 100))) for s in sizes]
    assert object_visibility_threshold(sizes).tolist() == expected
    assert object_visibility_threshold(np.array([10, 100]), fraction=0.5).tolist() == [5, 50]


def naive_morton(cell: tuple[int, int, int]) -> int:
    code = 0
    for bit in range(21):
        for axis in range(3):
            code |= ((cell[axis] >> bit) & 1) << (3 * bit + axis)
    return code


def test_spatial_order_is_a_morton_permutation() -> None:
    rng = np.random.default_rng(11)
    points = rng.uniform(-2.0, 5.0, (400, 3)).astype(np.float32)
    order = spatial_order(points, cell_m=0.25)
    assert order.dtype == np.int64
    assert sorted(order.tolist()) == list(range(400))
    origin = points.astype(np.float64).min(axis=0)
    cells = np.floor((points.astype(np.float64) - origin) / 0.25).astype(np.int64)
    codes = [naive_morton(tuple(int(c) for c in cell)) for cell in cells]
    expected = sorted(range(400), key=lambda k: (codes[k], k))
    assert order.tolist() == expected
    assert spatial_order(np.zeros((0, 3))).shape == (0,)
    with pytest.raises(ValueError, match="NaN"):
        spatial_order(np.full((2, 3), np.nan))


def test_intersections_invariant_under_vertex_reordering() -> None:
    rng = np.random.default_rng(12)
    points = rng.uniform(0.0, 4.0, (3000, 3))
    centres = rng.uniform(0.0, 4.0, (10, 3))
    masks = np.linalg.norm(points[None] - centres[:, None], axis=2) < 1.2  # spatial blobs
    order = spatial_order(points)
    reordered = np.ascontiguousarray(masks[:, order])
    original = pairwise_intersections(pack_visibility(masks), method="dense")
    for method in ("dense", "blocked", "auto"):
        result = pairwise_intersections(pack_visibility(reordered), method=method, block_words=2)
        np.testing.assert_array_equal(result, original)
