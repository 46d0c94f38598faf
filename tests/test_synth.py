"""Synthetic ScanNet writer: determinism, exact raw formats and agreement with the truth sidecar.

The `.sens`, `.ply` and json files are parsed here with minimal code of the test's own (from the
format description), so these tests do not depend on the project's readers; one round-trip test
goes through ``load_scannet_scene`` when it exists.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from multispa.errors import ConfigError
from multispa.scenes.types import Intrinsics
from multispa.synth.config import SynthConfig
from multispa.synth.dataset import SynthSummary, unit_rng, write_synthetic_dataset
from multispa.synth.raycast import BoxSet, render_view

CONFIG = SynthConfig(scenes=2, clips=4, seed=7, small=True, workers=2)
SCENE = "scene0000_00"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthSummary]:
    out = tmp_path_factory.mktemp("synth")
    return out, write_synthetic_dataset(out, CONFIG)


def _digests(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _truth(root: Path, scene: str = SCENE) -> dict:
    return json.loads((root / "synthetic_truth" / "scannet" / f"{scene}.json").read_text())


def _scene_dir(root: Path, scene: str = SCENE) -> Path:
    return root / "scannet" / "scans" / scene


# --- minimal independent parsers -------------------------------------------------------------


def _parse_sens(path: Path) -> tuple[dict, list[dict]]:
    data = path.read_bytes()
    (version,) = struct.unpack_from("<I", data, 0)
    (name_length,) = struct.unpack_from("<Q", data, 4)
    offset = 12 + name_length
    matrices = [
        np.frombuffer(data, "<f4", 16, offset + 64 * k).reshape(4, 4).astype(np.float64)
        for k in range(4)
    ]
    offset += 256
    fields = struct.unpack_from("<iiIIIIfQ", data, offset)
    offset += struct.calcsize("<iiIIIIfQ")
    header = {
        "version": version,
        "sensor": data[12 : 12 + name_length].decode(),
        "color_k": matrices[0],
        "color_ext": matrices[1],
        "depth_k": matrices[2],
        "depth_ext": matrices[3],
        "compression": fields[:2],
        "color_size": fields[2:4],
        "depth_size": fields[4:6],
        "shift": fields[6],
        "count": fields[7],
    }
    frames = []
    for _ in range(header["count"]):
        pose = np.frombuffer(data, "<f4", 16, offset).reshape(4, 4).astype(np.float64)
        color_ts, depth_ts, n_color, n_depth = struct.unpack_from("<QQQQ", data, offset + 64)
        start = offset + 96
        frames.append(
            {
                "pose": pose,
                "timestamps": (color_ts, depth_ts),
                "color": data[start : start + n_color],
                "depth": data[start + n_color : start + n_color + n_depth],
            }
        )
        offset = start + n_color + n_depth
    header["trailing"] = len(data) - offset
    return header, frames


def _depth_mm(frame: dict, size: tuple[int, int]) -> np.ndarray:
    return np.frombuffer(zlib.decompress(frame["depth"]), "<u2").reshape(size[1], size[0])


def _parse_ply(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = path.read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    lines = data[:end].decode("ascii").splitlines()
    assert lines[1] == "format binary_little_endian 1.0"
    vertices = int(next(x for x in lines if x.startswith("element vertex")).split()[-1])
    faces = int(next(x for x in lines if x.startswith("element face")).split()[-1])
    vertex_dtype = np.dtype([("xyz", "<f4", (3,)), ("rgba", "u1", (4,))])
    table = np.frombuffer(data, vertex_dtype, vertices, end)
    face_dtype = np.dtype([("n", "u1"), ("idx", "<i4", (3,))])
    face_table = np.frombuffer(data, face_dtype, faces, end + vertices * vertex_dtype.itemsize)
    assert end + vertices * 16 + faces * 13 == len(data)
    assert np.all(face_table["n"] == 3)
    return table["xyz"].astype(np.float64), table["rgba"], face_table["idx"]


def _apply(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ transform[:3, :3].T + transform[:3, 3]


def _intrinsics(entry: dict) -> Intrinsics:
    return Intrinsics(
        entry["fx"], entry["fy"], entry["cx"], entry["cy"], entry["width"], entry["height"]
    )


def _truth_boxes(truth: dict) -> tuple[list[np.ndarray], list[np.ndarray]]:
    transforms, halves = [], []
    for obj in truth["objects"]:
        for part in obj["parts"]:
            transforms.append(np.array(part["world_from_part"]))
            halves.append(np.array(part["half_extents"]))
    return transforms, halves


def _first_hit(
    origin: np.ndarray,
    direction: np.ndarray,
    transforms: list[np.ndarray],
    halves: list[np.ndarray],
    room_max: np.ndarray,
) -> float:
    """Smallest ray parameter of a hit: room exit or entry into an oriented box (float64)."""
    with np.errstate(divide="ignore"):
        exits = np.where(direction > 0, room_max - origin, -origin) / direction
    best = float(np.min(exits[np.isfinite(exits) & (exits > 0)]))
    for transform, half in zip(transforms, halves, strict=True):
        o = transform[:3, :3].T @ (origin - transform[:3, 3])
        d = transform[:3, :3].T @ direction
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (-half - o) / d, (half - o) / d
        near = np.nanmax(np.minimum(t1, t2))
        far = np.nanmin(np.maximum(t1, t2))
        if near <= far and 0 < near < best:
            best = float(near)
    return best


# --- configuration and determinism -----------------------------------------------------------


def test_config_rejects_bad_values() -> None:
    for kwargs in ({"scenes": -1}, {"workers": 0}, {"clips": 1.5}, {"frames_per_scene": 3}):
        with pytest.raises(ConfigError):
            SynthConfig(**kwargs)
    assert SynthConfig(small=True).settings().color_size == (160, 120)
    assert SynthConfig().settings().color_size == (1296, 968)
    assert SynthConfig().settings().depth_size == (640, 480)


def test_unit_rng_is_a_stable_hash() -> None:
    first = unit_rng(3, "scannet/scene0000_00").integers(0, 2**32, 4)
    assert np.array_equal(first, unit_rng(3, "scannet/scene0000_00").integers(0, 2**32, 4))
    assert not np.array_equal(first, unit_rng(4, "scannet/scene0000_00").integers(0, 2**32, 4))


def test_same_seed_same_bytes_whatever_the_worker_count(
    dataset: tuple[Path, SynthSummary], tmp_path: Path
) -> None:
    root, summary = dataset
    again = tmp_path / "again"
    write_synthetic_dataset(again, dataclasses.replace(CONFIG, workers=1))
    digests = _digests(root)
    assert digests == _digests(again)
    assert len(digests) == len(summary.files)
    assert not any(name.endswith(".tmp") or "/." in name for name in digests)


def test_other_seed_changes_bytes_and_units_are_independent(
    dataset: tuple[Path, SynthSummary], tmp_path: Path
) -> None:
    root, _ = dataset
    sens = f"scannet/scans/{SCENE}/{SCENE}.sens"
    same_seed = tmp_path / "same"
    write_synthetic_dataset(same_seed, SynthConfig(scenes=1, clips=0, seed=7, small=True))
    assert _digests(same_seed)[sens] == _digests(root)[sens]  # a unit depends on seed + name
    other = tmp_path / "other"
    write_synthetic_dataset(other, SynthConfig(scenes=1, clips=0, seed=8, small=True))
    assert _digests(other)[sens] != _digests(root)[sens]


RESCAN = "scene0000_01"  # the variant: room 0 rescanned, a thinned posed_images export


def _sens_scenes(summary: SynthSummary) -> list[str]:
    """The scans written as ``.sens`` (all but the rescan variant)."""
    return [scene for scene in summary.scenes if scene != RESCAN]


def test_layout_and_split_lists(dataset: tuple[Path, SynthSummary]) -> None:
    root, summary = dataset
    assert summary.scenes == ("scene0000_00", RESCAN, "scene0001_00")
    for scene in summary.scenes:
        folder = _scene_dir(root, scene)
        for suffix in (
            "_vh_clean_2.ply",
            ".aggregation.json",
            "_vh_clean_2.0.010000.segs.json",
            ".txt",
        ):
            assert (folder / f"{scene}{suffix}").is_file()
        assert (folder / f"{scene}.sens").is_file() == (scene != RESCAN)
    assert (root / "scannet" / "posed_images" / RESCAN / "intrinsic.txt").is_file()
    assert (root / "scannet" / "scannetv2-labels.combined.tsv").is_file()
    train = (root / "scannet" / "scannetv2_train.txt").read_text().split()
    val = (root / "scannet" / "scannetv2_val.txt").read_text().split()
    assert train == ["scene0000_00", RESCAN]
    assert val == ["scene0001_00"] == list(summary.val_scenes)


def test_variants_off_gives_the_plain_layout(tmp_path: Path) -> None:
    plain = dataclasses.replace(CONFIG, clips=0, variants=False)
    summary = write_synthetic_dataset(tmp_path, plain)
    assert summary.scenes == ("scene0000_00", "scene0001_00")
    assert not (tmp_path / "scannet" / "posed_images").exists()
    assert not (tmp_path / "scannet" / "scannetv2-labels.combined.tsv").exists()
    labels = [obj["label"] for obj in _truth(tmp_path)["objects"]]
    assert "shelf" not in labels and "coat rack" not in labels


def test_rescan_export_is_the_rendered_room(dataset: tuple[Path, SynthSummary]) -> None:
    """The thinned export: every 5th frame renumbered, depth ray cast through its own K_depth
    (K_color rescaled, pixel centres kept), raw poses through its own axis alignment."""
    root, _ = dataset
    truth, room = _truth(root, RESCAN), _truth(root, "scene0000_00")
    assert [o["label"] for o in truth["objects"]] == [o["label"] for o in room["objects"]]
    assert truth["room_max"] == room["room_max"]
    assert truth["axis_alignment"] != room["axis_alignment"]
    labels = [o["label"] for o in room["objects"]]
    assert {"table", "coffee table", "shelf", "coat rack"} <= set(labels)
    color, depth = truth["color_intrinsics"], truth["depth_intrinsics"]
    scale = depth["width"] / color["width"]
    assert depth["fx"] == pytest.approx(color["fx"] * scale, abs=1 / 64)
    assert depth["cx"] == pytest.approx((color["cx"] + 0.5) * scale - 0.5, abs=1 / 64)
    frames_dir = root / "scannet" / "posed_images" / RESCAN
    alignment = np.array(truth["axis_alignment"])
    transforms, halves = _truth_boxes(truth)
    boxes = BoxSet(np.array(transforms), np.array(halves))
    room_max = np.array(truth["room_max"])
    for frame in truth["frames"]:
        position, pose = frame["index"], np.array(frame["world_from_cam"])
        assert frame["source_frame"] == 5 * position
        stored = np.asarray(Image.open(frames_dir / f"{position:05d}.png"))
        assert stored.dtype == np.uint16 and stored.shape == (60, 80)
        hits = render_view(pose, _intrinsics(depth), boxes, np.zeros(3), room_max)
        expected = np.floor(hits.depth_m.astype(np.float64) * 1000 + 0.5)
        assert np.array_equal(stored[stored > 0], expected[stored > 0])
        raw = np.array([[float(v) for v in line.split()] for line in
                        (frames_dir / f"{position:05d}.txt").read_text().splitlines()])
        if frame["valid"]:
            np.testing.assert_allclose(alignment @ raw, pose, atol=1e-9)
        else:
            assert np.all(np.isneginf(raw))


# --- .sens -----------------------------------------------------------------------------------


def test_sens_header_matches_truth(dataset: tuple[Path, SynthSummary]) -> None:
    root, _ = dataset
    truth = _truth(root)
    header, frames = _parse_sens(_scene_dir(root) / f"{SCENE}.sens")
    assert header["version"] == 4
    assert header["compression"] == (2, 1)
    assert header["shift"] == 1000.0
    assert header["trailing"] == 0
    # 60 hand-held frames, then the 90-frame room tour
    assert header["count"] == truth["num_frames"] == len(frames) == 150
    for key, size in (("color", (160, 120)), ("depth", (80, 60))):
        entry = truth[f"{key}_intrinsics"]
        assert header[f"{key}_size"] == size == (entry["width"], entry["height"])
        k = header[f"{key}_k"]
        assert (k[0, 0], k[1, 1], k[0, 2], k[1, 2]) == (
            entry["fx"],
            entry["fy"],
            entry["cx"],
            entry["cy"],
        )
        assert np.array_equal(header[f"{key}_ext"], np.eye(4))
    assert frames[3]["timestamps"] == (100000, 100000)
    image = Image.open(io.BytesIO(frames[0]["color"]))
    assert image.format == "JPEG" and image.size == (160, 120)
    assert np.asarray(image).std() > 10


def test_sens_poses_are_raw_truth_and_invalid_frames_are_inf(
    dataset: tuple[Path, SynthSummary],
) -> None:
    root, _ = dataset
    truth = _truth(root)
    raw_from_aligned = np.linalg.inv(np.array(truth["axis_alignment"]))
    _, frames = _parse_sens(_scene_dir(root) / f"{SCENE}.sens")
    invalid = set(truth["invalid_frames"])
    assert 3 <= len(invalid) <= 4 and any(i % 5 == 0 for i in invalid)
    for index, frame in enumerate(frames):
        entry = truth["frames"][index]
        assert entry["valid"] == (index not in invalid)
        if index in invalid:
            assert np.all(frame["pose"] == -np.inf)
        else:
            expected = raw_from_aligned @ np.array(entry["world_from_cam"])
            np.testing.assert_allclose(frame["pose"], expected, atol=2e-6)


def test_depth_equals_ray_cast_truth(dataset: tuple[Path, SynthSummary]) -> None:
    root, _ = dataset
    truth = _truth(root)
    header, frames = _parse_sens(_scene_dir(root) / f"{SCENE}.sens")
    intrinsics = _intrinsics(truth["depth_intrinsics"])
    transforms, halves = _truth_boxes(truth)
    boxes = BoxSet(np.array(transforms), np.array(halves))
    room_max = np.array(truth["room_max"])
    holes = 0
    for index in range(0, 60, 7):
        pose = np.array(truth["frames"][index]["world_from_cam"])
        hits = render_view(pose, intrinsics, boxes, np.zeros(3), room_max)
        expected = np.floor(hits.depth_m.astype(np.float64) * 1000 + 0.5)
        stored = _depth_mm(frames[index], header["depth_size"])
        holes += int(np.count_nonzero(stored == 0))
        assert np.array_equal(stored[stored > 0], expected[stored > 0])
        assert stored[30, 40] in (0, expected[30, 40])
    fraction = holes / (9 * 80 * 60)
    assert 0.002 < fraction < 0.01


def test_depth_matches_analytic_plane_intersections(dataset: tuple[Path, SynthSummary]) -> None:
    root, _ = dataset
    truth = _truth(root)
    header, frames = _parse_sens(_scene_dir(root) / f"{SCENE}.sens")
    k = truth["depth_intrinsics"]
    transforms, halves = _truth_boxes(truth)
    room_max = np.array(truth["room_max"])
    checked = 0
    for index in (0, 25, 50):
        pose = np.array(truth["frames"][index]["world_from_cam"])
        stored = _depth_mm(frames[index], header["depth_size"])
        for v in range(2, 60, 9):
            for u in range(3, 80, 11):
                if stored[v, u] == 0:
                    continue
                ray = pose[:3, :3] @ np.array([(u - k["cx"]) / k["fx"], (v - k["cy"]) / k["fy"], 1])
                z = _first_hit(pose[:3, 3], ray, transforms, halves, room_max)
                assert abs(int(stored[v, u]) - np.floor(z * 1000 + 0.5)) <= 1, (index, u, v)
                checked += 1
    assert checked > 100


def test_camera_path_is_handheld_like(dataset: tuple[Path, SynthSummary]) -> None:
    root, summary = dataset
    for scene in _sens_scenes(summary):  # the rescan's truth lists its exported frames only
        truth = _truth(root, scene)
        poses = np.array([frame["world_from_cam"] for frame in truth["frames"]])
        centres, forward, right = poses[:, :3, 3], poses[:, :3, 2], poses[:, :3, 0]
        room_max = np.array(truth["room_max"])
        assert np.all((centres[:, 2] > 1.2) & (centres[:, 2] < 1.75))
        assert np.all((centres[:, :2] > 0.3) & (centres[:, :2] < room_max[:2] - 0.3))
        pitch = np.degrees(np.arcsin(forward[:, 2]))
        assert np.all((pitch > -56.5) & (pitch < 11.5))
        # Mostly −35…+10°: steeper only to look at the floor or a base, or past a near edge.
        assert np.mean((pitch > -35.5) & (pitch < 10.5)) >= 0.45
        assert np.all(np.abs(np.degrees(np.arcsin(right[:, 2]))) < 6.0)  # small roll
        steps = np.linalg.norm(np.diff(centres, axis=0), axis=1)
        assert steps.max() < 0.03 and steps.mean() > 0.002  # centimetre motion at 30 fps
        yaw = np.unwrap(np.arctan2(forward[:, 1], forward[:, 0]))
        assert np.degrees(np.ptp(yaw)) > 10.0  # (the default 200-frame paths sweep > 60°)
        transforms, halves = _truth_boxes(truth)
        for transform, half in zip(transforms, halves, strict=True):
            local = np.abs((centres - transform[:3, 3]) @ transform[:3, :3])
            assert np.all(np.any(local > half + 0.1, axis=1))  # never inside or touching a box


def _visible_vertices(
    points: np.ndarray, pose: np.ndarray, color: Intrinsics, depth_m: np.ndarray, depth: Intrinsics
) -> np.ndarray:
    """Visibility (docs/labels.md#visibility) of aligned points ``(P, 3)`` in one frame: ``(P,)``
    bool."""
    cam = (points - pose[:3, 3]) @ pose[:3, :3]
    z = cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        x, y = cam[:, 0] / z, cam[:, 1] / z
        u, v = x * color.fx + color.cx, y * color.fy + color.cy
        ok = (z > 0) & (u >= 0) & (u < color.width) & (v >= 0) & (v < color.height)
        ud = np.floor(np.where(ok, x * depth.fx + depth.cx, -1) + 0.5).astype(int)
        vd = np.floor(np.where(ok, y * depth.fy + depth.cy, -1) + 0.5).astype(int)
    ok &= (ud >= 0) & (ud < depth.width) & (vd >= 0) & (vd < depth.height)
    measured = np.zeros(points.shape[0])
    measured[ok] = depth_m[vd[ok], ud[ok]]
    return ok & (measured > 0) & (np.abs(z - measured) <= np.maximum(0.05, 0.05 * z))


def _minimal_pairs(lo: np.ndarray, hi: np.ndarray, length: float) -> int:
    """Pairs of frames covering 90 % of ``length`` where neither frame does alone
    (docs/labels.md#coverage)."""
    alone = hi - lo >= 0.9 * length
    count = 0
    for i in range(lo.size):
        for j in range(i + 1, lo.size):
            span = max(hi[i], hi[j]) - min(lo[i], lo[j])
            count += bool(not alone[i] and not alone[j] and span >= 0.9 * length)
    return count


def test_kept_frames_show_objects_in_part(dataset: tuple[Path, SynthSummary]) -> None:
    """Every fifth frame (prepare's default) gives minimal covering pairs for each dimension."""
    root, summary = dataset
    dimensions = {"height_m": 0, "length_m": 1, "width_m": 2}
    found = dict.fromkeys(dimensions, 0)
    for scene in _sens_scenes(summary):
        truth = _truth(root, scene)
        raw, _, _ = _parse_ply(_scene_dir(root, scene) / f"{scene}_vh_clean_2.ply")
        points = _apply(np.array(truth["axis_alignment"]), raw)
        header, frames = _parse_sens(_scene_dir(root, scene) / f"{scene}.sens")
        color = _intrinsics(truth["color_intrinsics"])
        depth = _intrinsics(truth["depth_intrinsics"])
        kept = [i for i in range(0, len(frames), 5) if truth["frames"][i]["valid"]]
        visible = np.stack(
            [
                _visible_vertices(
                    points, np.array(truth["frames"][i]["world_from_cam"]), color,
                    _depth_mm(frames[i], header["depth_size"]) / 1000.0, depth,
                )
                for i in kept
            ]
        )  # fmt: skip
        labels = [obj["label"] for obj in truth["objects"]]
        for obj in truth["objects"]:
            if labels.count(obj["label"]) > 1 or obj["label"] == "window":
                continue
            rows = np.arange(obj["vertex_start"], obj["vertex_end"])
            c, s = np.cos(np.radians(obj["yaw_deg"])), np.sin(np.radians(obj["yaw_deg"]))
            axes = np.array([[0.0, 0.0, 1.0], [c, s, 0.0], [-s, c, 0.0]])  # z, length, width
            along = points[rows] @ axes.T
            seen = visible[:, rows]
            frames_seen = np.flatnonzero(seen.sum(axis=1) >= max(1, rows.size // 20))
            for key, axis in dimensions.items():
                if obj[key] < 0.1 or frames_seen.size < 2:
                    continue
                lo = np.array([along[seen[f], axis].min() for f in frames_seen])
                hi = np.array([along[seen[f], axis].max() for f in frames_seen])
                found[key] += _minimal_pairs(lo, hi, obj[key])
    assert all(count > 0 for count in found.values()), found


# --- mesh and annotations --------------------------------------------------------------------


def _load_annotated_mesh(root: Path, scene: str = SCENE) -> tuple[np.ndarray, dict, list[dict]]:
    folder = _scene_dir(root, scene)
    truth = _truth(root, scene)
    raw, _, _ = _parse_ply(folder / f"{scene}_vh_clean_2.ply")
    aligned = _apply(np.array(truth["axis_alignment"]), raw)
    segs = json.loads((folder / f"{scene}_vh_clean_2.0.010000.segs.json").read_text())
    aggregation = json.loads((folder / f"{scene}.aggregation.json").read_text())
    seg_indices = np.array(segs["segIndices"])
    groups = []
    for group in aggregation["segGroups"]:
        members = np.flatnonzero(np.isin(seg_indices, group["segments"]))
        groups.append({**group, "vertices": members})
    return aligned, aggregation, groups


def test_mesh_objects_match_truth_boxes(dataset: tuple[Path, SynthSummary]) -> None:
    root, _ = dataset
    truth = _truth(root)
    aligned, aggregation, groups = _load_annotated_mesh(root)
    assert aggregation["sceneId"] == f"scannet.{SCENE}" and "appId" in aggregation
    assert aligned.shape[0] == truth["num_vertices"]
    by_id = {group["objectId"]: group for group in groups}
    for obj in truth["objects"]:
        group = by_id[obj["object_id"]]
        assert group["label"] == obj["label"]
        assert np.array_equal(group["vertices"], np.arange(obj["vertex_start"], obj["vertex_end"]))
        yaw = np.radians(obj["yaw_deg"])
        axes = np.array([[np.cos(yaw), np.sin(yaw)], [-np.sin(yaw), np.cos(yaw)]])
        points = aligned[group["vertices"]]
        along = (points[:, :2] - obj["centre"][:2]) @ axes.T
        np.testing.assert_allclose(
            np.ptp(along, axis=0), [obj["length_m"], obj["width_m"]], atol=1e-3
        )
        np.testing.assert_allclose(np.abs(along).max(axis=0) * 2, np.ptp(along, axis=0), atol=1e-3)
        np.testing.assert_allclose(np.ptp(points[:, 2]), obj["height_m"], atol=1e-3)
        assert abs((points[:, 2].max() + points[:, 2].min()) / 2 - obj["centre"][2]) < 1e-3
    labels = [group["label"] for group in groups]
    assert {"wall", "floor", "ceiling"} <= set(labels)
    furniture = [obj["label"] for obj in truth["objects"]]
    assert len(set(furniture)) < len(furniture)  # scene0000_00 has two objects of one label
    off_axis = [abs((obj["yaw_deg"] + 45) % 90 - 45) for obj in truth["objects"]]
    assert max(off_axis) > 5.0


def test_segments_cover_every_vertex_once(dataset: tuple[Path, SynthSummary]) -> None:
    root, _ = dataset
    aligned, _, groups = _load_annotated_mesh(root)
    owner = np.full(aligned.shape[0], -1)
    for group in groups:
        assert np.all(owner[group["vertices"]] == -1)
        owner[group["vertices"]] = group["objectId"]
    assert np.all(owner >= 0)
    segs = json.loads((_scene_dir(root) / f"{SCENE}_vh_clean_2.0.010000.segs.json").read_text())
    assert set(segs) == {"params", "sceneId", "segIndices"}


def _surface_distance(
    point: np.ndarray, transforms: list[np.ndarray], halves: list[np.ndarray], room_max: np.ndarray
) -> float:
    """Distance from a point to the nearest box surface or room wall, metres."""
    best = float(np.min(np.concatenate([point, room_max - point])))
    for transform, half in zip(transforms, halves, strict=True):
        local = np.abs(transform[:3, :3].T @ (point - transform[:3, 3]))
        outside = np.maximum(local - half, 0.0)
        distance = np.linalg.norm(outside) if outside.any() else np.min(half - local)
        best = min(best, float(distance))
    return best


def test_mesh_vertices_lie_on_rendered_surfaces(dataset: tuple[Path, SynthSummary]) -> None:
    root, _ = dataset
    truth = _truth(root)
    aligned, _, _ = _load_annotated_mesh(root)
    transforms, halves = _truth_boxes(truth)
    room_max = np.array(truth["room_max"])
    centre = np.array(truth["frames"][0]["world_from_cam"])[:3, 3]
    rng = np.random.default_rng(0)
    reached = 0
    sample = aligned[rng.choice(aligned.shape[0], 200, replace=False)]
    for vertex in sample:
        assert _surface_distance(vertex, transforms, halves, room_max) < 2e-6
        # Nothing is hit beyond the vertex: the ray stops on it or in front of it (edge vertices
        # may be grazed by rounding, hence the fraction).
        t = _first_hit(centre, vertex - centre, transforms, halves, room_max)
        reached += t <= 1 + 1e-6
    assert reached >= 0.95 * len(sample)
    assert np.all((aligned >= -1e-5) & (aligned <= room_max + 1e-5))


def test_scene_txt(dataset: tuple[Path, SynthSummary]) -> None:
    root, _ = dataset
    truth = _truth(root)
    entries = dict(
        line.split(" = ", 1)
        for line in (_scene_dir(root) / f"{SCENE}.txt").read_text().splitlines()
    )
    keys = [f"{name}{kind}" for kind in ("_color", "_depth") for name in ("fx", "fy", "mx", "my")]
    keys += ["colorHeight", "colorWidth", "depthHeight", "depthWidth", "numColorFrames"]
    keys += ["numDepthFrames", "numIMUmeasurements", "sceneType", "axisAlignment"]
    assert set(keys) == set(entries)
    alignment = np.array([float(x) for x in entries["axisAlignment"].split()]).reshape(4, 4)
    assert np.array_equal(alignment, np.array(truth["axis_alignment"]))
    angle = np.degrees(np.arctan2(alignment[1, 0], alignment[0, 0]))
    assert abs((angle + 45) % 90 - 45) > 5 and np.linalg.norm(alignment[:3, 3]) > 0.5
    assert float(entries["fx_depth"]) == truth["depth_intrinsics"]["fx"]
    assert int(entries["colorWidth"]) == 160 and int(entries["numColorFrames"]) == 150


def test_round_trip_through_scannet_reader(dataset: tuple[Path, SynthSummary]) -> None:
    scannet = pytest.importorskip(
        "multispa.scenes.scannet", reason="ScanNet reader not written yet"
    )
    root, _ = dataset
    truth = _truth(root)
    scene = scannet.load_scannet_scene(root / "scannet" / "scans", SCENE)
    np.testing.assert_allclose(scene.axis_alignment, truth["axis_alignment"], atol=1e-12)
    expected_invalid = [i for i in truth["invalid_frames"] if i % 5 == 0]
    assert list(scene.invalid_frames) == expected_invalid
    assert [f.index for f in scene.frames] == [
        i for i in range(0, 150, 5) if i not in truth["invalid_frames"]
    ]
    for info in scene.frames:
        expected = np.array(truth["frames"][info.index]["world_from_cam"])
        np.testing.assert_allclose(info.world_from_cam, expected, atol=1e-5)
    labels = {obj.object_id: obj.label for obj in scene.objects}
    for obj in truth["objects"]:
        assert labels[obj["object_id"]] == obj["label"]
        members = np.flatnonzero(scene.instance_ids == obj["object_id"])
        assert members.tolist() == list(range(obj["vertex_start"], obj["vertex_end"]))
    frame = scene.frames_source.read(scene.frames[1].index)
    assert frame.depth_m.shape == (60, 80) and frame.color_rgb().shape == (120, 160, 3)


def test_room_tour_continues_the_scan_and_turns_round(dataset: tuple[Path, SynthSummary]) -> None:
    """The last 90 frames walk on from where the hand-held scan ended, turning through 360°."""
    root, summary = dataset
    raw = [s for s in summary.scenes
           if (root / "scannet" / "scans" / s / f"{s}.sens").is_file()]
    assert raw  # (the rescan is a thinned posed_images export: its truth lists exported frames)
    for scene in raw:
        truth = _truth(root, scene)
        poses = np.array([frame["world_from_cam"] for frame in truth["frames"]])
        scan, tour = poses[:60], poses[60:]
        assert tour.shape[0] == 90
        start = np.linalg.norm(tour[0, :3, 3] - scan[-1, :3, 3])
        assert 0.0 < start < 0.03  # one step on, no jump
        forward = tour[:, :3, 2]
        yaw = np.degrees(np.unwrap(np.arctan2(forward[:, 1], forward[:, 0])))
        assert yaw[-1] - yaw[0] == pytest.approx(360.0 * 89 / 90, abs=1e-6)
        walked = np.linalg.norm(np.diff(tour[:, :2, 3], axis=0), axis=1).sum()
        assert walked > 0.3  # the centres spread over the room
