"""Camera movement family: plan and records checked against the synthetic truth
(docs/labels.md#camera-movement).

Quantities are recomputed here with plain numpy from the truth's aligned poses
(``synthetic_truth/scannet/<scene>.json``), never with the project's geometry functions. The cache
stores poses read back from ``.sens`` (float32), so truth and cache differ by ~1e-7: rounded answers
must equal the truth's exactly, except within a tiny band around a rounding boundary where either
neighbour is accepted (and such cases must be rare); against the cached poses they must be exact.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import orjson
import pytest

from multispa.errors import CacheError
from multispa.pipeline.prepare import PrepareConfig, prepare
from multispa.synth.config import SynthConfig
from multispa.synth.dataset import write_synthetic_dataset
from multispa.tasks import camera_movement
from multispa.tasks.answers import format_answer
from multispa.tasks.base import CacheUnit, GenerateSettings, Selection, UnitContext
from multispa.tasks.camera_movement import (
    _META_LAYOUT,
    CameraMotion,
    CameraMovementFamily,
    _answers,
    _dead_zone_ok,
    _meta_dicts,
    _meta_texts,
    _read_small_npy,
    answer_for,
    camera_motion,
    eligible,
)
from multispa.tasks.records import RecordMaker, record_draws, record_line, validate_record
from multispa.tasks.templates import SUBTASKS, compiled_templates, render_with_indices

SEED = 11
TRAIN_QUOTA = 60
VAL_QUOTA = 300
# Truth vs cached poses (float32 in .sens) move values by < 1e-3 mm and < 1e-5 degrees here.
EPS_MM = 2e-3
EPS_DEG = 1e-4
DIRECTION_WORDS = {
    "camera_x_direction": (0, "right", "left"),
    "camera_y_direction": (1, "down", "up"),
    "camera_z_direction": (2, "forward", "backward"),
}


def half_away(x: float) -> int:
    """Test-local r(x): exact decimal rounding, half away from zero."""
    return int(Decimal(x).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def near_half(x: float, eps: float) -> bool:
    """True if |x| lies within ``eps`` of a rounding boundary k + 0.5."""
    frac = abs(x) - math.floor(abs(x))
    return abs(frac - 0.5) < eps


def rounded_near(x: float, eps: float) -> set[int]:
    """r(x); both neighbours when x lies within ``eps`` of a rounding boundary."""
    if near_half(x, eps):
        return {half_away(x - eps), half_away(x + eps)}
    return {half_away(x)}


def yaw_pitch(world_from_cam: np.ndarray) -> tuple[float, float]:
    forward = world_from_cam[:3, 2]
    yaw = math.degrees(math.atan2(forward[1], forward[0]))
    pitch = math.degrees(math.asin(forward[2] / np.linalg.norm(forward)))
    return yaw, pitch


def wrap(angle: float) -> float:
    """Into (-180, 180]."""
    wrapped = math.fmod(angle, 360.0)
    if wrapped > 180.0:
        wrapped -= 360.0
    if wrapped <= -180.0:
        wrapped += 360.0
    return wrapped


def truth_motion(pose1: np.ndarray, pose2: np.ndarray) -> tuple[np.ndarray, float, float]:
    """t (camera 2 centre in camera-1 axes), Δyaw, Δpitch with plain numpy."""
    t = (np.linalg.inv(pose1) @ pose2)[:3, 3]
    yaw1, pitch1 = yaw_pitch(pose1)
    yaw2, pitch2 = yaw_pitch(pose2)
    return t, wrap(yaw2 - yaw1), pitch2 - pitch1


def answer_span(record: dict) -> str:
    spans = re.findall(r"`([^`]*)`", record["conversations"][1]["value"])
    assert len(spans) == 1
    return spans[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("camera")
    synth = root / "synth"
    write_synthetic_dataset(
        synth, SynthConfig(scenes=5, clips=0, seed=SEED, small=True, workers=1)
    )
    cache = root / "cache"
    prepare(PrepareConfig(cache=cache, scannet=synth / "scannet", frame_skip=1))
    manifest = json.loads((cache / "manifest.json").read_text())
    units = [
        CacheUnit(unit_id, cache / unit_id, info["split"])
        for unit_id, info in sorted(manifest["units"].items())
    ]
    truth = {}
    for unit in units:
        path = synth / "synthetic_truth" / "scannet" / f"{unit.name}.json"
        scene = json.loads(path.read_text())
        truth[unit.name] = {
            frame["index"]: np.array(frame["world_from_cam"], dtype=np.float64)
            for frame in scene["frames"]
        }
    family = CameraMovementFamily()
    out = root / "out"
    result: dict = {"units": units, "truth": truth, "out": out, "cache": cache}
    for split, quota in (("train", TRAIN_QUOTA), ("val", VAL_QUOTA)):
        own = [u for u in units if u.split == split]
        selections, skipped = family.plan(
            split, own, dict.fromkeys(family.subtasks, quota), SEED, GenerateSettings()
        )
        records = []
        contexts = []
        for unit in own:
            ctx = UnitContext(unit, SEED, out, GenerateSettings())
            own_selections = [s for s in selections if s.unit_id == unit.unit_id]
            records += list(family.generate(ctx, own_selections))
            contexts.append(ctx)
        result[split] = {
            "units": own,
            "selections": selections,
            "skipped": skipped,
            "records": records,
            "generate_skipped": [c.skipped for c in contexts],
        }
    return result


def in_range_pairs(unit: CacheUnit) -> dict[tuple[int, int], float]:
    """(frame1, frame2) → overlap of the pairs with overlap in [6, 35] (plain pyarrow read)."""
    import pyarrow.parquet as pq

    table = pq.read_table(unit.path / "pairs.parquet").to_pydict()
    return {
        (a, b): o
        for a, b, o in zip(table["frame1"], table["frame2"], table["overlap_pct"], strict=True)
        if 6.0 <= o <= 35.0
    }


def test_family_attributes() -> None:
    family = CameraMovementFamily()
    assert family.family == "camera_movement"
    assert family.dataset == "scannet"
    names = {s for s, spec in SUBTASKS.items() if spec.family == "camera_movement"}
    assert set(family.subtasks) == names
    assert len(family.subtasks) == 9


@pytest.mark.parametrize("split", ["train", "val"])
def test_plan_sizes_and_dead_zone_counts(data: dict, split: str) -> None:
    part = data[split]
    quota = TRAIN_QUOTA if split == "train" else VAL_QUOTA
    candidates = sum(len(in_range_pairs(u)) for u in part["units"])
    assert candidates > 100
    per_subtask = Counter(s.subtask for s in part["selections"])
    for subtask in CameraMovementFamily.subtasks:
        dropped = part["skipped"].get(f"{subtask}:dead_zone", 0)
        dropped += part["skipped"].get(f"{subtask}:steep_pitch", 0)  # rule (r), yaw only
        assert per_subtask[subtask] == min(quota, candidates - dropped), subtask
    allowed = {f"{s}:dead_zone" for s in CameraMovementFamily.subtasks}
    allowed |= {"camera_yaw_direction:steep_pitch", "camera_yaw_degree:steep_pitch"}
    assert set(part["skipped"]) <= allowed
    # The dead zones bite on this data (y and pitch motions are small for a walking camera).
    assert sum(part["skipped"].values()) > 0
    assert len(part["records"]) == len(part["selections"])
    assert all(not skipped for skipped in part["generate_skipped"])


def test_val_quota_honoured_exactly(data: dict) -> None:
    family = CameraMovementFamily()
    val_units = data["val"]["units"]
    selections, _ = family.plan(
        "val", val_units, {"camera_x_direction": 29}, SEED, GenerateSettings()
    )
    assert len(selections) == 29
    assert {s.subtask for s in selections} == {"camera_x_direction"}
    # Only the subtasks in ``quotas`` are planned; None keeps every eligible candidate.
    everything, skipped = family.plan("val", val_units, {"camera_x_direction": None}, SEED,
                                      GenerateSettings())
    candidates = sum(len(in_range_pairs(u)) for u in val_units)
    assert len(everything) == candidates - skipped.get("camera_x_direction:dead_zone", 0)


def test_selected_pairs_come_from_the_table(data: dict) -> None:
    for split in ("train", "val"):
        tables = {u.unit_id: in_range_pairs(u) for u in data[split]["units"]}
        swapped = 0
        for selection in data[split]["selections"]:
            a, b = selection.frames
            key = (min(a, b), max(a, b))
            assert key in tables[selection.unit_id]
            assert abs(selection.extra["overlap"] - tables[selection.unit_id][key]) <= 0.005 + 1e-9
            assert selection.extra["swapped"] == (a > b)
            swapped += a > b
        share = swapped / len(data[split]["selections"])
        assert 0.35 < share < 0.65  # each pair is swapped with probability 1/2


def test_records_match_truth(data: dict) -> None:
    boundary_cases = numeric = checked = 0
    for split in ("train", "val"):
        for record in data[split]["records"]:
            validate_record(record)
            subtask = record["subtask"]
            scene = record["meta"]["scene"]
            frame_a, frame_b = record["meta"]["frames"]
            assert record["image"] == [
                f"scannet/{scene}/{frame_a:05d}.jpg",
                f"scannet/{scene}/{frame_b:05d}.jpg",
            ]
            assert all((data["out"] / "images" / path).is_file() for path in record["image"])
            assert record["height_list"] == [120, 120] and record["width_list"] == [160, 160]
            assert record["meta"]["points"] == [[], []]
            assert record["meta"]["split"] == split and record["task"] == "camera_movement"
            poses = data["truth"][scene]
            t, dyaw, dpitch = truth_motion(poses[frame_a], poses[frame_b])
            camera = record["meta"]["camera"]
            assert np.allclose(camera["t_m"], t, atol=1e-5)
            assert abs(camera["dyaw_deg"] - dyaw) < 1e-3
            assert abs(camera["dpitch_deg"] - dpitch) < 1e-3
            gt = record["gt"]
            assert answer_span(record) == (
                f"[ {gt[0]} , {gt[1]} , {gt[2]} ]" if isinstance(gt, list) else str(gt)
            )
            checked += 1
            if subtask in DIRECTION_WORDS:
                axis, positive, negative = DIRECTION_WORDS[subtask]
                assert abs(t[axis]) >= 0.05 - 1e-5  # dead zone, emitted orientation
                assert gt == (positive if t[axis] > 0 else negative)
            elif subtask in ("camera_yaw_direction", "camera_yaw_degree"):
                assert abs(dyaw) >= 3.0 - 1e-3
                if subtask.endswith("direction"):
                    assert gt == ("left" if dyaw > 0 else "right")
                else:
                    numeric += 1
                    boundary_cases += near_half(dyaw, EPS_DEG)
                    assert gt in rounded_near(abs(dyaw), EPS_DEG)
            elif subtask in ("camera_pitch_direction", "camera_pitch_degree"):
                assert abs(dpitch) >= 3.0 - 1e-3
                if subtask.endswith("direction"):
                    assert gt == ("up" if dpitch > 0 else "down")
                else:
                    numeric += 1
                    boundary_cases += near_half(dpitch, EPS_DEG)
                    assert gt in rounded_near(abs(dpitch), EPS_DEG)
            else:
                assert np.linalg.norm(t) >= 0.05 - 1e-5
                values = [1000.0 * float(np.linalg.norm(t))]
                if subtask == "camera_translation_vector":
                    values = [1000.0 * float(c) for c in t]
                got = gt if isinstance(gt, list) else [gt]
                for g, value in zip(got, values, strict=True):
                    numeric += 1
                    boundary_cases += near_half(value, EPS_MM)
                    assert g in rounded_near(value, EPS_MM)
    assert checked > 1000
    assert boundary_cases <= numeric // 100


def test_records_exact_against_cached_poses(data: dict) -> None:
    """With the cached poses (what the generator reads), every rounded value is exact."""
    poses_of = {}
    for unit in data["units"]:
        frames = np.load(unit.path / "frame_index.npy", allow_pickle=False)
        poses = np.load(unit.path / "world_from_cam.npy", allow_pickle=False)
        poses_of[unit.name] = dict(zip(frames.tolist(), poses, strict=True))
    for split in ("train", "val"):
        for record in data[split]["records"]:
            frame_a, frame_b = record["meta"]["frames"]
            poses = poses_of[record["meta"]["scene"]]
            t, dyaw, dpitch = truth_motion(poses[frame_a], poses[frame_b])
            subtask, gt = record["subtask"], record["gt"]
            if subtask == "camera_translation_vector":
                assert gt == [half_away(1000.0 * float(c)) for c in t]
            elif subtask == "camera_translation_distance":
                assert gt == half_away(1000.0 * float(np.linalg.norm(t)))
            elif subtask == "camera_yaw_degree":
                assert gt == half_away(abs(dyaw))
            elif subtask == "camera_pitch_degree":
                assert gt == half_away(abs(dpitch))


def _pose(yaw_deg: float, pitch_deg: float, centre: tuple[float, float, float]) -> np.ndarray:
    """Camera-to-world pose (OpenCV axes) looking at azimuth ``yaw`` and elevation ``pitch``."""
    yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
    forward = np.array([math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw),
                        math.sin(pitch)])
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, forward, centre
    return pose


def test_yaw_wraps_across_180() -> None:
    first = _pose(170.0, 0.0, (0.0, 0.0, 0.0))[None]
    second = _pose(-170.0, 5.0, (0.0, 0.0, 0.0))[None]
    motion = camera_motion(first, second)
    assert motion.dyaw_deg[0] == pytest.approx(20.0)  # not -340
    assert motion.dpitch_deg[0] == pytest.approx(5.0)
    t, dyaw, dpitch = motion.t_m[0], float(motion.dyaw_deg[0]), float(motion.dpitch_deg[0])
    assert answer_for("camera_yaw_direction", t, dyaw, dpitch) == "left"
    assert answer_for("camera_yaw_degree", t, dyaw, dpitch) == 20
    assert answer_for("camera_pitch_direction", t, dyaw, dpitch) == "up"
    back = camera_motion(second, first)
    assert back.dyaw_deg[0] == pytest.approx(-20.0)
    assert answer_for("camera_yaw_direction", back.t_m[0], float(back.dyaw_deg[0]),
                      float(back.dpitch_deg[0])) == "right"
    # Exactly opposite directions: +180 in both orientations (the interval is (-180, 180]).
    opposite = camera_motion(_pose(0.0, 0.0, (0, 0, 0))[None], _pose(180.0, 0.0, (0, 0, 0))[None])
    assert opposite.dyaw_deg[0] == pytest.approx(180.0)


def test_translation_labels_and_rounding() -> None:
    first = _pose(90.0, 0.0, (0.0, 0.0, 0.0))[None]  # looking along +y: camera x = world +x
    second = _pose(90.0, 0.0, (0.2345, 0.5, -0.0445))[None]
    t = camera_motion(first, second).t_m[0]
    assert t == pytest.approx([0.2345, 0.0445, 0.5])  # camera y is down = world -z
    assert answer_for("camera_x_direction", t, 0.0, 0.0) == "right"
    assert answer_for("camera_y_direction", t, 0.0, 0.0) == "down"
    assert answer_for("camera_z_direction", t, 0.0, 0.0) == "forward"
    assert answer_for("camera_translation_vector", np.array([0.2346, -0.0446, 0.5]), 0, 0) == [
        235, -45, 500,
    ]


def test_dead_zone_depends_on_orientation() -> None:
    """|t_x| forward is 0.1 m but 0 backward: the swap must be drawn before filtering."""
    first = np.eye(4)
    second = np.eye(4)
    second[:3, :3] = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
    second[:3, 3] = [0.1, 0.0, 0.0]
    assert eligible("camera_x_direction", first[None], second[None]).tolist() == [True]
    assert eligible("camera_x_direction", second[None], first[None]).tolist() == [False]
    assert eligible("camera_z_direction", second[None], first[None]).tolist() == [True]
    assert eligible("camera_translation_distance", second[None], first[None]).tolist() == [True]
    tilt = _pose(0.0, 2.9, (0.0, 0.0, 0.0))[None]
    level = _pose(0.0, 0.0, (0.0, 0.0, 0.0))[None]
    assert eligible("camera_pitch_degree", level, tilt).tolist() == [False]
    assert eligible("camera_yaw_direction", level, _pose(3.5, 0.0, (0, 0, 0))[None]).tolist() == [
        True
    ]


def test_plan_is_deterministic_and_seeded(data: dict) -> None:
    family = CameraMovementFamily()
    units = data["train"]["units"]
    quotas = dict.fromkeys(family.subtasks, TRAIN_QUOTA)
    again, skipped = family.plan("train", units, quotas, SEED, GenerateSettings())
    assert again == data["train"]["selections"] and skipped == data["train"]["skipped"]
    other, _ = family.plan("train", units, quotas, SEED + 1, GenerateSettings())
    assert other != again
    # Subtasks sample independently: planning one alone gives the same selections.
    alone, _ = family.plan("train", units, {"camera_z_direction": TRAIN_QUOTA}, SEED,
                           GenerateSettings())
    assert alone == [s for s in again if s.subtask == "camera_z_direction"]


def test_generate_is_order_independent(data: dict, tmp_path: Path) -> None:
    family = CameraMovementFamily()
    unit = data["val"]["units"][0]
    selections = [s for s in data["val"]["selections"] if s.unit_id == unit.unit_id][:60]
    forward = list(family.generate(UnitContext(unit, SEED, tmp_path / "a", GenerateSettings()),
                                   selections))
    backward = list(family.generate(UnitContext(unit, SEED, tmp_path / "b", GenerateSettings()),
                                    selections[::-1]))
    assert forward == backward[::-1]
    originals = {r["id"]: r for r in data["val"]["records"]}
    assert all(originals[r["id"]] == r for r in forward)
    ids = [r["id"] for split in ("train", "val") for r in data[split]["records"]]
    assert len(ids) == len(set(ids))


def test_templates_drawn_from_seed_and_id(data: dict, tmp_path: Path) -> None:
    """Template indices = record_draws(seed, id): deterministic, spread over every template."""
    seen: dict[str, set[int]] = {"description": set(), "question": set(), "answer": set()}
    for split in ("train", "val"):
        for record in data[split]["records"]:
            subtask, chosen = record["subtask"], record["meta"]["templates"]
            sizes = compiled_templates(subtask).sizes()
            assert [chosen["description"], chosen["question"], chosen["answer"]] == record_draws(
                SEED, record["id"], sizes
            )
            rendered = render_with_indices(
                subtask, indices=chosen, num_images=2,
                fields={"answer": format_answer(record["answer_type"], record["gt"])},
            )
            assert record["conversations"][0]["value"] == rendered.human
            assert record["conversations"][1]["value"] == rendered.gpt
            for key, index in chosen.items():
                seen[key].add(index)
    assert seen["description"] == set(range(10))
    assert len(seen["question"]) >= 15 and len(seen["answer"]) >= 10
    # Another seed keeps every record's content but draws other templates.
    family = CameraMovementFamily()
    unit = data["val"]["units"][0]
    selections = [s for s in data["val"]["selections"] if s.unit_id == unit.unit_id][:50]
    base = list(family.generate(UnitContext(unit, SEED, tmp_path, GenerateSettings()), selections))
    other = list(family.generate(UnitContext(unit, SEED + 1, tmp_path, GenerateSettings()),
                                 selections))
    assert [r["id"] for r in other] == [r["id"] for r in base]
    assert [r["gt"] for r in other] == [r["gt"] for r in base]
    same = sum(a["meta"]["templates"] == b["meta"]["templates"] for a, b in zip(base, other,
                                                                                 strict=True))
    assert same < len(base) // 4


def test_vectorised_answers_and_dead_zones_match_single_pair_rules() -> None:
    rng = np.random.default_rng(5)
    poses = np.stack([_pose(float(rng.uniform(-180, 180)), float(rng.uniform(-40, 20)),
                            tuple(rng.normal(scale=0.4, size=3))) for _ in range(400)])
    first, second = poses[:200], poses[200:]
    first[:20] = second[:20]  # no motion at all: every dead zone bites
    motion = camera_motion(first, second)
    for subtask in CameraMovementFamily.subtasks:
        values, texts = _answers(subtask, motion)
        ok = _dead_zone_ok(subtask, motion)
        assert ok.tolist() == eligible(subtask, first, second).tolist()
        assert not ok[:20].any() and ok[20:].any()
        for k in range(200):
            expected = answer_for(subtask, motion.t_m[k], float(motion.dyaw_deg[k]),
                                  float(motion.dpitch_deg[k]))
            assert values[k] == expected
            assert texts[k] == format_answer(SUBTASKS[subtask].answer_type, expected)


def test_meta_texts_write_what_the_meta_dicts_write() -> None:
    """The lines' meta, written per unit as numbers (``_meta_texts`` + ``_META_LAYOUT``), is
    byte for byte what ``record_line`` writes for the records' meta dicts, awkward floats too."""
    awkward = [-0.0, 0.0, 1e-05, -1e-07, 2.5e-07, 1e16, -1e16, 0.5, -2.5, 0.1 + 0.2,
               179.99999999999997, -180.0, 5e-324, 12345678.9, 3.0, 1e22, 1.7976931348623157e308]
    n = len(awkward)
    rotate = [awkward[(k + 5) % n] for k in range(n)]
    motion = CameraMotion(
        np.array([awkward, rotate, awkward[::-1]], dtype=np.float64).T,
        np.array(rotate[::-1], dtype=np.float64),
        np.array([awkward[(k * 7) % n] for k in range(n)], dtype=np.float64),
    )
    overlaps = [float(v) for v in np.round(np.linspace(6.0, 35.0, n), 2)]
    overlaps[:3] = [6.25, 34.5, 7.0]
    members = _META_LAYOUT.members(_meta_texts(overlaps, motion))
    dicts = _meta_dicts(overlaps, motion)
    assert members.texts == [b"," + orjson.dumps(meta)[1:-1] for meta in dicts]
    make = RecordMaker(seed=SEED, split="train", subtask="camera_yaw_direction",
                       source="scannet", scene_or_clip="scene0001_00")
    frames = [(k, 2 * k + 1) for k in range(n)]
    images = [[f"scannet/scene0001_00/{a:05d}.jpg", f"scannet/scene0001_00/{b:05d}.jpg"]
              for a, b in frames]
    gts, answers = _answers("camera_yaw_direction", motion)
    records = make.records_without_points(frames, images, (1296, 968), answers, gts, dicts)
    lines = make.lines_without_points(frames, images, (1296, 968), answers, gts, members)
    assert lines == [record_line(record) for record in records]


