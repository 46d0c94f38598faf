"""Catalogue of furniture, wall-mounted items and props, and their procedural materials.

Labels are raw ScanNet categories; sizes are realistic ranges (metres). Builders return parts in
the object frame of ``world`` (origin at the footprint centre on the floor, +x along the length).
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable, Sequence

import numpy as np

from multispa.synth.shading import CHECKER, GRADIENT, PLAIN, STRIPES, Material
from multispa.synth.world import ObjectModel, Part

# --- materials -------------------------------------------------------------------------------


def _hsv(hue: float, saturation: float, value: float) -> tuple[float, float, float]:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return (round(r, 4), round(g, 4), round(b, 4))


def random_material(
    rng: np.random.Generator, hue: float, patterns: Sequence[int] = (STRIPES, CHECKER, GRADIENT)
) -> Material:
    """A textured material around ``hue`` (0–1) with a random pattern from ``patterns``."""
    saturation = float(rng.uniform(0.35, 0.8))
    value = float(rng.uniform(0.5, 0.9))
    base = _hsv(hue, saturation, value)
    accent = _hsv(hue + float(rng.uniform(0.06, 0.2)), saturation * 0.7, value * 0.55)
    pattern = int(rng.choice(np.asarray(patterns)))
    axis = np.zeros(3)
    axis[int(rng.integers(0, 3))] = 1.0
    axis += rng.normal(0.0, 0.25, 3)
    axis /= np.linalg.norm(axis)
    return Material(
        base_rgb=base,
        accent_rgb=accent,
        pattern=pattern,
        period_m=round(float(rng.uniform(0.06, 0.22)), 4),
        axis=(round(float(axis[0]), 6), round(float(axis[1]), 6), round(float(axis[2]), 6)),
    )


def distinct_hues(rng: np.random.Generator, count: int) -> list[float]:
    """``count`` well-separated hues (golden-ratio sequence from a random start)."""
    start = float(rng.uniform(0.0, 1.0))
    return [(start + 0.618034 * i) % 1.0 for i in range(count)]


def room_materials(rng: np.random.Generator) -> tuple[Material, ...]:
    """Textures of the six room faces: plank or tile floor, papered walls, plain ceiling."""
    floor_hue = float(rng.uniform(0.05, 0.12))
    floor = Material(
        base_rgb=_hsv(floor_hue, float(rng.uniform(0.4, 0.6)), float(rng.uniform(0.55, 0.75))),
        accent_rgb=_hsv(floor_hue, 0.5, float(rng.uniform(0.35, 0.5))),
        pattern=int(rng.choice([STRIPES, CHECKER])),
        period_m=round(float(rng.uniform(0.25, 0.5)), 4),
        axis=(1.0, 0.0, 0.0) if rng.uniform() < 0.5 else (0.0, 1.0, 0.0),
    )
    wall_hue = float(rng.uniform(0.0, 1.0))
    wall_pattern = int(rng.choice([STRIPES, GRADIENT]))
    walls = []
    for index in range(4):
        walls.append(
            Material(
                base_rgb=_hsv(wall_hue + 0.03 * index, 0.18, 0.86),
                accent_rgb=_hsv(wall_hue + 0.08, 0.25, 0.68),
                pattern=wall_pattern,
                period_m=round(float(rng.uniform(0.12, 0.4)), 4),
                axis=(0.0, 0.0, 1.0) if index % 2 else (0.6, 0.6, 0.52915),
            )
        )
    ceiling = Material(_hsv(0.1, 0.05, 0.95), _hsv(0.1, 0.05, 0.85), CHECKER, 0.6, (0, 0, 1))
    return (walls[0], walls[1], walls[2], walls[3], floor, ceiling)


# --- catalogue -------------------------------------------------------------------------------


def _part(
    x0: float, x1: float, y0: float, y1: float, z0: float, z1: float, accent: bool = False
) -> Part:
    """A part from its bounds in the object frame."""
    return Part(
        centre=((x0 + x1) / 2, (y0 + y1) / 2, (z0 + z1) / 2),
        half=((x1 - x0) / 2, (y1 - y0) / 2, (z1 - z0) / 2),
        accent=accent,
    )


Shape = tuple[list[Part], tuple[float, float, float]]
"""A builder's result: parts and (length, width, height) in metres."""
Builder = Callable[[np.random.Generator], Shape]


def _legs(lx: float, ly: float, inset: float, size: float, z1: float) -> list[Part]:
    return [
        _part(sx * lx - (sx > 0) * size - sx * inset, sx * lx + (sx < 0) * size - sx * inset,
              sy * ly - (sy > 0) * size - sy * inset, sy * ly + (sy < 0) * size - sy * inset,
              0.0, z1, accent=True)
        for sx in (-1, 1) for sy in (-1, 1)
    ]  # fmt: skip


