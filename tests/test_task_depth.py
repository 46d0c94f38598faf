"""Depth family (docs/labels.md#depth, #depth-quotas, rule (e)) on a small synthetic dataset.

Answers are recomputed independently from the synthetic truth (aligned poses and colour
intrinsics) and the cached mesh vertices, with plain numpy.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import multispa.tasks.depth as depth
from multispa.cache.scannet_cache import load_scannet_cache
from multispa.pipeline.prepare import PrepareConfig, prepare
from multispa.synth.config import SynthConfig
from multispa.synth.dataset import write_synthetic_dataset
from multispa.tasks.base import CacheUnit, GenerateSettings, Selection, UnitContext
from multispa.tasks.depth import DepthFamily
from multispa.tasks.markers import PALETTE
from multispa.tasks.records import validate_record
from multispa.tasks.templates import template_set

SEED = 11
SUBTASKS = DepthFamily.subtasks


class Env:
    """Synthetic data, its cache and the truth, shared by the module's tests."""

    def __init__(self, root: Path) -> None:
        self.synth = root / "synth"
        self.cache = root / "cache"
        # the plain scenes (no rescan): the plan sizes below count two equal train scenes
        write_synthetic_dataset(
            self.synth, SynthConfig(scenes=3, seed=7, small=True, workers=1, variants=False)
        )
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
        seed: int = SEED,
        reverse: bool = False,
    ) -> tuple[list[Selection], list[dict], dict[str, int]]:
        family = DepthFamily()
        units = self.split_units(split)
        selections, _ = family.plan(split, units, quotas, seed, GenerateSettings())
        records: list[dict] = []
        skipped: dict[str, int] = {}
        for unit in units:
            mine = [s for s in selections if s.unit_id == unit.unit_id]
            ctx = UnitContext(unit, seed, out, GenerateSettings())
            records += list(family.generate(ctx, mine[::-1] if reverse else mine))
            for reason, count in ctx.skipped.items():
                skipped[reason] = skipped.get(reason, 0) + count
        return selections, records, skipped


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    return Env(tmp_path_factory.mktemp("depth"))


@pytest.fixture(scope="module")
def run(env: Env, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("depth_out")
    records: list[dict] = []
    for split in ("train", "val"):
        records += env.run(split, dict.fromkeys(SUBTASKS), out)[1]
    return out, records


def r_half_away(x: float) -> int:
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def assert_rounds_to(value: int, exact: float) -> None:
    """``value == r(exact)``, allowing only the storage precision of the .sens poses (~1e-6)."""
    if value != r_half_away(exact):
        assert abs(abs(exact - math.trunc(exact)) - 0.5) < 1e-3, (value, exact)


def assert_floors_to(value: int, exact: float) -> None:
    """``value == clamp(floor(exact), 0, 999)`` up to the pose storage precision."""
    expected = min(max(math.floor(exact), 0), 999)
    if value != expected:
        assert abs(exact - round(exact)) < 1e-3, (value, exact)


def assert_coord_in_prompt(human: str, uv: np.ndarray, width: int, height: int) -> list[int]:
    """The prompt shows ``[ floor(u/W·1000) , floor(v/H·1000) ]``; returns the shown value."""
    shown = [[int(a), int(b)] for a, b in re.findall(r"\[ (\d+) , (\d+) \]", human)]
    exact = (uv[0] * 1000.0 / width, uv[1] * 1000.0 / height)
    expected = [min(max(math.floor(e), 0), 999) for e in exact]
    if expected in shown:
        return expected
    near = [c for c in shown if all(abs(c[i] - exact[i]) < 1.001 for i in range(2))]
    assert near, (shown, exact)
    for i in range(2):
        assert_floors_to(near[0][i], exact[i])
    return near[0]


def truth_camera_points(env: Env, record: dict) -> tuple[np.ndarray, dict]:
    """Camera-frame positions ``(N, 3)`` of the record's vertices from the truth pose."""
    scene = record["meta"]["scene"]
    truth = env.truth[scene]
    frame = record["meta"]["frames"][0]
    (entry,) = [f for f in truth["frames"] if f["index"] == frame]
    world_from_cam = np.array(entry["world_from_cam"], dtype=np.float64)
    vertices = np.load(env.cache / "scannet" / scene / "vertices.npy", allow_pickle=False)
    points = vertices[record["meta"]["vertex"]].astype(np.float64)
    homogeneous = np.c_[points, np.ones(len(points))]
    cam = (np.linalg.inv(world_from_cam) @ homogeneous.T).T[:, :3]
    return cam, truth["color_intrinsics"]


def truth_pixels(cam: np.ndarray, k: dict) -> np.ndarray:
    u = k["fx"] * cam[:, 0] / cam[:, 2] + k["cx"]
    v = k["fy"] * cam[:, 1] / cam[:, 2] + k["cy"]
    return np.c_[u, v]


def of(records: list[dict], subtask: str) -> list[dict]:
    return [r for r in records if r["subtask"] == subtask]


def test_records_are_valid_unique_and_answer_gt(run: tuple[Path, list[dict]]) -> None:
    _, records = run
    assert {r["subtask"] for r in records} == set(SUBTASKS)
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids))
    for record in records:
        validate_record(record)
        span = re.findall(r"`([^`]*)`", record["conversations"][1]["value"])
        gt = record["gt"]
        expected = f"[ {gt[0]} , {gt[1]} ]" if isinstance(gt, list) else str(gt)
        assert span == [expected]
        assert record["height_list"] == [120] and record["width_list"] == [160]
        assert record["meta"]["frames"][0] == int(record["id"].split("-")[-2])
        assert len(record["meta"]["points"]) == 1


