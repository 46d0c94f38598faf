"""Object size family: eligibility, minimal covering pairs and sizes against the synthetic truth.

Sizes are checked against ``synthetic_truth/scannet/<scene>.json`` (true oriented dimensions);
visibility and coverage are recomputed here with plain numpy from the cached per-frame extents
(docs/labels.md#coverage), independently of the project's geometry functions.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
import shutil
from collections import Counter, defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pytest

from multispa.pipeline.prepare import PrepareConfig, prepare
from multispa.synth.config import SynthConfig
from multispa.synth.dataset import write_synthetic_dataset
from multispa.tasks.base import CacheUnit, GenerateSettings, UnitContext
from multispa.tasks.object_size import (
    ObjectSizeFamily,
    _Candidate,
    _plan_val,
    _reduce,
    eligibility_problem,
)
from multispa.tasks.records import record_draws, validate_record
from multispa.tasks.templates import compiled_templates, render_with_indices

SEED = 1
SUBTASKS = ("object_size_height", "object_size_width", "object_size_length")
AXIS = {"object_size_height": 0, "object_size_length": 1, "object_size_width": 2}
STRUCTURAL = {"wall", "floor", "ceiling", "window", "object"}


def half_away(x: float) -> int:
    """Test-local r(x): exact decimal rounding, half away from zero."""
    return int(Decimal(x).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def truth_dims(obj: dict) -> dict[str, float]:
    """Oriented dimensions of a truth object: length is the longer horizontal side."""
    return {
        "object_size_height": obj["height_m"],
        "object_size_length": max(obj["length_m"], obj["width_m"]),
        "object_size_width": min(obj["length_m"], obj["width_m"]),
    }


def read_nyu40_classes(path: Path) -> dict[str, str]:
    """Raw label → NYU40 class from a ``scannetv2-labels.combined.tsv`` ({} when absent)."""
    if not path.is_file():
        return {}
    rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines(), delimiter="\t"))
    return {row["raw_category"]: row["nyu40class"] for row in rows}


class Scene:
    """Cached arrays and truth of one scene, read with plain numpy/json."""

    def __init__(self, unit: CacheUnit, truth_path: Path, classes: dict[str, str]) -> None:
        self.unit = unit
        truth = json.loads(truth_path.read_text())
        self.truth_objects = {o["object_id"]: o for o in truth["objects"]}
        labels = [o["label"] for o in truth["objects"]] + [s["label"] for s in truth["structure"]]
        self.label_counts = Counter(label.strip().lower() for label in labels)
        # rule (n): with a label map, an object's NYU40 class must not be shared either
        self.classes = classes
        self.class_counts = Counter(classes[label] for label in labels if label in classes)
        self.objects = json.loads((unit.path / "objects.json").read_text())
        self.row_of = {o["object_id"]: row for row, o in enumerate(self.objects)}
        load = lambda name: np.load(unit.path / name, allow_pickle=False)  # noqa: E731
        self.frames = load("frame_index.npy").tolist()
        self.counts = load("object_visible_counts.npy")
        self.lo = load("object_extent_lo.npy").astype(np.float64)
        self.hi = load("object_extent_hi.npy").astype(np.float64)
        self.vertices = load("vertices.npy")
        self.instance_ids = load("instance_ids.npy")

    def eligible(self, object_id: int, subtask: str) -> bool:
        obj = self.truth_objects.get(object_id)
        if obj is None:
            return False
        label = obj["label"].strip().lower()
        dims = truth_dims(obj)
        nyu40 = self.classes.get(obj["label"])
        return (
            label not in STRUCTURAL
            and self.label_counts[label] == 1
            and (nyu40 is None or self.class_counts[nyu40] == 1)
            and max(dims.values()) >= 0.1
            and dims[subtask] >= 0.1
        )

    def visible(self, object_id: int) -> list[int]:
        """Original frame indices where the object passes the 5 % rule."""
        row = self.row_of[object_id]
        size = self.objects[row]["num_vertices"]
        threshold = max(1, size * 5 // 100)
        return [f for k, f in enumerate(self.frames) if self.counts[row, k] >= threshold]

    def span(self, object_id: int, subtask: str, frames: list[int]) -> float:
        row, axis = self.row_of[object_id], AXIS[subtask]
        positions = [self.frames.index(f) for f in frames]
        return float(self.hi[row, positions, axis].max() - self.lo[row, positions, axis].min())

    def extent(self, object_id: int, subtask: str) -> float:
        key = {"object_size_height": "height_m", "object_size_length": "length_m",
               "object_size_width": "width_m"}[subtask]
        return float(self.objects[self.row_of[object_id]]["box"][key])

    def minimal_pairs(self, object_id: int, subtask: str) -> set[frozenset[int]]:
        """All pairs of visible frames covering 90 % of the extent where neither does alone."""
        need = 0.9 * self.extent(object_id, subtask)
        frames = self.visible(object_id)
        alone = {f for f in frames if self.span(object_id, subtask, [f]) >= need}
        return {
            frozenset((a, b))
            for a, b in itertools.combinations(frames, 2)
            if a not in alone and b not in alone and self.span(object_id, subtask, [a, b]) >= need
        }

    def axis_aligned(self, object_id: int) -> dict[str, float]:
        """Room-axis box of the object's vertices (what upstream used)."""
        points = self.vertices[self.instance_ids == object_id].astype(np.float64)
        dx, dy = np.ptp(points[:, 0]), np.ptp(points[:, 1])
        return {"object_size_length": max(dx, dy), "object_size_width": min(dx, dy)}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("object_size")
    synth = root / "synth"
    write_synthetic_dataset(synth, SynthConfig(scenes=8, clips=0, seed=SEED, small=True, workers=1))
    cache = root / "cache"
    prepare(PrepareConfig(cache=cache, scannet=synth / "scannet", frame_skip=1))
    manifest = json.loads((cache / "manifest.json").read_text())
    units = [
        CacheUnit(unit_id, cache / unit_id, info["split"])
        for unit_id, info in sorted(manifest["units"].items())
    ]
    classes = read_nyu40_classes(synth / "scannet" / "scannetv2-labels.combined.tsv")
    assert classes  # the synthetic data has a label map with a shared class
    scenes = {
        u.unit_id: Scene(u, synth / "synthetic_truth" / "scannet" / f"{u.name}.json", classes)
        for u in units
    }
    family = ObjectSizeFamily()
    result: dict = {"root": root, "units": units, "scenes": scenes, "out": root / "out"}
    for split, quota in (("train", None), ("val", 300)):
        own = [u for u in units if u.split == split]
        selections, skipped = family.plan(
            split, own, dict.fromkeys(SUBTASKS, quota), SEED, GenerateSettings()
        )
        records = []
        for unit in own:
            ctx = UnitContext(unit, SEED, result["out"], GenerateSettings())
            own_selections = [s for s in selections if s.unit_id == unit.unit_id]
            records += list(family.generate(ctx, own_selections))
            assert ctx.skipped == {}
        result[split] = {"units": own, "selections": selections, "skipped": skipped,
                         "records": records}
    return result


