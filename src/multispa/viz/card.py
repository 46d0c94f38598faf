"""Sample cards: one record drawn as one image (``multispa show``).

A card has, top to bottom: a title band (subtask, family and answer type; source, scene or clip,
frames and split; the record id), the record's images side by side scaled to a readable width (an
N-view record's view set as a grid of at most four columns), with a top-down sketch beside them for
camera movement and object-movement vectors (:mod:`multispa.viz.sketch`) and a floor plan for the
N-view direction, path and nearest-view questions (:mod:`multispa.viz.nview`, which also outlines
the referred objects in every view where they are seen), a legend of what the card drew, the
question (task description in grey, question in black), the answer with its backticked value
highlighted, and a line of facts from ``meta`` (depths, overlap, camera motion, object dimensions,
track flags).

What the card draws on the images (referenced points, answer points and rings) is described in
:mod:`multispa.viz.overlay`; text wrapping lives in :mod:`multispa.viz.text`.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from multispa.errors import ConfigError, FormatError
from multispa.fs import check_output_file, write_output_file
from multispa.viz.canvas import ui_font
from multispa.viz.nview import NViewOverlay, nview_overlay
from multispa.viz.overlay import (
    ANSWER_RGB,
    REFERENCE_RGB,
    PanelBox,
    draw_legend,
    draw_marks,
    legend_items,
    marks_for,
)
from multispa.viz.records import FoundRecord, find_record
from multispa.viz.sketch import DEFAULT_SKETCH_PX, sketch_for_record
from multispa.viz.text import Run, line_height, text_block

__all__ = [
    "ANSWER_RGB",
    "REFERENCE_RGB",
    "CardLayout",
    "PanelBox",
    "card_for",
    "render_card",
    "save_card",
    "write_card",
]

#: Panel width in pixels by number of images.
PANEL_WIDTH_PX: Mapping[int, int] = {1: 640, 2: 480}
#: Panel width and the most panels per row of an N-view card (its images form a grid).
NVIEW_PANEL_PX, NVIEW_COLUMNS = 300, 4
_BOX_WIDTH_PX = 3
MARGIN_PX = 20
GAP_PX = 16
_TITLE_BG = (31, 41, 55)
_TEXT = (17, 24, 39)
_MUTED = (75, 85, 99)
_FAINT = (209, 213, 219)
_BODY_PX, _SMALL_PX, _TITLE_PX, _HEADING_PX = 16, 13, 20, 14
_IMAGE_TOKEN = "<image>"
_PREFIX_LINE = re.compile(r"^\s*(?:Image-\d+:\s*)?$")
_BACKTICKS = re.compile(r"`[^`]*`")
_FAMILY_WORDS = {"depth": "depth", "correspondence": "correspondence",
                 "camera_movement": "camera movement", "object_movement": "object movement",
                 "object_size": "object size", "nview": "N-view"}


@dataclass(frozen=True)
class CardLayout:
    """Geometry of a rendered card.

    Attributes:
        size: ``(width, height)`` pixels.
        panels: one :class:`PanelBox` per record image, in prompt order.
        sketch: ``(left, top)`` of the sketch (or floor plan), or None when the card has none.
        answer_points: card pixels of every drawn answer point or ring centre, with the index of
            the panel it is on.
        object_boxes: N-view cards: ``(panel, object id, (x0, y0, x1, y1))`` card pixels of
            every object box drawn.
    """

    size: tuple[int, int]
    panels: tuple[PanelBox, ...]
    sketch: tuple[int, int] | None
    answer_points: tuple[tuple[int, float, float], ...]
    object_boxes: tuple[tuple[int, int, tuple[float, float, float, float]], ...] = ()


def _prompt_lines(text: str) -> list[str]:
    """The human turn without its image prefix: description line(s), then the question."""
    lines = []
    for line in text.split("\n"):
        if _IMAGE_TOKEN in line and _PREFIX_LINE.match(line.replace(_IMAGE_TOKEN, "")):
            continue
        if line.strip():
            lines.append(line.strip())
    return lines


def _turns(record: Mapping[str, Any]) -> tuple[str, str]:
    turns = record.get("conversations")
    if (isinstance(turns, list) and len(turns) == 2
            and all(isinstance(t, Mapping) and isinstance(t.get("value"), str) for t in turns)):
        return str(turns[0]["value"]), str(turns[1]["value"])
    raise FormatError(Path(str(record.get("id", "<record>"))),
                      "conversations must be a human turn then a gpt turn with string values")


def _fmt(value: object, digits: int = 0) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = f"{value:.{digits}f}"
        return text.replace("-", "−")
    return str(value)


def _facts(record: Mapping[str, Any]) -> list[str]:
    """Short ``meta`` facts for the bottom line (only those present)."""
    meta = record.get("meta")
    meta = meta if isinstance(meta, Mapping) else {}
    facts: list[str] = []
    depth = meta.get("depth_mm")
    if isinstance(depth, list) and depth:
        names = ["A", "B"] if record.get("subtask") == "depth_comparison_dot" else ["1", "2"]
        if len(depth) == 1:
            facts.append(f"depth {_fmt(depth[0])} mm")
        else:
            facts.append("depths " + ", ".join(f"{names[i] if i < 2 else i + 1}: {_fmt(d)} mm"
                                                for i, d in enumerate(depth)))
    if "ask" in meta and record.get("task") != "nview":
        facts.append(f"asks {meta['ask']}")
    camera = meta.get("camera")
    if isinstance(camera, Mapping):
        t_m = camera.get("t_m")
        if isinstance(t_m, list) and len(t_m) == 3:
            facts.append("t = [ " + " , ".join(_fmt(1000 * float(v)) for v in t_m) + " ] mm")
        for name, label in (("dyaw_deg", "Δyaw"), ("dpitch_deg", "Δpitch")):
            if isinstance(camera.get(name), int | float):
                sign = "+" if camera[name] > 0 else ""
                facts.append(f"{label} {sign}{_fmt(camera[name], 1)}°")
    if isinstance(meta.get("overlap"), int | float):
        facts.append(f"overlap {_fmt(meta['overlap'], 1)} %")
    if "difficulty" in meta:
        facts.append(f"distractors {meta['difficulty']}")
    if record.get("task") == "nview":
        facts += _nview_facts(record, meta)
    dims = meta.get("dims_mm")
    if isinstance(dims, list) and len(dims) == 3:
        facts.append(f"{meta.get('label', 'object')}: height {_fmt(dims[0])}, length "
                     f"{_fmt(dims[1])}, width {_fmt(dims[2])} mm")
    track = meta.get("track")
    if isinstance(track, Mapping):
        facts.append(f"track {track.get('index')} (group {track.get('group')})")
        facts.append("point " + ("moving" if track.get("point_moving") else "static"))
        facts.append("camera " + ("moving" if track.get("camera_moving") else "static"))
        if track.get("reversed"):
            facts.append("reversed pair")
    return facts


def _nview_facts(record: Mapping[str, Any], meta: Mapping[str, Any]) -> list[str]:
    """N-view values behind the answer: distances, angle, first views, path segments."""
    facts: list[str] = []
    distances = meta.get("distances_m")
    if isinstance(distances, list) and distances:
        shown = ", ".join(_fmt(float(d), 2) for d in distances if isinstance(d, int | float))
        facts.append(f"distances {shown} m")
    if isinstance(meta.get("theta_deg"), int | float):
        facts.append(f"θ {_fmt(meta['theta_deg'], 1)}° (+ = left)")
    if isinstance(meta.get("first_seen"), list):
        facts.append("first seen in images " + ", ".join(str(v) for v in meta["first_seen"]))
    segments = meta.get("segments_m")
    if isinstance(segments, list) and segments:
        facts.append(f"{len(segments)} segments, {_fmt(sum(map(float, segments)), 2)} m")
    if isinstance(meta.get("count_ids"), list):
        facts.append(f"{len(meta['count_ids'])} seen: ids {meta['count_ids']}")
    if "ask" in meta and record.get("subtask") == "nview_object_rel_distance":
        facts.append(f"asks {meta['ask']}")
    return facts


def _title_lines(record: Mapping[str, Any], split: str) -> tuple[str, str, str]:
    meta = record.get("meta")
    meta = meta if isinstance(meta, Mapping) else {}
    family = _FAMILY_WORDS.get(str(record.get("task")), str(record.get("task")))
    source = str(meta.get("source", "?"))
    key = str(record.get("subtask"))
    if source.startswith("tapvid3d/"):
        key = f"{key}:{source.split('/', 1)[1]}"
    head = f"{key}   ·   {family}, {record.get('answer_type')} answer"
    where = [source, str(meta.get("scene") or meta.get("clip") or "?")]
    frames = meta.get("frames")
    if isinstance(frames, list) and frames:
        where.append(("frame " if len(frames) == 1 else "frames ")
                     + " → ".join(str(f) for f in frames))
    where.append(f"split {split}")
    return head, "   ·   ".join(where), str(record.get("id"))


# --------------------------------------------------------------------------------- card


def _load_panel(path: Path, width: int) -> tuple[Image.Image, tuple[int, int]]:
    """``path`` scaled to ``width`` pixels wide, and its original ``(width, height)``."""
    try:
        with Image.open(path) as image:
            original = image.size
            height = max(1, round(original[1] * width / original[0]))
            if original[0] > 2 * width:
                image.draft("RGB", (width, height))
            rgb = image.convert("RGB")
    except OSError as exc:
        raise FormatError(path, f"not a readable image ({exc})") from None
    method = Image.Resampling.LANCZOS if rgb.width > width else Image.Resampling.BICUBIC
    return rgb.resize((width, height), method), original


def _draw_objects(panel: Image.Image, box: PanelBox, overlay: NViewOverlay, index: int
                  ) -> tuple[Image.Image, list[tuple[int, int, tuple[float, float, float, float]]]]:
    """Outline the overlay's object boxes of view ``index`` on its panel (panel pixels)."""
    draw = ImageDraw.Draw(panel)
    font = ui_font(_SMALL_PX, "bold")
    drawn = []
    for item in overlay.boxes:
        if item.image != index:
            continue
        u0, v0, u1, v1 = item.box_px
        x0, y0 = (u0 + 0.5) * box.scale_x - 0.5, (v0 + 0.5) * box.scale_y - 0.5
        x1, y1 = (u1 + 0.5) * box.scale_x - 0.5, (v1 + 0.5) * box.scale_y - 0.5
        x0, y0 = max(0.0, x0 - 2), max(0.0, y0 - 2)
        x1, y1 = min(box.width - 1.0, x1 + 2), min(box.height - 1.0, y1 + 2)
        draw.rectangle((x0, y0, x1, y1), outline=item.colour, width=_BOX_WIDTH_PX)
        tag_y = y0 + 2 if y0 < line_height(font) + 2 else y0 - line_height(font) - 1
        width = font.getlength(item.text)
        draw.rectangle((x0, tag_y, x0 + width + 6, tag_y + line_height(font)), fill=item.colour)
        draw.text((x0 + 3, tag_y), item.text, font=font, fill=(255, 255, 255))
        drawn.append((index, item.object_id,
                      (box.left + x0, box.top + y0, box.left + x1, box.top + y1)))
    if overlay.answer_image == index:
        draw.rectangle((0, 0, box.width - 1, box.height - 1), outline=ANSWER_RGB, width=6)
    return panel, drawn


