"""Correspondence family (docs/labels.md#correspondence, rule (f)) on a small synthetic dataset.

Answer points are recomputed independently from the synthetic truth (aligned poses, colour
intrinsics) and the cached mesh vertices, with plain numpy.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from multispa.cache.scannet_cache import load_scannet_cache
from multispa.pipeline.prepare import PrepareConfig, prepare
from multispa.synth.config import SynthConfig
from multispa.synth.dataset import write_synthetic_dataset
from multispa.tasks.base import CacheUnit, GenerateSettings, Selection, UnitContext
from multispa.tasks.correspondence import (
    CorrespondenceFamily,
    easy_distractors,
    hard_distractors,
)
from multispa.tasks.markers import PALETTE
from multispa.tasks.records import validate_record
from multispa.tasks.templates import template_set

SEED = 23
SUBTASKS = CorrespondenceFamily.subtasks
W, H, RADIUS = 160, 120, 2  # small synthetic frames; marker_radius(160, "scannet") == 2


class Env:
    """Synthetic data, its cache and the truth, shared by the module's tests."""

    def __init__(self, root: Path) -> None:
        self.synth = root / "synth"
        self.cache = root / "cache"
        write_synthetic_dataset(self.synth, SynthConfig(scenes=3, seed=3, small=True, workers=1))
        prepare(PrepareConfig(cache=self.cache, scannet=self.synth / "scannet"))
        manifest = json.loads((self.cache / "manifest.json").read_text())
        self.units = [
            CacheUnit(uid, self.cache / uid, entry["split"])
            for uid, entry in sorted(manifest["units"].items())
        ]
        self.truth = {
            u.name: json.loads(
                (self.synth / "synthetic_truth" / "scannet" / f"{u.name}.json").read_text()
            )
            for u in self.units
        }

    def split_units(self, split: str) -> list[CacheUnit]:
        return [u for u in self.units if u.split == split]

    def run(
        self,
        split: str,
        quotas: dict[str, int | None],
        out: Path,
        *,
        settings: GenerateSettings | None = None,
        seed: int = SEED,
        reverse: bool = False,
    ) -> tuple[list[Selection], list[dict], dict[str, int]]:
        settings = settings or GenerateSettings()
        family = CorrespondenceFamily()
        units = self.split_units(split)
        selections, _ = family.plan(split, units, quotas, seed, settings)
        records: list[dict] = []
        skipped: dict[str, int] = {}
        for unit in units:
            mine = [s for s in selections if s.unit_id == unit.unit_id]
            ctx = UnitContext(unit, seed, out, settings)
            records += list(family.generate(ctx, mine[::-1] if reverse else mine))
            for reason, count in ctx.skipped.items():
                skipped[reason] = skipped.get(reason, 0) + count
        return selections, records, skipped

    def project(self, scene: str, frame: int, vertex: int) -> np.ndarray:
        """Truth projection ``(u, v)`` of a cached vertex into ``frame``'s colour image."""
        truth = self.truth[scene]
        (entry,) = [f for f in truth["frames"] if f["index"] == frame]
        world_from_cam = np.array(entry["world_from_cam"], dtype=np.float64)
        vertices = np.load(self.cache / "scannet" / scene / "vertices.npy", allow_pickle=False)
        x, y, z = (np.linalg.inv(world_from_cam) @ np.r_[vertices[vertex].astype(float), 1.0])[:3]
        k = truth["color_intrinsics"]
        assert z > 0
        return np.array([k["fx"] * x / z + k["cx"], k["fy"] * y / z + k["cy"]])


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    return Env(tmp_path_factory.mktemp("corr"))


@pytest.fixture(scope="module")
def run(env: Env, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("corr_out")
    records: list[dict] = []
    for split in ("train", "val"):
        records += env.run(split, dict.fromkeys(SUBTASKS, 300), out)[1]
    return out, records


@pytest.fixture(scope="module")
def hard_run(env: Env, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], dict]:
    out = tmp_path_factory.mktemp("corr_hard")
    settings = GenerateSettings(mcq_difficulty="hard")
    _, records, skipped = env.run("train", {"correspondence_mcq_dot": 300}, out, settings=settings)
    return records, skipped


def floor_norm(value: float, size: int) -> int:
    return min(max(math.floor(value * 1000.0 / size), 0), 999)


def assert_floor_norm(shown: int, value: float, size: int) -> None:
    """``shown == floor(value/size·1000)`` up to the .sens pose storage precision (~1e-6)."""
    exact = value * 1000.0 / size
    if shown != floor_norm(value, size):
        assert abs(exact - round(exact)) < 1e-3, (shown, exact)


