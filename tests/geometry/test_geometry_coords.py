"""Tests of multispa.geometry.coords against exact rational references (fractions)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from multispa.geometry.coords import (
    norm1000_to_pixels,
    pixels_to_norm1000,
    round_half_away,
    round_half_away_int,
)


def exact_round_half_away(value: float) -> int:
    """r(x) = sign(x)·floor(|x| + 1/2) on the exact rational value of the float."""
    q = Fraction(value)
    magnitude = math.floor(abs(q) + Fraction(1, 2))
    return magnitude if q >= 0 else -magnitude


def test_round_half_away_exact_on_halves_and_neighbours() -> None:
    halves = [k + 0.5 for k in range(-6, 6)]
    near = [np.nextafter(h, s) for h in halves for s in (-np.inf, np.inf)]
    tricky = [0.49999999999999994, -0.49999999999999994, 4503599627370495.5, 1e15 + 0.5, 0.0, -0.0]
    rng = np.random.default_rng(0)
    values = np.array(halves + near + tricky + list(rng.normal(0, 100, 500)))
    expected = [exact_round_half_away(float(v)) for v in values]
    out = round_half_away(values)
    assert out.dtype == np.int64
    assert out.tolist() == expected


def test_round_half_away_differs_from_python_round() -> None:
    assert round_half_away(np.array([2.5, -2.5, 0.5])).tolist() == [3, -3, 1]
    assert [round(2.5), round(0.5)] == [2, 0]  # banker's rounding, which the docs forbid
    assert round_half_away(7.5).shape == ()
    value = round_half_away_int(np.float64(-1.5))
    assert value == -2 and type(value) is int


def test_round_half_away_rejects_non_finite() -> None:
    with pytest.raises(ValueError, match="NaN or infinite"):
        round_half_away(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="NaN or infinite"):
        round_half_away(np.inf)


def exact_norm1000(u: float, size: int) -> int:
    return min(999, max(0, math.floor(Fraction(u) * 1000 / size)))


@pytest.mark.parametrize(("width", "height"), [(1296, 968), (640, 480), (1000, 1000), (333, 777)])
def test_pixels_to_norm1000_matches_exact_floor(width: int, height: int) -> None:
    rng = np.random.default_rng(width)
    u = np.concatenate(
        [
            rng.uniform(-5, width + 5, 400),
            np.arange(0, width + 1, dtype=np.float64),  # every integer pixel incl. the right edge
            np.arange(0, width, dtype=np.float64) + 0.5,
        ]
    )
    v = np.resize(
        np.concatenate([np.arange(0, height + 1, dtype=np.float64), rng.uniform(0, height, 50)]),
        u.size,
    )
    xy = pixels_to_norm1000(np.stack([u, v], axis=1), width, height)
    assert xy.dtype == np.int64
    assert xy[:, 0].tolist() == [exact_norm1000(float(a), width) for a in u]
    assert xy[:, 1].tolist() == [exact_norm1000(float(b), height) for b in v]
    assert xy.min() >= 0 and xy.max() <= 999


def test_norm1000_grid_round_trip_through_cell_centres() -> None:
    grid = np.stack(np.meshgrid(np.arange(1000), np.arange(1000), indexing="ij"), axis=-1)
    for width, height in [(1296, 968), (640, 480), (7, 3)]:
        uv_px = norm1000_to_pixels(grid, width, height)
        assert uv_px.shape == (1000, 1000, 2)
        np.testing.assert_array_equal(pixels_to_norm1000(uv_px, width, height), grid)
    np.testing.assert_allclose(
        norm1000_to_pixels(np.array([499, 0]), 1296, 968), [499.5 * 1.296, 0.5 * 0.968]
    )


def test_convention_origin_top_left_x_along_width() -> None:
    xy = pixels_to_norm1000(np.array([[1295.0, 0.0], [0.0, 967.0]]), 1296, 968)
    assert xy.tolist() == [[999, 0], [0, 998]]


def test_pixels_to_norm1000_rejects_nan() -> None:
    with pytest.raises(ValueError, match="NaN"):
        pixels_to_norm1000(np.array([[np.nan, 1.0]]), 10, 10)