def test_estimation_gt_is_mesh_depth_from_truth(env: Env, run: tuple[Path, list[dict]]) -> None:
    out, records = run
    estimation = of(records, "depth_estimation_dot") + of(records, "depth_estimation_coord")
    assert len(estimation) >= 40
    for record in estimation:
        cam, k = truth_camera_points(env, record)
        assert_rounds_to(record["gt"], 1000.0 * cam[0, 2])
        assert record["meta"]["depth_mm"] == [record["gt"]]
        uv = truth_pixels(cam, k)[0]
        np.testing.assert_allclose(record["meta"]["points"][0][0], uv, atol=0.006)
        if record["subtask"].endswith("_coord"):
            assert_coord_in_prompt(record["conversations"][0]["value"], uv, k["width"], k["height"])
            assert record["image"] == [
                f"scannet/{record['meta']['scene']}/{record['meta']['frames'][0]:05d}.jpg"
            ]
        else:
            assert 2 <= uv[0] <= k["width"] - 3 and 2 <= uv[1] <= k["height"] - 3  # margin
            assert record["image"][0].startswith(f"annotated/{record['meta']['split']}/")
        assert (out / "images" / record["image"][0]).is_file()


def test_points_are_visible_vertices(env: Env, run: tuple[Path, list[dict]]) -> None:
    _, records = run
    caches = {u.name: load_scannet_cache(u.path) for u in env.units}
    for record in records:
        cache = caches[record["meta"]["scene"]]
        position = cache.frame_index.tolist().index(record["meta"]["frames"][0])
        visible = set(cache.visible_vertex_indices(position).tolist())
        assert set(record["meta"]["vertex"]) <= visible


def test_comparison_rules(env: Env, run: tuple[Path, list[dict]]) -> None:
    _, records = run
    comparison = of(records, "depth_comparison_dot") + of(records, "depth_comparison_coord")
    assert len(comparison) >= 30
    asks, letters = set(), set()
    for record in comparison:
        meta = record["meta"]
        cam, k = truth_camera_points(env, record)
        z = cam[:, 2]
        uv = truth_pixels(cam, k)
        assert len(set(meta["vertex"])) == 2
        assert abs(z[0] - z[1]) >= max(0.1, 0.05 * z.max()) - 1e-6
        assert np.hypot(*(uv[0] - uv[1])) >= 0.05 * k["width"] - 1e-4
        for value, exact in zip(meta["depth_mm"], 1000.0 * z, strict=True):
            assert_rounds_to(value, exact)
        np.testing.assert_allclose(meta["points"][0], uv, atol=0.006)
        target = int(np.argmin(z)) if meta["ask"] == "closer" else int(np.argmax(z))
        asks.add(meta["ask"])
        if record["subtask"].endswith("_dot"):
            assert record["gt"] == "AB"[target]
            letters.add(record["gt"])
        else:
            assert_floors_to(record["gt"][0], uv[target][0] * 1000.0 / k["width"])
            assert_floors_to(record["gt"][1], uv[target][1] * 1000.0 / k["height"])
            human = record["conversations"][0]["value"]
            shown = [assert_coord_in_prompt(human, p, k["width"], k["height"]) for p in uv]
            assert record["gt"] == shown[target]
            assert shown[0] != shown[1]
    assert asks == {"closer", "farther"}
    assert letters == {"A", "B"}


