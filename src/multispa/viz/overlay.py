"""What a sample card draws on the record's images (the model never sees these; the dots of the
dot subtasks are already in their annotated images):

- **referenced point** (yellow disc): the coordinates a coord subtask's question gives
  (``meta.points``), which its images do not show;
- **answer point** (pink disc in a pink ring): a coordinate answer, drawn at the ``gt``
  (0–999, docs/labels.md#coordinates) mapped to the pixel centre of its cell
  (:func:`multispa.geometry.coords.norm1000_to_pixels`);
- **answer ring** (pink ring): around the dot a choice answer names (depth comparison A/B,
  correspondence A–D), and around the tracked point's frame-2 position for object movement
  (``meta.track.uv``).

Pixel convention as in :mod:`multispa.tasks.markers`: ``(u, v)`` integers at pixel centres. A
point maps onto a panel scaled by ``s`` as ``u' = left + (u + 0.5)·s − 0.5``
(:meth:`PanelBox.to_card`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from multispa.errors import ConfigError
from multispa.geometry.coords import norm1000_to_pixels
from multispa.tasks.markers import OUTLINE_PX, draw_dots, marker_radius

__all__ = [
    "ANSWER_RGB",
    "CARD_DOT_PX",
    "REFERENCE_RGB",
    "Mark",
    "PanelBox",
    "draw_legend",
    "draw_marks",
    "legend_items",
    "marks_for",
]

REFERENCE_RGB: tuple[int, int, int] = (255, 214, 0)
#: Not a marker palette colour, so it never matches an annotated dot.
ANSWER_RGB: tuple[int, int, int] = (255, 20, 147)
#: Radius of the discs the card draws, pixels on the card.
CARD_DOT_PX = 7
#: Gap between a dot's outline and the answer ring around it, pixels.
RING_GAP_PX = 5
RING_WIDTH_PX = 3
_RING_KINDS = ("choice", "track")
#: Subtasks (besides object movement ``*_coord``) whose image-1 points are given as coordinates.
_COORD_REFERENCED = ("depth_estimation_coord", "depth_comparison_coord", "correspondence_coord")


@dataclass(frozen=True)
class PanelBox:
    """Where one record image sits on a card.

    Attributes:
        left, top: the panel's top-left pixel on the card.
        width, height: its size on the card, pixels.
        scale_x, scale_y: card pixels per source pixel.
    """

    left: int
    top: int
    width: int
    height: int
    scale_x: float
    scale_y: float

    def to_card(self, u: float, v: float) -> tuple[float, float]:
        """Card pixel ``(column, row)`` of source pixel ``(u, v)`` (module docstring)."""
        return (self.left + (u + 0.5) * self.scale_x - 0.5,
                self.top + (v + 0.5) * self.scale_y - 0.5)


@dataclass(frozen=True)
class Mark:
    """One thing to draw on panel ``image``: ``kind`` is reference, answer (discs), choice or
    track (rings); ``uv`` in source pixels; ``radius`` (choice) is the source-pixel radius of
    the annotated dot the ring surrounds (0: none)."""

    image: int
    kind: str
    uv: tuple[float, float]
    radius: float = 0.0


def points_of(meta: Mapping[str, Any], image: int) -> list[tuple[float, float]]:
    points = meta.get("points")
    if not isinstance(points, list) or image >= len(points) or not isinstance(points[image], list):
        return []
    out = []
    for point in points[image]:
        if (isinstance(point, list) and len(point) == 2
                and all(isinstance(c, int | float) and not isinstance(c, bool) for c in point)):
            out.append((float(point[0]), float(point[1])))
    return out


def gt_point(record: Mapping[str, Any], image: int) -> tuple[float, float] | None:
    gt = record.get("gt")
    if not (isinstance(gt, list) and len(gt) == 2
            and all(isinstance(c, int) and not isinstance(c, bool) for c in gt)):
        return None
    width, height = record["width_list"][image], record["height_list"][image]
    u, v = norm1000_to_pixels(np.asarray(gt, dtype=np.float64), int(width), int(height))
    return float(u), float(v)


def dot_radius(record: Mapping[str, Any], image: int) -> float:
    """Radius of the dots already drawn on annotated image ``image``, source pixels."""
    source = str((record.get("meta") or {}).get("source", "scannet"))
    try:
        return float(marker_radius(int(record["width_list"][image]), source))
    except ConfigError:
        return 10.0


def marks_for(record: Mapping[str, Any]) -> list[Mark]:
    """What the card draws for ``record`` (module docstring)."""
    meta = record.get("meta")
    meta = meta if isinstance(meta, Mapping) else {}
    subtask = str(record.get("subtask", ""))
    marks: list[Mark] = []
    if subtask in _COORD_REFERENCED or (
            subtask.startswith("object_movement_") and subtask.endswith("_coord")):
        marks += [Mark(0, "reference", uv) for uv in points_of(meta, 0)]
    answer_image = 1 if subtask == "correspondence_coord" else 0
    if record.get("answer_type") == "coord":
        point = gt_point(record, answer_image)
        if point is not None:
            marks.append(Mark(answer_image, "answer", point))
    if record.get("answer_type") == "choice":
        image = 1 if subtask == "correspondence_mcq_dot" else 0
        gt = record.get("gt")
        candidates = points_of(meta, image)
        if isinstance(gt, str) and len(gt) == 1 and 0 <= ord(gt) - ord("A") < len(candidates):
            marks.append(Mark(image, "choice", candidates[ord(gt) - ord("A")],
                               dot_radius(record, image)))
    track = meta.get("track")
    if subtask.startswith("object_movement_") and isinstance(track, Mapping):
        uv = track.get("uv")
        if (isinstance(uv, list) and len(uv) == 2 and isinstance(uv[1], list)
                and len(uv[1]) == 2):
            marks.append(Mark(1, "track", (float(uv[1][0]), float(uv[1][1])), 0.0))
    return marks


def _ring(draw: ImageDraw.ImageDraw, centre: tuple[float, float], radius: float) -> None:
    """A pink ring of :data:`RING_WIDTH_PX` with thin black edges, ``radius`` to its inside."""
    x, y = centre
    outer = radius + RING_WIDTH_PX
    draw.ellipse((x - outer - 1, y - outer - 1, x + outer + 1, y + outer + 1), outline=(0, 0, 0),
                 width=1)
    draw.ellipse((x - outer, y - outer, x + outer, y + outer), outline=ANSWER_RGB,
                 width=RING_WIDTH_PX)
    draw.ellipse((x - radius - 1, y - radius - 1, x + radius + 1, y + radius + 1),
                 outline=(0, 0, 0), width=1)


def draw_marks(panel: Image.Image, box: PanelBox, marks: Sequence[Mark]
                ) -> tuple[Image.Image, list[tuple[float, float]]]:
    """Draw ``marks`` on a panel image (panel pixels); return it and the answer centres."""
    local = PanelBox(0, 0, box.width, box.height, box.scale_x, box.scale_y)
    references = [local.to_card(*m.uv) for m in marks if m.kind == "reference"]
    answers = [local.to_card(*m.uv) for m in marks if m.kind == "answer"]
    if references:
        panel = draw_dots(panel, references, REFERENCE_RGB, CARD_DOT_PX)
    if answers:
        panel = draw_dots(panel, answers, ANSWER_RGB, CARD_DOT_PX)
    draw = ImageDraw.Draw(panel)
    for x, y in answers:
        _ring(draw, (x, y), CARD_DOT_PX + OUTLINE_PX + RING_GAP_PX)
    centres = list(answers)
    for mark in marks:
        if mark.kind not in _RING_KINDS:
            continue
        centre = local.to_card(*mark.uv)
        dot = (mark.radius + OUTLINE_PX) * max(box.scale_x, box.scale_y) if mark.radius else 0.0
        _ring(draw, centre, max(dot, CARD_DOT_PX) + RING_GAP_PX)
        centres.append(centre)
    return panel, centres


def legend_items(marks: Sequence[Mark]) -> list[tuple[str, str]]:
    """``(kind, description)`` of each kind of mark drawn, in a fixed order."""
    kinds = {m.kind for m in marks}
    items = []
    if "reference" in kinds:
        items.append(("reference", "point the question gives by coordinates"))
    if "answer" in kinds:
        items.append(("answer", "answer point (gt)"))
    if "choice" in kinds:
        items.append(("choice", "the dot the answer names"))
    if "track" in kinds:
        items.append(("track", "tracked point in Image-2 (meta.track.uv)"))
    return items


def draw_legend(draw: ImageDraw.ImageDraw, items: Sequence[tuple[str, str]], left: int,
                top: int, font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
                muted: tuple[int, int, int], height_px: int) -> None:
    """One legend row at ``(left, top)``: a swatch and the text of each ``legend_items`` entry,
    in ``font`` and colour ``muted``, vertically centred on a ``height_px`` line."""
    x = left
    centre_y = top + height_px // 2
    for kind, text in [("", "Drawn by the card:"), *items]:
        if kind:
            r = 6
            if kind in _RING_KINDS:
                draw.ellipse((x, centre_y - r, x + 2 * r, centre_y + r), outline=ANSWER_RGB,
                             width=2)
            else:
                colour = REFERENCE_RGB if kind == "reference" else ANSWER_RGB
                draw.ellipse((x, centre_y - r, x + 2 * r, centre_y + r), fill=colour,
                             outline=(0, 0, 0))
            x += 2 * r + 6
        draw.text((x, top), text, font=font, fill=muted)
        x += int(font.getlength(text)) + 18
