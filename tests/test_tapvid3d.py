"""Tests for the TAPVid-3D reader: hand-built ``.npz`` clips with known values."""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from multispa.errors import ConfigError, FormatError, MissingFileError
from multispa.scenes.splits import hash_split
from multispa.scenes.tapvid3d import (
    TapVid3DDataset,
    load_tapvid3d_clip,
    sequence_of,
    tracks_key,
)

WIDTH, HEIGHT = 16, 12
T, N = 3, 4
# cam_from_world for frame 1: rotation of +90 degrees about y, then translation (1, 2, 3).
ROT_Y90 = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
TRANSLATION = np.array([1.0, 2.0, 3.0])


def _jpeg(shade: int, width: int = WIDTH, height: int = HEIGHT, fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (shade, 255 - shade, 40)).save(buffer, format=fmt)
    return buffer.getvalue()


def _pose_frame1() -> np.ndarray:
    cam_from_world = np.tile(np.eye(4), (T, 1, 1))
    cam_from_world[1, :3, :3] = ROT_Y90
    cam_from_world[1, :3, 3] = TRANSLATION
    return cam_from_world


def _arrays(**overrides: Any) -> dict[str, Any]:
    tracks = np.arange(T * N * 3, dtype=np.float32).reshape(T, N, 3) / 10.0
    tracks[1, 0] = (0.0, 0.0, 1.0)  # one metre straight ahead of camera 1
    visibility = np.zeros((T, N), dtype=bool)
    visibility[0, :2] = True
    visibility[2, 3] = True
    arrays: dict[str, Any] = {
        "images_jpeg_bytes": np.array([_jpeg(10 * t) for t in range(T)]),
        "tracks_XYZ": tracks,
        "visibility": visibility,
        "queries_xyt": np.array([[1.0, 2.0, 0.0]] * N, dtype=np.float32),
        "fx_fy_cx_cy": np.array([20.0, 21.0, 8.0, 6.0], dtype=np.float32),
        "extrinsics_w2c": _pose_frame1(),
    }
    for key, value in overrides.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    return arrays