def _u(rng: np.random.Generator, low: float, high: float) -> float:
    return round(float(rng.uniform(low, high)), 3)


Ranges = tuple[float, float, float, float, float, float]
"""(min, max) length, width and height, metres."""


def _table(rng: np.random.Generator, size: Ranges) -> Shape:
    length, width, height = _u(rng, *size[:2]), _u(rng, *size[2:4]), _u(rng, *size[4:])
    lx, ly = length / 2, width / 2
    top = _part(-lx, lx, -ly, ly, height - 0.04, height)
    return [top, *_legs(lx, ly, 0.04, 0.06, height - 0.04)], (length, width, height)


def _build_table(rng: np.random.Generator) -> Shape:
    return _table(rng, (1.2, 1.8, 0.75, 1.0, 0.72, 0.78))


def _build_coffee_table(rng: np.random.Generator) -> Shape:
    return _table(rng, (0.9, 1.2, 0.5, 0.65, 0.38, 0.46))


def _build_desk(rng: np.random.Generator) -> Shape:
    length, width, height = _u(rng, 1.1, 1.6), _u(rng, 0.6, 0.8), _u(rng, 0.72, 0.78)
    lx, ly = length / 2, width / 2
    parts = [
        _part(-lx, lx, -ly, ly, height - 0.03, height),
        _part(-lx, -lx + 0.03, -ly, ly, 0.0, height - 0.03, accent=True),
        _part(lx - 0.03, lx, -ly, ly, 0.0, height - 0.03, accent=True),
        _part(-lx + 0.03, lx - 0.03, ly - 0.02, ly, 0.3, height - 0.03, accent=True),
    ]
    return parts, (length, width, height)


def _build_office_chair(rng: np.random.Generator) -> Shape:
    length, width, height = _u(rng, 0.62, 0.7), _u(rng, 0.56, 0.6), _u(rng, 0.9, 1.1)
    lx, ly = length / 2, width / 2
    seat = 0.24
    parts = [
        _part(-lx, lx, -ly, ly, 0.0, 0.06, accent=True),
        _part(-0.03, 0.03, -0.03, 0.03, 0.06, 0.42, accent=True),
        _part(-seat, seat, -seat, seat, 0.42, 0.5),
        _part(-seat, -seat + 0.06, -0.22, 0.22, 0.5, height),
    ]
    return parts, (length, width, height)


def _build_chair(rng: np.random.Generator) -> Shape:
    length, width, height = _u(rng, 0.46, 0.52), _u(rng, 0.42, 0.46), _u(rng, 0.82, 0.95)
    lx, ly = length / 2, width / 2
    parts = [
        *_legs(lx, ly, 0.0, 0.04, 0.42),
        _part(-lx, lx, -ly, ly, 0.42, 0.47),
        _part(-lx, -lx + 0.04, -ly, ly, 0.47, height),
    ]
    return parts, (length, width, height)


def _build_sofa(rng: np.random.Generator) -> Shape:
    length, width, height = _u(rng, 1.8, 2.2), _u(rng, 0.85, 0.95), _u(rng, 0.75, 0.85)
    lx, ly = length / 2, width / 2
    parts = [
        _part(-lx + 0.18, lx - 0.18, -ly, ly - 0.2, 0.0, 0.42),
        _part(-lx, lx, ly - 0.2, ly, 0.0, height),
        _part(-lx, -lx + 0.18, -ly, ly - 0.2, 0.0, 0.6, accent=True),
        _part(lx - 0.18, lx, -ly, ly - 0.2, 0.0, 0.6, accent=True),
    ]
    return parts, (length, width, height)


def _build_bed(rng: np.random.Generator) -> Shape:
    length, width, height = _u(rng, 1.95, 2.1), _u(rng, 1.4, 1.8), _u(rng, 0.9, 1.1)
    lx, ly = length / 2, width / 2
    parts = [
        _part(-lx + 0.08, lx, -ly, ly, 0.0, 0.3, accent=True),
        _part(-lx + 0.08, lx - 0.02, -ly + 0.02, ly - 0.02, 0.3, 0.52),
        _part(-lx, -lx + 0.08, -ly, ly, 0.0, height, accent=True),
    ]
    return parts, (length, width, height)