def inside(point: list[float]) -> bool:
    return RADIUS <= point[0] <= W - 1 - RADIUS and RADIUS <= point[1] <= H - 1 - RADIUS


def of(records: list[dict], subtask: str) -> list[dict]:
    return [r for r in records if r["subtask"] == subtask]


def test_records_are_valid_unique_and_answer_gt(run: tuple[Path, list[dict]]) -> None:
    out, records = run
    assert {r["subtask"] for r in records} == set(SUBTASKS)
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids))
    for record in records:
        validate_record(record)
        span = re.findall(r"`([^`]*)`", record["conversations"][1]["value"])
        gt = record["gt"]
        assert span == [f"[ {gt[0]} , {gt[1]} ]" if isinstance(gt, list) else gt]
        assert record["height_list"] == [H, H] and record["width_list"] == [W, W]
        assert all((out / "images" / image).is_file() for image in record["image"])
        assert isinstance(record["meta"]["overlap"], float)
        assert 6.0 <= record["meta"]["overlap"] <= 35.0


def test_plan_pairs_orientation_and_val_size(env: Env) -> None:
    family = CorrespondenceFamily()
    for split in ("train", "val"):
        units = env.split_units(split)
        table = {}
        for unit in units:
            pairs = pq.read_table(unit.path / "pairs.parquet").to_pydict()
            for f1, f2, o in zip(pairs["frame1"], pairs["frame2"], pairs["overlap_pct"],
                                 strict=True):
                table[(unit.unit_id, f1, f2)] = o
        eligible = {key for key, o in table.items() if 6.0 <= o <= 35.0}
        selections, dropped = family.plan(
            split, units, dict.fromkeys(SUBTASKS, 300), SEED, GenerateSettings()
        )
        for subtask in SUBTASKS:
            mine = [s for s in selections if s.subtask == subtask]
            # N = 300 exceeds what the small split holds: every eligible pair is taken, once.
            assert len(mine) == len(eligible)
            keys = {(s.unit_id, min(s.frames), max(s.frames)) for s in mine}
            assert keys == eligible
            for s in mine:
                assert s.extra["swapped"] == (s.frames[0] > s.frames[1])
                key = (s.unit_id, min(s.frames), max(s.frames))
                assert s.extra["overlap"] == round(table[key], 2)
            assert {s.extra["swapped"] for s in mine} == {True, False}
            assert dropped[f"{subtask}:overlap_outside_6_35"] == len(table) - len(eligible)
    # A smaller quota: exactly n pairs, drawn independently per subtask.
    units = env.split_units("train")
    selections, _ = family.plan("train", units, {"correspondence_coord": 10}, 1, GenerateSettings())
    assert len(selections) == 10
    assert {s.subtask for s in selections} == {"correspondence_coord"}


def test_coord_answer_is_projection_into_image_2(env: Env, run: tuple[Path, list[dict]]) -> None:
    _, records = run
    coord = of(records, "correspondence_coord")
    assert len(coord) >= 30
    caches = {u.name: load_scannet_cache(u.path) for u in env.units}
    for record in coord:
        meta = record["meta"]
        scene, (frame1, frame2), (vertex,) = meta["scene"], meta["frames"], meta["vertex"]
        cache = caches[scene]
        for frame in (frame1, frame2):
            position = cache.frame_index.tolist().index(frame)
            assert vertex in set(cache.visible_vertex_indices(position).tolist())
        query = env.project(scene, frame1, vertex)
        answer = env.project(scene, frame2, vertex)
        np.testing.assert_allclose(meta["points"], [[query], [answer]], atol=0.006)
        assert inside(list(query))
        assert_floor_norm(record["gt"][0], answer[0], W)
        assert_floor_norm(record["gt"][1], answer[1], H)
        shown = [floor_norm(query[0], W), floor_norm(query[1], H)]
        assert f"[ {shown[0]} , {shown[1]} ]" in record["conversations"][0]["value"]
        assert record["image"] == [f"scannet/{scene}/{f:05d}.jpg" for f in (frame1, frame2)]