def test_marker_colour_at_dot_centre(run: tuple[Path, list[dict]]) -> None:
    out, records = run
    named = 0
    for record in of(records, "depth_estimation_dot"):
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
    quotas = dict.fromkeys(SUBTASKS, 8)
    sel_a, first, _ = env.run("train", quotas, tmp_path / "a")
    sel_b, again, _ = env.run("train", quotas, tmp_path / "b")
    _, reverse, _ = env.run("train", quotas, tmp_path / "c", reverse=True)
    assert sel_a == sel_b
    assert first == again
    assert {r["id"]: r for r in reverse} == {r["id"]: r for r in first}
    for record in first:
        for image in record["image"]:
            if image.startswith("annotated/"):
                a = (tmp_path / "a" / "images" / image).read_bytes()
                assert a == (tmp_path / "c" / "images" / image).read_bytes()
    _, other, _ = env.run("train", quotas, tmp_path / "d", seed=SEED + 1)
    assert [r["id"] for r in other] != [r["id"] for r in first]


def test_plan_sizes(env: Env) -> None:
    family = DepthFamily()
    settings = GenerateSettings()
    valid = {
        u.unit_id: int(np.count_nonzero(np.load(u.path / "visible_counts.npy") > 0))
        for u in env.units
    }
    val_units = env.split_units("val")
    # Benchmark mode: N = 300 capped by the available images (a single small val scene here).
    selections, _ = family.plan("val", val_units, dict.fromkeys(SUBTASKS, 300), SEED, settings)
    for subtask in SUBTASKS:
        mine = [s for s in selections if s.subtask == subtask]
        assert len(mine) == sum(valid[u.unit_id] for u in val_units)
        assert len({s.frames for s in mine}) == len(mine)
    train_units = env.split_units("train")
    assert len(train_units) == 2
    for n in (1, 3, 13):  # q = 1 (one random scene), q = 2 then cut, q = 7 per scene
        selections, _ = family.plan("train", train_units, {"depth_estimation_dot": n}, 0, settings)
        assert len(selections) == n
        assert {s.subtask for s in selections} == {"depth_estimation_dot"}
        assert len({(s.unit_id, s.frames) for s in selections}) == n
        per_unit = [sum(s.unit_id == u.unit_id for s in selections) for u in train_units]
        if n == 13:
            assert sorted(per_unit) == [6, 7]
    selections, _ = family.plan("train", train_units, {"depth_comparison_dot": None}, 0, settings)
    assert len(selections) == sum(valid[u.unit_id] for u in train_units)
    for selection in selections:
        cache = load_scannet_cache(env.cache / selection.unit_id)
        position = cache.frame_index.tolist().index(selection.frames[0])
        assert cache.visible_counts[position] > 0
        assert selection.extra == {}