def _build_bookshelf(rng: np.random.Generator) -> Shape:
    length, width, height = _u(rng, 0.8, 1.0), _u(rng, 0.3, 0.36), _u(rng, 1.7, 1.95)
    lx, ly = length / 2, width / 2
    parts = [
        _part(-lx, -lx + 0.02, -ly, ly, 0.0, height),
        _part(lx - 0.02, lx, -ly, ly, 0.0, height),
        _part(-lx + 0.02, lx - 0.02, ly - 0.01, ly, 0.0, height, accent=True),
        _part(-lx + 0.02, lx - 0.02, -ly, ly - 0.01, 0.0, 0.08),
        _part(-lx + 0.02, lx - 0.02, -ly, ly - 0.01, height - 0.02, height),
    ]
    for level in (0.45, 0.85, 1.25):
        parts.append(_part(-lx + 0.02, lx - 0.02, -ly, ly - 0.01, level, level + 0.02))
    return parts, (length, width, height)


def _box_object(size: Ranges, top: bool) -> Builder:
    def build(rng: np.random.Generator) -> Shape:
        length, width, height = _u(rng, *size[:2]), _u(rng, *size[2:4]), _u(rng, *size[4:])
        lx, ly = length / 2, width / 2
        if not top:
            return [_part(-lx, lx, -ly, ly, 0.0, height)], (length, width, height)
        parts = [
            _part(-lx + 0.02, lx - 0.02, -ly + 0.02, ly - 0.02, 0.0, height - 0.03),
            _part(-lx, lx, -ly, ly, height - 0.03, height, accent=True),
        ]
        return parts, (length, width, height)

    return build


FURNITURE: dict[str, tuple[Builder, float, bool]] = {
    # label: (builder, sampling weight, whether a scene may hold several)
    "bed": (_build_bed, 0.6, False),
    "table": (_build_table, 1.0, False),
    "coffee table": (_build_coffee_table, 0.6, False),
    "desk": (_build_desk, 1.0, True),
    "office chair": (_build_office_chair, 1.0, True),
    "chair": (_build_chair, 1.5, True),
    "sofa": (_build_sofa, 0.7, False),
    "cabinet": (_box_object((0.8, 1.2, 0.45, 0.6, 0.8, 1.0), top=True), 1.0, True),
    "bookshelf": (_build_bookshelf, 0.8, True),
    "nightstand": (_box_object((0.42, 0.5, 0.36, 0.42, 0.5, 0.6), top=True), 0.8, True),
    "trash can": (_box_object((0.28, 0.34, 0.22, 0.27, 0.35, 0.45), top=False), 0.8, True),
    "refrigerator": (_box_object((0.66, 0.76, 0.6, 0.66, 1.7, 1.85), top=False), 0.5, False),
    "tv stand": (_box_object((1.2, 1.6, 0.38, 0.45, 0.45, 0.55), top=True), 0.7, False),
}
"""Raw ScanNet labels with realistic sizes (length × width × height ranges in the builders)."""

PROPS: dict[str, Builder] = {
    "box": _box_object((0.3, 0.5, 0.25, 0.35, 0.2, 0.35), top=True),
    "book": _box_object((0.24, 0.3, 0.17, 0.21, 0.03, 0.05), top=False),
    "cushion": _box_object((0.4, 0.5, 0.35, 0.4, 0.12, 0.16), top=False),
    "suitcase": _box_object((0.45, 0.6, 0.35, 0.42, 0.2, 0.26), top=True),
}
"""Small rigid objects that move in TAPVid-3D-like clips."""


WallBuilder = Callable[[np.random.Generator], tuple[list[Part], tuple[float, float, float], float]]
"""A wall item builder's result: parts, (length, width, height) and bottom height, metres."""


def _wall_item(size: Ranges, base: tuple[float, float], frame: bool) -> WallBuilder:
    """A thin item against a wall: length along the wall, width = thickness into the room."""

    def build(rng: np.random.Generator) -> tuple[list[Part], tuple[float, float, float], float]:
        length, width, height = _u(rng, *size[:2]), _u(rng, *size[2:4]), _u(rng, *size[4:])
        bottom = _u(rng, *base)
        lx, ly = length / 2, width / 2
        top = bottom + height
        if not frame:
            return [_part(-lx, lx, -ly, ly, bottom, top)], (length, width, height), bottom
        rim = 0.05
        parts = [
            _part(-lx + rim, lx - rim, -ly, ly - 0.01, bottom + rim, top - rim),
            _part(-lx, -lx + rim, -ly, ly, bottom, top, accent=True),
            _part(lx - rim, lx, -ly, ly, bottom, top, accent=True),
            _part(-lx + rim, lx - rim, -ly, ly, bottom, bottom + rim, accent=True),
            _part(-lx + rim, lx - rim, -ly, ly, top - rim, top, accent=True),
        ]
        return parts, (length, width, height), bottom

    return build


