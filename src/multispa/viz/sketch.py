"""Top-down sketches of a displacement in the first camera's axes (docs/labels.md#vectors).

The view looks down on the x–z plane of camera 1 (x right, z forward; y points down, into the
page, so this is a view from above): x runs to the right of the plot and z up the plot.
Millimetres on both axes, equal aspect.

- **Camera movement**: camera 1 at the origin looking along +z; camera 2 at ``t_m`` (its x and
  z, in mm) looking along +z turned by ``dyaw_deg`` (positive = left = counter-clockwise seen from
  above). The view wedges show the two viewing directions; the y component and the pitch change
  are written as text. Yaw is measured about gravity, not about camera 1's y axis, so the second
  wedge is exact only for a level camera.
- **Object movement**: the tracked point at the origin, an arrow to ``(x, z)`` of the ``gt``
  vector (mm, camera-1 axes); y as text; a static point is drawn as a ring.

Each sketch returns where it drew the start and end points (image pixels, origin top-left), so
callers and tests can relate the picture to the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from multispa.geometry.coords import round_half_away_int
from multispa.viz.canvas import figure_to_image, new_figure

__all__ = ["DEFAULT_SKETCH_PX", "Sketch", "camera_sketch", "object_sketch", "sketch_for_record"]

DEFAULT_SKETCH_PX = 300
CAMERA1_RGB = "#2563eb"
CAMERA2_RGB = "#ea580c"
ARROW_RGB = "#111827"
_WEDGE_HALF_DEG = 30.0
_STATIC_MM = 10.0


@dataclass(frozen=True)
class Sketch:
    """A rendered sketch.

    Attributes:
        image: RGB image, ``size_px`` square.
        start_px: ``(column, row)`` pixel of the origin (camera 1, or the point at frame 1).
        end_px: ``(column, row)`` pixel of camera 2 (or the point at frame 2).
        end_mm: ``(x, z)`` of the end point in the plot, millimetres.
    """

    image: Image.Image
    start_px: tuple[float, float]
    end_px: tuple[float, float]
    end_mm: tuple[float, float]


def view_direction(yaw_deg: float) -> tuple[float, float]:
    """Unit ``(x, z)`` viewing direction after a yaw of ``yaw_deg`` from +z (positive = left).

    >>> [round(v, 6) for v in view_direction(90.0)]
    [-1.0, 0.0]
    """
    yaw = math.radians(yaw_deg)
    return (-math.sin(yaw), math.cos(yaw))


def _square_box(points_mm: Sequence[tuple[float, float]], pad_mm: float
                ) -> tuple[tuple[float, float], tuple[float, float]]:
    """``((x_low, x_high), (z_low, z_high))`` of a square box holding every point plus a pad."""
    array = np.asarray(points_mm, dtype=np.float64)
    low, high = array.min(axis=0) - pad_mm, array.max(axis=0) + pad_mm
    centre, half = (low + high) / 2.0, float(np.max(high - low)) / 2.0
    return ((centre[0] - half, centre[0] + half), (centre[1] - half, centre[1] + half))


def _wedge(apex: tuple[float, float], yaw_deg: float, length: float) -> np.ndarray:
    """``(3, 2)`` triangle: apex and the two ends of a view wedge of ±30° around the direction."""
    corners = [apex]
    for side in (-_WEDGE_HALF_DEG, _WEDGE_HALF_DEG):
        dx, dz = view_direction(yaw_deg + side)
        corners.append((apex[0] + length * dx, apex[1] + length * dz))
    return np.asarray(corners, dtype=np.float64)


def _pixel(figure: Any, axes: Any, x: float, z: float) -> tuple[float, float]:
    """Image ``(column, row)`` of data point ``(x, z)`` (the figure must have been drawn)."""
    col, row_up = axes.transData.transform((x, z))
    height = figure.bbox.height
    return float(col), float(height - row_up)


def _figure(size_px: int, title: str) -> tuple[Any, Any]:
    """A square figure with one equal-aspect axes in a fixed box (no layout engine: fast)."""
    figure = new_figure(size_px, size_px)
    axes = figure.add_axes((0.2, 0.22, 0.76, 0.68))
    _style_axes(axes, title)
    return figure, axes


def _notes(figure: Any, axes: Any, lines: Sequence[str]) -> None:
    """Legend inside the axes (best place) and the text ``lines`` under the plot, one row."""
    axes.legend(loc="best", fontsize=7, framealpha=0.85)
    figure.text(0.5, 0.015, "   ".join(lines), fontsize=7, ha="center", va="bottom",
                color="#374151")


def _style_axes(axes: Any, title: str) -> None:
    axes.set_aspect("equal", adjustable="box")
    axes.set_xlabel("x (mm, right)", fontsize=8)
    axes.set_ylabel("z (mm, forward)", fontsize=8)
    axes.tick_params(labelsize=7)
    axes.grid(True, color="#e5e7eb", linewidth=0.6)
    axes.axhline(0.0, color="#9ca3af", linewidth=0.6)
    axes.axvline(0.0, color="#9ca3af", linewidth=0.6)
    axes.figure.suptitle(title, fontsize=8.5, y=0.975)


def _render(figure: Any, axes: Any, start: tuple[float, float], end: tuple[float, float]
            ) -> Sketch:
    image = figure_to_image(figure)
    return Sketch(image=image, start_px=_pixel(figure, axes, *start),
                  end_px=_pixel(figure, axes, *end), end_mm=(float(end[0]), float(end[1])))


def _signed(value: float, unit: str, positive: str, negative: str) -> str:
    """``+38° (left)``, ``−11 mm (up)``, ``0°``: rounded half away from zero, signed word."""
    rounded = round_half_away_int(value)
    word = positive if rounded > 0 else negative if rounded < 0 else ""
    sign = "+" if rounded > 0 else "−" if rounded < 0 else ""
    space = "" if unit == "°" else " "
    return f"{sign}{abs(rounded)}{space}{unit}{f' ({word})' if word else ''}"


def camera_sketch(t_m: Sequence[float], dyaw_deg: float, dpitch_deg: float | None = None, *,
                  size_px: int = DEFAULT_SKETCH_PX) -> Sketch:
    """Camera 1 at the origin, camera 2 at ``t_m`` (module docstring).

    Args:
        t_m: ``(3,)`` camera 2's centre in camera-1 axes, metres (``meta.camera.t_m``).
        dyaw_deg: yaw change, degrees, positive = turned left.
        dpitch_deg: pitch change, degrees, positive = tilted up (text only), or None.
        size_px: image side, pixels.
    """
    tx, ty, tz = (1000.0 * float(v) for v in t_m)
    end = (tx, tz)
    wedge = max(math.hypot(tx, tz), 100.0) * 0.3
    (x_low, x_high), (z_low, z_high) = _square_box(
        [(0.0, 0.0), end, *_wedge((0.0, 0.0), 0.0, wedge), *_wedge(end, dyaw_deg, wedge)],
        pad_mm=wedge * 0.5)
    figure, axes = _figure(size_px, "Camera 2 seen from above (camera-1 axes)")
    axes.set_xlim(x_low, x_high)
    axes.set_ylim(z_low, z_high)
    for apex, yaw, colour in (((0.0, 0.0), 0.0, CAMERA1_RGB), (end, dyaw_deg, CAMERA2_RGB)):
        triangle = _wedge(apex, yaw, wedge)
        axes.fill(triangle[:, 0], triangle[:, 1], color=colour, alpha=0.18, linewidth=0)
        dx, dz = view_direction(yaw)
        axes.plot([apex[0], apex[0] + wedge * dx], [apex[1], apex[1] + wedge * dz],
                  color=colour, linewidth=1.2)
    if math.hypot(tx, tz) > 0:
        axes.annotate("", xy=end, xytext=(0.0, 0.0),
                      arrowprops={"arrowstyle": "-|>", "color": ARROW_RGB, "linewidth": 1.4,
                                  "shrinkA": 0, "shrinkB": 6})
    axes.plot([0.0], [0.0], "o", color=CAMERA1_RGB, markersize=7, label="camera 1")
    axes.plot([end[0]], [end[1]], "o", color=CAMERA2_RGB, markersize=7, label="camera 2")
    lines = [f"y {_signed(ty, 'mm', 'down', 'up')}",
             f"yaw {_signed(dyaw_deg, '°', 'left', 'right')}"]
    if dpitch_deg is not None:
        lines.append(f"pitch {_signed(dpitch_deg, '°', 'up', 'down')}")
    _notes(figure, axes, lines)
    return _render(figure, axes, (0.0, 0.0), end)


def object_sketch(vector_mm: Sequence[float], *, size_px: int = DEFAULT_SKETCH_PX) -> Sketch:
    """The point's displacement ``vector_mm`` (``(3,)``, mm, camera-1 axes) seen from above."""
    dx, dy, dz = (float(v) for v in vector_mm)
    end = (dx, dz)
    length = math.hypot(dx, dz)
    pad = max(length, 100.0) * 0.25
    (x_low, x_high), (z_low, z_high) = _square_box([(0.0, 0.0), end], pad_mm=pad)
    figure, axes = _figure(size_px, "Point motion seen from above (camera-1 axes)")
    axes.set_xlim(x_low, x_high)
    axes.set_ylim(z_low, z_high)
    static = math.sqrt(dx * dx + dy * dy + dz * dz) < _STATIC_MM
    if static:
        axes.plot([0.0], [0.0], "o", markersize=14, markerfacecolor="none",
                  markeredgecolor=CAMERA2_RGB, markeredgewidth=2, label="static point")
    elif length > 0:
        axes.annotate("", xy=end, xytext=(0.0, 0.0),
                      arrowprops={"arrowstyle": "-|>", "color": ARROW_RGB, "linewidth": 1.4,
                                  "shrinkA": 0, "shrinkB": 6})
    axes.plot([0.0], [0.0], "o", color=CAMERA1_RGB, markersize=7, label="frame 1")
    if not static:
        axes.plot([end[0]], [end[1]], "o", color=CAMERA2_RGB, markersize=7, label="frame 2")
    _notes(figure, axes, [f"y {_signed(dy, 'mm', 'down', 'up')}"])
    return _render(figure, axes, (0.0, 0.0), end)