def test_comparison_skips_when_no_pair_passes(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unit = env.split_units("train")[0]
    cache = load_scannet_cache(unit.path)
    frame = int(cache.frame_index[0])
    family = DepthFamily()
    ctx = UnitContext(unit, SEED, tmp_path, GenerateSettings())
    selections = [Selection("depth_comparison_coord", unit.unit_id, (frame,), {})]
    monkeypatch.setattr(depth, "MIN_DEPTH_GAP_M", 1e6)  # no pair can pass
    assert list(family.generate(ctx, selections)) == []
    assert ctx.skipped.pop("depth_comparison_coord:no_valid_pair") == 1
    assert set(ctx.skipped) <= {"depth_comparison_coord:depth_edge"}  # rule (p) refusals


# ---------------------------------------------------------------- sampling and decoding machinery


def test_visible_set_rank_lookup_membership_and_set_operations(env: Env) -> None:
    unit = env.split_units("train")[0]
    cache = load_scannet_cache(unit.path)
    scene = depth.SceneFrames(unit)
    num_vertices = cache.vertices.shape[0]
    frames = cache.frame_index.tolist()
    for position in (0, len(frames) // 2, len(frames) - 1):
        visible = scene.visible(frames[position])
        expected = cache.visible_vertex_indices(position)
        assert visible.count == expected.size == int(cache.visible_counts[position])
        assert visible.vertices().tolist() == expected.tolist()
        assert visible.vertices_at(np.arange(expected.size)).tolist() == expected.tolist()
        member = np.zeros(num_vertices, dtype=bool)
        member[expected] = True
        everything = np.arange(num_vertices)
        assert np.array_equal(visible.contains(everything), member)
    a = scene.visible(frames[0])
    b = scene.visible(frames[1])
    both = np.intersect1d(a.vertices(), b.vertices())
    assert a.intersection(b).vertices().tolist() == both.tolist()
    assert a.difference(b).vertices().tolist() == np.setdiff1d(a.vertices(), b.vertices()).tolist()
    # bits past the last vertex are ignored
    padded = depth.VisibleSet(np.array([np.uint64(2**64 - 1)]), 5)
    assert padded.count == 5 and padded.vertices().tolist() == [0, 1, 2, 3, 4]


def test_uniform_draws_are_uniform_over_the_accepted_set() -> None:
    words = np.zeros(2, dtype=np.uint64)
    members = [1, 5, 7, 63, 64, 70, 90, 100]
    for v in members:
        words[v >> 6] |= np.uint64(1) << np.uint64(v & 63)
    base = depth.VisibleSet(words, 128)
    accepted = {5, 64, 90, 100}

    def accept(vertex: np.ndarray) -> np.ndarray:
        return np.isin(vertex, list(accepted))

    for max_draws in (512, 0):  # rejection, then exact enumeration from the start
        draws = depth.UniformDraws(np.random.default_rng(1), base, accept, max_draws=max_draws)
        values = np.concatenate([draws.take(7) for _ in range(1000)])
        assert set(values.tolist()) == accepted
        counts = np.array([np.count_nonzero(values == v) for v in sorted(accepted)])
        assert np.all(np.abs(counts / values.size - 0.25) < 0.02), counts
        # deterministic for a generator state
        again = depth.UniformDraws(np.random.default_rng(1), base, accept, max_draws=max_draws)
        assert np.array_equal(np.concatenate([again.take(7) for _ in range(1000)]), values)
    everything = depth.UniformDraws(np.random.default_rng(2), base).take(8000)
    assert set(everything.tolist()) == set(members)
    nothing = depth.UniformDraws(np.random.default_rng(3), base, lambda v: v < 0, max_draws=64)
    assert nothing.take(3).size == 0
    empty = depth.VisibleSet(np.zeros(2, dtype=np.uint64), 128)
    assert depth.UniformDraws(np.random.default_rng(4), empty).take(2).size == 0


def valid_frames_of(unit: CacheUnit) -> list[int]:
    return [int(f) for f in depth.valid_frames(unit)]


def _count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[depth.SceneFrames]:
    made: list[depth.SceneFrames] = []
    original = depth.SceneFrames.__init__

    def init(self: depth.SceneFrames, unit: CacheUnit) -> None:
        original(self, unit)
        made.append(self)

    monkeypatch.setattr(depth.SceneFrames, "__init__", init)
    return made


def test_dot_frames_are_decoded_once_and_shared_without_leaks(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unit = env.split_units("train")[0]
    frames = valid_frames_of(unit)[:6]
    selections = [
        Selection(subtask, unit.unit_id, (frame,), {})
        for frame in frames
        for subtask in ("depth_estimation_dot", "depth_comparison_dot", "depth_estimation_coord")
    ]
    made = _count_decodes(monkeypatch)
    ctx = UnitContext(unit, SEED, tmp_path / "together", GenerateSettings())
    together = list(DepthFamily().generate(ctx, selections))
    marked = {r["meta"]["frames"][0] for r in together if r["subtask"].endswith("_dot")}
    assert len(marked) >= 4
    assert made[-1].decoded == len(marked)  # once per frame; coord records decode nothing
    # each record alone (its own decode) gives the same record and the same annotated bytes
    for selection in selections:
        ctx = UnitContext(unit, SEED, tmp_path / "alone", GenerateSettings())
        (alone,) = DepthFamily().generate(ctx, [selection])
        (same,) = [r for r in together if r["id"] == alone["id"]]
        assert same == alone
        if alone["image"][0].startswith("annotated/"):
            a = (tmp_path / "together" / "images" / alone["image"][0]).read_bytes()
            assert a == (tmp_path / "alone" / "images" / alone["image"][0]).read_bytes()


def test_decoded_frames_are_evicted_by_next_use(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    unit = env.split_units("train")[0]
    a, b, c, *_ = valid_frames_of(unit)
    monkeypatch.setattr(depth, "_IMAGE_SLOTS", 2)
    scene = depth.SceneFrames(unit)
    uses = [(a,), (b,), (c,), (a,), (b,)]
    scene.schedule(uses)
    for step, (frame,) in enumerate(uses):
        scene.advance(step)
        scene.image(frame)
    # at c, b (needed at step 4) is evicted rather than a (step 3); at b again, a or c goes
    assert scene.decoded == 4  # least-recently-used eviction would decode 5 times
    lru = depth.SceneFrames(unit)
    for (frame,) in uses:
        lru.image(frame)
    assert lru.decoded == 5
