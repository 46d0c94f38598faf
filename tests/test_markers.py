"""Tests of the dot markers (docs/labels.md#markers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from multispa.errors import CacheError, ConfigError, ShapeError
from multispa.tasks import markers
from multispa.tasks.markers import (
    OUTLINE_PX,
    PALETTE,
    DecodedFrames,
    choose_marker_colour,
    colour_distance,
    dots_drawn_on,
    draw_dots,
    inside_margin,
    marker_radius,
    outline_colour,
)

GREY = (128, 128, 128)
RED = (255, 0, 0)
YELLOW = (255, 255, 0)


def _grey(width: int = 160, height: int = 120) -> Image.Image:
    return Image.new("RGB", (width, height), GREY)


def _changed(before: Image.Image, after: Image.Image) -> np.ndarray:
    return np.any(np.asarray(before) != np.asarray(after), axis=2)


def _dist2(width: int, height: int, u: float, v: float) -> np.ndarray:
    cols, rows = np.meshgrid(np.arange(width), np.arange(height))
    return (cols - u) ** 2 + (rows - v) ** 2


# ---------------------------------------------------------------- palette, radius, margin


def test_palette_names_are_distinct_colour_words() -> None:
    names = [entry.name for entry in PALETTE]
    assert len(names) == len(set(names)) >= 8
    assert all(name.isalpha() and name.islower() for name in names)
    rgbs = [entry.rgb for entry in PALETTE]
    assert len(set(rgbs)) == len(rgbs)
    # high contrast between entries
    for i, a in enumerate(rgbs):
        for b in rgbs[i + 1 :]:
            assert colour_distance(a, np.array(b)) > 150


@pytest.mark.parametrize(
    ("width", "source", "expected"),
    [
        (1296, "scannet", 10),
        (2592, "scannet", 10),
        (640, "scannet", 5),
        (160, "scannet", 2),
        (512, "tapvid3d/adt", 5),
        (640, "tapvid3d/pstudio", 6),
        (1280, "tapvid3d", 12),
        (160, "tapvid3d/adt", 2),
    ],
)
def test_marker_radius(width: int, source: str, expected: int) -> None:
    assert marker_radius(width, source) == expected


def test_marker_radius_rejects_bad_input() -> None:
    with pytest.raises(ConfigError, match="unknown source"):
        marker_radius(640, "drivetrack")
    with pytest.raises(ConfigError, match="width"):
        marker_radius(0, "scannet")


def test_inside_margin_boundaries() -> None:
    uv = np.array(
        [
            [10.0, 60.0],  # u == radius
            [9.999, 60.0],
            [149.0, 60.0],  # u == W - 1 - radius
            [149.001, 60.0],
            [80.0, 10.0],
            [80.0, 9.5],
            [80.0, 109.0],  # v == H - 1 - radius
            [80.0, 109.5],
            [-5.0, 60.0],
            [80.0, 200.0],
        ]
    )
    assert inside_margin(uv, 160, 120, 10).tolist() == [
        True, False, True, False, True, False, True, False, False, False,
    ]  # fmt: skip
    assert inside_margin(np.zeros((0, 2)), 160, 120, 10).shape == (0,)
    with pytest.raises(ShapeError):
        inside_margin(np.zeros(2), 160, 120, 10)


def test_outline_colour_by_luminance() -> None:
    assert outline_colour(YELLOW) == (0, 0, 0)
    assert outline_colour((255, 255, 255)) == (0, 0, 0)
    assert outline_colour(RED) == (255, 255, 255)
    assert outline_colour((0, 60, 255)) == (255, 255, 255)


# ---------------------------------------------------------------- drawing


def test_dot_fill_outline_and_untouched_background() -> None:
    image = _grey()
    u, v, radius = 50.0, 40.0, 5
    out = draw_dots(image, [(u, v)], RED, radius)
    pixels = np.asarray(out)
    assert out.mode == "RGB"
    assert out.size == image.size
    assert np.asarray(image)[40, 50].tolist() == list(GREY)  # input untouched
    dist2 = _dist2(160, 120, u, v)
    disc = dist2 <= radius**2
    ring = (dist2 > radius**2) & (dist2 <= (radius + OUTLINE_PX) ** 2)
    assert np.all(pixels[disc] == RED)
    assert np.all(pixels[ring] == (255, 255, 255))  # red is dark: white outline
    assert np.all(pixels[~(disc | ring)] == GREY)
    # spot checks along the row through the centre
    assert pixels[40, 50].tolist() == list(RED)
    assert pixels[40, 55].tolist() == list(RED)  # distance 5 = radius
    assert pixels[40, 56].tolist() == [255, 255, 255]
    assert pixels[40, 57].tolist() == [255, 255, 255]  # radius + 2
    assert pixels[40, 58].tolist() == list(GREY)
    assert pixels[40, 43].tolist() == [255, 255, 255]
    assert pixels[40, 42].tolist() == list(GREY)


def test_dot_is_centred_exactly_including_fractional_centres() -> None:
    for u, v in [(60.0, 50.0), (60.5, 50.0), (60.5, 50.5), (60.25, 50.0)]:
        changed = _changed(_grey(), draw_dots(_grey(), [(u, v)], YELLOW, 4))
        rows, cols = np.nonzero(changed)
        expected = _dist2(160, 120, u, v) <= (4 + OUTLINE_PX) ** 2
        assert np.array_equal(changed, expected)
        if (2 * u) % 1 == 0:  # centre on a pixel centre or edge: mirror-symmetric footprint
            assert (cols.min() + cols.max()) / 2 == u
            assert (rows.min() + rows.max()) / 2 == v
            assert {(c, r) for c, r in zip(cols, rows, strict=True)} == {
                (int(2 * u - c), int(2 * v - r)) for c, r in zip(cols, rows, strict=True)
            }


def test_light_colour_gets_black_outline() -> None:
    out = np.asarray(draw_dots(_grey(), [(80, 60)], YELLOW, 6))
    assert out[60, 80].tolist() == list(YELLOW)
    assert out[60, 87].tolist() == [0, 0, 0]
    assert out[53, 80].tolist() == [0, 0, 0]


def test_dot_near_border_is_clipped_not_shifted() -> None:
    out = np.asarray(draw_dots(_grey(), [(0, 0)], RED, 3))
    assert out[0, 0].tolist() == list(RED)
    assert out[0, 3].tolist() == list(RED)
    assert out[0, 5].tolist() == [255, 255, 255]
    assert out[0, 6].tolist() == list(GREY)


def test_draw_is_deterministic_and_accepts_other_modes() -> None:
    points = [(30, 30), (100, 80)]
    a = draw_dots(_grey(), points, RED, 4, labels=["A", "B"])
    b = draw_dots(_grey(), points, RED, 4, labels=["A", "B"])
    assert a.tobytes() == b.tobytes()
    grey_l = Image.new("L", (160, 120), 128)
    c = draw_dots(grey_l, points, RED, 4, labels=["A", "B"])
    assert c.mode == "RGB"
    assert c.tobytes() == a.tobytes()


def _label_pixels(point: tuple[float, float], radius: int, letter: str) -> np.ndarray:
    """Mask of pixels changed by the letter only (outside the dot and its outline)."""
    image = _grey()
    out = draw_dots(image, [point], RED, radius, labels=[letter])
    changed = _changed(image, out)
    footprint = _dist2(160, 120, *point) <= (radius + OUTLINE_PX) ** 2
    # the letter never covers its dot: the footprint is exactly the plain dot
    plain = np.asarray(draw_dots(image, [point], RED, radius))
    assert np.array_equal(np.asarray(out)[footprint], plain[footprint])
    return changed & ~footprint


@pytest.mark.parametrize("letter", ["A", "B", "C", "D"])
def test_labels_stay_inside_near_every_border(letter: str) -> None:
    radius = 3
    reference = _label_pixels((80, 60), radius, letter)
    count = int(reference.sum())
    assert count > 10  # a letter was drawn
    rows, cols = np.nonzero(reference)
    assert cols.min() > 80  # to the right of the dot by default
    for point in [
        (3, 60),  # left border
        (156, 60),  # right border: flipped to the left
        (80, 3),  # top border
        (80, 116),  # bottom border
        (3, 3),
        (156, 3),
        (3, 116),
        (156, 116),  # corners
    ]:
        label = _label_pixels(point, radius, letter)
        # the whole letter is inside the image: as many pixels as in the centre
        assert int(label.sum()) == count, point
        rows, cols = np.nonzero(label)
        # beside its dot
        assert np.hypot(cols - point[0], rows - point[1]).min() <= radius + OUTLINE_PX + 6
        if point[0] > 150:
            assert cols.max() < point[0]  # flipped to the left side


def _photo(seed: int = 4, width: int = 160, height: int = 120) -> Image.Image:
    """A textured RGB image (smooth gradients plus noise), so restoring errors would show."""
    rng = np.random.default_rng(seed)
    cols, rows = np.meshgrid(np.arange(width), np.arange(height))
    base = np.stack([cols * 255 // width, rows * 255 // height, (cols + rows) % 256], axis=2)
    noise = rng.integers(-20, 21, size=(height, width, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


@pytest.mark.parametrize(
    ("points", "labels"),
    [
        ([(80.3, 60.6)], None),
        ([(30, 30), (100, 80), (3, 116), (156, 3)], ["A", "B", "C", "D"]),
        ([(40, 40), (45, 42)], ["A", "B"]),  # overlapping markers and letters
    ],
)
def test_drawing_in_place_equals_a_copy_and_is_undone(
    points: list[tuple[float, float]], labels: list[str] | None
) -> None:
    image = _photo()
    original = image.tobytes()
    expected = draw_dots(image, points, RED, 4, labels=labels).tobytes()
    assert image.tobytes() == original  # draw_dots never touches its input
    with dots_drawn_on(image, points, RED, 4, labels=labels) as drawn:
        assert drawn is image
        assert drawn.tobytes() == expected
    assert image.tobytes() == original


@pytest.mark.parametrize("width", [160, 512, 1296])
def test_labels_equal_pillow_text_drawn_in_place(width: int) -> None:
    """Letters are pasted from masks rendered once; the pixels equal ``ImageDraw.text``'s."""
    height = width * 3 // 4
    image = _photo(6, width, height)
    radius = marker_radius(width, "scannet")
    points = [(width * 0.2, height * 0.3), (width * 0.7, height * 0.6), (3.0, height - 4.0),
              (width - 4.0, 3.0)]
    for colour, letters in ((RED, "ABCD"), ((255, 255, 255), "DCBA"), ((0, 60, 255), "BADC")):
        drawn = draw_dots(image, points, colour, radius, labels=list(letters))
        expected = draw_dots(image, points, colour, radius)  # discs only
        font_px = markers.label_font_size(width)
        stroke = max(1, font_px // 12)
        pen = ImageDraw.Draw(expected)
        layout = markers._layout_labels(image.size, np.array(points), radius, list(letters))
        for text, (glyphs, (x0, y0, _, _)) in zip(letters, layout.items, strict=True):
            left, top = glyphs.box[:2]
            pen.text((x0 - left, y0 - top), text, fill=colour, font=markers._font(font_px),
                     anchor="lt", stroke_width=stroke, stroke_fill=outline_colour(colour))
        assert drawn.tobytes() == expected.tobytes(), (width, colour)
        assert not np.array_equal(np.asarray(drawn), np.asarray(image))


def test_drawing_in_place_is_undone_on_error() -> None:
    image = _photo(5)
    original = image.tobytes()
    with pytest.raises(RuntimeError), dots_drawn_on(image, [(50, 50)], RED, 4, ["A"]):
        assert image.tobytes() != original
        raise RuntimeError("writer failed")
    assert image.tobytes() == original
    grey = image.convert("L")
    with pytest.raises(ConfigError, match="RGB"), dots_drawn_on(grey, [(5, 5)], RED, 2):
        pass


def test_label_count_and_colour_validation() -> None:
    with pytest.raises(ShapeError, match="labels"):
        draw_dots(_grey(), [(10, 10), (20, 20)], RED, 3, labels=["A"])
    with pytest.raises(ConfigError, match="colour_rgb"):
        draw_dots(_grey(), [(10, 10)], (300, 0, 0), 3)
    with pytest.raises(ConfigError, match="radius"):
        draw_dots(_grey(), [(10, 10)], RED, 0)
    with pytest.raises(ShapeError):
        draw_dots(_grey(), [(10, 10, 1)], RED, 3)


# ---------------------------------------------------------------- colour choice


def _uniform(colour: tuple[int, int, int], width: int = 160, height: int = 120) -> np.ndarray:
    return np.broadcast_to(np.array(colour, dtype=np.uint8), (height, width, 3)).copy()


def test_colour_choice_avoids_uniform_background() -> None:
    points = [(40.0, 30.0), (120.0, 90.0)]
    for background, forbidden in [
        (RED, {"red", "orange", "magenta"}),
        ((255, 255, 255), {"white", "yellow", "cyan"}),
        ((0, 200, 0), {"green"}),
    ]:
        image = _uniform(background)
        best = max(colour_distance(entry.rgb, np.array(background)) for entry in PALETTE)
        for seed in range(10):
            entry = choose_marker_colour(image, points, 5, np.random.default_rng(seed))
            assert entry.name not in forbidden
            assert colour_distance(entry.rgb, np.array(background)) >= np.floor(best)
            assert entry in PALETTE


def test_colour_choice_uses_the_local_background() -> None:
    # left half red, right half white: a point deep in the red half chooses as on pure red
    image = _uniform((255, 255, 255))
    image[:, :80] = RED
    rng = np.random.default_rng(0)
    local = choose_marker_colour(image, [(20.0, 60.0)], 5, rng)
    on_red = choose_marker_colour(_uniform(RED), [(20.0, 60.0)], 5, np.random.default_rng(0))
    assert local == on_red
    # points in both halves: the choice must avoid both backgrounds' near colours
    both = choose_marker_colour(image, [(20.0, 60.0), (140.0, 60.0)], 5, rng)
    assert both.name not in {"red", "orange", "magenta", "white", "yellow"}


def test_colour_choice_is_robust_to_a_few_stray_pixels() -> None:
    image = _uniform(RED)
    image[60, 80] = (0, 255, 255)  # one cyan pixel inside the window
    without = choose_marker_colour(_uniform(RED), [(80.0, 60.0)], 5, np.random.default_rng(1))
    with_stray = choose_marker_colour(image, [(80.0, 60.0)], 5, np.random.default_rng(1))
    assert with_stray == without


def test_colour_choice_deterministic_and_ties_broken_by_rng() -> None:
    rng_image = np.random.default_rng(3)
    image = rng_image.integers(0, 256, size=(120, 160, 3), dtype=np.uint8)
    points = [(30.0, 40.0), (100.0, 70.0)]
    a = choose_marker_colour(image, points, 4, np.random.default_rng(5))
    b = choose_marker_colour(image, points, 4, np.random.default_rng(5))
    assert a == b
    # a Pillow image gives the same answer as its array
    c = choose_marker_colour(Image.fromarray(image), points, 4, np.random.default_rng(5))
    assert c == a
    # on this dark red, cyan and white have the same floored score (678): a tie the rng breaks
    tie = _uniform((110, 0, 5))
    scores = {e.name: np.floor(colour_distance(e.rgb, np.array([110, 0, 5]))) for e in PALETTE}
    assert {name for name, score in scores.items() if score == max(scores.values())} == {
        "cyan",
        "white",
    }
    picks = [
        choose_marker_colour(tie, points, 4, np.random.default_rng(s)).name for s in range(20)
    ]
    assert set(picks) == {"cyan", "white"}
    assert picks == [
        choose_marker_colour(tie, points, 4, np.random.default_rng(s)).name for s in range(20)
    ]


def _reference_choice_scores(image: np.ndarray, points: list, radius: int) -> np.ndarray:
    """Independent floored scores: per point the ``lower`` 10th percentile of the float redmean
    distances over every third row and column of the ``3·radius`` window; min over points."""
    half = 3 * radius
    height, width = image.shape[:2]
    scores = np.full(len(PALETTE), np.inf)
    for u, v in points:
        col, row = int(np.floor(u + 0.5)), int(np.floor(v + 0.5))
        window = image[
            max(row - half, 0) : min(row + half + 1, height) : 3,
            max(col - half, 0) : min(col + half + 1, width) : 3,
        ].reshape(-1, 3)
        for i, entry in enumerate(PALETTE):
            low = np.percentile(colour_distance(entry.rgb, window), 10, method="lower")
            scores[i] = min(scores[i], low)
    return np.floor(scores)


@pytest.mark.parametrize("seed", range(6))
def test_colour_choice_matches_an_independent_float_computation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    image = np.asarray(_photo(seed)).copy()
    image[40:90, 50:120] = rng.integers(0, 256, size=3)  # a flat patch under some points
    points = [(60.0 + 10 * seed, 50.0), (118.4, 88.6), (2.0, 117.0)][: 1 + seed % 3]
    floored = _reference_choice_scores(image, points, 5)
    best = {PALETTE[i].name for i in np.flatnonzero(floored == floored.max())}
    for draw in range(4):
        chosen = choose_marker_colour(image, points, 5, np.random.default_rng(draw))
        assert chosen.name in best
        pil = choose_marker_colour(Image.fromarray(image), points, 5, np.random.default_rng(draw))
        assert pil == chosen


def test_colour_choice_rejects_bad_images() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ShapeError, match="uint8"):
        choose_marker_colour(np.zeros((10, 10, 3), dtype=np.float32), [(5, 5)], 2, rng)
    with pytest.raises(ShapeError):
        choose_marker_colour(np.zeros((10, 10), dtype=np.uint8), [(5, 5)], 2, rng)


def test_decoded_frames_share_restore_and_report_bad_files(tmp_path: Path) -> None:
    paths = {}
    for frame in (3, 4):
        paths[frame] = tmp_path / f"{frame:05d}.jpg"
        _photo(frame, 64, 48).save(paths[frame], format="JPEG", quality=90)
    frames = DecodedFrames(paths.__getitem__, (64, 48), 3, slots=1)
    first = frames.image(3)
    assert frames.image(3) is first and frames.decoded == 1
    before = first.tobytes()
    with frames.annotated(3, [(20.0, 20.0)], np.random.default_rng(0)) as (name, drawn):
        assert drawn is first and name in {c.name for c in PALETTE}
        assert drawn.tobytes() != before
    assert first.tobytes() == before  # restored for the next record
    frames.image(4)  # one slot: frame 3 is evicted and decoded again when asked for
    frames.image(3)
    assert frames.decoded == 3
    paths[5] = tmp_path / "broken.jpg"
    paths[5].write_bytes(b"not a jpeg")
    with pytest.raises(CacheError, match=r"broken\.jpg"):
        frames.image(5)
    small = DecodedFrames(paths.__getitem__, (32, 24), 3)
    with pytest.raises(CacheError, match="64x48, expected 32x24"):
        small.image(4)