WALL_ITEMS: dict[str, tuple[WallBuilder, float]] = {
    # label: (builder, sampling weight); at most one of each per room
    "door": (_wall_item((0.8, 0.95, 0.04, 0.05, 2.0, 2.1), (0.0, 0.0), frame=False), 1.0),
    "picture": (_wall_item((0.4, 0.9, 0.025, 0.03, 0.3, 0.7), (1.2, 1.45), frame=True), 1.0),
    "whiteboard": (_wall_item((1.2, 1.8, 0.02, 0.025, 0.9, 1.1), (0.85, 1.0), frame=True), 0.6),
    "window": (_wall_item((0.8, 1.4, 0.05, 0.06, 1.0, 1.2), (0.85, 1.0), frame=True), 0.8),
}
"""Items mounted flush on a wall (yaw along the wall); ``door`` stands on the floor."""


def _shelf(rng: np.random.Generator) -> tuple[list[Part], tuple[float, float, float], float]:
    """A thin plank sticking out of the wall at head height (its front edge is a depth edge)."""
    length, depth, thickness = _u(rng, 0.6, 1.0), _u(rng, 0.22, 0.3), _u(rng, 0.02, 0.03)
    bottom = _u(rng, 1.35, 1.6)
    lx, ly = length / 2, depth / 2
    return [_part(-lx, lx, -ly, ly, bottom, bottom + thickness)], (length, depth, thickness), bottom


def _coat_rack(rng: np.random.Generator) -> tuple[list[Part], tuple[float, float, float], float]:
    """A 3-cm pole on a floor plate, about 0.2 m in front of the wall, with a bar at the top."""
    foot, height, pole = _u(rng, 0.36, 0.44), _u(rng, 1.6, 1.8), 0.03
    f, p = foot / 2, pole / 2
    parts = [
        _part(-f, f, -f, f, 0.0, 0.03),
        _part(-p, p, -p, p, 0.03, height - pole),
        _part(-f, f, -p, p, height - pole, height, accent=True),
    ]
    return parts, (foot, foot, height), 0.0


THIN_WALL_ITEMS: dict[str, WallBuilder] = {"shelf": _shelf, "coat rack": _coat_rack}
"""Thin objects in front of a wall (depth edges), placed like wall items; only in the scene
variants of ``multispa.synth.scannet_variants`` (never drawn at random)."""


def _materials(rng: np.random.Generator, hue: float) -> tuple[Material, Material]:
    main = random_material(rng, hue)
    trim = random_material(rng, hue + 0.5, patterns=(PLAIN, STRIPES, GRADIENT))
    return main, trim


def build_object(label: str, rng: np.random.Generator, hue: float) -> ObjectModel:
    """Draw one object of ``label`` (a ``FURNITURE``, ``WALL_ITEMS``, ``THIN_WALL_ITEMS`` or
    ``PROPS`` key)."""
    base = 0.0
    if label in WALL_ITEMS:
        parts, (length, width, height), base = WALL_ITEMS[label][0](rng)
    elif label in THIN_WALL_ITEMS:
        parts, (length, width, height), base = THIN_WALL_ITEMS[label](rng)
    else:
        builder = FURNITURE[label][0] if label in FURNITURE else PROPS[label]
        parts, (length, width, height) = builder(rng)
    return ObjectModel(
        label, tuple(parts), length, width, height, _materials(rng, hue), base_m=base
    )


def sample_wall_labels(rng: np.random.Generator, count: int) -> list[str]:
    """``count`` distinct wall-item labels."""
    names = list(WALL_ITEMS)
    weights = np.array([WALL_ITEMS[name][1] for name in names])
    chosen = rng.choice(
        len(names), size=min(count, len(names)), replace=False, p=weights / weights.sum()
    )
    return [names[int(i)] for i in chosen]


def sample_labels(
    rng: np.random.Generator, count: int, force_duplicate: bool, required: Sequence[str] = ()
) -> list[str]:
    """``count`` furniture labels; with ``force_duplicate`` two of them are ``"chair"``, and the
    ``required`` labels are among them."""
    labels: list[str] = ["chair", "chair"] if force_duplicate else []
    labels += required
    names = list(FURNITURE)
    while len(labels) < count:
        weights = np.array(
            [0.0 if (name in labels and not FURNITURE[name][2]) else FURNITURE[name][1]
             for name in names]
        )  # fmt: skip
        labels.append(names[int(rng.choice(len(names), p=weights / weights.sum()))])
    return labels
