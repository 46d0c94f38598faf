"""Tests of the ``.sens`` reader against files built byte by byte (tests/bytes_builders.py)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bytes_builders import make_jpeg, make_sens_bytes
from multispa.errors import FormatError, MissingFileError
from multispa.scenes.sens import SensFile, SensFrame, SensHeader

COLOR_W, COLOR_H = 16, 12
DEPTH_W, DEPTH_H = 8, 6


def _k(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    k = np.eye(4)
    k[0, 0], k[1, 1], k[0, 2], k[1, 2] = fx, fy, cx, cy
    return k


K_COLOR = _k(1170.25, 1169.5, 647.75, 483.75)
K_DEPTH = _k(571.625, 571.0, 319.5, 239.25)


def _pose(i: int) -> np.ndarray:
    angle = 0.3 * i
    pose = np.eye(4)
    pose[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    pose[:3, 3] = [1.0 + i, -2.0 * i, 0.5]
    return pose


def _depth_mm(i: int) -> np.ndarray:
    rng = np.random.default_rng(100 + i)
    depth = rng.integers(0, 8000, size=(DEPTH_H, DEPTH_W), dtype=np.uint16)
    depth[0, 0] = 1234
    depth[0, 1] = 0
    return depth


def _color(i: int) -> bytes:
    rng = np.random.default_rng(i)
    return make_jpeg(rng.integers(0, 256, size=(COLOR_H, COLOR_W, 3), dtype=np.uint8))


def _build(n: int = 3, **overrides: Any) -> tuple[bytes, dict[str, Any]]:
    kwargs: dict[str, Any] = {
        "color_intrinsics": K_COLOR,
        "depth_intrinsics": K_DEPTH,
        "color_size": (COLOR_W, COLOR_H),
        "depth_size": (DEPTH_W, DEPTH_H),
        "poses": [_pose(i) for i in range(n)],
        "colors": [_color(i) for i in range(n)],
        "depths_mm": [_depth_mm(i) for i in range(n)],
    }
    kwargs.update(overrides)
    return make_sens_bytes(**kwargs), kwargs


def _write(tmp_path: Path, data: bytes, name: str = "scene0000_00.sens") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _expect_error(path: Path, *fragments: str, error: type[Exception] = FormatError) -> str:
    with pytest.raises(error) as info, SensFile(path) as sens:
        for i in range(sens.num_frames):
            sens.read_depth_m(i)
    message = str(info.value)
    assert path.name in message
    for fragment in fragments:
        assert fragment in message, message
    return message


# ---------------------------------------------------------------------------- values


def test_header_fields_and_intrinsics(tmp_path: Path) -> None:
    extr = np.eye(4)
    extr[0, 3] = 0.025
    data, _ = _build(sensor_name="Kinect", depth_shift=4000.0, depth_extrinsics=extr)
    with SensFile(_write(tmp_path, data)) as sens:
        h = sens.header
        assert isinstance(h, SensHeader)
        assert h.version == 4
        assert h.sensor_name == "Kinect"
        assert h.color_compression == "jpeg"
        assert h.depth_compression == "zlib"
        assert (h.color_width, h.color_height, h.depth_width, h.depth_height) == (16, 12, 8, 6)
        assert h.depth_shift == 4000.0
        assert h.num_frames == 3
        assert sens.num_frames == 3 and len(sens) == 3
        ci, di = h.color_intrinsics, h.depth_intrinsics
        assert (ci.fx, ci.fy, ci.cx, ci.cy, ci.width, ci.height) == (
            1170.25,
            1169.5,
            647.75,
            483.75,
            16,
            12,
        )
        assert (di.fx, di.fy, di.cx, di.cy, di.width, di.height) == (
            571.625,
            571.0,
            319.5,
            239.25,
            8,
            6,
        )
        np.testing.assert_array_equal(h.color_extrinsics, np.eye(4))
        np.testing.assert_allclose(h.depth_extrinsics, extr, rtol=0, atol=1e-7)
        assert h.depth_extrinsics.dtype == np.float64


def test_poses_index_and_timestamps(tmp_path: Path) -> None:
    poses = [_pose(i) for i in range(3)]
    poses[1] = poses[1].copy()
    poses[1][0, 0] = -np.inf
    poses[1][2, 3] = np.nan
    data, kw = _build(poses=poses, timestamps=[(10, 11), (20, 22), (30, 33)])
    with SensFile(_write(tmp_path, data)) as sens:
        assert sens.poses.shape == (3, 4, 4) and sens.poses.dtype == np.float64
        for i in (0, 2):
            np.testing.assert_allclose(sens.poses[i], poses[i], rtol=0, atol=1e-6)
        assert sens.poses[1, 0, 0] == -np.inf
        assert np.isnan(sens.poses[1, 2, 3])
        np.testing.assert_allclose(sens.poses[1, :2, 1:3], poses[1][:2, 1:3], atol=1e-6)
        np.testing.assert_array_equal(sens.color_timestamps, [10, 20, 30])
        np.testing.assert_array_equal(sens.depth_timestamps, [11, 22, 33])
        np.testing.assert_array_equal(sens.color_sizes, [len(c) for c in kw["colors"]])
        np.testing.assert_array_equal(sens.depth_offsets, sens.color_offsets + sens.color_sizes)
        assert not sens.poses.flags.writeable


def test_color_bytes_and_depth_values(tmp_path: Path) -> None:
    data, kw = _build()
    with SensFile(_write(tmp_path, data)) as sens:
        for i in range(3):
            assert sens.read_color_bytes(i) == kw["colors"][i]
            raw = sens.read_depth_raw(i)
            assert raw.shape == (DEPTH_H, DEPTH_W) and raw.dtype == np.uint16
            np.testing.assert_array_equal(raw, kw["depths_mm"][i])
            depth = sens.read_depth_m(i)
            assert depth.dtype == np.float32 and depth.shape == (DEPTH_H, DEPTH_W)
            assert depth[0, 0] == np.float32(1.234)
            assert depth[0, 1] == 0.0
            np.testing.assert_allclose(depth, kw["depths_mm"][i] / 1000.0, rtol=1e-6)


def test_depth_shift_other_than_1000(tmp_path: Path) -> None:
    data, _ = _build(n=1, depth_shift=5000.0)
    with SensFile(_write(tmp_path, data)) as sens:
        assert sens.read_depth_m(0)[0, 0] == np.float32(1234 / 5000)


def test_raw_depth_compression(tmp_path: Path) -> None:
    data, kw = _build(n=2, depth_compression=0)
    with SensFile(_write(tmp_path, data)) as sens:
        assert sens.header.depth_compression == "raw"
        np.testing.assert_array_equal(sens.read_depth_raw(1), kw["depths_mm"][1])


def test_iter_frames_subset(tmp_path: Path) -> None:
    data, kw = _build()
    with SensFile(_write(tmp_path, data)) as sens:
        frames = list(sens.iter_frames([2, 0]))
        assert [f.index for f in frames] == [0, 2]
        for frame in frames:
            assert isinstance(frame, SensFrame)
            assert frame.color_bytes == kw["colors"][frame.index]
            np.testing.assert_allclose(
                frame.raw_world_from_cam, kw["poses"][frame.index], atol=1e-6
            )
            np.testing.assert_allclose(
                frame.depth_m, kw["depths_mm"][frame.index] / 1000.0, rtol=1e-6
            )
        assert [f.index for f in sens.iter_frames()] == [0, 1, 2]


def test_trailing_imu_bytes_ignored(tmp_path: Path) -> None:
    imu = struct.pack("<Q", 5) + bytes(range(200)) * 3
    data, kw = _build(trailing=imu)
    with SensFile(_write(tmp_path, data)) as sens:
        assert sens.num_frames == 3
        assert sens.frames_end == len(data) - len(imu)
        assert sens.read_color_bytes(2) == kw["colors"][2]
        np.testing.assert_array_equal(sens.read_depth_raw(2), kw["depths_mm"][2])


def test_zero_frames(tmp_path: Path) -> None:
    data, _ = _build(n=0)
    with SensFile(_write(tmp_path, data)) as sens:
        assert sens.num_frames == 0
        assert sens.poses.shape == (0, 4, 4)
        assert list(sens.iter_frames()) == []


def test_index_out_of_range_and_closed(tmp_path: Path) -> None:
    data, _ = _build()
    path = _write(tmp_path, data)
    sens = SensFile(path)
    with pytest.raises(IndexError, match="frame index 3 out of range"):
        sens.read_color_bytes(3)
    with pytest.raises(IndexError, match="out of range"):
        sens.read_depth_m(-1)
    with pytest.raises(IndexError):
        list(sens.iter_frames([0, 7]))
    sens.close()
    assert sens.closed
    with pytest.raises(ValueError, match="closed"):
        sens.read_color_bytes(0)


# ---------------------------------------------------------------------------- errors


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match=r"nothere\.sens"):
        SensFile(tmp_path / "nothere.sens")


def test_wrong_version(tmp_path: Path) -> None:
    data, _ = _build(version=3)
    _expect_error(_write(tmp_path, data), "version 3, expected 4")


def test_truncated_header(tmp_path: Path) -> None:
    data, _ = _build()
    _expect_error(_write(tmp_path, data[:100]), "truncated header")
    _expect_error(_write(tmp_path, data[:5], "tiny.sens"), "truncated header")


def test_truncated_frame_payload(tmp_path: Path) -> None:
    data, _ = _build()
    message = _expect_error(_write(tmp_path, data[:-10]), "truncated frame 2", "byte offset")
    assert "extends past the end" in message


def test_truncated_frame_header(tmp_path: Path) -> None:
    data_2, _ = _build(n=2)
    data_3, _ = _build(n=3)
    # header says 3 frames; keep 2 full frames plus 40 bytes of frame 2's header
    cut = data_3[: len(data_2) + 40]
    _expect_error(_write(tmp_path, cut), "truncated frame 2", "96-byte header")


def test_fewer_frames_than_header(tmp_path: Path) -> None:
    data, _ = _build(n=7, num_frames=10)
    _expect_error(_write(tmp_path, data), "header says 10 frames, file ends after 7")


def test_bogus_frame_count_fails_fast(tmp_path: Path) -> None:
    data, _ = _build(n=2, num_frames=2**62)
    _expect_error(_write(tmp_path, data), f"header says {2**62} frames, file ends after 2")


def test_unknown_compression_codes(tmp_path: Path) -> None:
    data, _ = _build(color_compression=7)
    _expect_error(_write(tmp_path, data), "unknown colour compression code 7")
    data, _ = _build(depth_compression=-5, depths_mm=[b"xx"] * 3)
    _expect_error(_write(tmp_path, data, "b.sens"), "unknown depth compression code -5")


def test_occi_depth(tmp_path: Path) -> None:
    data, kw = _build(depth_compression=2, depths_mm=[b"occi"] * 3)
    path = _write(tmp_path, data)
    with SensFile(path) as sens:
        assert sens.header.depth_compression == "occi"
        assert sens.read_color_bytes(1) == kw["colors"][1]  # colour stays readable
    _expect_error(path, "unsupported depth compression 'occi'")


def test_bad_zlib(tmp_path: Path) -> None:
    depths: list[Any] = [_depth_mm(0), b"this is not zlib data", _depth_mm(2)]
    data, _ = _build(depths_mm=depths)
    _expect_error(_write(tmp_path, data), "frame 1", "does not inflate")


def test_zlib_wrong_size(tmp_path: Path) -> None:
    small = zlib.compress(np.zeros(DEPTH_W * DEPTH_H - 1, dtype="<u2").tobytes())
    big = zlib.compress(np.zeros(DEPTH_W * DEPTH_H + 5, dtype="<u2").tobytes())
    expected = DEPTH_W * DEPTH_H * 2
    data, _ = _build(depths_mm=[_depth_mm(0), small, big])
    path = _write(tmp_path, data)
    with SensFile(path) as sens:
        with pytest.raises(FormatError) as info:
            sens.read_depth_raw(1)
        assert f"frame 1: depth inflates to {expected - 2} bytes, expected {expected}" in str(
            info.value
        )
        with pytest.raises(FormatError, match=f"frame 2: depth inflates to more than {expected}"):
            sens.read_depth_raw(2)
    truncated = zlib.compress(_depth_mm(0).tobytes())[:-8]
    data, _ = _build(n=1, depths_mm=[truncated])
    _expect_error(_write(tmp_path, data, "t.sens"), "frame 0", "incomplete")


def test_non_positive_depth_shift(tmp_path: Path) -> None:
    data, _ = _build(depth_shift=0.0)
    _expect_error(_write(tmp_path, data), "depth shift is 0.0")
    data, _ = _build(depth_shift=-1000.0)
    _expect_error(_write(tmp_path, data, "neg.sens"), "depth shift is -1000.0")


def test_raw_depth_wrong_size(tmp_path: Path) -> None:
    data, _ = _build(n=1, depth_compression=0, depths_mm=[b"\x00" * 10])
    _expect_error(_write(tmp_path, data), "frame 0: raw depth has 10 bytes, expected 96")


def test_huge_sensor_name_length(tmp_path: Path) -> None:
    data = struct.pack("<IQ", 4, 2**60) + b"\x00" * 400
    _expect_error(_write(tmp_path, data), "sensor name length")