def _write(path: Path, **overrides: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        np.savez(handle, **_arrays(**overrides))
    return path


def _error(path: Path, **overrides: Any) -> str:
    _write(path, **overrides)
    with pytest.raises(FormatError) as info:
        load_tapvid3d_clip(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return message


# ---------------------------------------------------------------- loading values


def test_load_values(tmp_path: Path) -> None:
    path = _write(tmp_path / "pstudio" / "juggle_3.npz")
    clip = load_tapvid3d_clip(path)
    expected = _arrays()
    assert clip.clip_id == "juggle_3"
    assert clip.subset == "pstudio"
    assert clip.path == path
    assert clip.image_size == (WIDTH, HEIGHT)
    assert (clip.intrinsics.fx, clip.intrinsics.fy) == (20.0, 21.0)
    assert (clip.intrinsics.cx, clip.intrinsics.cy) == (8.0, 6.0)
    assert (clip.intrinsics.width, clip.intrinsics.height) == (WIDTH, HEIGHT)
    assert clip.tracks_cam.dtype == np.float32
    np.testing.assert_array_equal(clip.tracks_cam, expected["tracks_XYZ"])
    assert clip.visibility.dtype == np.bool_
    np.testing.assert_array_equal(clip.visibility, expected["visibility"])
    assert clip.queries_xyt is not None
    np.testing.assert_array_equal(clip.queries_xyt, expected["queries_xyt"])
    assert clip.cam_from_world.dtype == np.float64
    np.testing.assert_array_equal(clip.cam_from_world, _pose_frame1())
    assert clip.has_extrinsics is True
    assert clip.pose_source == "extrinsics"
    assert (clip.num_frames, clip.num_tracks) == (T, N)


def test_jpeg_bytes_round_trip_despite_padding(tmp_path: Path) -> None:
    jpegs = [_jpeg(0, 16, 12), _jpeg(200, 16, 12), _jpeg(90, 40, 30)]
    assert len({len(j) for j in jpegs}) > 1  # the fixed-width array pads the shorter ones
    path = _write(tmp_path / "adt" / "a_1.npz", images_jpeg_bytes=np.array(jpegs))
    clip = load_tapvid3d_clip(path, subset="custom")
    assert clip.subset == "custom"
    assert clip.images_jpeg == jpegs
    assert all(type(j) is bytes for j in clip.images_jpeg)
    assert clip.frame_rgb(2).shape == (30, 40, 3)
    assert clip.image_size == (16, 12)


def test_world_tracks_and_camera_centres_for_hand_built_pose(tmp_path: Path) -> None:
    clip = load_tapvid3d_clip(_write(tmp_path / "adt" / "a_1.npz"))
    world = clip.tracks_world()
    # Frame 1: X_world = R^T (X_cam - t) = R^T (-1, -2, -2) = (2, -2, -1).
    np.testing.assert_allclose(world[1, 0], [2.0, -2.0, -1.0], atol=1e-12)
    # Frame 0 is identity: world = camera.
    np.testing.assert_allclose(world[0], clip.tracks_cam[0], atol=1e-6)
    centres = clip.camera_centres()
    # -R^T t = -(-3, 2, 1) = (3, -2, -1); identity frames sit at the origin.
    np.testing.assert_allclose(centres[1], [3.0, -2.0, -1.0], atol=1e-12)
    np.testing.assert_allclose(centres[[0, 2]], np.zeros((2, 3)), atol=1e-12)


def test_lowercase_track_key(tmp_path: Path) -> None:
    tracks = _arrays()["tracks_XYZ"]
    path = _write(tmp_path / "adt" / "a_1.npz", tracks_XYZ=None, tracks_xyz=tracks)
    np.testing.assert_array_equal(load_tapvid3d_clip(path).tracks_cam, tracks)


def test_identity_fallback_and_optional_queries(tmp_path: Path) -> None:
    path = _write(tmp_path / "pstudio" / "p_1.npz", extrinsics_w2c=None, queries_xyt=None)
    clip = load_tapvid3d_clip(path)
    assert clip.has_extrinsics is False
    assert clip.pose_source == "fixed"
    assert clip.queries_xyt is None
    np.testing.assert_array_equal(clip.cam_from_world, np.tile(np.eye(4), (T, 1, 1)))
    np.testing.assert_allclose(clip.tracks_world(), clip.tracks_cam, atol=1e-6)


def test_tracks_key_helper() -> None:
    assert tracks_key(["visibility", "tracks_XYZ"]) == "tracks_XYZ"
    assert tracks_key({"tracks_xyz"}) == "tracks_xyz"
    with pytest.raises(FormatError, match="both"):
        tracks_key(["tracks_XYZ", "tracks_xyz"], "clip.npz")
    with pytest.raises(FormatError, match=r"found keys \['visibility'\]"):
        tracks_key(["visibility"], "clip.npz")


def test_sequence_of() -> None:
    assert sequence_of("basketball_1") == "basketball"
    assert sequence_of("apartment_seq131_M1292_12") == "apartment_seq131_M1292"
    assert sequence_of("softball") == "softball"
    assert sequence_of("clip_a") == "clip_a"
    assert sequence_of("_3") == "_3"


# ---------------------------------------------------------------- error cases


def test_error_object_array_needs_pickle(tmp_path: Path) -> None:
    objects = np.array([_jpeg(t) for t in range(T)], dtype=object)
    message = _error(tmp_path / "a.npz", images_jpeg_bytes=objects)
    assert "'images_jpeg_bytes' needs pickle" in message
    assert "fixed-width bytes" in message


def test_error_missing_key_lists_found_keys(tmp_path: Path) -> None:
    message = _error(tmp_path / "a.npz", visibility=None, tracks_XYZ=None)
    assert "missing required key(s) ['visibility', 'tracks_XYZ (or tracks_xyz)']" in message
    assert "found keys ['extrinsics_w2c', 'fx_fy_cx_cy', 'images_jpeg_bytes', 'queries_xyt']" in (
        message
    )


def test_error_both_track_keys(tmp_path: Path) -> None:
    message = _error(tmp_path / "a.npz", tracks_xyz=_arrays()["tracks_XYZ"])
    assert "both 'tracks_XYZ' and 'tracks_xyz'" in message


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"visibility": np.zeros((T, N + 1), bool)}, "shape (3, 5), expected (T, N) = (3, 4)"),
        ({"tracks_XYZ": np.zeros((T + 1, N, 3), np.float32)}, "shape (4, 4, 3), expected (T, N"),
        ({"tracks_XYZ": np.zeros((T, N, 2), np.float32)}, "shape (3, 4, 2), expected (T, N, 3)"),
        ({"queries_xyt": np.zeros((N, 2), np.float32)}, "'queries_xyt' has shape (4, 2)"),
        (
            {"extrinsics_w2c": np.tile(np.eye(4), (2, 1, 1))},
            "shape (2, 4, 4), expected (T, 4, 4) = (3, 4, 4)",
        ),
        ({"fx_fy_cx_cy": np.array([20.0, 21.0, 8.0])}, "'fx_fy_cx_cy' has shape (3,)"),
        ({"fx_fy_cx_cy": np.array([-20.0, 21.0, 8.0, 6.0])}, "expected finite values with fx"),
        ({"fx_fy_cx_cy": np.array([20.0, 21.0, np.nan, 6.0])}, "expected finite values with fx"),
        ({"visibility": np.full((T, N), 0.5)}, "'visibility' has dtype float64, expected bool"),
        ({"images_jpeg_bytes": np.zeros((T,), np.uint8)}, "expected fixed-width bytes"),
    ],
)
def test_error_shapes_and_values(tmp_path: Path, overrides: dict[str, Any], expected: str) -> None:
    assert expected in _error(tmp_path / "a.npz", **overrides)