def check_mcq(env: Env, record: dict) -> tuple[np.ndarray, np.ndarray]:
    """Common MCQ checks; returns the correct point and the 3 distractors (pixels)."""
    meta = record["meta"]
    scene, (frame1, frame2), (vertex,) = meta["scene"], meta["frames"], meta["vertex"]
    (query,), options = meta["points"]
    assert len(options) == 4
    correct = options["ABCD".index(record["gt"])]
    np.testing.assert_allclose(query, env.project(scene, frame1, vertex), atol=0.006)
    np.testing.assert_allclose(correct, env.project(scene, frame2, vertex), atol=0.006)
    assert inside(query) and all(inside(p) for p in options)
    distractors = np.array([p for p in options if p is not correct])
    for a in range(3):
        for b in range(a + 1, 3):
            assert np.hypot(*(distractors[a] - distractors[b])) >= 0.05 * W - 0.01
    return np.array(correct), distractors


def test_mcq_easy_distractors(env: Env, run: tuple[Path, list[dict]]) -> None:
    _, records = run
    mcq = of(records, "correspondence_mcq_dot")
    assert len(mcq) >= 30
    letters = set()
    for record in mcq:
        assert record["meta"]["difficulty"] == "easy"
        correct, distractors = check_mcq(env, record)
        assert np.all(np.hypot(*(distractors - correct).T) >= 0.05 * W - 0.01)
        letters.add(record["gt"])
        assert all(image.startswith("annotated/") for image in record["image"])
    assert letters == {"A", "B", "C", "D"}


def test_mcq_hard_distractors(env: Env, hard_run: tuple[list[dict], dict]) -> None:
    records, skipped = hard_run
    assert len(records) >= 10
    assert set(skipped) <= {
        "correspondence_mcq_dot:no_distractors_hard", "correspondence_mcq_dot:depth_edge"
    }
    caches = {u.name: load_scannet_cache(u.path) for u in env.units}
    for record in records:
        assert record["meta"]["difficulty"] == "hard"
        correct, distractors = check_mcq(env, record)
        distance = np.hypot(*(distractors - correct).T)
        assert np.all((distance >= 0.05 * W - 0.01) & (distance <= 0.15 * W + 0.01))
        # Each distractor is the image-2 projection of a vertex visible in image 2.
        scene, frame2 = record["meta"]["scene"], record["meta"]["frames"][1]
        cache = caches[scene]
        visible = cache.visible_vertex_indices(cache.frame_index.tolist().index(frame2))
        world_from_cam = np.array(
            next(f for f in env.truth[scene]["frames"] if f["index"] == frame2)["world_from_cam"]
        )
        points = np.c_[cache.vertices[visible].astype(float), np.ones(visible.size)]
        cam = (np.linalg.inv(world_from_cam) @ points.T).T
        k = env.truth[scene]["color_intrinsics"]
        uv = np.c_[k["fx"] * cam[:, 0] / cam[:, 2] + k["cx"], k["fy"] * cam[:, 1] / cam[:, 2]
                   + k["cy"]]
        for point in distractors:
            assert np.min(np.hypot(*(uv - point).T)) < 0.008  # 2-decimal rounding of meta


def test_distractor_helpers() -> None:
    rng = np.random.default_rng(0)
    answer = np.array([80.0, 60.0])
    easy = easy_distractors(answer, 160, 120, 2, rng)
    assert easy is not None and easy.shape == (3, 2)
    # A 40-px image with a 19-px margin leaves a 2x2-px square: no room for 3 spread distractors.
    assert easy_distractors(np.array([19.5, 19.5]), 40, 40, 19, rng) is None
    near = np.array([[90.0, 60.0], [91.0, 60.0], [80.0, 72.0], [60.0, 60.0], [200.0, 60.0]])
    only2 = np.array([[80.0, 45.0], [70.0, 70.0]])
    picked = hard_distractors(answer, [near, only2], 160, 120, 2, np.random.default_rng(1))
    assert picked is not None
    # Band 8..24 px and >= 8 apart: (90,60) or (91,60), (80,72), (60,60) from the first pool.
    assert {tuple(p) for p in picked} - {(90.0, 60.0), (91.0, 60.0)} == {(80.0, 72.0),
                                                                         (60.0, 60.0)}
    picked = hard_distractors(answer, [near[:2], only2], 160, 120, 2, np.random.default_rng(2))
    assert picked is not None and {(80.0, 45.0), (70.0, 70.0)} <= {tuple(p) for p in picked}
    assert hard_distractors(answer, [near[:2]], 160, 120, 2, np.random.default_rng(3)) is None