def card_for(found: FoundRecord, *, sketch_px: int = DEFAULT_SKETCH_PX,
             cache: Path | None = None) -> tuple[Image.Image, CardLayout]:
    """Render the card of a found record; return the RGB image and its :class:`CardLayout`.

    Args:
        found: the record and its images.
        sketch_px: side of the sketch or floor plan, pixels.
        cache: the prepared cache (``multispa prepare --cache``) that N-view object boxes and
            floor plans are read from; by default the one the dataset's manifest names.

    Raises:
        FormatError: an image cannot be decoded, or the record's lists disagree in length.
    """
    record = found.record
    human, answer = _turns(record)
    count = len(found.images)
    widths, heights = record.get("width_list"), record.get("height_list")
    if not (isinstance(widths, list) and isinstance(heights, list)
            and len(widths) == len(heights) == count):
        raise FormatError(found.path, f"line {found.line}: record {record.get('id')}: "
                                      f"{count} images but width_list {widths!r} and "
                                      f"height_list {heights!r}")
    nview = record.get("task") == "nview"
    if nview:
        panel_width, columns = NVIEW_PANEL_PX, min(count, NVIEW_COLUMNS)
    else:
        panel_width, columns = PANEL_WIDTH_PX.get(count, max(240, 960 // count)), count
    panels, originals = [], []
    for path in found.images:
        panel, original = _load_panel(path, panel_width)
        panels.append(panel)
        originals.append(original)
    overlay = None
    if nview:
        root = found.root if found.root is not None else found.path.parent
        overlay = nview_overlay(record, root, cache=cache, plan_px=sketch_px)
    sketch_image = (overlay.plan if overlay is not None else
                    getattr(sketch_for_record(record, size_px=sketch_px), "image", None))

    content_width = columns * panel_width + (columns - 1) * GAP_PX
    if sketch_image is not None:
        content_width += GAP_PX + sketch_image.width
    card_width = 2 * MARGIN_PX + max(content_width, 600)
    text_width = card_width - 2 * MARGIN_PX

    title_font, small_font = ui_font(_TITLE_PX, "bold"), ui_font(_SMALL_PX)
    mono_font, body_font = ui_font(_SMALL_PX, "mono"), ui_font(_BODY_PX)
    heading_font, bold_body = ui_font(_HEADING_PX, "bold"), ui_font(_BODY_PX, "bold")
    head, where, rid = _title_lines(record, found.split)
    title = text_block([(head, title_font, (255, 255, 255), False)], text_width)
    subtitle = text_block([(where, small_font, _FAINT, False)], text_width)
    id_block = text_block([(rid, mono_font, _FAINT, False)], text_width)
    title_height = 12 + title.height + subtitle.height + id_block.height + 10

    lines = _prompt_lines(human)
    question_runs = [(line + " ", body_font, _MUTED, False) for line in lines[:-1]]
    question_runs += [(lines[-1] if lines else "", bold_body, _TEXT, False)]
    question = text_block(question_runs, text_width)
    answer_runs: list[Run] = []
    position = 0
    for match in _BACKTICKS.finditer(answer):
        answer_runs.append((answer[position:match.start()], body_font, _TEXT, False))
        answer_runs.append((match.group(0), bold_body, (134, 25, 143), True))
        position = match.end()
    answer_runs.append((answer[position:], body_font, _TEXT, False))
    answer_block = text_block(answer_runs, text_width)
    facts = text_block([("   ·   ".join(_facts(record)), small_font, _MUTED, False)], text_width)

    label_height = line_height(small_font) + 4
    panels_top = title_height + 14 + label_height
    boxes: list[PanelBox] = []
    x = MARGIN_PX
    y = panels_top
    grid_height = 0
    for index, (panel, (width, height)) in enumerate(zip(panels, originals, strict=True)):
        if index and index % columns == 0:
            x, y = MARGIN_PX, panels_top + grid_height + label_height + GAP_PX
        boxes.append(PanelBox(x, y, panel.width, panel.height,
                              panel.width / width, panel.height / height))
        grid_height = max(grid_height, y + panel.height - panels_top)
        x += panel.width + GAP_PX
    x = MARGIN_PX + columns * (panel_width + GAP_PX)
    row_height = max([grid_height] + ([sketch_image.height] if sketch_image else []))
    marks = marks_for(record)
    legend = legend_items(marks)
    object_legend = overlay.legend if overlay is not None and overlay.boxes else []
    note = overlay.note if overlay is not None else None
    legend_height = (line_height(small_font) + 8) if legend or object_legend or note else 0
    text_top = panels_top + row_height + 12 + legend_height
    heading_height = line_height(heading_font)
    total_height = (text_top + heading_height + question.height + 10 + heading_height
                    + answer_block.height + 12 + facts.height + MARGIN_PX)

    card = Image.new("RGB", (card_width, total_height), (255, 255, 255))
    draw = ImageDraw.Draw(card)
    draw.rectangle((0, 0, card_width, title_height), fill=_TITLE_BG)
    y = 12
    for block in (title, subtitle, id_block):
        block.draw(draw, MARGIN_PX, y)
        y += block.height

    answer_points: list[tuple[int, float, float]] = []
    object_boxes: list[tuple[int, int, tuple[float, float, float, float]]] = []
    for index, (panel, box) in enumerate(zip(panels, boxes, strict=True)):
        own = [m for m in marks if m.image == index]
        panel, centres = draw_marks(panel, box, own)
        if overlay is not None:
            panel, drawn = _draw_objects(panel, box, overlay, index)
            object_boxes += drawn
        card.paste(panel, (box.left, box.top))
        draw.rectangle((box.left - 1, box.top - 1, box.left + box.width, box.top + box.height),
                       outline=_FAINT)
        answer_points += [(index, box.left + cx, box.top + cy) for cx, cy in centres]
        label = f"Image-{index + 1}" + (f"  ·  {originals[index][0]}×{originals[index][1]} px")
        draw.text((box.left, box.top - label_height), label, font=small_font, fill=_MUTED)
    sketch_at = None
    if sketch_image is not None:
        sketch_at = (x, panels_top)
        card.paste(sketch_image, sketch_at)
        caption = ("Floor plan (not model input)" if overlay is not None
                   else "Top-down sketch (not model input)")
        draw.text((x, panels_top - label_height), caption, font=small_font, fill=_MUTED)
    legend_top = panels_top + row_height + 8
    if legend:
        draw_legend(draw, legend, MARGIN_PX, legend_top, small_font, _MUTED,
                    line_height(small_font))
    elif object_legend or note:
        _object_legend(draw, object_legend, note, MARGIN_PX, legend_top, small_font)

    y = text_top
    draw.text((MARGIN_PX, y), "QUESTION", font=heading_font, fill=_MUTED)
    y += heading_height
    question.draw(draw, MARGIN_PX, y)
    y += question.height + 10
    draw.text((MARGIN_PX, y), "ANSWER", font=heading_font, fill=_MUTED)
    y += heading_height
    answer_block.draw(draw, MARGIN_PX, y)
    y += answer_block.height + 12
    facts.draw(draw, MARGIN_PX, y)
    layout = CardLayout(size=card.size, panels=tuple(boxes), sketch=sketch_at,
                        answer_points=tuple(answer_points), object_boxes=tuple(object_boxes))
    return card, layout


def _object_legend(draw: ImageDraw.ImageDraw,
                   items: list[tuple[tuple[int, int, int], str]], note: str | None, left: int,
                   top: int, font: Any) -> None:
    """One legend row of the N-view object colours (or the note why none are drawn)."""
    x = left
    for colour, text in [((0, 0, 0), "Boxes drawn by the card:"), *items]:
        if colour != (0, 0, 0):
            draw.rectangle((x, top + 3, x + 12, top + 13), outline=colour, width=3)
            x += 18
        draw.text((x, top), text, font=font, fill=_MUTED)
        x += int(font.getlength(text)) + 16
    if note:
        draw.text((x if items else left, top), note, font=font, fill=_MUTED)


def render_card(source: Path, record_id: str, *, cache: Path | None = None) -> Image.Image:
    """The card of record ``record_id`` in the DATASET or BENCH folder ``source`` (RGB image).

    ``cache`` is the prepared cache for N-view object boxes (default: the dataset's own).

    Raises:
        multispa.viz.records.RecordNotFoundError: no such id (suggests close ids).
        DatasetError: the folder, the record or one of its images is unreadable.
    """
    image, _ = card_for(find_record(source, record_id), cache=cache)
    return image


_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def save_card(image: Image.Image, out: Path, *, jpeg_quality: int = 88) -> Path:
    """Write ``image`` to ``out`` in the format its suffix names (png, jpg/jpeg, webp;
    ``jpeg_quality`` 1–95 for the lossy two).

    Raises:
        ConfigError: another suffix, or a quality outside 1..95.
    """
    out = Path(out)
    if not 1 <= jpeg_quality <= 95:
        raise ConfigError(f"{out}: JPEG/WebP quality must be 1..95, found {jpeg_quality}")
    image_format = _FORMATS.get(out.suffix.lower())
    if image_format is None:
        raise ConfigError(f"{out}: unknown image suffix {out.suffix!r}; expected one of "
                          f"{sorted(_FORMATS)}")
    options: dict[str, Any] = {"optimize": True}
    if image_format in ("JPEG", "WEBP"):
        options["quality"] = jpeg_quality
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return write_output_file(out, buffer.getvalue())


def write_card(source: Path, record_id: str, out: Path, *, jpeg_quality: int = 88,
               cache: Path | None = None) -> Path:
    """Render the card of ``record_id`` from ``source`` and write it to ``out`` (format from
    the suffix, :func:`save_card`); return ``out``. ``cache`` as in :func:`render_card`.

    Raises:
        OutputError: ``out`` is a folder, lies under a file, or cannot be written.
    """
    check_output_file(Path(out))
    return save_card(render_card(source, record_id, cache=cache), out, jpeg_quality=jpeg_quality)
