"""Synthetic TAPVid-3D clips: npz format, splits, and tracks against the truth sidecar."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from multispa.scenes.types import Intrinsics
from multispa.synth.config import SynthConfig
from multispa.synth.dataset import SynthSummary, write_synthetic_dataset
from multispa.synth.raycast import ROOM_PART, BoxSet, render_view
from multispa.synth.tapvid_writer import write_npz

# Three ADT clips (train: extrinsics written, inconsistent; val: absent) and three PStudio ones.
CONFIG = SynthConfig(scenes=0, clips=6, seed=11, small=True, workers=1)
OFFICIAL_KEYS = {"images_jpeg_bytes", "queries_xyt", "tracks_XYZ", "visibility", "fx_fy_cx_cy"}
NOISE_M = 0.0015  # the preset's ADT track noise, per coordinate


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthSummary]:
    out = tmp_path_factory.mktemp("synth_tapvid")
    return out, write_synthetic_dataset(out, CONFIG)


def _clips(summary: SynthSummary, subset: str) -> list[str]:
    return [clip.split("/")[1] for clip in summary.clips if clip.startswith(f"{subset}/")]


def _load(root: Path, subset: str, clip: str) -> tuple[dict[str, np.ndarray], dict]:
    with np.load(root / "tapvid3d" / subset / f"{clip}.npz", allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    truth_path = root / "synthetic_truth" / "tapvid3d" / subset / f"{clip}.json"
    return arrays, json.loads(truth_path.read_text())


def _all_clips(root: Path, summary: SynthSummary) -> list[tuple[str, dict, dict]]:
    out = []
    for entry in summary.clips:
        subset, clip = entry.split("/")
        arrays, truth = _load(root, subset, clip)
        out.append((subset, arrays, truth))
    return out


def _world_tracks(arrays: dict[str, np.ndarray], truth: dict) -> np.ndarray:
    """The file's tracks mapped to the truth's output frame with the true poses, float64."""
    tracks = arrays["tracks_XYZ"].astype(np.float64)
    world_from_cam = np.array(truth["world_from_cam"])
    return np.einsum("tij,tnj->tni", world_from_cam[:, :3, :3], tracks) + world_from_cam[
        :, None, :3, 3
    ]


def _true_world(truth: dict) -> np.ndarray:
    """``(T, N, 3)`` exact track positions in the output frame, from objects and local points."""
    tracks = truth["tracks"]
    frames = truth["num_frames"]
    out = np.zeros((frames, len(tracks["object_id"]), 3))
    for n, object_id in enumerate(tracks["object_id"]):
        local = np.array(tracks["local"][n])
        if object_id < 0:
            out[:, n] = local
        else:
            poses = np.array(truth["objects"][object_id]["world_from_object"])
            out[:, n] = np.einsum("tij,j->ti", poses[:, :3, :3], local) + poses[:, :3, 3]
    return out


def test_npz_keys_dtypes_and_shapes(dataset: tuple[Path, SynthSummary]) -> None:
    root, summary = dataset
    for subset, arrays, truth in _all_clips(root, summary):
        frames, tracks = 24, 64
        assert arrays["images_jpeg_bytes"].dtype.kind == "S"
        assert arrays["images_jpeg_bytes"].shape == (frames,)
        assert arrays["tracks_XYZ"].shape == (frames, tracks, 3)
        assert arrays["tracks_XYZ"].dtype == np.float32
        assert arrays["visibility"].shape == (frames, tracks)
        assert arrays["visibility"].dtype == np.bool_
        assert arrays["queries_xyt"].shape == (tracks, 3)
        assert arrays["queries_xyt"].dtype == np.float32
        assert arrays["fx_fy_cx_cy"].shape == (4,)
        assert arrays["fx_fy_cx_cy"].dtype == np.float32
        size = (128, 128) if subset == "adt" else (160, 90)
        image = Image.open(io.BytesIO(arrays["images_jpeg_bytes"][5].tobytes()))
        assert image.format == "JPEG" and image.size == size == tuple(truth["image_size"])
        if truth["extrinsics"] == "absent":
            assert set(arrays) == OFFICIAL_KEYS
        else:
            assert subset == "adt"
            assert set(arrays) == OFFICIAL_KEYS | {"extrinsics_w2c"}
            assert arrays["extrinsics_w2c"].shape == (frames, 4, 4)
            assert arrays["extrinsics_w2c"].dtype == np.float32
    variants = {(s, t["extrinsics"], t["track_noise_m"]) for s, _, t in _all_clips(root, summary)}
    assert variants == {
        ("adt", "written", NOISE_M), ("adt", "inconsistent", NOISE_M), ("adt", "absent", NOISE_M),
        ("pstudio", "absent", 0.0),
    }
    val_adt = [c for c in summary.val_clips if c.startswith("adt/")]
    assert val_adt and all(_load(root, "adt", c.split("/")[1])[1]["extrinsics"] == "absent"
                           for c in val_adt)


def test_split_lists_follow_the_real_naming(dataset: tuple[Path, SynthSummary]) -> None:
    root, summary = dataset
    for subset in ("adt", "pstudio"):
        lists = {
            split: (root / "tapvid3d" / subset / f"{split}.txt").read_text().split()
            for split in ("train", "val")
        }
        assert lists["train"] and lists["val"]
        assert sorted(lists["train"] + lists["val"]) == sorted(_clips(summary, subset))
        sequences = {
            split: {re.fullmatch(r"(.+)_(\d+)", clip).group(1) for clip in clips}
            for split, clips in lists.items()
        }
        assert not sequences["train"] & sequences["val"]
    assert (root / "tapvid3d" / "pstudio" / "val.txt").read_text() == "basketball_1\n"


def test_static_tracks_stay_put_and_moving_ones_follow_their_object(
    dataset: tuple[Path, SynthSummary],
) -> None:
    root, summary = dataset
    for subset, arrays, truth in _all_clips(root, summary):
        exact = _true_world(truth)
        tracks = truth["tracks"]
        moves = np.array(tracks["moves"])
        drift = np.linalg.norm(exact - exact[:1], axis=2).max(axis=0)
        assert np.all(drift[~moves] < 1e-9)
        assert moves.any() and (~moves).any()
        assert np.median(drift[moves]) > 0.05
        if subset == "adt":  # a dominant static scene, as in the real ADT clips
            assert np.count_nonzero(~moves) >= 2 * np.count_nonzero(moves)
        # The file's tracks are the exact points plus the stated noise (ADT) or exact (PStudio).
        error = _world_tracks(arrays, truth) - exact
        noise = truth["track_noise_m"]
        if noise == 0:
            assert np.abs(error).max() < 1e-4
        else:
            assert abs(error.std() / noise - 1.0) < 0.05
            assert np.abs(error.mean(axis=(0, 1))).max() < 0.2 * noise
            assert np.abs(error).max() < 6 * noise
        for obj in truth["objects"]:
            poses = np.array(obj["world_from_object"])
            assert obj["moves"] == bool(np.abs(poses - poses[0]).max() > 1e-6)
        assert any(not obj["moves"] for obj in truth["objects"])
        turned = [
            np.degrees(
                np.arccos(np.clip((np.trace(p[0, :3, :3].T @ p[-1, :3, :3]) - 1) / 2, -1, 1))
            )
            for p in (np.array(obj["world_from_object"]) for obj in truth["objects"])
        ]
        assert max(turned) > 10.0  # movers rotate as well


def test_visibility_is_depth_and_part_consistent(dataset: tuple[Path, SynthSummary]) -> None:
    root, summary = dataset
    for subset, arrays, truth in _all_clips(root, summary):
        fx, fy, cx, cy = (float(v) for v in arrays["fx_fy_cx_cy"])
        width, height = truth["image_size"]
        intrinsics = Intrinsics(fx, fy, cx, cy, width, height)
        world_from_out = np.linalg.inv(np.array(truth["out_from_world"]))
        halves = [p["half_extents"] for obj in truth["objects"] for p in obj["parts"]]
        part_of = {}
        for obj in truth["objects"]:
            for j, _ in enumerate(obj["parts"]):
                part_of[(obj["object_id"], j)] = len(part_of)
        track_part = np.array(
            [
                ROOM_PART if o < 0 else part_of[(o, j)]
                for o, j in zip(
                    truth["tracks"]["object_id"], truth["tracks"]["part_id"], strict=True
                )
            ]
        )
        # Visibility is decided on the exact points (the written ones carry the ADT noise).
        world_from_cams = np.array(truth["world_from_cam"])
        points = np.einsum(
            "tji,tnj->tni", world_from_cams[:, :3, :3],
            _true_world(truth) - world_from_cams[:, None, :3, 3],
        )
        visibility = arrays["visibility"]
        checked = 0
        for t in range(0, 24, 5):
            transforms = []
            for obj in truth["objects"]:
                pose = world_from_out @ np.array(obj["world_from_object"][t])
                for part in obj["parts"]:
                    offset = np.eye(4)
                    offset[:3, 3] = part["centre_object"]
                    transforms.append(pose @ offset)
            world_from_cam = world_from_out @ np.array(truth["world_from_cam"][t])
            hits = render_view(
                world_from_cam,
                intrinsics,
                BoxSet(np.array(transforms), np.array(halves)),
                np.zeros(3),
                np.array(truth["room_max"]),
            )
            z = points[t, :, 2]
            u = fx * points[t, :, 0] / z + cx
            v = fy * points[t, :, 1] / z + cy
            column, row = np.floor(u + 0.5).astype(int), np.floor(v + 0.5).astype(int)
            inside = (z > 0) & (column >= 0) & (column < width) & (row >= 0) & (row < height)
            inside &= (u >= 0) & (v >= 0)
            expected = np.zeros_like(inside)
            r, c = row[inside], column[inside]
            tolerance = np.maximum(truth["visibility_tolerance_m"], 0.02 * z[inside])
            gap = np.abs(hits.depth_m[r, c] - z[inside])
            expected[inside] = (hits.part[r, c] == track_part[inside]) & (gap <= tolerance)
            # The test renders from the truth's JSON numbers, the writer from float32 points:
            # only knife-edge cases (depth gap at the tolerance, pixel centre at .5) may differ.
            knife_edge = np.zeros_like(inside)
            knife_edge[inside] = np.abs(gap - tolerance) < 1e-4
            knife_edge |= (np.abs(u % 1 - 0.5) < 1e-4) | (np.abs(v % 1 - 0.5) < 1e-4)
            differ = visibility[t] != expected
            assert not np.any(differ & ~knife_edge), (subset, t, np.flatnonzero(differ))
            checked += differ.size
        assert checked == 5 * 64
        assert visibility.any(axis=0).all()
        assert 0.2 < visibility.mean() < 1.0
        first = np.argmax(visibility, axis=0)
        queries = arrays["queries_xyt"]
        assert np.array_equal(queries[:, 2], first)
        written = arrays["tracks_XYZ"].astype(np.float64)
        at_first = written[first, np.arange(first.size)]
        np.testing.assert_allclose(
            queries[:, 0], fx * at_first[:, 0] / at_first[:, 2] + cx, atol=1e-3
        )


def test_pstudio_camera_is_fixed_and_adt_camera_moves(dataset: tuple[Path, SynthSummary]) -> None:
    root, summary = dataset
    turned = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    for subset, arrays, truth in _all_clips(root, summary):
        centres = np.array(truth["camera_centres"])
        world_from_cam = np.array(truth["world_from_cam"])
        np.testing.assert_allclose(world_from_cam[:, :3, 3], centres, atol=1e-12)
        rotations = world_from_cam[:, :3, :3]
        np.testing.assert_allclose(
            np.einsum("tji,tjk->tik", rotations, rotations), np.tile(np.eye(3), (24, 1, 1)),
            atol=1e-12,
        )
        if subset == "pstudio":
            assert truth["frame"] == "camera"
            np.testing.assert_allclose(centres, 0.0, atol=1e-9)
            continue
        assert truth["frame"] == "world"
        assert np.linalg.norm(centres[-1] - centres[0]) > 0.05
        if truth["extrinsics"] == "absent":
            continue
        w2c = arrays["extrinsics_w2c"].astype(np.float64)
        true_w2c = np.linalg.inv(world_from_cam)
        if truth["extrinsics"] == "written":
            np.testing.assert_allclose(w2c, true_w2c, atol=1e-5)
        else:  # camera axes turned 90 degrees about the optical axis
            np.testing.assert_allclose(w2c[:, :3, :3], turned @ true_w2c[:, :3, :3], atol=1e-5)
            np.testing.assert_allclose(w2c[:, :3, 3], true_w2c[:, :3, 3] @ turned.T, atol=1e-5)


def test_npz_writer_is_byte_stable_and_refuses_objects(tmp_path: Path) -> None:
    arrays = {"images_jpeg_bytes": np.array([b"\xff\xd8a\xff\xd9"]), "x": np.arange(3.0)}
    write_npz(tmp_path / "a.npz", arrays)
    write_npz(tmp_path / "b.npz", arrays)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.npz") as archive:
        assert [info.date_time for info in archive.infolist()] == [(1980, 1, 1, 0, 0, 0)] * 2
    with pytest.raises(ValueError, match="object"):
        write_npz(tmp_path / "c.npz", {"bad": np.array([b"a", None], dtype=object)})


def test_round_trip_through_tapvid_reader(dataset: tuple[Path, SynthSummary]) -> None:
    """The reader's resolved poses put every static track where the truth says, relative to
    frame 0's camera (whatever the pose source)."""
    from multispa.scenes.tapvid3d import load_tapvid3d_clip
    from multispa.scenes.tapvid_poses import resolve_clip_poses

    root, summary = dataset
    sources = {}
    for entry in summary.clips:
        subset, clip_id = entry.split("/")
        clip = load_tapvid3d_clip(root / "tapvid3d" / subset / f"{clip_id}.npz")
        _, truth = _load(root, subset, clip_id)
        assert clip.has_extrinsics == (truth["extrinsics"] != "absent")
        assert clip.image_size == tuple(truth["image_size"])
        poses = resolve_clip_poses(clip)
        assert poses.cam_from_world is not None and poses.source is not None
        sources[(subset, truth["extrinsics"])] = poses.source
        clip = clip.with_poses(poses.cam_from_world, poses.source)
        world_from_cam = np.array(truth["world_from_cam"])
        cam0_from_world = np.linalg.inv(world_from_cam[0])
        expected = np.einsum("ij,tnj->tni", cam0_from_world[:3, :3], _true_world(truth))
        expected += cam0_from_world[:3, 3]
        got = clip.tracks_world()
        got = np.einsum("ij,tnj->tni", clip.cam_from_world[0, :3, :3], got)
        got += clip.cam_from_world[0, :3, 3]  # the reader's world mapped to frame 0's camera
        moves = np.array(truth["tracks"]["moves"])
        error = np.linalg.norm(got[:, ~moves] - expected[:, ~moves], axis=2)
        assert np.sqrt(np.mean(error**2)) < 3 * max(truth["track_noise_m"], 1e-5)
        centres = clip.camera_centres() @ clip.cam_from_world[0, :3, :3].T
        centres += clip.cam_from_world[0, :3, 3]
        true_centres = world_from_cam[:, :3, 3] @ cam0_from_world[:3, :3].T + cam0_from_world[:3, 3]
        np.testing.assert_allclose(centres, true_centres, atol=3e-3)
    assert sources == {
        ("adt", "written"): "extrinsics",
        ("adt", "inconsistent"): "static_scene",
        ("adt", "absent"): "static_scene",
        ("pstudio", "absent"): "fixed",
    }