def test_error_nan_track_reports_count_and_first_position(tmp_path: Path) -> None:
    tracks = _arrays()["tracks_XYZ"]
    tracks[2, 0, 1] = np.inf
    tracks[1, 2, 0] = np.nan
    tracks[1, 2, 2] = np.nan  # same (t, n): counted once
    message = _error(tmp_path / "a.npz", tracks_XYZ=tracks)
    assert "2 non-finite (NaN/inf) position(s), first at (t=1, n=2)" in message


def test_error_non_rigid_and_non_finite_extrinsics(tmp_path: Path) -> None:
    scaled = _pose_frame1()
    scaled[2, :3, :3] *= 1.01
    assert "not rigid at t=2" in _error(tmp_path / "a.npz", extrinsics_w2c=scaled)
    reflected = _pose_frame1()
    reflected[0, 0, 0] = -1.0
    assert "not rigid at t=0" in _error(tmp_path / "b.npz", extrinsics_w2c=reflected)
    infinite = _pose_frame1()
    infinite[1, 0, 3] = -np.inf
    assert "non-finite in 1 frame(s), first at t=1" in _error(
        tmp_path / "c.npz", extrinsics_w2c=infinite
    )
    nearly = _pose_frame1()
    nearly[1, :3, :3] *= 1.0002  # within the 1e-3 tolerance: accepted as is
    _write(tmp_path / "d.npz", extrinsics_w2c=nearly)
    np.testing.assert_array_equal(load_tapvid3d_clip(tmp_path / "d.npz").cam_from_world, nearly)


def test_error_bad_jpeg(tmp_path: Path) -> None:
    garbage = np.array([b"definitely not a jpeg"] * T)
    message = _error(tmp_path / "a.npz", images_jpeg_bytes=garbage)
    assert "frame 0 is not a decodable JPEG (21 bytes starting with 64 65 66;" in message
    pngs = np.array([_jpeg(0, fmt="PNG")] * T)
    assert "frame 0 is PNG, expected JPEG" in _error(tmp_path / "b.npz", images_jpeg_bytes=pngs)
    empty = np.array([], dtype="S1")
    assert "expected (T,) with T >= 1" in _error(tmp_path / "c.npz", images_jpeg_bytes=empty)


