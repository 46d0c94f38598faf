"""Sample cards (``multispa show``): record look-up, the card of every subtask, where the answer
point is drawn, the top-down sketch's directions, the CLI, and a card PNG loading in headless
Chromium (Debian package ``chromium``; skipped with a message when absent)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from browser import dump_dom
from multispa.cli import main
from multispa.errors import DatasetError, FormatError, MissingFileError
from multispa.tasks.templates import BENCHMARK_SUBTASKS
from multispa.viz.card import ANSWER_RGB, REFERENCE_RGB, card_for, render_card, write_card
from multispa.viz.records import RecordNotFoundError, RecordSource, find_record
from multispa.viz.sketch import (
    CAMERA2_RGB,
    camera_sketch,
    object_sketch,
    sketch_for_record,
    view_direction,
)


def _one_id_per_key(dataset: Path) -> dict[str, str]:
    """The first record id of every benchmark key (val first, else train), read directly."""
    chosen: dict[str, str] = {}
    for split in ("val", "train"):
        for path in sorted((dataset / split).glob("*/*.jsonl")):
            with path.open(encoding="utf-8") as handle:
                record = json.loads(handle.readline())
            subtask, _, source = path.name[: -len(".jsonl")].partition(".")
            key = f"{subtask}:{source}" if source else subtask
            chosen.setdefault(key, record["id"])
    return chosen


@pytest.fixture(scope="module")
def cards(small_dataset: Path) -> dict[str, tuple[Any, Image.Image, Any]]:
    """Per benchmark key: (found record, card image, layout)."""
    source = RecordSource(small_dataset)
    out = {}
    for key, rid in _one_id_per_key(small_dataset).items():
        found = source.find(rid)
        image, layout = card_for(found)
        out[key] = (found, image, layout)
    return out


def _pixel(image: Image.Image, x: float, y: float) -> tuple[int, int, int]:
    return image.getpixel((int(np.floor(x + 0.5)), int(np.floor(y + 0.5))))  # type: ignore[return-value]


def _expected_card_xy(layout: Any, record: dict[str, Any], image: int, u: float, v: float
                      ) -> tuple[float, float]:
    """Card pixel of source pixel (u, v) on panel ``image``, computed from the panel box."""
    box = layout.panels[image]
    scale_x = box.width / record["width_list"][image]
    scale_y = box.height / record["height_list"][image]
    return box.left + (u + 0.5) * scale_x - 0.5, box.top + (v + 0.5) * scale_y - 0.5


# ------------------------------------------------------------------------------- cards


def test_every_subtask_has_a_card_of_sane_size(cards: dict[str, Any]) -> None:
    assert set(cards) == set(BENCHMARK_SUBTASKS)
    for key, (found, image, layout) in cards.items():
        record = found.record
        count = len(record["image"])
        nview = record["task"] == "nview"
        assert image.mode == "RGB" and image.size == layout.size, key
        assert 600 <= image.width <= (1700 if nview else 1500), (key, image.size)
        assert 400 <= image.height <= 1400, (key, image.size)
        assert len(layout.panels) == count
        for box, width, height in zip(layout.panels, record["width_list"],
                                      record["height_list"], strict=True):
            assert box.width >= (300 if nview else 400)  # scaled to a readable size
            assert abs(box.height / box.width - height / width) < 0.01
            assert box.left + box.width <= image.width and box.top + box.height <= image.height
        if nview:  # the view set as a grid of at most four columns, in capture order
            rows = sorted({box.top for box in layout.panels})
            assert len(rows) == -(-count // 4)
            assert [b.top for b in layout.panels] == sorted(b.top for b in layout.panels)
        plan = record["subtask"] in ("nview_rel_direction_easy", "nview_rel_direction_medium",
                                     "nview_rel_direction_hard", "nview_camera_path_length",
                                     "nview_nearest_view")
        has_sketch = record["task"] == "camera_movement" or plan or (
            record["task"] == "object_movement" and record["answer_type"] == "vector")
        assert (layout.sketch is not None) == has_sketch, key


def test_nview_cards_outline_the_referred_objects_where_seen(
        cards: dict[str, Any], small_dataset: Path) -> None:
    cache = json.loads((small_dataset / "manifest.json").read_text())["cache"]["path"]
    for key in ("nview_object_abs_distance", "nview_rel_direction_easy", "nview_object_count"):
        found, _, layout = cards[key]
        record = found.record
        meta = record["meta"]
        referred = meta.get("count_ids") or meta["objects"]
        scene = Path(cache) / "scannet" / meta["scene"]
        frames = np.load(scene / "frame_index.npy").tolist()
        counts = np.load(scene / "object_visible_counts.npy")
        rows = {o["object_id"]: (r, o["num_vertices"]) for r, o in
                enumerate(json.loads((scene / "objects.json").read_text()))}
        expected = set()
        for k, frame in enumerate(meta["frames"]):
            for object_id in referred:
                row, n = rows[object_id]
                c = counts[row, frames.index(frame)]
                if c >= 50 and 20 * c >= n:  # seen in this view
                    expected.add((k, object_id))
        drawn = {(panel, object_id) for panel, object_id, _ in layout.object_boxes}
        assert drawn == expected and drawn, key
        for panel, _, (x0, y0, x1, y1) in layout.object_boxes:
            box = layout.panels[panel]
            assert box.left <= x0 < x1 <= box.left + box.width, key
            assert box.top <= y0 < y1 <= box.top + box.height, key


def test_coordinate_answer_is_drawn_where_the_gt_says(cards: dict[str, Any]) -> None:
    for key, panel in (("depth_comparison_coord", 0), ("correspondence_coord", 1)):
        found, image, layout = cards[key]
        record = found.record
        x1000, y1000 = record["gt"]
        width, height = record["width_list"][panel], record["height_list"][panel]
        u, v = (x1000 + 0.5) * width / 1000, (y1000 + 0.5) * height / 1000
        x, y = _expected_card_xy(layout, record, panel, u, v)
        assert _pixel(image, x, y) == ANSWER_RGB, key
        assert _pixel(image, x + 2, y) == ANSWER_RGB and _pixel(image, x, y - 2) == ANSWER_RGB
        # the same place in the record's own image is not magenta: the card drew it
        box = layout.panels[panel]
        assert (panel, pytest.approx(x, abs=0.01), pytest.approx(y, abs=0.01)) in [
            (i, px, py) for i, px, py in layout.answer_points]
        assert box.left <= x < box.left + box.width


def test_referenced_coordinates_are_drawn(cards: dict[str, Any]) -> None:
    for key in ("depth_estimation_coord", "correspondence_coord",
                "object_movement_vector_coord:adt"):
        found, image, layout = cards[key]
        record = found.record
        u, v = record["meta"]["points"][0][0]
        x, y = _expected_card_xy(layout, record, 0, u, v)
        assert _pixel(image, x, y) == REFERENCE_RGB, key


def _ring_pixels(image: Image.Image, x: float, y: float, radius: int = 40) -> int:
    """Answer-coloured pixels within ``radius`` of (x, y)."""
    col, row = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
    window = np.asarray(image)[max(row - radius, 0):row + radius + 1,
                               max(col - radius, 0):col + radius + 1]
    return int(np.all(window == ANSWER_RGB, axis=-1).sum())


def test_choice_answer_and_tracked_point_are_ringed(cards: dict[str, Any]) -> None:
    for key, panel in (("correspondence_mcq_dot", 1), ("depth_comparison_dot", 0)):
        found, image, layout = cards[key]
        record = found.record
        u, v = record["meta"]["points"][panel]["ABCD".index(record["gt"])]
        x, y = _expected_card_xy(layout, record, panel, u, v)
        assert _pixel(image, x, y) != ANSWER_RGB  # the annotated dot itself stays visible
        assert _ring_pixels(image, x, y) > 40, key
        assert any(i == panel and abs(px - x) < 0.01 and abs(py - y) < 0.01
                   for i, px, py in layout.answer_points)
    found, image, layout = cards["object_movement_distance_dot:adt"]
    u, v = found.record["meta"]["track"]["uv"][1]
    x, y = _expected_card_xy(layout, found.record, 1, u, v)
    assert any(i == 1 and abs(px - x) < 0.01 for i, px, _ in layout.answer_points)
    assert _ring_pixels(image, x, y) > 40
    assert _ring_pixels(image, *_expected_card_xy(layout, found.record, 0, u, v)) == 0


def test_card_text_and_title(cards: dict[str, Any]) -> None:
    _, image, _ = cards["camera_translation_vector"]
    # the title band is dark, the body white
    assert _pixel(image, 5, 5) == (31, 41, 55)
    assert _pixel(image, image.width - 3, image.height - 3) == (255, 255, 255)
    # some pixels of the highlighted answer background exist in the answer area
    pixels = np.asarray(image)
    assert (np.all(pixels == (253, 230, 253), axis=-1)).sum() > 50


# ------------------------------------------------------------------------------ sketch


def test_sketch_camera_moving_right_is_right_of_the_origin() -> None:
    sketch = camera_sketch([0.5, 0.0, 0.0], 0.0)
    (x0, y0), (x1, y1) = sketch.start_px, sketch.end_px
    assert x1 - x0 > 50 and abs(y1 - y0) < 1.0
    assert sketch.end_mm == (500.0, 0.0)
    pixel = _pixel(sketch.image, x1, y1)
    assert pixel == tuple(int(CAMERA2_RGB[i:i + 2], 16) for i in (1, 3, 5))


def test_sketch_forward_is_up_and_left_yaw_turns_left() -> None:
    sketch = camera_sketch([0.0, 0.0, 0.4], 30.0)
    (x0, y0), (x1, y1) = sketch.start_px, sketch.end_px
    assert y0 - y1 > 50 and abs(x1 - x0) < 1.0  # forward (+z) is up in the picture
    dx, dz = view_direction(30.0)
    assert dx < 0 < dz  # a left (positive) yaw turns the view towards −x
    back = object_sketch([-200.0, 30.0, -300.0])
    (x0, y0), (x1, y1) = back.start_px, back.end_px
    assert x1 < x0 and y1 > y0  # left and backward
    assert sketch_for_record({"task": "object_movement", "answer_type": "scalar", "gt": 5}) is None


def test_unwritable_matplotlib_config_dir_prints_no_warning(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder", encoding="utf-8")
    code = ("import logging, sys; logging.basicConfig(level=logging.WARNING); "
            "from multispa.viz.sketch import camera_sketch; "
            "print(camera_sketch([0.1, 0.0, 0.2], 5.0).image.size)")
    env = {**os.environ, "MPLCONFIGDIR": str(blocker / "mpl")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "(300, 300)"
    assert "WARNING" not in proc.stderr and "matplotlib" not in proc.stderr.lower(), proc.stderr


# ------------------------------------------------------------------------------ look-up


def test_lookup_in_dataset_and_bench(small_dataset: Path, small_bench: Path) -> None:
    rid = _one_id_per_key(small_dataset)["camera_x_direction"]
    found = find_record(small_dataset, rid)
    assert found.record["id"] == rid and found.split == rid.split("-")[0]
    assert all(p.is_file() and p.is_relative_to(small_dataset / "images") for p in found.images)
    lines = found.path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[found.line - 1])["id"] == rid
    item = json.loads((small_bench / "bench.jsonl").read_text(encoding="utf-8").splitlines()[0])
    from_bench = find_record(small_bench, item["id"])
    assert from_bench.split == "bench"
    assert from_bench.record["conversations"][1]["value"] == item["answer"]
    assert render_card(small_bench, item["id"]).width >= 600


def test_unknown_id_names_the_folder_and_suggests_close_ids(small_dataset: Path) -> None:
    rid = _one_id_per_key(small_dataset)["depth_estimation_dot"]
    with pytest.raises(RecordNotFoundError) as caught:
        find_record(small_dataset, rid[:-1])
    assert str(small_dataset) in str(caught.value)
    assert caught.value.suggestions[0] == rid
    assert rid in str(caught.value)
    with pytest.raises(RecordNotFoundError) as caught:
        find_record(small_dataset, "completely-unrelated")
    assert caught.value.suggestions == [] and "no similar id" in str(caught.value)


def test_bad_folders_and_files_raise_project_errors(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="folder not found"):
        RecordSource(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="neither a dataset folder"):
        RecordSource(tmp_path / "empty")
    broken = tmp_path / "broken" / "val" / "depth"
    broken.mkdir(parents=True)
    good = {"id": "val-depth_estimation_dot-scannet-s-00001-aa", "image": ["scannet/x.jpg"]}
    (broken / "depth_estimation_dot.jsonl").write_text(
        json.dumps(good) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"depth_estimation_dot\.jsonl: line 2: invalid JSON"):
        find_record(tmp_path / "broken", "val-other")
    with pytest.raises(MissingFileError, match=r"x\.jpg: image 1 of record val-depth"):
        find_record(tmp_path / "broken", good["id"])
    (broken / "depth_estimation_dot.jsonl").write_text(
        json.dumps({**good, "image": ["../../etc/passwd"]}) + "\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"without '\.\.'"):
        find_record(tmp_path / "broken", good["id"])


# ---------------------------------------------------------------------------------- CLI


def test_cli_show_writes_the_card(small_dataset: Path, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    rid = _one_id_per_key(small_dataset)["correspondence_coord"]
    runner = CliRunner()
    out = tmp_path / "cards" / "card.png"
    result = runner.invoke(main, ["show", str(small_dataset), rid, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out)
    with Image.open(out) as image:
        assert image.format == "PNG" and image.width >= 600
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    result = runner.invoke(main, ["show", str(small_dataset), rid])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{rid}.png"
    assert (tmp_path / "cwd" / f"{rid}.png").is_file()
    result = runner.invoke(main, ["show", str(small_dataset), rid + "x"])
    assert result.exit_code == 1
    assert "error:" in result.output and "close ids: " + rid in result.output
    result = runner.invoke(main, ["show", str(small_dataset), rid, "--out",
                                  str(tmp_path / "card.gif")])
    assert result.exit_code == 1 and "unknown image suffix" in result.output


# ----------------------------------------------------------------------------- chromium


def test_card_png_loads_in_headless_chromium(small_dataset: Path, tmp_path: Path) -> None:
    rid = _one_id_per_key(small_dataset)["camera_translation_vector"]
    card = write_card(small_dataset, rid, tmp_path / "card.png")
    with Image.open(card) as image:
        size = image.size
    page = tmp_path / "card.html"
    page.write_text(
        '<!DOCTYPE html><html><body><img id="card" src="card.png"><script>'
        'window.addEventListener("load", () => { const i = document.getElementById("card");'
        ' document.body.setAttribute("data-result", i.naturalWidth + "x" + i.naturalHeight); });'
        "</script></body></html>", encoding="utf-8")
    dom = dump_dom(page, tmp_path / "profile", file_access=True)
    assert f'data-result="{size[0]}x{size[1]}"' in dom