def all_records(data: dict) -> list[dict]:
    return data["train"]["records"] + data["val"]["records"]


def test_family_attributes() -> None:
    family = ObjectSizeFamily()
    assert family.family == "object_size" and family.dataset == "scannet"
    assert set(family.subtasks) == set(SUBTASKS)


def test_sizes_equal_rounded_truth(data: dict) -> None:
    records = all_records(data)
    assert len(records) > 200 and len(data["val"]["records"]) > 20
    for record in records:
        validate_record(record)
        scene = data["scenes"][f"scannet/{record['meta']['scene']}"]
        object_id = record["meta"]["object_id"]
        truth = scene.truth_objects[object_id]
        dims = truth_dims(truth)
        assert record["gt"] == half_away(1000.0 * dims[record["subtask"]])
        assert record["meta"]["dims_mm"] == [
            half_away(1000.0 * dims[s])
            for s in ("object_size_height", "object_size_length", "object_size_width")
        ]
        assert record["meta"]["label"] == truth["label"]
        assert truth["label"] in record["conversations"][0]["value"]
        spans = re.findall(r"`([^`]*)`", record["conversations"][1]["value"])
        assert spans == [str(record["gt"])]
        assert record["meta"]["points"] == [[], []]
        frame_a, frame_b = record["meta"]["frames"]
        name = record["meta"]["scene"]
        assert record["image"] == [f"scannet/{name}/{frame_a:05d}.jpg",
                                   f"scannet/{name}/{frame_b:05d}.jpg"]
        assert all((data["out"] / "images" / p).is_file() for p in record["image"])
        assert record["height_list"] == [120, 120] and record["width_list"] == [160, 160]
        assert record["task"] == "object_size" and record["answer_type"] == "scalar"
        chosen = record["meta"]["templates"]
        assert [chosen["description"], chosen["question"], chosen["answer"]] == record_draws(
            SEED, record["id"], compiled_templates(record["subtask"]).sizes()
        )
        rendered = render_with_indices(
            record["subtask"], indices=chosen, num_images=2,
            fields={"answer": f"`{record['gt']}`", "label": truth["label"].strip()},
        )
        assert record["conversations"][0]["value"] == rendered.human
        assert record["conversations"][1]["value"] == rendered.gpt
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids))


