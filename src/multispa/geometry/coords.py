"""Rounding and normalised 0..999 image coordinates
(docs/labels.md#rounding, #coordinates; rules (b), (c)).

Convention: the origin is the top-left corner; ``x`` runs along the width and ``y`` along the
height. ``x = clamp(floor(u/W·1000), 0, 999)`` and its inverse used by the scorer is
``u = (x + 0.5)·W/1000`` (the centre of the normalised cell).
"""

from __future__ import annotations

import numpy as np

from multispa.geometry.transforms import expect_shape

__all__ = [
    "norm1000_to_pixels",
    "pixels_to_norm1000",
    "round_half_away",
    "round_half_away_int",
]


def round_half_away(x: np.ndarray | float) -> np.ndarray:
    """Round half away from zero, exactly: ``r(x) = sign(x)·floor(|x| + 0.5)``.

    Computed as ``floor(|x|) + (frac(|x|) >= 0.5)``, which is exact for every float (the naive
    ``floor(|x| + 0.5)`` is wrong for the float just below 0.5). Python's ``round`` (half to
    even) is never used.

    Args:
        x: array or scalar of finite real values.

    Returns:
        int64 array of the same shape (0-d for a scalar).

    Raises:
        ValueError: on NaN or infinite input.

    >>> round_half_away(np.array([0.5, 1.5, 2.5, -0.5, -2.5, 0.49999999999999994])).tolist()
    [1, 2, 3, -1, -3, 0]
    """
    values = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError("round_half_away: input holds NaN or infinite values")
    magnitude = np.abs(values)
    whole = np.floor(magnitude)
    rounded = whole + (magnitude - whole >= 0.5)
    return (np.sign(values) * rounded).astype(np.int64)


def round_half_away_int(x: float) -> int:
    """Scalar :func:`round_half_away` returning a Python ``int`` (safe for JSON).

    >>> round_half_away_int(-44.5), round_half_away_int(12.4999)
    (-45, 12)
    """
    return int(round_half_away(float(x)))


def pixels_to_norm1000(uv_px: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixel coordinates to normalised ``[x, y]`` in 0..999.

    ``x = clamp(floor(u·1000/W), 0, 999)``, ``y = clamp(floor(v·1000/H), 0, 999)``; the product
    is formed before the division, so integer and half-integer pixel coordinates are exact.

    Args:
        uv_px: ``(..., 2)`` pixel coordinates ``(u, v)``.
        width, height: image size, pixels.

    Returns:
        ``(..., 2)`` int64 ``uv_norm1000``.

    >>> uv_px = np.array([[0.0, 0.0], [1295.9, 967.0], [648.0, 484.0], [-3.0, 2000.0]])
    >>> pixels_to_norm1000(uv_px, 1296, 968).tolist()
    [[0, 0], [999, 998], [500, 500], [0, 999]]
    """
    expect_shape(uv_px, "(..., 2)", "uv_px")
    uv = np.asarray(uv_px, dtype=np.float64)
    if not np.all(np.isfinite(uv)):
        raise ValueError("pixels_to_norm1000: uv_px holds NaN or infinite values")
    scaled = np.floor(uv * 1000.0 / np.array([width, height], dtype=np.float64))
    return np.clip(scaled, 0, 999).astype(np.int64)


def norm1000_to_pixels(xy_norm1000: np.ndarray, width: int, height: int) -> np.ndarray:
    """Normalised ``[x, y]`` to the pixel centre of its cell: ``u = (x + 0.5)·W/1000``.

    Args:
        xy_norm1000: ``(..., 2)`` normalised coordinates (integers 0..999 in records).
        width, height: image size, pixels.

    Returns:
        ``(..., 2)`` float64 pixel coordinates ``(u, v)``.

    >>> norm1000_to_pixels(np.array([0, 999]), 1000, 2000).tolist()
    [0.5, 1999.0]
    """
    expect_shape(xy_norm1000, "(..., 2)", "xy_norm1000")
    xy = np.asarray(xy_norm1000, dtype=np.float64)
    return (xy + 0.5) * np.array([width, height], dtype=np.float64) / 1000.0
