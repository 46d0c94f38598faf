"""Object movement family (docs/labels.md#object-movement; rules (i), (j)) against the synthetic
truth."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from multispa.pipeline.prepare import PrepareConfig, prepare
from multispa.synth.config import SynthConfig
from multispa.synth.dataset import write_synthetic_dataset
from multispa.tasks import markers, object_movement
from multispa.tasks.answers import format_answer
from multispa.tasks.base import CacheUnit, GenerateSettings, Selection, UnitContext
from multispa.tasks.markers import PALETTE, colour_distance, inside_margin, marker_radius
from multispa.tasks.object_movement import ObjectMovementFamily
from multispa.tasks.records import record_draws, record_id, validate_record
from multispa.tasks.templates import compiled_templates, template_set

SUBTASKS = ObjectMovementFamily.subtasks
SEED = 11
COORD_RE = re.compile(r"\[ (\d+) , (\d+) \]")


def r_half_away(x: float) -> int:
    """Independent half-away-from-zero rounding."""
    return int(np.sign(x) * np.floor(abs(x) + 0.5))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("object_movement")
    synth = root / "synth"
    # Exact tracks (no ADT noise), so every answer can be checked against the truth's rounding;
    # the val ADT clip has no extrinsics_w2c: its answers rest on static-scene poses.
    write_synthetic_dataset(synth, SynthConfig(
        scenes=1, clips=4, seed=5, small=True, workers=1, track_noise_mm=0.0,
    ))
    cache = root / "cache"
    prepare(PrepareConfig(cache=cache, tapvid3d=synth / "tapvid3d"))
    manifest = json.loads((cache / "manifest.json").read_text())
    units = {
        split: [
            CacheUnit(uid, cache / uid, info["split"])
            for uid, info in sorted(manifest["units"].items())
            if info["split"] == split and uid.startswith("tapvid3d/")
        ]
        for split in ("train", "val")
    }
    family = ObjectMovementFamily()
    plans = {}
    for split in units:
        quota = None if split == "train" else 300
        plans[split] = family.plan(split, units[split], dict.fromkeys(SUBTASKS, quota), SEED,
                                   GenerateSettings())
    return {"root": root, "synth": synth, "cache": cache, "units": units, "plans": plans}


def _generate(
    units: list[CacheUnit], selections: list[Selection], out: Path
) -> tuple[list[dict], dict[str, int]]:
    family = ObjectMovementFamily()
    records: list[dict] = []
    skipped: dict[str, int] = {}
    for unit in units:
        ctx = UnitContext(unit, SEED, out, GenerateSettings())
        records += family.generate(ctx, [s for s in selections if s.unit_id == unit.unit_id])
        for reason, n in ctx.skipped.items():
            skipped[reason] = skipped.get(reason, 0) + n
    return records, skipped


def _train_sample(data: dict[str, Any]) -> list[Selection]:
    """A deterministic subset of the training plan: a stride over all rows plus a quarter of the
    reversed ones (generating all ~18k records would be slow)."""
    selections = data["plans"]["train"][0]
    return [
        s for i, s in enumerate(selections) if i % 40 == 0 or (s.extra["reversed"] and i % 8 < 2)
    ]


@pytest.fixture(scope="module")
def generated(data: dict[str, Any]) -> dict[str, Any]:
    out = data["root"] / "out"
    val, val_skipped = _generate(data["units"]["val"], data["plans"]["val"][0], out)
    train_sel = _train_sample(data)
    train, train_skipped = _generate(data["units"]["train"], train_sel, out)
    return {"out": out, "val": val, "train": train, "train_sel": train_sel,
            "skipped": {**val_skipped, **train_skipped}}


class Truth:
    """Independent world positions, camera rotations and projections of one synthetic clip."""

    def __init__(self, synth: Path, source: str, clip: str) -> None:
        subset = source.split("/")[1]
        path = synth / "synthetic_truth" / "tapvid3d" / subset / f"{clip}.json"
        truth = json.loads(path.read_text())
        self.poses = {o["object_id"]: np.array(o["world_from_object"]) for o in truth["objects"]}
        self.object_of = truth["tracks"]["object_id"]
        self.local = np.array(truth["tracks"]["local"], dtype=np.float64)
        self.centres = np.array(truth["camera_centres"], dtype=np.float64)
        k = truth["intrinsics"]
        self.fx, self.fy, self.cx, self.cy = k["fx"], k["fy"], k["cx"], k["cy"]
        self.width, self.height = truth["image_size"]
        self.w2c = np.linalg.inv(np.array(truth["world_from_cam"], dtype=np.float64))
        self.pose_source = (
            "fixed" if subset == "pstudio"
            else "extrinsics" if truth["extrinsics"] == "written" else "static_scene"
        )

    def world(self, track: int, frame: int) -> np.ndarray:
        obj = self.object_of[track]
        point = np.append(self.local[track], 1.0)
        return point[:3] if obj == -1 else (self.poses[obj][frame] @ point)[:3]

    def pixel(self, track: int, frame: int) -> np.ndarray:
        x, y, z = (self.w2c[frame] @ np.append(self.world(track, frame), 1.0))[:3]
        return np.array([self.fx * x / z + self.cx, self.fy * y / z + self.cy])


def _near_half(value_mm: float) -> bool:
    """A value whose rounding float32 storage (~1e-3 mm here) may flip: near a half-way point."""
    return abs(abs(value_mm) % 1.0 - 0.5) < 0.002


def _check_rounded(got: int, exact_mm: float) -> None:
    if _near_half(exact_mm):
        assert abs(got - r_half_away(exact_mm)) <= 1
    else:
        assert got == r_half_away(exact_mm), (got, exact_mm)


def test_values_match_truth(data: dict[str, Any], generated: dict[str, Any]) -> None:
    records = generated["val"] + generated["train"]
    assert len(records) > 400
    truths: dict[str, Truth] = {}
    seen_static = Counter()
    seen_sources: Counter[str] = Counter()
    for rec in records:
        meta = rec["meta"]
        key = f"{meta['source']}/{meta['clip']}"
        if key not in truths:
            truths[key] = Truth(data["synth"], meta["source"], meta["clip"])
        truth = truths[key]
        f1, f2 = meta["frames"]
        track = meta["track"]["index"]
        d = truth.world(track, f2) - truth.world(track, f1)
        norm = float(np.linalg.norm(d))
        if abs(norm - 0.01) < 1e-5:
            continue  # static/moving ambiguous at float32 precision
        static = norm < 0.01
        assert meta["track"]["point_moving"] is (not static)
        camera_shift = float(np.linalg.norm(truth.centres[f2] - truth.centres[f1]))
        if abs(camera_shift - 0.01) > 1e-6:
            assert meta["track"]["camera_moving"] is (camera_shift >= 0.01)
        variant = "static" if static else None
        answers = template_set(rec["subtask"]).answers_for(variant)
        phrasing = answers[meta["templates"]["answer"]]
        assert rec["conversations"][1]["value"] == phrasing.replace(
            "${answer}", format_answer(rec["answer_type"], rec["gt"])
        )
        if rec["answer_type"] == "scalar":
            if static:
                assert rec["gt"] == 0
            else:
                _check_rounded(rec["gt"], 1000.0 * norm)
        else:
            if static:
                assert rec["gt"] == [0, 0, 0]
            else:
                vector_mm = 1000.0 * (truth.w2c[f1][:3, :3] @ d)
                for got, exact in zip(rec["gt"], vector_mm.tolist(), strict=True):
                    _check_rounded(got, exact)
        seen_static[static] += 1
        uv1, uv2 = truth.pixel(track, f1), truth.pixel(track, f2)
        np.testing.assert_allclose(meta["track"]["uv"], [uv1, uv2], atol=0.006)
        np.testing.assert_allclose(meta["points"][0][0], uv1, atol=0.006)
        assert meta["points"][1] == []
        assert meta["track"]["pose_source"] == truth.pose_source
        seen_sources[truth.pose_source] += 1
        if meta["referencing"] == "coord":
            question = rec["conversations"][0]["value"].rsplit("\n", 1)[1]
            (x, y), = [tuple(map(int, m)) for m in COORD_RE.findall(question)]
            exact = (uv1[0] / truth.width * 1000.0, uv1[1] / truth.height * 1000.0)
            for got, value in zip((x, y), exact, strict=True):
                if abs(value - round(value)) > 1e-3:
                    assert got == min(999, max(0, int(np.floor(value))))
    assert seen_static[True] > 0 and seen_static[False] > 0
    assert set(seen_sources) == {"extrinsics", "static_scene", "fixed"}


def test_records_valid_and_ids(data: dict[str, Any], generated: dict[str, Any]) -> None:
    records = generated["val"] + generated["train"]
    ids = [rec["id"] for rec in records]
    assert len(set(ids)) == len(ids)
    sources = Counter(rec["meta"]["source"] for rec in records)
    assert set(sources) == {"tapvid3d/adt", "tapvid3d/pstudio"}
    for rec in records:
        validate_record(rec)
        spans = re.findall(r"`([^`]*)`", rec["conversations"][1]["value"])
        assert [f"`{spans[0]}`"] == [format_answer(rec["answer_type"], rec["gt"])]
        meta = rec["meta"]
        assert rec["task"] == "object_movement" and rec["subtask"] in SUBTASKS
        assert meta["referencing"] == rec["subtask"].rsplit("_", 1)[1]
        assert rec["id"] == record_id(
            split=meta["split"], subtask=rec["subtask"], source=meta["source"],
            scene_or_clip=meta["clip"], frames=meta["frames"], points=meta["points"],
            track=meta["track"]["index"], reversed_pair=meta["track"]["reversed"],
        )
        width, height = (160, 90) if meta["source"].endswith("pstudio") else (128, 128)
        assert rec["width_list"] == [width, width] and rec["height_list"] == [height, height]
        variant = None if meta["track"]["point_moving"] else "static"
        chosen = meta["templates"]
        assert [chosen["description"], chosen["question"], chosen["answer"]] == record_draws(
            SEED, rec["id"], compiled_templates(rec["subtask"]).sizes(variant)
        )
    assert generated["skipped"] == {}


def test_vectorised_answers_equal_single_ones() -> None:
    rng = np.random.default_rng(4)
    world_1 = rng.normal(size=(300, 3))
    world_2 = world_1 + rng.normal(scale=0.3, size=(300, 3)) * (rng.random((300, 1)) < 0.8)
    angles = rng.uniform(-np.pi, np.pi, size=300)
    poses = np.tile(np.eye(4), (300, 1, 1))
    poses[:, 0, 0], poses[:, 0, 1] = np.cos(angles), -np.sin(angles)
    poses[:, 1, 0], poses[:, 1, 1] = np.sin(angles), np.cos(angles)
    many = object_movement.movement_answers(world_1, world_2, poses)
    static = 0
    for k in range(300):
        distance, vector, moving, norm = object_movement.movement_answer(
            world_1[k], world_2[k], poses[k]
        )
        d = world_2[k] - world_1[k]
        assert moving is bool(np.linalg.norm(d) >= 0.01) is bool(many.moving[k])
        static += not moving
        assert distance == many.distance_mm[k] == (r_half_away(1000 * norm) if moving else 0)
        expected = [r_half_away(1000 * v) for v in poses[k][:3, :3] @ d] if moving else [0, 0, 0]
        assert vector == many.vector_mm[k].tolist() == expected
    assert static > 20


def test_dot_images(data: dict[str, Any], generated: dict[str, Any]) -> None:
    out: Path = generated["out"]
    dots = [r for r in generated["val"] + generated["train"] if r["meta"]["referencing"] == "dot"]
    coords = [r for r in generated["val"] + generated["train"] if r not in dots]
    assert dots and coords
    checked = 0
    for rec in dots + coords:
        meta = rec["meta"]
        subset = meta["source"].split("/")[1]
        f1, f2 = meta["frames"]
        cache_dir = data["cache"] / "tapvid3d" / subset / meta["clip"] / "images"
        second = f"tapvid3d/{subset}/{meta['clip']}/{f2:05d}.jpg"
        assert rec["image"][1] == second
        assert (out / "images" / second).read_bytes() == (cache_dir / f"{f2:05d}.jpg").read_bytes()
        if rec in coords:
            assert rec["image"][0] == f"tapvid3d/{subset}/{meta['clip']}/{f1:05d}.jpg"
            continue
        first = rec["image"][0]
        assert first == f"annotated/{meta['split']}/{rec['subtask']}/{rec['id']}_0.jpg"
        u, v = meta["points"][0][0]
        width = rec["width_list"][0]
        radius = marker_radius(width, meta["source"])
        assert inside_margin(np.array([[u, v]]), width, rec["height_list"][0], radius)[0]
        with Image.open(out / "images" / first) as img:
            drawn = np.asarray(img.convert("RGB"))
        with Image.open(cache_dir / f"{f1:05d}.jpg") as img:
            raw = np.asarray(img.convert("RGB"))
        assert drawn.shape == raw.shape
        col, row = int(np.floor(u + 0.5)), int(np.floor(v + 0.5))
        human = rec["conversations"][0]["value"]
        for colour in [c for c in PALETTE if re.search(rf"\b{c.name}\b", human)]:
            checked += 1
            after = colour_distance(colour.rgb, drawn[row, col])
            # JPEG blurs the tiniest dots (radius 2 px on 160 px wide frames): the centre pixel
            # must be nearest to the named colour among the palette, and nearer than before.
            nearest = min(PALETTE, key=lambda c: float(colour_distance(c.rgb, drawn[row, col])))
            assert nearest.name == colour.name, (rec["id"], colour.name, drawn[row, col])
            assert after < 150.0 and after < colour_distance(colour.rgb, raw[row, col])
            assert not np.array_equal(drawn, raw)
    assert checked > 0
    annotated = list((out / "images" / "annotated").rglob("*.jpg"))
    assert all(p.name.endswith("_0.jpg") for p in annotated)


def test_plan_train_shape(data: dict[str, Any]) -> None:
    selections, dropped = data["plans"]["train"]
    assert not any(k.endswith(":not_drawn") for k in dropped)
    by_key: dict[tuple[str, str], list[Selection]] = defaultdict(list)
    for s in selections:
        by_key[(s.subtask, s.unit_id)].append(s)
    assert {sub for sub, _ in by_key} == set(SUBTASKS)
    for (subtask, unit_id), rows in by_key.items():
        cache = data["cache"] / unit_id
        visible = np.load(cache / "visible.npy")
        groups = np.load(cache / "group_of_track.npy")
        forward = {(s.frames, s.extra["track"]) for s in rows if not s.extra["reversed"]}
        tracks_per_group: dict[int, set[int]] = defaultdict(set)
        for s in rows:
            f1, f2 = s.frames
            track = s.extra["track"]
            assert visible[f1, track] and visible[f2, track]
            assert groups[track] == s.extra["group"] >= 0
            tracks_per_group[s.extra["group"]].add(track)
            if s.extra["reversed"]:
                assert f1 > f2 and ((f2, f1), track) in forward
            else:
                assert f1 < f2
        for group, tracks in tracks_per_group.items():
            # 15 tracks are kept per group; those visible in fewer than two frames yield no pair,
            # and a dot track can lose all its pairs to the marker margin.
            members = np.flatnonzero(groups == group)
            eligible = {int(n) for n in members if np.count_nonzero(visible[:, n]) >= 2}
            assert tracks <= eligible
            kept = min(15, members.size)
            assert len(tracks) <= kept
            if subtask.endswith("_coord"):
                assert len(tracks) >= kept - (members.size - len(eligible))
    share = np.mean([s.extra["reversed"] for s in selections])
    assert 0.03 < share < 0.07


def test_plan_val_benchmark_mode(data: dict[str, Any]) -> None:
    selections, _ = data["plans"]["val"]
    assert not any(s.extra["reversed"] for s in selections)
    per_track = Counter((s.subtask, s.unit_id, s.extra["track"]) for s in selections)
    assert max(per_track.values()) <= 11  # P = 1: one pair per bin plus one static
    tracks = defaultdict(set)
    for s in selections:
        tracks[(s.subtask, s.unit_id, s.extra["group"])].add(s.extra["track"])
    assert all(len(t) == 1 for t in tracks.values())  # k = 1
    # A per-source cap is drawn from the uncapped pool, separately per source.
    family = ObjectMovementFamily()
    capped, dropped = family.plan("val", data["units"]["val"], dict.fromkeys(SUBTASKS, 2), SEED,
                                  GenerateSettings())
    counts = Counter((s.subtask, s.unit_id.rsplit("/", 1)[0]) for s in capped)
    pool = Counter((s.subtask, s.unit_id.rsplit("/", 1)[0]) for s in selections)
    assert counts == Counter({key: min(2, n) for key, n in pool.items()})
    as_text = {json.dumps(s.to_json(), sort_keys=True) for s in selections}
    assert all(json.dumps(s.to_json(), sort_keys=True) in as_text for s in capped)
    assert sum(v for k, v in dropped.items() if k.endswith(":not_drawn")) == sum(
        n - min(2, n) for n in pool.values()
    )
    only = family.plan("val", data["units"]["val"], {"object_movement_vector_dot": None}, SEED,
                       GenerateSettings())[0]
    assert {s.subtask for s in only} == {"object_movement_vector_dot"}
    assert only == [s for s in selections if s.subtask == "object_movement_vector_dot"]


def test_determinism(data: dict[str, Any], generated: dict[str, Any], tmp_path: Path) -> None:
    family = ObjectMovementFamily()
    units = data["units"]["val"]
    again = family.plan("val", list(reversed(units)), dict.fromkeys(SUBTASKS, 300), SEED,
                        GenerateSettings())
    assert again == data["plans"]["val"]
    selections = list(reversed(data["plans"]["val"][0][::3]))
    selections = [Selection.from_json(json.loads(json.dumps(s.to_json()))) for s in selections]
    records, _ = _generate(units, selections, tmp_path)
    before = {rec["id"]: rec for rec in generated["val"]}
    assert records and all(before[rec["id"]] == rec for rec in records)
    for rec in records:
        if rec["meta"]["referencing"] == "dot":
            path = rec["image"][0]
            assert (tmp_path / "images" / path).read_bytes() == (
                generated["out"] / "images" / path
            ).read_bytes()
    other = family.plan("val", units, dict.fromkeys(SUBTASKS, 300), SEED + 1,
                        GenerateSettings())[0]
    assert other != data["plans"]["val"][0]


def _write_fake_clip(path: Path, positions: np.ndarray, groups: np.ndarray, uv: np.ndarray) -> None:
    """A minimal clip cache (pstudio-like, identity extrinsics) with the given tracks."""
    frames = positions.shape[0]
    path.mkdir(parents=True)
    np.save(path / "tracks_world.npy", positions.astype(np.float32))
    np.save(path / "uv.npy", uv.astype(np.float32))
    np.save(path / "visible.npy", np.ones(positions.shape[:2], dtype=bool))
    np.save(path / "cam_from_world.npy", np.tile(np.eye(4), (frames, 1, 1)))
    np.save(path / "camera_centres.npy", np.zeros((frames, 3)))
    np.save(path / "group_of_track.npy", groups.astype(np.int32))
    meta = {"cache_version": 2, "image_size": [200, 100], "pose_source": "fixed", "intrinsics": {
        "fx": 100.0, "fy": 100.0, "cx": 100.0, "cy": 50.0, "width": 200, "height": 100}}
    (path / "meta.json").write_text(json.dumps(meta))
    (path / "images").mkdir()
    for t in range(frames):
        grey = Image.new("RGB", (200, 100), (90 + 5 * t, 100, 110))
        grey.save(path / "images" / f"{t:05d}.jpg", format="JPEG", quality=90)


def _expected_pairs(x: np.ndarray, pairs_per_bin: int) -> int:
    """Track-pair (docs/labels.md#track-pairs) steps 2–4 pair count for a track moving along x
    (independent re-derivation)."""
    i, j = np.triu_indices(x.size, k=1)
    d = np.abs(x[j] - x[i])
    moving = d[d >= 0.01]
    lo, hi = moving.min(), moving.max()
    bins = np.zeros(moving.size, int)
    if hi > lo:
        bins = np.minimum(np.floor((moving - lo) * 10 / (hi - lo)).astype(int), 9)
    population = np.bincount(bins, minlength=10)
    n = max(1, min(int(population[4]), pairs_per_bin))
    return int(np.minimum(population, n).sum()) + int(np.any(d < 0.01))


def test_pairs_per_bin_is_a_run_constant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule (i): a first track with a tiny middle bin must not cut later tracks' pairs."""
    frames = 20
    t = np.arange(frames, dtype=np.float64)
    jumpy = np.where(t % 2 == 0, 0.0, 1.0)  # all moving pairs 1 m apart: bin 4 empty, n = 1
    smooth = t / 16  # displacements 1/16..19/16 m (exact in float32) spread over the bins
    positions = np.zeros((frames, 2, 3))
    positions[:, 0, 0], positions[:, 1, 0] = jumpy, smooth
    uv = np.full((frames, 2, 2), 50.0)
    uv[::2, 1, 0] = 0.5  # track 1 touches the left border in even frames
    unit = CacheUnit("tapvid3d/pstudio/fake_1", tmp_path / "tapvid3d/pstudio/fake_1", "train")
    _write_fake_clip(unit.path, positions, np.array([0, 1]), uv)
    calls: list[int] = []
    real = object_movement.distance_binned_pairs

    def spy(*args: Any, **kwargs: Any) -> list[tuple[int, int]]:
        calls.append(kwargs["pairs_per_bin"])
        return real(*args, **kwargs)

    monkeypatch.setattr(object_movement, "distance_binned_pairs", spy)
    family = ObjectMovementFamily()
    quotas: dict[str, int | None] = {"object_movement_distance_coord": None,
                                     "object_movement_distance_dot": None}
    selections, dropped = family.plan("train", [unit], quotas, SEED, GenerateSettings())
    assert calls == [30, 30, 30, 30]
    count: Callable[[str, int], int] = lambda sub, track: sum(  # noqa: E731
        1 for s in selections
        if s.subtask == sub and s.extra["track"] == track and not s.extra["reversed"]
    )
    assert count("object_movement_distance_coord", 0) == _expected_pairs(jumpy, 30) == 2
    expected_smooth = _expected_pairs(smooth, 30)
    assert expected_smooth > 30
    assert count("object_movement_distance_coord", 1) == expected_smooth
    # Dot candidates whose first prompt frame puts the point on the border are dropped.
    dots = [s for s in selections if s.subtask == "object_movement_distance_dot"]
    assert dots and all(s.frames[0] % 2 == 1 for s in dots if s.extra["track"] == 1)
    assert dropped["object_movement_distance_dot:marker_margin"] > 0
    calls.clear()
    unit_val = CacheUnit(unit.unit_id, unit.path, "val")
    family.plan("val", [unit_val], quotas, SEED, GenerateSettings())
    assert calls == [1, 1, 1, 1]


def test_static_answer_on_fake_clip(tmp_path: Path) -> None:
    """A point that moves < 1 cm gets 0 / [0, 0, 0] and the static phrasing; PStudio identity."""
    frames = 12
    positions = np.zeros((frames, 1, 3))
    positions[:, 0, 2] = 2.0 + 0.0004 * np.arange(frames)  # 4.4 mm over the clip
    uv = np.full((frames, 1, 2), [60.25, 40.5])
    unit = CacheUnit("tapvid3d/pstudio/still_1", tmp_path / "tapvid3d/pstudio/still_1", "val")
    _write_fake_clip(unit.path, positions, np.array([0]), uv)
    family = ObjectMovementFamily()
    selections, _ = family.plan("val", [unit], dict.fromkeys(SUBTASKS, None), SEED,
                                GenerateSettings())
    assert len(selections) == 4
    ctx = UnitContext(unit, SEED, tmp_path / "out", GenerateSettings())
    records = list(family.generate(ctx, selections))
    assert len(records) == 4
    for rec in records:
        assert rec["gt"] in (0, [0, 0, 0])
        assert rec["meta"]["track"]["point_moving"] is False
        assert rec["meta"]["track"]["camera_moving"] is False
        assert rec["meta"]["track"]["pose_source"] == "fixed"
        phrasing = template_set(rec["subtask"]).answers_for("static")[
            rec["meta"]["templates"]["answer"]
        ]
        answer = format_answer(rec["answer_type"], rec["gt"])
        assert rec["conversations"][1]["value"] == phrasing.replace("${answer}", answer)
        if rec["meta"]["referencing"] == "coord":
            assert "[ 301 , 405 ]" in rec["conversations"][0]["value"]


def test_dot_frames_are_decoded_once_per_clip(
    data: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[markers.DecodedFrames] = []
    original = markers.DecodedFrames.__init__

    def init(self: markers.DecodedFrames, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(markers.DecodedFrames, "__init__", init)
    unit = data["units"]["train"][0]
    selections = [
        s for s in data["plans"]["train"][0]
        if s.unit_id == unit.unit_id and s.subtask.endswith("_dot")
    ][:150]
    records, _ = _generate([unit], selections, tmp_path)
    marked = [rec["meta"]["frames"][0] for rec in records]
    assert len(marked) > len(set(marked)) >= 2  # frames shared between records
    assert made[-1].decoded == len(set(marked))
    # the shared frame is restored after each record: a record made alone has the same bytes
    together = {rec["id"]: rec for rec in records}
    compared = 0
    for selection in selections[::30]:
        alone, _ = _generate([unit], [selection], tmp_path / "alone")
        for rec in alone:
            compared += 1
            assert together[rec["id"]] == rec
            path = rec["image"][0]
            assert (tmp_path / "alone" / "images" / path).read_bytes() == (
                tmp_path / "images" / path
            ).read_bytes()
    assert compared >= 3