def sketch_for_record(record: Mapping[str, Any], *, size_px: int = DEFAULT_SKETCH_PX
                      ) -> Sketch | None:
    """The sketch a card shows for ``record``: camera movement (from ``meta.camera``) and object
    movement vector subtasks (from ``gt``); None for other subtasks or missing data."""
    meta = record.get("meta")
    meta = meta if isinstance(meta, Mapping) else {}
    if record.get("task") == "camera_movement":
        camera = meta.get("camera")
        if not isinstance(camera, Mapping):
            return None
        t_m, yaw = camera.get("t_m"), camera.get("dyaw_deg")
        if not (_numbers(t_m, 3) and _numbers([yaw], 1)):
            return None
        pitch = camera.get("dpitch_deg")
        return camera_sketch(t_m, float(yaw), float(pitch) if _numbers([pitch], 1) else None,
                             size_px=size_px)
    if record.get("task") == "object_movement" and record.get("answer_type") == "vector":
        gt = record.get("gt")
        if _numbers(gt, 3):
            return object_sketch(gt, size_px=size_px)
    return None


def _numbers(values: object, count: int) -> bool:
    return (isinstance(values, list | tuple) and len(values) == count
            and all(isinstance(v, int | float) and not isinstance(v, bool)
                    and math.isfinite(v) for v in values))