def test_oriented_not_axis_aligned(data: dict) -> None:
    """Rotated objects are asked about, and their answer is the oriented size."""
    differing = 0
    for record in all_records(data):
        if record["subtask"] == "object_size_height":
            continue
        scene = data["scenes"][f"scannet/{record['meta']['scene']}"]
        room_axis = scene.axis_aligned(record["meta"]["object_id"])[record["subtask"]]
        true_size = truth_dims(scene.truth_objects[record["meta"]["object_id"]])[record["subtask"]]
        if abs(room_axis - true_size) > 0.05:
            differing += 1
            assert abs(record["gt"] - 1000.0 * true_size) <= 0.5 + 1e-6
    assert differing > 0


def test_rules_repeated_structural_small(data: dict) -> None:
    chairs = data["scenes"]["scannet/scene0000_00"].label_counts["chair"]
    assert chairs >= 2  # the data exercises the repeated-label rule
    for record in all_records(data):
        scene = data["scenes"][f"scannet/{record['meta']['scene']}"]
        label = record["meta"]["label"].strip().lower()
        assert label not in STRUCTURAL
        assert scene.label_counts[label] == 1
        assert scene.eligible(record["meta"]["object_id"], record["subtask"])
    asked = {r["meta"]["label"] for r in all_records(data) if r["meta"]["scene"] == "scene0000_00"}
    assert "chair" not in asked
    skipped = data["train"]["skipped"]
    assert skipped["object_size_height:structural"] > 0
    assert skipped["object_size_height:repeated_label"] > 0
    assert skipped["object_size_width:dimension_too_small"] > 0  # doors and pictures are thin


def test_pairs_are_minimal_covering(data: dict) -> None:
    orders = Counter()
    for record in all_records(data):
        scene = data["scenes"][f"scannet/{record['meta']['scene']}"]
        object_id, subtask = record["meta"]["object_id"], record["subtask"]
        frame_a, frame_b = record["meta"]["frames"]
        visible = scene.visible(object_id)
        assert frame_a in visible and frame_b in visible and frame_a != frame_b
        need = 0.9 * scene.extent(object_id, subtask)
        assert scene.span(object_id, subtask, [frame_a, frame_b]) >= need
        assert scene.span(object_id, subtask, [frame_a]) < need
        assert scene.span(object_id, subtask, [frame_b]) < need
        orders[frame_a < frame_b] += 1
    assert orders[True] > 0 and orders[False] > 0  # the pair is shown in random order


def truth_pairs(data: dict) -> dict[tuple, set]:
    """(subtask, unit id, object id) → its minimal covering pairs, from the synthetic truth."""
    expected: dict[tuple, set] = {}
    for unit in data["train"]["units"]:
        scene = data["scenes"][unit.unit_id]
        for obj in scene.objects:
            for subtask in SUBTASKS:
                if scene.eligible(obj["object_id"], subtask):
                    pairs = scene.minimal_pairs(obj["object_id"], subtask)
                    if pairs:
                        expected[(subtask, unit.unit_id, obj["object_id"])] = pairs
    return expected


def test_train_keeps_every_minimal_pair(data: dict) -> None:
    """Every minimal pair is emitted once, up to the default cap of 300 per (object, dimension)."""
    cap = GenerateSettings().object_pairs_cap
    emitted: dict[tuple, set] = defaultdict(set)
    for selection in data["train"]["selections"]:
        key = (selection.subtask, selection.unit_id, selection.extra["object_id"])
        pair = frozenset(selection.frames)
        assert pair not in emitted[key]
        emitted[key].add(pair)
    expected = truth_pairs(data)
    assert len(expected) >= 5
    assert set(emitted) == set(expected)
    uncapped = 0
    for key, pairs in expected.items():
        if len(pairs) <= cap:
            assert emitted[key] == pairs, key
            uncapped += 1
        else:
            assert len(emitted[key]) == cap and emitted[key] <= pairs, key
    assert uncapped >= 5