def test_marker_colour_at_query_dot(run: tuple[Path, list[dict]]) -> None:
    out, records = run
    named = 0
    for record in of(records, "correspondence_mcq_dot"):
        ts = template_set(record["subtask"])
        indices = record["meta"]["templates"]
        text = ts.descriptions[indices["description"]] + ts.questions_for(None)[indices["question"]]
        if "${marker}" not in text:
            continue
        named += 1
        human = record["conversations"][0]["value"]
        words = {c.name for c in PALETTE if re.search(rf"\b{c.name}\b", human)}
        pixels = np.asarray(Image.open(out / "images" / record["image"][0]).convert("RGB"))
        u, v = record["meta"]["points"][0][0]
        centre = pixels[math.floor(v + 0.5), math.floor(u + 0.5)].astype(int)
        distance = [int(np.abs(centre - np.array(c.rgb)).max()) for c in PALETTE]
        nearest = PALETTE[int(np.argmin(distance))]
        assert nearest.name in words and min(distance) < 100, (record["id"], centre, words)
    assert named >= 3


def test_determinism_and_order_independence(env: Env, tmp_path: Path) -> None:
    quotas = dict.fromkeys(SUBTASKS, 12)
    sel_a, first, _ = env.run("train", quotas, tmp_path / "a")
    sel_b, again, _ = env.run("train", quotas, tmp_path / "b")
    _, reverse, _ = env.run("train", quotas, tmp_path / "c", reverse=True)
    assert sel_a == sel_b
    assert first == again
    assert {r["id"]: r for r in reverse} == {r["id"]: r for r in first}
    for record in of(first, "correspondence_mcq_dot"):
        for image in record["image"]:
            a = (tmp_path / "a" / "images" / image).read_bytes()
            assert a == (tmp_path / "c" / "images" / image).read_bytes()
    _, other, _ = env.run("train", quotas, tmp_path / "d", seed=SEED + 1)
    assert [r["id"] for r in other] != [r["id"] for r in first]


def test_bad_difficulty_is_a_config_error(env: Env, tmp_path: Path) -> None:
    from multispa.errors import ConfigError

    unit = env.split_units("val")[0]
    ctx = UnitContext(unit, SEED, tmp_path, GenerateSettings(mcq_difficulty="medium"))
    with pytest.raises(ConfigError, match="mcq_difficulty"):
        list(CorrespondenceFamily().generate(ctx, []))


def test_point_is_uniform_over_the_eligible_covisible_set(env: Env, tmp_path: Path) -> None:
    unit = env.split_units("train")[0]
    cache = load_scannet_cache(unit.path)
    pairs = pq.read_table(unit.path / "pairs.parquet").to_pydict()
    best = int(np.argmax(pairs["overlap_pct"]))
    frame1, frame2 = pairs["frame2"][best], pairs["frame1"][best]  # swapped order on purpose
    positions = [cache.frame_index.tolist().index(f) for f in (frame1, frame2)]
    covisible = np.intersect1d(*(cache.visible_vertex_indices(p) for p in positions))
    eligible = np.array(
        [v for v in covisible.tolist() if inside(list(env.project(unit.name, frame1, v)))]
    )
    assert eligible.size >= 20
    selection = Selection("correspondence_coord", unit.unit_id, (frame1, frame2), {"overlap": 1.0})
    drawn = []
    for seed in range(300):
        ctx = UnitContext(unit, seed, tmp_path, GenerateSettings())
        (record,) = CorrespondenceFamily().generate(ctx, [selection])
        drawn.append(record["meta"]["vertex"][0])
    assert set(drawn) <= set(eligible.tolist())
    ranks = np.searchsorted(eligible, drawn) / (eligible.size - 1)
    assert abs(float(ranks.mean()) - 0.5) < 0.06  # uniform: mean rank ½ (sd ≈ 0.017)
    assert len(set(drawn)) >= min(eligible.size, 300) * 0.4


def test_shared_decoded_frames_do_not_leak_between_records(env: Env, tmp_path: Path) -> None:
    unit = env.split_units("train")[0]
    selections, _ = CorrespondenceFamily().plan(
        "train", [unit], {"correspondence_mcq_dot": 12}, SEED, GenerateSettings()
    )
    assert len(selections) >= 6
    assert len({f for s in selections for f in s.frames}) < 2 * len(selections)  # shared frames
    ctx = UnitContext(unit, SEED, tmp_path / "together", GenerateSettings())
    together = {r["id"]: r for r in CorrespondenceFamily().generate(ctx, selections)}
    assert len(together) >= 5
    for selection in selections:
        ctx = UnitContext(unit, SEED, tmp_path / "alone", GenerateSettings())
        for record in CorrespondenceFamily().generate(ctx, [selection]):
            assert together[record["id"]] == record
            for image in record["image"]:
                a = (tmp_path / "together" / "images" / image).read_bytes()
                assert a == (tmp_path / "alone" / "images" / image).read_bytes()