def test_error_not_a_zip(tmp_path: Path) -> None:
    text = tmp_path / "text.npz"
    text.write_text("hello")
    npy = tmp_path / "array.npz"
    with npy.open("wb") as handle:
        np.save(handle, np.zeros(3))
    truncated = tmp_path / "truncated.npz"
    whole = _write(tmp_path / "whole.npz").read_bytes()
    truncated.write_bytes(whole[: len(whole) // 2])
    for path in (text, npy, truncated):
        with pytest.raises(FormatError, match="not a valid npz"):
            load_tapvid3d_clip(path)
    with pytest.raises(FormatError, match="is a folder, expected a file"):
        load_tapvid3d_clip(tmp_path)


def test_error_corrupt_member(tmp_path: Path) -> None:
    path = tmp_path / "a.npz"
    with path.open("wb") as handle:
        np.savez_compressed(handle, **_arrays())
    data = bytearray(path.read_bytes())
    start = data.index(b"tracks_XYZ.npy") + len("tracks_XYZ.npy")
    data[start + 20 : start + 60] = bytes(40)  # damage the deflated tracks payload
    path.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="cannot read array 'tracks_XYZ'"):
        load_tapvid3d_clip(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="not found"):
        load_tapvid3d_clip(tmp_path / "adt" / "nope.npz")


# ---------------------------------------------------------------- dataset and splits


def _touch(folder: Path, *clip_ids: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for clip_id in clip_ids:
        (folder / f"{clip_id}.npz").write_bytes(b"")


def test_dataset_listing_and_other_subsets(tmp_path: Path) -> None:
    _touch(tmp_path / "adt", "b_2", "a_1", "b_1")
    _touch(tmp_path / "pstudio", "juggle_1")
    _touch(tmp_path / "drivetrack", "d_1")
    (tmp_path / "notes").mkdir()  # no clips: not a subset
    dataset = TapVid3DDataset(tmp_path)
    assert dataset.clip_ids("adt") == ["a_1", "b_1", "b_2"]
    assert dataset.clip_ids("pstudio") == ["juggle_1"]
    assert dataset.other_subsets == ["drivetrack"]
    assert dataset.clip_path("adt", "a_1") == tmp_path / "adt" / "a_1.npz"
    with pytest.raises(ConfigError, match="'drivetrack' not loaded"):
        dataset.clip_ids("drivetrack")
    with pytest.raises(ConfigError, match="split must be one of"):
        dataset.clips_in_split("adt", "test")
    with pytest.raises(MissingFileError, match="subset folder not found"):
        TapVid3DDataset(tmp_path, subsets=("adt", "missing"))
    with pytest.raises(MissingFileError, match="root folder not found"):
        TapVid3DDataset(tmp_path / "absent")


def test_split_lists(tmp_path: Path) -> None:
    folder = tmp_path / "pstudio"
    _touch(folder, "tennis_1", "tennis_2", "basketball_1", "boxes_1", "juggle_4")
    (folder / "train.txt").write_text("  tennis_1\n\ntennis_2  \nboxes_1\nfootball_1\n")
    (folder / "val.txt").write_text("basketball_1\n")
    dataset = TapVid3DDataset(tmp_path, subsets=["pstudio"])
    assert dataset.split_source("pstudio") == "lists"
    assert dataset.clips_in_split("pstudio", "train") == ["boxes_1", "tennis_1", "tennis_2"]
    assert dataset.clips_in_split("pstudio", "val") == ["basketball_1"]
    assert dataset.unlisted("pstudio") == ["juggle_4"]
    assert dataset.split_of("pstudio", "juggle_4") is None
    assert dataset.split_of("pstudio", "football_1") == "train"
    assert dataset.split_checksums == {
        "pstudio/train.txt": hashlib.sha256((folder / "train.txt").read_bytes()).hexdigest(),
        "pstudio/val.txt": hashlib.sha256((folder / "val.txt").read_bytes()).hexdigest(),
    }


def test_split_lists_sequence_overlap(tmp_path: Path) -> None:
    folder = tmp_path / "pstudio"
    _touch(folder, "basketball_1")
    (folder / "train.txt").write_text("tennis_1\nbasketball_1\n")
    (folder / "val.txt").write_text("basketball_2\nbasketball_3\n")
    with pytest.raises(FormatError) as info:
        TapVid3DDataset(tmp_path, subsets=["pstudio"])
    message = str(info.value)
    assert str(folder / "train.txt") in message
    assert str(folder / "val.txt") in message
    assert "e.g. 'basketball' (train 'basketball_1', val 'basketball_2')" in message


def test_split_lists_clip_in_both(tmp_path: Path) -> None:
    folder = tmp_path / "adt"
    _touch(folder, "x_1")
    (folder / "train.txt").write_text("x_1\ny_1\n")
    (folder / "val.txt").write_text("y_1\n")
    with pytest.raises(FormatError, match=r"1 clip id\(s\) listed in both .* e\.g\. 'y_1'"):
        TapVid3DDataset(tmp_path, subsets=["adt"])


def test_split_list_without_partner(tmp_path: Path) -> None:
    folder = tmp_path / "adt"
    _touch(folder, "x_1")
    (folder / "train.txt").write_text("x_1\n")
    with pytest.raises(MissingFileError, match=r"val\.txt.*while train\.txt exists"):
        TapVid3DDataset(tmp_path, subsets=["adt"])


def test_hash_fallback_keeps_sequences_together(tmp_path: Path) -> None:
    sequences = [f"seq{k}" for k in range(30)]
    clip_ids = [f"{s}_{i}" for s in sequences for i in (1, 2, 10)] + ["lonely"]
    _touch(tmp_path / "adt", *clip_ids)
    dataset = TapVid3DDataset(tmp_path, subsets=["adt"])
    assert dataset.split_source("adt") == "hash"
    assert dataset.split_checksums == {}
    assert dataset.unlisted("adt") == []
    for sequence in sequences:
        splits = {dataset.split_of("adt", f"{sequence}_{i}") for i in (1, 2, 10)}
        assert splits == {hash_split(sequence)}
    assert dataset.split_of("adt", "lonely") == hash_split("lonely")
    train = dataset.clips_in_split("adt", "train")
    val = dataset.clips_in_split("adt", "val")
    assert sorted(train + val) == sorted(clip_ids)
    assert train and val
    assert not {sequence_of(c) for c in train} & {sequence_of(c) for c in val}


def test_adt_without_extrinsics_has_no_poses_until_resolved(tmp_path: Path) -> None:
    clip = load_tapvid3d_clip(_write(tmp_path / "adt" / "a_1.npz", extrinsics_w2c=None))
    assert clip.has_extrinsics is False and clip.pose_source is None
    for method in (clip.tracks_world, clip.camera_centres):
        with pytest.raises(ValueError, match="not resolved"):
            method()
    resolved = clip.with_poses(_pose_frame1(), "static_scene")
    assert resolved.pose_source == "static_scene"
    np.testing.assert_allclose(resolved.camera_centres()[1], [3.0, -2.0, -1.0], atol=1e-12)


def test_pose_rule_and_iter_usable(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Four tracks make no rigid group: an ADT clip without extrinsics has no static scene to
    take poses from; with extrinsics they are used unchecked (warned); PStudio is fixed."""
    _write(tmp_path / "adt" / "a_1.npz", extrinsics_w2c=None)
    _write(tmp_path / "adt" / "b_1.npz")
    _write(tmp_path / "adt" / "c_1.npz", extrinsics_w2c=None)
    _write(tmp_path / "pstudio" / "p_1.npz", extrinsics_w2c=None)
    (tmp_path / "adt" / "train.txt").write_text("a_1\nb_1\nc_1\n")
    (tmp_path / "adt" / "val.txt").write_text("")
    (tmp_path / "pstudio" / "train.txt").write_text("p_1\n")
    (tmp_path / "pstudio" / "val.txt").write_text("")
    dataset = TapVid3DDataset(tmp_path)

    refused = dataset.poses(dataset.load("adt", "a_1"))
    assert (refused.usable, refused.source, refused.reason) == (False, None, "no_static_scene")
    assert refused.explain().startswith("no_static_scene: ")
    given = dataset.poses(dataset.load("adt", "b_1"))
    assert (given.source, given.reason) == ("extrinsics", "")
    assert given.warning.startswith("extrinsics_w2c not checked")
    fixed = dataset.poses(dataset.load("pstudio", "p_1"))
    assert fixed.source == "fixed" and not fixed.warning
    assert fixed.cam_from_world is not None
    np.testing.assert_array_equal(fixed.cam_from_world, np.tile(np.eye(4), (T, 1, 1)))

    with caplog.at_level(logging.WARNING, logger="multispa.scenes.tapvid3d"):
        adt_clips = list(dataset.iter_usable("adt", "train"))
    assert [c.clip_id for c in adt_clips] == ["b_1"]
    assert adt_clips[0].pose_source == "extrinsics"
    np.testing.assert_array_equal(adt_clips[0].cam_from_world, _pose_frame1())
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 3
    assert "adt/a_1" in warned[0] and "no_static_scene" in warned[0]
    assert "adt/b_1" in warned[1] and "not checked" in warned[1]
    pstudio = list(dataset.iter_usable("pstudio", "train"))
    assert [(c.clip_id, c.pose_source) for c in pstudio] == [("p_1", "fixed")]
    list(dataset.iter_usable("adt", "train"))  # a second pass does not double-count
    assert dataset.skipped == {"no_static_scene": 2}
    assert list(dataset.iter_usable("adt", "val")) == []


def test_excluded_subset_is_never_usable(tmp_path: Path) -> None:
    clip = load_tapvid3d_clip(_write(tmp_path / "drivetrack" / "d_1.npz"))
    poses = TapVid3DDataset.poses(clip)
    assert (poses.usable, poses.reason) == (False, "excluded_subset")


def test_iter_usable_on_error(tmp_path: Path) -> None:
    _write(tmp_path / "pstudio" / "good_1.npz")
    (tmp_path / "pstudio" / "bad_1.npz").write_text("not a zip")
    dataset = TapVid3DDataset(tmp_path, subsets=["pstudio"])
    split = dataset.split_of("pstudio", "bad_1")
    assert split == hash_split("bad")
    with pytest.raises(FormatError, match="not a valid npz"):
        list(dataset.iter_usable("pstudio", split))
    clips = list(dataset.iter_usable("pstudio", split, on_error="skip"))
    assert "bad_1" not in [c.clip_id for c in clips]
    assert dataset.skipped == {"unreadable clip file": 1}