@pytest.mark.parametrize(
    ("array", "fortran"),
    [
        (np.arange(45 * 16, dtype=np.float64).reshape(45, 4, 4) / 7, False),
        (np.array([3, 0, 99999], dtype=np.int32), False),
        (np.array([True, False]), False),
        (np.zeros((0, 4, 4), dtype=np.float32), False),
        (np.array(2.5, dtype=">f8"), False),
        (np.arange(12, dtype=np.int64).reshape(3, 4), True),
        (np.array(["a", "bc"]), False),
    ],
)
def test_small_npy_reader_equals_numpy(tmp_path: Path, array: np.ndarray, fortran: bool) -> None:
    path = tmp_path / "a.npy"
    np.save(path, np.asfortranarray(array) if fortran else array)
    got = _read_small_npy(path)
    assert got.dtype == array.dtype and got.shape == array.shape
    assert np.array_equal(got, array)


def test_generate_in_small_batches_gives_the_same_records(
    data: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records are built per subtask in batches of consecutive selections: any batch size gives
    the same records in the same order."""
    family = CameraMovementFamily()
    unit = data["train"]["units"][0]
    selections = [s for s in data["train"]["selections"] if s.unit_id == unit.unit_id]
    assert len({s.subtask for s in selections}) > 3
    whole = list(family.generate(UnitContext(unit, SEED, tmp_path / "a", GenerateSettings()),
                                 selections))
    monkeypatch.setattr(camera_movement, "_CHUNK", 7)
    chunked = list(family.generate(UnitContext(unit, SEED, tmp_path / "b", GenerateSettings()),
                                   selections))
    assert chunked == whole and len(whole) == len(selections)
    originals = {r["id"]: r for r in data["train"]["records"]}
    assert all(originals[r["id"]] == r for r in whole)
    linked = {p.name for p in (tmp_path / "b" / "images" / unit.unit_id).iterdir()}
    assert linked == {f"{f:05d}.jpg" for r in whole for f in r["meta"]["frames"]}
    # The lines the pipeline writes (made without the dicts) are those of the records.
    context = UnitContext(unit, SEED, tmp_path / "c", GenerateSettings())
    lines = list(family.generate_lines(context, selections))
    assert lines == [record_line(record) for record in whole]
    dicts_context = UnitContext(unit, SEED, tmp_path / "d", GenerateSettings())
    assert list(family.generate(dicts_context, selections)) == whole
    assert context.skipped == dicts_context.skipped


def test_generate_names_a_frame_that_is_not_kept(data: dict, tmp_path: Path) -> None:
    family = CameraMovementFamily()
    unit = data["val"]["units"][0]
    selection = next(s for s in data["val"]["selections"] if s.unit_id == unit.unit_id)
    bad = Selection(selection.subtask, selection.unit_id, (selection.frames[0], 99_999),
                    selection.extra)
    context = UnitContext(unit, SEED, tmp_path / "out", GenerateSettings())
    with pytest.raises(CacheError, match=r"scene.*selected frame 99999 is not among the kept"):
        list(family.generate(context, [selection, bad]))