def test_train_cap_per_object_and_dimension(data: dict) -> None:
    cap = 20
    family = ObjectSizeFamily()
    selections, skipped = family.plan("train", data["train"]["units"],
                                      dict.fromkeys(SUBTASKS), SEED,
                                      GenerateSettings(object_pairs_cap=cap))
    full = truth_pairs(data)
    capped: dict[tuple, set] = defaultdict(set)
    for s in selections:
        capped[(s.subtask, s.unit_id, s.extra["object_id"])].add(frozenset(s.frames))
    assert set(capped) == set(full)
    over = Counter()
    for key, pairs in full.items():
        assert len(capped[key]) == min(cap, len(pairs))
        assert capped[key] <= pairs
        over[key[0]] += max(0, len(pairs) - cap)
    assert sum(over.values()) > 0
    for subtask, count in over.items():
        assert skipped.get(f"{subtask}:pairs_over_cap", 0) == count
    # An integer training quota keeps a random subset of exactly that size.
    limited, _ = family.plan("train", data["train"]["units"], {"object_size_length": 25}, SEED,
                             GenerateSettings())
    assert len(limited) == 25
    assert {frozenset(s.frames) for s in limited} <= set().union(
        *(p for k, p in full.items() if k[0] == "object_size_length"))


def test_val_objects_uniform_and_sizes(data: dict) -> None:
    per_subtask = Counter(s.subtask for s in data["val"]["selections"])
    for subtask in SUBTASKS:
        objects = {}
        for unit in data["val"]["units"]:
            scene = data["scenes"][unit.unit_id]
            for obj in scene.objects:
                if scene.eligible(obj["object_id"], subtask):
                    pairs = scene.minimal_pairs(obj["object_id"], subtask)
                    if pairs:
                        objects[(unit.unit_id, obj["object_id"])] = pairs
        total = sum(len(p) for p in objects.values())
        assert per_subtask[subtask] == min(300, total)
    family = ObjectSizeFamily()
    length_objects = Counter(
        (s.unit_id, s.extra["object_id"]) for s in data["val"]["selections"]
        if s.subtask == "object_size_length"
    )
    assert len(length_objects) >= 2
    small = min(length_objects.values())
    for quota in (2 * len(length_objects) + 1, small * len(length_objects)):
        chosen, _ = family.plan("val", data["val"]["units"], {"object_size_length": quota}, SEED,
                                GenerateSettings())
        counts = Counter((s.unit_id, s.extra["object_id"]) for s in chosen)
        assert len(chosen) == quota
        assert max(counts.values()) - min(counts.values()) <= 1  # uniform over objects
        assert len({(s.extra["object_id"], frozenset(s.frames)) for s in chosen}) == quota


def test_val_rounds_without_replacement() -> None:
    """Objects are drawn uniformly round after round; exhausted objects drop out."""
    sizes = [1, 2, 10, 10, 10]
    candidates = [
        _Candidate("scannet/x", k, np.array([[f, f + 100] for f in range(n)], dtype=np.int64))
        for k, n in enumerate(sizes)
    ]
    rng = np.random.default_rng(0)
    shuffled = [_reduce("object_size_height", c, 20, rng, None) for c in candidates]
    for before, after in zip(candidates, shuffled, strict=True):  # random draw order, same pairs
        assert sorted(map(tuple, after.pairs.tolist())) == sorted(map(tuple, before.pairs.tolist()))
    pairs_of = zip(candidates, shuffled, strict=True)
    assert any(not np.array_equal(a.pairs, b.pairs) for a, b in pairs_of)
    chosen = _plan_val("object_size_height", shuffled, 20, rng)
    counts = Counter(s.extra["object_id"] for s in chosen)
    assert len(chosen) == 20
    assert counts[0] == 1 and counts[1] == 2
    assert sorted(counts[k] for k in (2, 3, 4)) == [5, 6, 6]
    assert len({(s.extra["object_id"], frozenset(s.frames)) for s in chosen}) == 20
    everything = _plan_val("object_size_height", candidates, 300, np.random.default_rng(0))
    assert len(everything) == sum(sizes)
    once = _plan_val("object_size_height", candidates, None, np.random.default_rng(0))
    assert sorted(s.extra["object_id"] for s in once) == [0, 1, 2, 3, 4]


