"""Dot markers for the dot subtasks (docs/labels.md#markers).

A marker is a filled disc of radius ``r`` in one colour of a fixed high-contrast :data:`PALETTE`,
chosen per record to stand out from the local background, with a 2-px black or white outline
*outside* the disc (so the disc keeps radius ``r`` and the whole marker spans ``r + 2``). Letters
(A–D) sit beside their dots, inside the image, without covering them.

**Pixel convention.** A point ``(u, v)`` is in pixels with integer values at pixel *centres*:
pixel column ``c`` has its centre at ``u = c`` (so the pixel containing ``(u, v)`` is
``(floor(u + 0.5), floor(v + 0.5))``). A pixel ``(c, r)`` belongs to the disc iff
``(c − u)² + (r − v)² ≤ radius²``, and to the outline iff the squared distance lies in
``(radius², (radius + 2)²]``. The discs are rasterised with numpy on that rule, not with Pillow's
ellipse, so the centre is exact for fractional coordinates too. Text is drawn with Pillow.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import math
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from multispa.errors import CacheError, ConfigError, ShapeError
from multispa.geometry.coords import round_half_away_int
from multispa.geometry.transforms import expect_shape

__all__ = [
    "OUTLINE_PX",
    "PALETTE",
    "DecodedFrames",
    "MarkerColour",
    "choose_marker_colour",
    "colour_distance",
    "dots_drawn_on",
    "draw_dots",
    "inside_margin",
    "label_font_size",
    "marker_radius",
    "outline_colour",
]


class MarkerColour(NamedTuple):
    """A palette entry: the plain colour word used in prompts (``${marker}``) and its sRGB value."""

    name: str
    rgb: tuple[int, int, int]


#: Fixed high-contrast marker colours; names are plain colour words used in the prompts.
PALETTE: tuple[MarkerColour, ...] = (
    MarkerColour("red", (255, 0, 0)),
    MarkerColour("green", (0, 200, 0)),
    MarkerColour("blue", (0, 60, 255)),
    MarkerColour("yellow", (255, 255, 0)),
    MarkerColour("magenta", (255, 0, 255)),
    MarkerColour("cyan", (0, 255, 255)),
    MarkerColour("orange", (255, 140, 0)),
    MarkerColour("white", (255, 255, 255)),
)

#: Width of the contrasting outline around each disc, pixels.
OUTLINE_PX = 2
#: Margin added around a letter's text box when saving pixels to restore (anti-aliasing slack).
_LABEL_PAD_PX = 2
#: ScanNet colour frames are 1296 px wide; the 10-px radius refers to that width.
_SCANNET_WIDTH_PX = 1296
_SCANNET_RADIUS_PX = 10
_MIN_RADIUS_PX = 2
#: Background window half-size, in radii, sampled around each point by the colour choice.
_WINDOW_RADII = 3
#: Percentile of the per-pixel distances taken as a window's (robust) minimum distance.
_LOW_PERCENTILE = 10
#: The colour choice reads every ``_WINDOW_STRIDE``-th row and column of a window.
_WINDOW_STRIDE = 3


def marker_radius(width: int, source: str) -> int:
    """Marker radius in pixels for an image ``width`` pixels wide from ``source``.

    - ScanNet (``source == "scannet"``): 10 px on 1296-px frames (docs/labels.md#markers), scaled
      down for smaller images as ``min(10, max(2, r(10·W/1296)))`` so the tiny synthetic test frames
      (160 px → 2) stay usable; any width ≥ 1296 gives 10.
    - TAPVid-3D (``source`` ``"tapvid3d"`` or ``"tapvid3d/<subset>"``): ``W // 100``
      (docs/labels.md#markers), at least 2 px (real frames are ≥ 256 px wide, where the floor never
      applies).

    Raises:
        ConfigError: unknown source or non-positive width.
    """
    if isinstance(width, bool) or not isinstance(width, int | np.integer) or width <= 0:
        raise ConfigError(f"marker_radius: expected a positive integer width, found {width!r}")
    if source == "scannet":
        scaled = round_half_away_int(_SCANNET_RADIUS_PX * int(width) / _SCANNET_WIDTH_PX)
        return min(_SCANNET_RADIUS_PX, max(_MIN_RADIUS_PX, scaled))
    if source == "tapvid3d" or source.startswith("tapvid3d/"):
        return max(_MIN_RADIUS_PX, int(width) // 100)
    raise ConfigError(
        f"marker_radius: unknown source {source!r}; expected 'scannet' or 'tapvid3d/<subset>'"
    )


def inside_margin(uv: np.ndarray, width: int, height: int, radius: float) -> np.ndarray:
    """Whether each point lies at least one radius from the image border (docs/labels.md#markers).

    ``radius <= u <= W − 1 − radius`` and ``radius <= v <= H − 1 − radius`` (pixel-centre
    convention, see the module docstring).

    Args:
        uv: ``(N, 2)`` pixel coordinates ``(u, v)``.
        width, height: image size, pixels.
        radius: marker radius, pixels.

    Returns:
        ``(N,)`` bool.

    >>> uv = np.array([[10, 10], [9.9, 50], [149, 109], [149.5, 50]])
    >>> inside_margin(uv, 160, 120, 10).tolist()
    [True, False, True, False]
    """
    expect_shape(uv, "(N, 2)", "uv")
    points = np.asarray(uv, dtype=np.float64)
    u, v = points[:, 0], points[:, 1]
    return (
        (u >= radius) & (u <= width - 1 - radius) & (v >= radius) & (v <= height - 1 - radius)
    )


def colour_distance(rgb: Sequence[int] | np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Perceptual-ish distance between one colour and many (the "redmean" weighted RGB metric).

    ``sqrt((2 + r̄/256)·ΔR² + 4·ΔG² + (2 + (255 − r̄)/256)·ΔB²)`` with ``r̄`` the mean red of the two
    colours; 0 for identical colours, about 765 for black vs white.

    Args:
        rgb: ``(3,)`` colour, 0..255 (or ``(..., 3)`` broadcasting with ``pixels``).
        pixels: ``(..., 3)`` colours, 0..255.

    Returns:
        ``(...)`` float64 distances.
    """
    c = np.asarray(rgb, dtype=np.float64)
    p = np.asarray(pixels, dtype=np.float64)
    mean_red = (c[..., 0] + p[..., 0]) / 2.0
    diff = p - c
    return np.sqrt(
        (2.0 + mean_red / 256.0) * diff[..., 0] ** 2
        + 4.0 * diff[..., 1] ** 2
        + (2.0 + (255.0 - mean_red) / 256.0) * diff[..., 2] ** 2
    )


def outline_colour(rgb: Sequence[int]) -> tuple[int, int, int]:
    """Black for a light colour, white for a dark one (Rec. 601 luma threshold 128)."""
    luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return (0, 0, 0) if luma >= 128.0 else (255, 255, 255)


def _as_points(points_px: Sequence[Sequence[float]] | np.ndarray, name: str) -> np.ndarray:
    points = np.asarray(points_px, dtype=np.float64)
    if points.size == 0:
        return np.zeros((0, 2), dtype=np.float64)
    expect_shape(points, "(N, 2)", name)
    if not np.all(np.isfinite(points)):
        raise ValueError(f"{name}: holds NaN or infinite coordinates")
    return points


def _redmean_sq512(palette: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """``512 ·`` :func:`colour_distance` ``²`` in exact integers.

    With ``r̄ = (c_R + p_R)/2``: ``512·d² = (1024 + c_R + p_R)·ΔR² + 2048·ΔG² +
    (1534 − c_R − p_R)·ΔB²`` (at most about 3.4·10⁸, so int32 never overflows).

    Args:
        palette: ``(C, 3)`` int32 colours.
        pixels: ``(N, 3)`` int32 colours.

    Returns:
        ``(C, N)`` int32.
    """
    c_r, c_g, c_b = (palette[:, i : i + 1] for i in range(3))
    p_r, p_g, p_b = pixels[:, 0], pixels[:, 1], pixels[:, 2]
    d_r, d_g, d_b = p_r - c_r, p_g - c_g, p_b - c_b
    red_sum = c_r + p_r
    return (1024 + red_sum) * d_r * d_r + 2048 * d_g * d_g + (1534 - red_sum) * d_b * d_b


_PALETTE_INT = np.array([entry.rgb for entry in PALETTE], dtype=np.int32)


def choose_marker_colour(
    image: np.ndarray | Image.Image,
    points_px: Sequence[Sequence[float]] | np.ndarray,
    radius: float,
    rng: np.random.Generator,
) -> MarkerColour:
    """The palette colour that contrasts most with the background around the points.

    For each point, the window of half-size ``3·radius`` pixels around it (clipped to the image)
    is the local background; every third row and column of it is read (a regular subsample of
    about 440 pixels at radius 10: enough for a background estimate at a ninth of the cost). A
    colour's score at a point is
    the 10th percentile (the order statistic ``⌊0.1·(n − 1)⌋`` of the ``n`` sampled pixels, no
    interpolation) of its :func:`colour_distance` to them: a minimum robust to a few stray
    pixels. Its overall score is the minimum over the points. The colour with the highest score
    wins; colours whose integer-floored score ties the best are chosen between uniformly with
    ``rng`` (one draw, always made). With no points the whole image is the background.

    Distances are ranked as exact integers (``512·d²``); only the chosen order statistics are
    converted to distances, so the floored scores do not depend on float rounding.

    Args:
        image: ``(H, W, 3)`` uint8 RGB array, or a Pillow image (only the windows are read;
            converted to RGB).
        points_px: ``(N, 2)`` pixel coordinates ``(u, v)`` of the dots to be drawn.
        radius: marker radius, pixels.
        rng: the record's generator.

    Returns:
        the chosen :class:`MarkerColour` (a ``(name, rgb)`` tuple).
    """
    if isinstance(image, Image.Image):
        width, height = image.size
        if height == 0 or width == 0:
            raise ShapeError(f"image: expected a non-empty image, found size {image.size}")

        def crop(top: int, bottom: int, left: int, right: int) -> np.ndarray:
            region = image.crop((left, top, right, bottom))
            return np.asarray(region if region.mode == "RGB" else region.convert("RGB"))

    else:
        pixels = image
        expect_shape(pixels, "(H, W, 3)", "image")
        if pixels.dtype != np.uint8:
            raise ShapeError(f"image: expected dtype uint8, found {pixels.dtype}")
        height, width = pixels.shape[:2]
        if height == 0 or width == 0:
            raise ShapeError(f"image: expected a non-empty image, found shape {pixels.shape}")

        def crop(top: int, bottom: int, left: int, right: int) -> np.ndarray:
            return pixels[top:bottom, left:right]

    points = _as_points(points_px, "points_px")
    half = max(1, math.ceil(_WINDOW_RADII * radius))
    windows: list[np.ndarray] = []
    for u, v in points:
        col = min(max(math.floor(u + 0.5), 0), width - 1)
        row = min(max(math.floor(v + 0.5), 0), height - 1)
        window = crop(
            max(row - half, 0),
            min(row + half + 1, height),
            max(col - half, 0),
            min(col + half + 1, width),
        )
        windows.append(window[::_WINDOW_STRIDE, ::_WINDOW_STRIDE].reshape(-1, 3))
    if not windows:
        windows.append(crop(0, height, 0, width)[::_WINDOW_STRIDE, ::_WINDOW_STRIDE].reshape(-1, 3))

    best_sq512 = np.full(len(PALETTE), np.iinfo(np.int64).max)
    for window in windows:
        k = (window.shape[0] - 1) * _LOW_PERCENTILE // 100
        sq512 = _redmean_sq512(_PALETTE_INT, window.astype(np.int32))
        best_sq512 = np.minimum(best_sq512, np.partition(sq512, k, axis=1)[:, k])
    floored = np.floor(np.sqrt(best_sq512 / 512.0))
    best = np.flatnonzero(floored == floored.max())
    return PALETTE[int(best[rng.integers(best.size)])]


def label_font_size(width: int) -> int:
    """Letter size, pixels, for a ``width``-pixel-wide image: ``max(10, W // 40)`` (32 at 1296)."""
    return max(10, int(width) // 40)


@functools.lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled default font at ``size`` pixels (loaded once per size and process)."""
    return ImageFont.load_default(size=size)


def _dot_boxes(
    points: np.ndarray, radius: float, width: int, height: int
) -> list[tuple[int, int, int, int] | None]:
    """Per dot, its marker's box (disc and outline) clipped to the image, or None if outside.

    Boxes are ``(left, top, right, bottom)`` pixels, right and bottom exclusive.
    """
    outer = radius + OUTLINE_PX
    boxes: list[tuple] = []
    for u, v in points:
        c0, c1 = max(math.floor(u - outer), 0), min(math.ceil(u + outer), width - 1)
        r0, r1 = max(math.floor(v - outer), 0), min(math.ceil(v + outer), height - 1)
        boxes.append((c0, r0, c1 + 1, r1 + 1) if c0 <= c1 and r0 <= r1 else None)
    return boxes


def _paint_discs(
    image: Image.Image, points: np.ndarray, radius: float, colour: tuple, outline: tuple
) -> None:
    """Paint discs and outline rings in place, touching only each dot's bounding square.

    All outlines are pasted first (through a mask of the dot's outer disc), then all fills, so a
    ring pixel covered by any dot's disc keeps that disc's fill.
    """
    outer = radius + OUTLINE_PX
    rings: list[tuple[Image.Image, tuple[int, int, int, int]]] = []
    fills: list[tuple[Image.Image, tuple[int, int, int, int]]] = []
    for (u, v), box in zip(points, _dot_boxes(points, radius, *image.size), strict=True):
        if box is None:
            continue
        cols = np.arange(box[0], box[2], dtype=np.float64) - u
        rows = np.arange(box[1], box[3], dtype=np.float64) - v
        dist2 = cols[None, :] ** 2 + rows[:, None] ** 2
        rings.append((Image.fromarray(((dist2 <= outer**2) * 255).astype(np.uint8)), box))
        fills.append((Image.fromarray(((dist2 <= radius**2) * 255).astype(np.uint8)), box))
    for mask, box in rings:
        image.paste(outline, box, mask)
    for mask, box in fills:
        image.paste(colour, box, mask)


def _place_label(
    box: tuple[int, int, int, int],
    centre: tuple[float, float],
    extent: float,
    width: int,
    height: int,
) -> tuple[int, int]:
    """Top-left ``(x, y)`` of a ``box``-sized label beside a marker of half-size ``extent``.

    Tries right, left, below, above the marker (gap 2 px), in that order; the first placement whose
    box lies inside the image wins, with its cross-axis position clamped into the image (a
    vertical shift beside the dot never covers it). Falls back to the clamped right placement.
    ``box`` is the text bbox ``(l, t, r, b)`` relative to the drawing anchor.
    """
    u, v = centre
    text_w, text_h = box[2] - box[0], box[3] - box[1]
    gap = 2
    left_x = math.floor(u - extent) - gap - text_w
    right_x = math.ceil(u + extent) + gap + 1
    top_y = math.floor(v - extent) - gap - text_h
    bottom_y = math.ceil(v + extent) + gap + 1
    mid_x = round_half_away_int(u - text_w / 2)
    mid_y = round_half_away_int(v - text_h / 2)

    def clamp(value: int, size: int, limit: int) -> int:
        return min(max(value, 0), max(limit - size, 0))

    candidates = (
        (right_x, clamp(mid_y, text_h, height)),
        (left_x, clamp(mid_y, text_h, height)),
        (clamp(mid_x, text_w, width), bottom_y),
        (clamp(mid_x, text_w, width), top_y),
    )
    for x, y in candidates:
        if 0 <= x <= width - text_w and 0 <= y <= height - text_h:
            return x, y
    x, y = candidates[0]
    return clamp(x, text_w, width), y


class _Glyphs(NamedTuple):
    """A letter rendered once: its text box and its stroke and fill coverage masks.

    ``box`` is the text bbox ``(l, t, r, b)`` relative to the ``"lt"`` drawing anchor (stroke
    included); the masks (mode ``L``, the size of the box) are what ``ImageDraw.text`` would
    blend the stroke colour and then the fill colour through, at that anchor.
    """

    box: tuple[int, int, int, int]
    stroke_mask: Image.Image
    fill_mask: Image.Image


@functools.lru_cache(maxsize=64)
def _glyphs(text: str, font_px: int, stroke: int) -> _Glyphs:
    """Render ``text`` at ``font_px`` with a ``stroke``-px stroke once per process.

    The masks are drawn with ``ImageDraw.text`` itself (ink 255 on black: the blend then gives
    the coverage exactly), so pasting a colour through them is pixel-identical to drawing the
    text on the image (both blend with the same fill-through-mask operation).
    """
    font = _font(font_px)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    left, top, right, bottom = (
        int(v) for v in probe.textbbox((0, 0), text, font=font, anchor="lt", stroke_width=stroke)
    )
    size = (max(right - left, 1), max(bottom - top, 1))
    stroke_mask = Image.new("L", size, 0)
    ImageDraw.Draw(stroke_mask).text(
        (-left, -top), text, fill=255, font=font, anchor="lt", stroke_width=stroke,
        stroke_fill=255,
    )
    fill_mask = Image.new("L", size, 0)
    ImageDraw.Draw(fill_mask).text((-left, -top), text, fill=255, font=font, anchor="lt")
    return _Glyphs((left, top, right, bottom), stroke_mask, fill_mask)


class _Labels(NamedTuple):
    """Where the letters go: per label, its rendered glyphs and its pixel box in the image."""

    items: list[tuple[_Glyphs, tuple[int, int, int, int]]]


def _check_dots(
    points_px: Sequence[Sequence[float]] | np.ndarray,
    colour_rgb: Sequence[int],
    radius: float,
    labels: Sequence[str] | None,
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Validated ``(N, 2)`` float64 points and ``(r, g, b)`` colour (ConfigError, ShapeError)."""
    values = [int(c) for c in colour_rgb]
    if len(values) != 3 or any(not 0 <= c <= 255 for c in values):
        raise ConfigError(f"colour_rgb: expected three integers 0..255, found {colour_rgb!r}")
    if not radius > 0:
        raise ConfigError(f"radius: expected a positive number of pixels, found {radius!r}")
    points = _as_points(points_px, "points_px")
    if labels is not None and len(labels) != points.shape[0]:
        raise ShapeError(f"labels: expected {points.shape[0]} labels, found {len(labels)}")
    return points, (values[0], values[1], values[2])


def _layout_labels(
    size: tuple[int, int],
    points: np.ndarray,
    radius: float,
    labels: Sequence[str],
) -> _Labels:
    """Glyphs and placement of each label (see :func:`_place_label`)."""
    width, height = size
    font_px = label_font_size(width)
    stroke = max(1, font_px // 12)
    extent = radius + OUTLINE_PX
    items = []
    for (u, v), text in zip(points, labels, strict=True):
        glyphs = _glyphs(text, font_px, stroke)
        box = glyphs.box
        x, y = _place_label(box, (float(u), float(v)), extent, width, height)
        items.append((glyphs, (x, y, x + box[2] - box[0], y + box[3] - box[1])))
    return _Labels(items)


def _draw(
    image: Image.Image,
    points: np.ndarray,
    colour: tuple[int, int, int],
    radius: float,
    labels: _Labels | None,
) -> None:
    """Discs and outlines, then each label: its stroke in the outline colour, then its fill."""
    outline = outline_colour(colour)
    _paint_discs(image, points, radius, colour, outline)
    if labels is None:
        return
    for glyphs, (x0, y0, x1, y1) in labels.items:
        box = (x0, y0, x1, y1)  # the masks have the size of the text box
        image.paste(outline, box, glyphs.stroke_mask)
        if colour != outline:
            image.paste(colour, box, glyphs.fill_mask)


def draw_dots(
    image: Image.Image,
    points_px: Sequence[Sequence[float]] | np.ndarray,
    colour_rgb: Sequence[int],
    radius: float,
    labels: Sequence[str] | None = None,
) -> Image.Image:
    """Draw filled dots (and optional letters) on a copy of ``image``.

    Each dot is a disc of ``radius`` pixels in ``colour_rgb`` centred exactly at ``(u, v)``
    (pixel-centre convention, see the module docstring) with a :data:`OUTLINE_PX`-px outline in
    :func:`outline_colour` ``(colour_rgb)`` outside it. A label is drawn beside its dot in the dot's
    colour with a contrasting stroke, fully inside the image (right of the dot by default,
    flipped to the left, below or above near the borders), never over its own dot.

    Args:
        image: the frame (any mode; converted to RGB).
        points_px: ``(N, 2)`` pixel coordinates ``(u, v)``.
        colour_rgb: ``(3,)`` ints 0..255, e.g. a :data:`PALETTE` entry's ``rgb``.
        radius: disc radius, pixels (:func:`marker_radius`).
        labels: ``N`` strings (``"A"``…) or ``None`` for no letters.

    Returns:
        a new RGB image of the same size.
    """
    points, colour = _check_dots(points_px, colour_rgb, radius, labels)
    out = image.convert("RGB") if image.mode != "RGB" else image.copy()  # always a new image
    layout = _layout_labels(out.size, points, radius, labels) if labels else None
    _draw(out, points, colour, radius, layout)
    return out


@contextlib.contextmanager
def dots_drawn_on(
    image: Image.Image,
    points_px: Sequence[Sequence[float]] | np.ndarray,
    colour_rgb: Sequence[int],
    radius: float,
    labels: Sequence[str] | None = None,
) -> Iterator[Image.Image]:
    """Draw like :func:`draw_dots`, but on ``image`` itself, for the duration of a ``with`` block.

    The pixels the markers and letters can touch (each dot's box, each letter's box grown by
    :data:`_LABEL_PAD_PX`) are saved first and pasted back when the block exits, normally or not,
    so ``image`` is unchanged afterwards; inside the block it equals ``draw_dots``'s result. This
    avoids copying a whole frame per annotated image (e.g. a frame shared by several records).

    Args:
        image: an RGB image (drawn on, then restored).
        points_px, colour_rgb, radius, labels: as for :func:`draw_dots`.

    Yields:
        ``image``, with the markers drawn.
    """
    if image.mode != "RGB":
        raise ConfigError(f"dots_drawn_on: expected an RGB image, found mode {image.mode!r}")
    points, colour = _check_dots(points_px, colour_rgb, radius, labels)
    width, height = image.size
    layout = _layout_labels(image.size, points, radius, labels) if labels else None
    boxes = [box for box in _dot_boxes(points, radius, width, height) if box is not None]
    for _, (x0, y0, x1, y1) in layout.items if layout else ():
        pad = _LABEL_PAD_PX
        box = (max(x0 - pad, 0), max(y0 - pad, 0), min(x1 + pad, width), min(y1 + pad, height))
        if box[0] < box[2] and box[1] < box[3]:
            boxes.append(box)
    saved = [(image.crop(box), box[:2]) for box in boxes]
    try:
        _draw(image, points, colour, radius, layout)
        yield image
    finally:
        for patch, corner in saved:
            image.paste(patch, corner)


class DecodedFrames:
    """Decoded colour frames of one cache unit, shared by the records that draw markers on them.

    A frame is decoded once (RGB, full resolution) and kept while a later record needs it: up to
    ``slots`` frames, evicting the one needed again the latest when the processing order was
    declared with :meth:`schedule` (Belady's rule, optimal for a known sequence), else the least
    recently used. Records draw through :meth:`annotated`, which draws on the shared frame and
    restores it afterwards (:func:`dots_drawn_on`), so no frame is ever copied whole.

    Args:
        path_of: original frame index → path of the cached JPEG.
        size: ``(width, height)`` every frame must have, pixels.
        radius: marker radius, pixels (:func:`marker_radius`).
        slots: decoded frames kept at most.
    """

    def __init__(
        self,
        path_of: Callable[[int], str | os.PathLike[str]],
        size: tuple[int, int],
        radius: int,
        *,
        slots: int = 8,
    ) -> None:
        self._path_of = path_of
        self.size = (int(size[0]), int(size[1]))
        self.radius = radius
        self._slots = max(1, int(slots))
        self._images: OrderedDict[int, Image.Image] = OrderedDict()
        self._uses: dict[int, list[int]] = {}
        self._step = 0
        self.decoded = 0  # frames decoded so far (for tests and benchmarks)

    def schedule(self, uses: Sequence[Sequence[int]]) -> None:
        """Declare the frames each upcoming step decodes, in processing order (for eviction)."""
        self._uses = {}
        for step, frames in enumerate(uses):
            for frame in frames:
                self._uses.setdefault(int(frame), []).append(step)
        self._step = 0

    def advance(self, step: int) -> None:
        """Mark the start of step ``step`` of the :meth:`schedule`.

        Decoded frames the schedule never needs again are released now (their memory is reused
        by the next decode while still cache-warm).
        """
        self._step = step
        if self._uses and self._images:
            for frame in [f for f in self._images if self._next_use(f) == math.inf]:
                del self._images[frame]

    def _next_use(self, frame: int) -> float:
        steps = self._uses.get(frame, [])
        i = bisect.bisect_left(steps, self._step)
        return steps[i] if i < len(steps) else math.inf

    def image(self, frame: int) -> Image.Image:
        """Decoded frame ``frame``, RGB, full resolution (cached and shared: do not modify it).

        Raises:
            CacheError: the file cannot be decoded or its size is not :attr:`size`.
        """
        frame = int(frame)
        found = self._images.get(frame)
        if found is not None:
            self._images.move_to_end(frame)
            return found
        path = self._path_of(frame)
        try:
            with Image.open(path) as handle:
                handle.load()
                image = handle if handle.mode == "RGB" else handle.convert("RGB")
        except OSError as error:
            raise CacheError(f"{path}: cannot decode the cached colour frame ({error})") from None
        if image.size != self.size:
            raise CacheError(
                f"{path}: image is {image.width}x{image.height}, expected "
                f"{self.size[0]}x{self.size[1]} (the unit's colour size)"
            )
        image.info = {}  # annotated copies carry no metadata of the cached file
        self.decoded += 1
        if len(self._images) >= self._slots:
            evicted = max(self._images, key=self._next_use)  # ties: least recently used
            del self._images[evicted]
        self._images[frame] = image
        return image

    @contextlib.contextmanager
    def annotated(
        self,
        frame: int,
        points_px: Sequence[Sequence[float]] | np.ndarray,
        rng: np.random.Generator,
        labels: Sequence[str] | None = None,
    ) -> Iterator[tuple[str, Image.Image]]:
        """Choose a contrasting palette colour and draw the dots on ``frame``, within a block.

        The decoded frame itself is drawn on and restored when the block exits: save it inside
        the block, keep no reference after it.

        Args:
            frame: original frame index.
            points_px: ``(N, 2)`` pixel coordinates of the dots.
            rng: the record's generator (one draw for the colour choice).
            labels: letters beside the dots, or None.

        Yields:
            the colour word and the annotated RGB image.
        """
        image = self.image(frame)
        colour = choose_marker_colour(image, points_px, self.radius, rng)
        with dots_drawn_on(image, points_px, colour.rgb, self.radius, labels) as drawn:
            yield colour.name, drawn
