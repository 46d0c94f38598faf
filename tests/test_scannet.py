"""Tests of ScanNet scene assembly in the three layouts and of the split lists.

Each test builds a tiny scene in ``tmp_path`` with the independent byte builders: an 11-frame
``.sens`` (colour 64×48 JPEG, depth 32×24), frame 5 with a ``-inf`` pose, a 20-vertex mesh, an
aggregation with a segment conflict, and ``<scene>.txt`` with a 30° rotation about z plus a
translation as ``axisAlignment``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from bytes_builders import make_jpeg, make_ply_bytes, make_sens_bytes
from multispa.errors import ConfigError, DatasetError, FormatError, MissingFileError
from multispa.scenes.scannet import ScanNetDataset, load_scannet_scene
from multispa.scenes.splits import hash_split
from multispa.scenes.types import Intrinsics

SCENE = "scene0007_00"
COLOR_SIZE = (64, 48)
DEPTH_SIZE = (32, 24)
NUM_FRAMES = 11
INVALID = 5
NUM_VERTICES = 20


def _k4(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    k = np.eye(4)
    k[0, 0], k[1, 1], k[0, 2], k[1, 2] = fx, fy, cx, cy
    return k


K_COLOR = _k4(58.5, 57.25, 31.75, 23.5)
K_DEPTH = _k4(28.75, 28.5, 15.5, 11.75)


def _alignment() -> np.ndarray:
    angle = np.deg2rad(30.0)
    a = np.eye(4)
    a[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    a[:3, 3] = [1.25, -2.5, 0.75]
    return a


ALIGN = _alignment()


def _f32(x: np.ndarray) -> np.ndarray:
    """Values exactly representable in float32 (the .sens stores float32)."""
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def _raw_pose(i: int) -> np.ndarray:
    angle = 0.2 * i
    pose = np.eye(4)
    pose[0, 0], pose[0, 2], pose[2, 0], pose[2, 2] = (
        np.cos(angle),
        np.sin(angle),
        -np.sin(angle),
        np.cos(angle),
    )
    pose[:3, 3] = [0.5 * i, 1.0 - 0.1 * i, 1.5]
    if i == INVALID:
        pose[1, 3] = -np.inf
    return _f32(pose)


RAW_POSES = [_raw_pose(i) for i in range(NUM_FRAMES)]
DEPTHS_MM = [
    np.random.default_rng(50 + i).integers(0, 6000, size=DEPTH_SIZE[::-1], dtype=np.uint16)
    for i in range(NUM_FRAMES)
]
COLORS_RGB = [
    np.random.default_rng(i).integers(0, 256, size=(*COLOR_SIZE[::-1], 3), dtype=np.uint8)
    for i in range(NUM_FRAMES)
]
COLORS_JPEG = [make_jpeg(c) for c in COLORS_RGB]
XYZ = _f32(np.random.default_rng(7).uniform(-3, 3, size=(NUM_VERTICES, 3)))
RGB = np.random.default_rng(8).integers(0, 256, size=(NUM_VERTICES, 3), dtype=np.uint8)
# 5 segments of 4 vertices; segment 14 is unannotated, 12 is claimed by chair then lamp.
SEG_INDICES = np.repeat([10, 11, 12, 13, 14], 4)
GROUPS = [
    {"id": 0, "objectId": 0, "label": "office chair", "segments": [10, 12]},
    {"id": 1, "objectId": 1, "label": "table", "segments": [11]},
    {"id": 2, "objectId": 2, "label": "lamp", "segments": [12, 13]},
]
EXPECTED_IDS = [0] * 4 + [1] * 4 + [2] * 8 + [-1] * 4

TXT_SIZES = "colorWidth = 64\ncolorHeight = 48\ndepthWidth = 32\ndepthHeight = 24\n"
TXT_ALIGN = "axisAlignment = " + " ".join(repr(float(v)) for v in ALIGN.ravel()) + "\n"


def _write_matrix(path: Path, matrix: np.ndarray) -> None:
    path.write_text(
        "\n".join(" ".join(repr(float(v)) for v in row) for row in matrix) + "\n", encoding="utf-8"
    )


def _write_png16(path: Path, depth_mm: np.ndarray) -> None:
    Image.fromarray(depth_mm.astype(np.uint16)).save(path)


def _write_color(path: Path, i: int, size: tuple[int, int]) -> None:
    if size == COLOR_SIZE:
        path.write_bytes(COLORS_JPEG[i])
    else:
        small = Image.fromarray(COLORS_RGB[i]).resize(size)
        path.write_bytes(make_jpeg(np.asarray(small)))


def build_scene(
    root: Path,
    *,
    raw: bool = True,
    sensreader: bool = False,
    posed: bool = False,
    txt: str | None = TXT_ALIGN + TXT_SIZES,
    annotations: bool = True,
    color_size: tuple[int, int] = COLOR_SIZE,
    sens_kwargs: dict[str, Any] | None = None,
) -> Path:
    """Write one scene under ``root/scans`` (+ exports); return the scans folder."""
    scans = root / "scans"
    scene_dir = scans / SCENE
    scene_dir.mkdir(parents=True)
    if raw:
        (scene_dir / f"{SCENE}.sens").write_bytes(
            make_sens_bytes(
                color_intrinsics=K_COLOR,
                depth_intrinsics=K_DEPTH,
                color_size=COLOR_SIZE,
                depth_size=DEPTH_SIZE,
                poses=RAW_POSES,
                colors=COLORS_JPEG,
                depths_mm=DEPTHS_MM,
                **(sens_kwargs or {}),
            )
        )
    if txt is not None:
        (scene_dir / f"{SCENE}.txt").write_text(txt, encoding="utf-8")
    (scene_dir / f"{SCENE}_vh_clean_2.ply").write_bytes(make_ply_bytes(XYZ, RGB))
    if annotations:
        (scene_dir / f"{SCENE}.aggregation.json").write_text(
            json.dumps({"sceneId": f"scannet.{SCENE}", "segGroups": GROUPS}), encoding="utf-8"
        )
        (scene_dir / f"{SCENE}_vh_clean_2.0.010000.segs.json").write_text(
            json.dumps({"segIndices": SEG_INDICES.tolist()}), encoding="utf-8"
        )
    if sensreader:
        export = root / "export" / SCENE
        for sub in ("color", "depth", "pose", "intrinsic"):
            (export / sub).mkdir(parents=True)
        for i in range(NUM_FRAMES):
            _write_color(export / "color" / f"{i}.jpg", i, color_size)
            _write_png16(export / "depth" / f"{i}.png", DEPTHS_MM[i])
            _write_matrix(export / "pose" / f"{i}.txt", RAW_POSES[i])
        _write_matrix(export / "intrinsic" / "intrinsic_color.txt", K_COLOR)
        _write_matrix(export / "intrinsic" / "intrinsic_depth.txt", K_DEPTH)
        _write_matrix(export / "intrinsic" / "extrinsic_color.txt", np.eye(4))
        _write_matrix(export / "intrinsic" / "extrinsic_depth.txt", np.eye(4))
    if posed:
        frames_dir = root / "posed_images" / SCENE
        frames_dir.mkdir(parents=True)
        for i in range(0, NUM_FRAMES):
            _write_color(frames_dir / f"{i:05d}.jpg", i, color_size)
            _write_png16(frames_dir / f"{i:05d}.png", DEPTHS_MM[i])
            _write_matrix(frames_dir / f"{i:05d}.txt", RAW_POSES[i])
        _write_matrix(frames_dir / "intrinsic.txt", K_COLOR)
    return scans


def _k_tuple(k: Intrinsics) -> tuple[float, ...]:
    return (k.fx, k.fy, k.cx, k.cy, k.width, k.height)


def _k_of(matrix: np.ndarray, size: tuple[int, int]) -> tuple[float, ...]:
    return (matrix[0, 0], matrix[1, 1], matrix[0, 2], matrix[1, 2], *size)


# ---------------------------------------------------------------------------------- raw layout


def test_raw_frames_poses_and_intrinsics(tmp_path: Path) -> None:
    scene = load_scannet_scene(build_scene(tmp_path), SCENE)
    assert scene.layout == "raw"
    assert scene.frame_skip == 5
    assert [f.index for f in scene.frames] == [0, 10]
    assert scene.invalid_frames == (INVALID,)
    assert scene.total_frames == NUM_FRAMES
    np.testing.assert_array_equal(scene.axis_alignment, ALIGN)
    for frame in scene.frames:
        raw = RAW_POSES[frame.index]
        np.testing.assert_array_equal(frame.raw_world_from_cam, raw)
        np.testing.assert_array_equal(frame.world_from_cam, ALIGN @ raw)
        assert frame.world_from_cam.dtype == np.float64
    # Camera centre of frame 10 rotated by 30° about z and translated.
    centre = RAW_POSES[10][:3, 3]
    c, s = np.cos(np.deg2rad(30)), np.sin(np.deg2rad(30))
    expected = [c * centre[0] - s * centre[1] + 1.25, s * centre[0] + c * centre[1] - 2.5, 2.25]
    np.testing.assert_allclose(scene.frames[1].world_from_cam[:3, 3], expected, atol=1e-12)
    assert _k_tuple(scene.color_intrinsics) == _k_of(K_COLOR, COLOR_SIZE)
    assert _k_tuple(scene.depth_intrinsics) == _k_of(K_DEPTH, DEPTH_SIZE)
    assert scene.files["sens"].name == f"{SCENE}.sens"
    assert {"meta_txt", "ply", "aggregation", "segs"} <= set(scene.files)
    assert all(path.is_file() for path in scene.files.values())


@pytest.mark.parametrize(
    ("skip", "kept", "invalid"),
    [
        (1, [i for i in range(11) if i != 5], (5,)),
        (2, [0, 2, 4, 6, 8, 10], ()),
        (3, [0, 3, 6, 9], ()),
        (20, [0], ()),
    ],
)
def test_frame_skip(tmp_path: Path, skip: int, kept: list[int], invalid: tuple[int, ...]) -> None:
    scene = load_scannet_scene(build_scene(tmp_path), SCENE, frame_skip=skip)
    assert [f.index for f in scene.frames] == kept
    assert scene.invalid_frames == invalid


def test_bad_options(tmp_path: Path) -> None:
    scans = build_scene(tmp_path)
    with pytest.raises(ConfigError, match="frame_skip"):
        load_scannet_scene(scans, SCENE, frame_skip=0)
    with pytest.raises(ConfigError, match="layout"):
        load_scannet_scene(scans, SCENE, layout="zip")


def test_vertices_aligned_and_instances(tmp_path: Path) -> None:
    labels = {"office chair": "chair", "table": "table"}
    scene = load_scannet_scene(build_scene(tmp_path), SCENE, label_map=labels)
    expected = (np.c_[XYZ, np.ones(NUM_VERTICES)] @ ALIGN.T)[:, :3].astype(np.float32)
    assert scene.vertices.dtype == np.float32
    np.testing.assert_array_equal(scene.vertices, expected)
    np.testing.assert_array_equal(scene.vertex_colors, RGB)
    assert scene.instance_ids.dtype == np.int32
    assert scene.instance_ids.tolist() == EXPECTED_IDS
    assert [(o.object_id, o.label, o.nyu40_class) for o in scene.objects] == [
        (0, "office chair", "chair"),
        (1, "table", "table"),
        (2, "lamp", None),
    ]
    assert [o.vertex_indices.tolist() for o in scene.objects] == [
        [0, 1, 2, 3],
        [4, 5, 6, 7],
        list(range(8, 16)),
    ]
    assert any("1 segment(s) listed by several objects" in w for w in scene.warnings)


def test_depth_and_colour_from_sens(tmp_path: Path) -> None:
    scene = load_scannet_scene(build_scene(tmp_path), SCENE)
    frames = list(scene.frames_source.iter_frames())
    assert [f.info.index for f in frames] == [0, 10]
    data = scene.frames_source.read(10)
    assert data.info is scene.frames[1]
    expected = DEPTHS_MM[10].astype(np.float64) / 1000.0
    assert data.depth_m.dtype == np.float32
    assert data.depth_m.shape == (24, 32)
    np.testing.assert_allclose(data.depth_m, expected, rtol=1e-6)
    assert data.color_bytes == COLORS_JPEG[10]
    assert data.color_format == "jpeg"
    assert data.color_size == COLOR_SIZE
    assert data.color_rgb().shape == (48, 64, 3)
    np.testing.assert_array_equal(frames[1].depth_m, data.depth_m)
    with pytest.raises(DatasetError, match="frame 5 is not a kept frame"):
        scene.frames_source.read(INVALID)
    with pytest.raises(DatasetError, match="frame 3 is not a kept frame"):
        list(scene.frames_source.iter_frames([0, 3]))


def test_missing_axis_alignment_is_identity(tmp_path: Path) -> None:
    scene = load_scannet_scene(build_scene(tmp_path, txt=TXT_SIZES), SCENE)
    np.testing.assert_array_equal(scene.axis_alignment, np.eye(4))
    np.testing.assert_array_equal(scene.frames[1].world_from_cam, RAW_POSES[10])
    np.testing.assert_array_equal(scene.vertices, XYZ.astype(np.float32))
    assert any("no axisAlignment" in w for w in scene.warnings)


def test_missing_txt_is_identity(tmp_path: Path) -> None:
    scene = load_scannet_scene(build_scene(tmp_path, txt=None), SCENE)
    np.testing.assert_array_equal(scene.axis_alignment, np.eye(4))
    assert "meta_txt" not in scene.files
    assert any(f"no {SCENE}.txt" in w for w in scene.warnings)


def test_missing_annotations(tmp_path: Path) -> None:
    scene = load_scannet_scene(build_scene(tmp_path, annotations=False), SCENE)
    assert scene.instance_ids.tolist() == [-1] * NUM_VERTICES
    assert scene.objects == ()
    assert any("every vertex is unannotated" in w for w in scene.warnings)


def test_half_annotations_is_an_error(tmp_path: Path) -> None:
    scans = build_scene(tmp_path)
    (scans / SCENE / f"{SCENE}_vh_clean_2.0.010000.segs.json").unlink()
    with pytest.raises(MissingFileError, match=re.escape("segs.json")):
        load_scannet_scene(scans, SCENE)


def test_non_identity_extrinsics_warn(tmp_path: Path) -> None:
    ext = np.eye(4)
    ext[0, 3] = 0.025
    scans = build_scene(tmp_path, sens_kwargs={"depth_extrinsics": ext})
    scene = load_scannet_scene(scans, SCENE)
    assert [w for w in scene.warnings if "extrinsics" in w] == [
        f"depth extrinsics are not the identity: {_f32(ext).tolist()}"
    ]
    plain = load_scannet_scene(build_scene(tmp_path / "b"), SCENE)
    assert not any("extrinsics" in w for w in plain.warnings)


# ---------------------------------------------------------------------------------- errors


def test_segs_length_mismatch(tmp_path: Path) -> None:
    scans = build_scene(tmp_path)
    segs = scans / SCENE / f"{SCENE}_vh_clean_2.0.010000.segs.json"
    segs.write_text(json.dumps({"segIndices": SEG_INDICES[:-1].tolist()}), encoding="utf-8")
    with pytest.raises(FormatError, match="19 entries but the mesh has 20 vertices") as info:
        load_scannet_scene(scans, SCENE)
    assert segs.name in str(info.value)


def test_aggregation_names_missing_segment(tmp_path: Path) -> None:
    scans = build_scene(tmp_path)
    agg = scans / SCENE / f"{SCENE}.aggregation.json"
    groups = [*GROUPS, {"objectId": 3, "label": "door", "segments": [99]}]
    agg.write_text(json.dumps({"segGroups": groups}), encoding="utf-8")
    with pytest.raises(FormatError, match="objectId 3 \\('door'\\) lists segment 99") as info:
        load_scannet_scene(scans, SCENE)
    assert agg.name in str(info.value)


def test_malformed_axis_alignment(tmp_path: Path) -> None:
    scans = build_scene(tmp_path, txt="axisAlignment = 1 0 0 0 1\n")
    with pytest.raises(FormatError, match="axisAlignment: expected 16 numbers, found 5") as info:
        load_scannet_scene(scans, SCENE)
    assert f"{SCENE}.txt" in str(info.value)


def test_missing_ply(tmp_path: Path) -> None:
    scans = build_scene(tmp_path)
    (scans / SCENE / f"{SCENE}_vh_clean_2.ply").unlink()
    with pytest.raises(MissingFileError, match="mesh not found") as info:
        load_scannet_scene(scans, SCENE)
    assert f"{SCENE}_vh_clean_2.ply" in str(info.value)


def test_missing_scene(tmp_path: Path) -> None:
    scans = build_scene(tmp_path)
    with pytest.raises(MissingFileError, match="scene0999_00: no frames found") as info:
        load_scannet_scene(scans, "scene0999_00", export_root=tmp_path / "export")
    message = str(info.value)
    assert "scene0999_00.sens" in message
    assert str(tmp_path / "export" / "scene0999_00") in message
    assert "posed_images" in message
    with pytest.raises(MissingFileError, match="no sensreader frames found"):
        load_scannet_scene(scans, SCENE, layout="sensreader")


# ---------------------------------------------------------------------------------- exports


def test_sensreader_export_resized_colour(tmp_path: Path) -> None:
    scans = build_scene(tmp_path, raw=False, sensreader=True, color_size=(32, 24))
    scene = load_scannet_scene(scans, SCENE, export_root=tmp_path / "export")
    assert scene.layout == "sensreader"
    assert _k_tuple(scene.color_intrinsics) == (58.5 / 2, 57.25 / 2, 31.75 / 2, 23.5 / 2, 32, 24)
    assert _k_tuple(scene.depth_intrinsics) == _k_of(K_DEPTH, DEPTH_SIZE)
    assert any("colour images are 32x24" in w and "64x48" in w for w in scene.warnings)
    data = scene.frames_source.read(10)
    assert data.color_size == (32, 24)
    assert data.color_bytes == (tmp_path / "export" / SCENE / "color" / "10.jpg").read_bytes()
    assert scene.files["intrinsic_color"].name == "intrinsic_color.txt"


def test_sensreader_export_default_size_without_txt(tmp_path: Path) -> None:
    # Without <scene>.txt the reference size is ScanNet's 1296x968 and 640x480.
    scans = build_scene(tmp_path, raw=False, sensreader=True, txt=None)
    scene = load_scannet_scene(scans, SCENE, export_root=tmp_path / "export")
    sx, sy = 64 / 1296, 48 / 968
    assert _k_tuple(scene.color_intrinsics) == (
        58.5 * sx,
        57.25 * sy,
        31.75 * sx,
        23.5 * sy,
        64,
        48,
    )
    assert scene.depth_intrinsics.width == 32
    assert scene.depth_intrinsics.fx == 28.75 * (32 / 640)


def test_sensreader_export_beside_scans(tmp_path: Path) -> None:
    scans = build_scene(tmp_path, raw=False, sensreader=True)
    (tmp_path / "export" / SCENE).rename(tmp_path / "moved")
    for item in (tmp_path / "moved").iterdir():
        item.rename(scans / SCENE / item.name)
    scene = load_scannet_scene(scans, SCENE)
    assert scene.layout == "sensreader"
    assert [f.index for f in scene.frames] == [0, 10]


def test_posed_images_depth_intrinsics_sources(tmp_path: Path) -> None:
    # 1. .sens present (layout forced): K_depth from its header.
    scans = build_scene(tmp_path / "a", posed=True)
    scene = load_scannet_scene(scans, SCENE, layout="posed_images")
    assert scene.layout == "posed_images"
    assert _k_tuple(scene.depth_intrinsics) == _k_of(K_DEPTH, DEPTH_SIZE)
    assert _k_tuple(scene.color_intrinsics) == _k_of(K_COLOR, COLOR_SIZE)
    assert scene.files["sens"].suffix == ".sens"
    assert not any("intrinsics" in w for w in scene.warnings)
    assert scene.notes.depth_intrinsics_source == "sens"
    # K_color rescaled to 32x24 with pixel centres kept: c' = (c + 0.5) / 2 - 0.5 (rule (o)).
    rescaled = (58.5 / 2, 57.25 / 2, 32.25 / 2 - 0.5, 24.0 / 2 - 0.5, 32, 24)
    # 2. no .sens: the *_depth keys of <scene>.txt when within 1 % of the rescaled K_color.
    keys = "fx_depth = 29.4\nfy_depth = 28.6\nmx_depth = 15.7\nmy_depth = 11.5\n"
    txt = TXT_ALIGN + TXT_SIZES + keys
    scans = build_scene(tmp_path / "b", raw=False, posed=True, txt=txt)
    scene = load_scannet_scene(scans, SCENE)
    assert scene.layout == "posed_images"
    assert _k_tuple(scene.depth_intrinsics) == (29.4, 28.6, 15.7, 11.5, 32, 24)
    assert scene.notes.depth_intrinsics_source == "scene_txt"
    assert not any("intrinsics" in w for w in scene.warnings)
    # 2b. keys farther than 1 % (factory defaults): the rescaled K_color, with a note.
    txt = TXT_ALIGN + TXT_SIZES + "fx_depth = 30\nfy_depth = 31\nmx_depth = 16\nmy_depth = 12\n"
    scans = build_scene(tmp_path / "b2", raw=False, posed=True, txt=txt)
    scene = load_scannet_scene(scans, SCENE)
    assert _k_tuple(scene.depth_intrinsics) == rescaled
    assert scene.notes.depth_intrinsics_source == "rescaled_color"
    assert any("fy 31.00 vs 28.62" in w for w in scene.warnings)
    # 3. neither: the rescaled K_color, with a warning.
    scans = build_scene(tmp_path / "c", raw=False, posed=True)
    scene = load_scannet_scene(scans, SCENE)
    assert _k_tuple(scene.depth_intrinsics) == rescaled
    assert any("no depth intrinsics" in w for w in scene.warnings)


def test_three_layouts_agree(tmp_path: Path) -> None:
    scans = build_scene(tmp_path, sensreader=True, posed=True)
    scenes = [
        load_scannet_scene(scans, SCENE, layout=layout, export_root=tmp_path / "export")
        for layout in ("raw", "sensreader", "posed_images")
    ]
    assert [s.layout for s in scenes] == ["raw", "sensreader", "posed_images"]
    reference = scenes[0]
    reference_data = list(reference.frames_source.iter_frames())
    for scene in scenes[1:]:
        assert [f.index for f in scene.frames] == [f.index for f in reference.frames]
        assert scene.invalid_frames == reference.invalid_frames
        assert scene.total_frames == NUM_FRAMES
        for a, b in zip(scene.frames, reference.frames, strict=True):
            np.testing.assert_array_equal(a.world_from_cam, b.world_from_cam)
            np.testing.assert_array_equal(a.raw_world_from_cam, b.raw_world_from_cam)
        assert _k_tuple(scene.color_intrinsics) == _k_tuple(reference.color_intrinsics)
        assert _k_tuple(scene.depth_intrinsics) == _k_tuple(reference.depth_intrinsics)
        for a, b in zip(scene.frames_source.iter_frames(), reference_data, strict=True):
            np.testing.assert_array_equal(a.depth_m, b.depth_m)
            assert a.color_bytes == b.color_bytes
            assert a.color_size == b.color_size
        np.testing.assert_array_equal(scene.instance_ids, reference.instance_ids)


def test_bad_export_depth_png(tmp_path: Path) -> None:
    scans = build_scene(tmp_path, raw=False, posed=True)
    bad = tmp_path / "posed_images" / SCENE / "00010.png"
    Image.fromarray(np.zeros((24, 32), dtype=np.uint8)).save(bad)
    scene = load_scannet_scene(scans, SCENE)
    with pytest.raises(FormatError, match="expected 16-bit") as info:
        scene.frames_source.read(10)
    assert "00010.png" in str(info.value)
    (tmp_path / "posed_images" / SCENE / "00000.jpg").unlink()
    with pytest.raises(MissingFileError, match=re.escape("00000.jpg")):
        load_scannet_scene(scans, SCENE)


# ---------------------------------------------------------------------------------- dataset


def _make_tree(root: Path, scene_ids: list[str]) -> Path:
    scans = root / "scans"
    for scene_id in scene_ids:
        (scans / scene_id).mkdir(parents=True)
        (scans / scene_id / f"{scene_id}_vh_clean_2.ply").write_bytes(b"ply\n")
    (scans / "notes").mkdir()
    return scans


def test_dataset_split_lists(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    scans = _make_tree(tmp_path, ["scene0000_00", "scene0000_01", "scene0001_00"])
    (tmp_path / "scannetv2_train.txt").write_text("scene0000_00\nscene0000_01\nscene0500_00\n")
    (tmp_path / "scannetv2_val.txt").write_text("scene0001_00\nscene0600_00\nscene0601_00\n\n")
    dataset = ScanNetDataset(tmp_path)  # the ScanNet root holding scans/
    assert dataset.scans_root == scans
    assert dataset.split_source == "lists"
    assert dataset.scene_ids() == ["scene0000_00", "scene0000_01", "scene0001_00"]
    assert dataset.split_checksums == {
        split: hashlib.sha256((tmp_path / f"scannetv2_{split}.txt").read_bytes()).hexdigest()
        for split in ("train", "val")
    }
    with caplog.at_level(logging.INFO):
        assert dataset.scenes_in_split("train") == ["scene0000_00", "scene0000_01"]
        assert dataset.scenes_in_split("val") == ["scene0001_00"]
    assert dataset.missing_listed == {"train": 1, "val": 2}
    assert "2 scene(s) listed for val are not on disk" in caplog.text
    assert dataset.split_of("scene0001_00") == "val"
    assert dataset.split_of("scene0000_01") == "train"
    assert dataset.split_of("scene0707_00") is None
    with pytest.raises(ConfigError, match="split"):
        dataset.scenes_in_split("test")


def test_dataset_lists_must_be_disjoint(tmp_path: Path) -> None:
    scans = _make_tree(tmp_path, ["scene0000_00"])
    train, val = tmp_path / "lists" / "t.txt", tmp_path / "lists" / "v.txt"
    train.parent.mkdir()
    train.write_text("scene0000_00\nscene0002_00\n")
    val.write_text("scene0001_00\nscene0002_00\n")
    with pytest.raises(FormatError, match=re.escape("e.g. scene0002_00")) as info:
        ScanNetDataset(scans, split_files=(train, val))
    assert "t.txt" in str(info.value) and "v.txt" in str(info.value)


def test_dataset_half_lists_and_missing_explicit(tmp_path: Path) -> None:
    scans = _make_tree(tmp_path, ["scene0000_00"])
    (scans / "scannetv2_train.txt").write_text("scene0000_00\n")
    with pytest.raises(MissingFileError, match=re.escape("scannetv2_val.txt")):
        ScanNetDataset(scans)
    with pytest.raises(MissingFileError, match=re.escape("nope.txt")):
        ScanNetDataset(scans, split_files=(scans / "scannetv2_train.txt", tmp_path / "nope.txt"))


def test_dataset_hash_fallback(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ids = [f"scene{i:04d}_00" for i in range(12)]
    scans = _make_tree(tmp_path, ids)
    with caplog.at_level(logging.INFO):
        dataset = ScanNetDataset(scans)
    assert dataset.split_source == "hash"
    assert dataset.split_checksums == {}
    assert "assigned to train/val by a hash of their room id" in caplog.text
    val = dataset.scenes_in_split("val")
    train = dataset.scenes_in_split("train")
    assert sorted(val + train) == ids
    assert val == [s for s in ids if hash_split(s[:9]) == "val"]  # the room, sceneXXXX
    assert all(dataset.split_of(s) == hash_split(s[:9]) for s in ids)
    assert dataset.missing_listed == {"train": 0, "val": 0}


def test_dataset_scene_ids_exports_and_load(tmp_path: Path) -> None:
    scans = build_scene(tmp_path, sensreader=True)
    (tmp_path / "export" / "scene0100_00" / "pose").mkdir(parents=True)
    (tmp_path / "posed_images" / "scene0200_00").mkdir(parents=True)
    (tmp_path / "posed_images" / "scene0200_00" / "intrinsic.txt").write_text("1")
    (tmp_path / "scannetv2-labels.combined.tsv").write_text(
        "raw_category\tnyu40class\nlamp\tlamp\n", encoding="utf-8"
    )
    dataset = ScanNetDataset(scans, export_root=tmp_path / "export")
    assert dataset.scene_ids() == ["scene0007_00", "scene0100_00", "scene0200_00"]
    scene = dataset.load(SCENE, frame_skip=2)
    assert scene.layout == "raw"
    assert [f.index for f in scene.frames] == [0, 2, 4, 6, 8, 10]
    assert [o.nyu40_class for o in scene.objects] == [None, None, "lamp"]
    assert scene.files["labels_tsv"].name == "scannetv2-labels.combined.tsv"
    exported = dataset.load(SCENE, layout="sensreader")
    assert exported.layout == "sensreader"


def test_dataset_missing_root(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="scans folder not found"):
        ScanNetDataset(tmp_path / "absent")