def test_eligibility_problem_rows() -> None:
    box = {"height_m": 0.8, "length_m": 0.5, "width_m": 0.4}
    row = {"label": "office chair", "label_count": 1, "num_vertices": 100, "box": box}
    assert eligibility_problem(row, "object_size_width") is None
    assert eligibility_problem({**row, "label": " Wall "}, "object_size_width") == "structural"
    assert eligibility_problem({**row, "label": "Object"}, "object_size_width") == "structural"
    assert eligibility_problem({**row, "label_count": 2}, "object_size_width") == "repeated_label"
    assert eligibility_problem(row, "object_size_width", same_label=3) == "repeated_label"
    thin = {**row, "box": {**box, "width_m": 0.05}}
    assert eligibility_problem(thin, "object_size_width") == "dimension_too_small"
    assert eligibility_problem(thin, "object_size_length") is None
    tiny = {**row, "box": {"height_m": 0.09, "length_m": 0.08, "width_m": 0.02}}
    assert eligibility_problem(tiny, "object_size_height") == "object_too_small"
    assert eligibility_problem({**row, "box": None, "num_vertices": 0},
                               "object_size_height") == "empty_object"
    assert eligibility_problem({**row, "label": "a`b"}, "object_size_height") == "unusable_label"


def test_relabelled_duplicate_is_never_asked(data: dict, tmp_path: Path) -> None:
    """Giving a second object the same label (other case, spaces) removes both from the plan."""
    family = ObjectSizeFamily()
    counts = Counter((s.unit_id, s.extra["object_id"]) for s in data["train"]["selections"])
    (unit_id, object_id), _ = counts.most_common(1)[0]
    unit = next(u for u in data["units"] if u.unit_id == unit_id)
    copy = tmp_path / unit.name
    shutil.copytree(unit.path, copy)
    objects = json.loads((copy / "objects.json").read_text())
    label = next(o["label"] for o in objects if o["object_id"] == object_id)
    other = next(o for o in objects if o["object_id"] != object_id)
    other["label"] = f" {label.upper()} "
    (copy / "objects.json").write_text(json.dumps(objects))
    before, _ = family.plan("train", [unit], dict.fromkeys(SUBTASKS), SEED, GenerateSettings())
    after, skipped = family.plan("train", [CacheUnit(unit_id, copy, "train")],
                                 dict.fromkeys(SUBTASKS), SEED, GenerateSettings())
    assert any(s.extra["object_id"] == object_id for s in before)
    assert not any(s.extra["object_id"] in (object_id, other["object_id"]) for s in after)
    assert sum(v for k, v in skipped.items() if k.endswith(":repeated_label")) > 0


def test_determinism_and_order_independence(data: dict, tmp_path: Path) -> None:
    family = ObjectSizeFamily()
    again, skipped = family.plan("val", data["val"]["units"], dict.fromkeys(SUBTASKS, 300), SEED,
                                 GenerateSettings())
    assert again == data["val"]["selections"] and skipped == data["val"]["skipped"]
    small = {"object_size_length": 5}
    first, _ = family.plan("val", data["val"]["units"], small, SEED, GenerateSettings())
    others = [family.plan("val", data["val"]["units"], small, SEED + k, GenerateSettings())[0]
              for k in range(1, 4)]
    assert any(other != first for other in others)
    unit = next(u for u in data["train"]["units"]
                if any(s.unit_id == u.unit_id for s in data["train"]["selections"]))
    selections = [s for s in data["train"]["selections"] if s.unit_id == unit.unit_id][:40]
    assert selections
    forward = list(family.generate(UnitContext(unit, SEED, tmp_path / "a", GenerateSettings()),
                                   selections))
    backward = list(family.generate(UnitContext(unit, SEED, tmp_path / "b", GenerateSettings()),
                                    selections[::-1]))
    assert forward == backward[::-1]
    originals = {r["id"]: r for r in data["train"]["records"]}
    assert all(originals[r["id"]] == r for r in forward)
