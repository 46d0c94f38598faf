"""N-view family: every answer and eligibility rule recomputed from the synthetic truth.

The test reads the written scene files itself: the aligned mesh (the PLY's vertices and the
truth's ``axis_alignment``), the objects' vertex ranges, labels and true boxes
(``synthetic_truth/scannet/<scene>.json``), the camera poses and intrinsics of the truth, and the
sensor depth of the ``.sens`` file (parsed here). Vertex visibility is its own implementation of
the rule (in bounds in colour, depth pixel inside the depth image, valid depth within
``max(0.05 m, 5 %)``); object states, view sets, distances (brute force, no k-d tree), angles,
first appearances and camera paths are all computed here, and compared with the records.
"""

from __future__ import annotations

import itertools
import json
import re
import struct
import zlib
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pytest

from multispa.pipeline.generate import GenerateConfig, generate
from multispa.pipeline.prepare import PrepareConfig, prepare
from multispa.synth.config import SynthConfig
from multispa.synth.dataset import write_synthetic_dataset
from multispa.tasks.base import GenerateSettings
from multispa.tasks.nview import TRAIN_CAPS
from multispa.tasks.records import record_draws, validate_record
from multispa.tasks.templates import NVIEW_SUBTASKS, compiled_templates, render_with_indices

SEED = 3
VIEWS = 6
SETS = 3
STRIDE = 5
STRUCTURAL = {"wall", "floor", "ceiling", "window", "object"}
LETTERS = "ABCD"


def half_away(x: float) -> int:
    return int(Decimal(x).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def read_ply(path: Path) -> np.ndarray:
    """Raw vertices ``(P, 3)`` float32 of a binary little-endian PLY (parsed here)."""
    data = path.read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode("ascii").splitlines()
    count = next(int(line.split()[2]) for line in header if line.startswith("element vertex"))
    names = []
    for line in header[header.index(next(h for h in header if h.startswith("element vertex")))
                       + 1:]:
        if not line.startswith("property"):
            break
        names.append((line.split()[2], "<f4" if line.split()[1] == "float" else "u1"))
    table = np.frombuffer(data, dtype=np.dtype(names), count=count, offset=end)
    return np.stack([table["x"], table["y"], table["z"]], axis=1)


def read_depths(path: Path, frames: list[int]) -> dict[int, np.ndarray]:
    """Depth images (metres) of the wanted frames of a ``.sens`` v4 file (parsed here)."""
    data = path.read_bytes()
    offset = 4
    (name_len,) = struct.unpack_from("<Q", data, offset)
    offset += 8 + name_len + 4 * 64 + 8
    _, _, depth_w, depth_h = struct.unpack_from("<IIII", data, offset)
    offset += 16
    (shift,) = struct.unpack_from("<f", data, offset)
    offset += 4
    (count,) = struct.unpack_from("<Q", data, offset)
    offset += 8
    wanted, out = set(frames), {}
    for index in range(count):
        offset += 64 + 16
        color_size, depth_size = struct.unpack_from("<QQ", data, offset)
        offset += 16 + color_size
        if index in wanted:
            raw = np.frombuffer(zlib.decompress(data[offset:offset + depth_size]), "<u2")
            out[index] = raw.reshape(depth_h, depth_w).astype(np.float64) / shift
        offset += depth_size
    return out


class Scene:
    """One synthetic scene recomputed from its files."""

    def __init__(self, synth: Path, name: str) -> None:
        truth = json.loads((synth / "synthetic_truth" / "scannet" / f"{name}.json").read_text())
        align = np.asarray(truth["axis_alignment"], dtype=np.float64)
        raw = read_ply(synth / "scannet" / "scans" / name / f"{name}_vh_clean_2.ply")
        self.vertices = raw.astype(np.float64) @ align[:3, :3].T + align[:3, 3]
        self.instance = np.full(raw.shape[0], -1, dtype=np.int64)
        for group in truth["objects"] + truth["structure"]:
            self.instance[group["vertex_start"]:group["vertex_end"]] = group["object_id"]
        all_labels = Counter(g["label"].strip().lower()
                             for g in truth["objects"] + truth["structure"])
        self.objects = {}
        for obj in truth["objects"]:
            label = obj["label"].strip().lower()
            if label in STRUCTURAL or max(obj["length_m"], obj["width_m"], obj["height_m"]) < 0.1:
                continue
            self.objects[obj["object_id"]] = {
                "label": label, "nameable": all_labels[label] == 1,
                "centre": np.asarray(obj["centre"][:2], dtype=np.float64),
                "points": self.vertices[obj["vertex_start"]:obj["vertex_end"]],
                "size": obj["vertex_end"] - obj["vertex_start"],
            }
        color, depth = truth["color_intrinsics"], truth["depth_intrinsics"]
        poses = {f["index"]: np.asarray(f["world_from_cam"], dtype=np.float64)
                 for f in truth["frames"] if f["valid"] and f["index"] % STRIDE == 0}
        depths = read_depths(synth / "scannet" / "scans" / name / f"{name}.sens", list(poses))
        self.visible: dict[int, np.ndarray] = {}
        self.centres: dict[int, np.ndarray] = {}
        for frame, pose in sorted(poses.items()):
            mask = self._visible(pose, color, depth, depths[frame])
            if mask.any():
                self.visible[frame] = mask
                self.centres[frame] = pose[:3, 3]
        self.frames = sorted(self.visible)
        self._distances: dict[tuple[int, int], float] = {}
        ids = sorted(self.objects)
        self.counts = {frame: {i: int(np.count_nonzero(self.visible[frame]
                                                        & (self.instance == i))) for i in ids}
                       for frame in self.frames}

    def _visible(self, pose: np.ndarray, color: dict, depth: dict, depth_m: np.ndarray
                 ) -> np.ndarray:
        cam = (self.vertices - pose[:3, 3]) @ pose[:3, :3]
        x, y, z = cam[:, 0], cam[:, 1], cam[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = color["fx"] * x / z + color["cx"]
            v = color["fy"] * y / z + color["cy"]
            ud = depth["fx"] * x / z + depth["cx"]
            vd = depth["fy"] * y / z + depth["cy"]
        ok = (z > 0) & (u >= 0) & (u < color["width"]) & (v >= 0) & (v < color["height"])
        col, row = np.floor(ud + 0.5), np.floor(vd + 0.5)
        ok &= (col >= 0) & (col < depth["width"]) & (row >= 0) & (row < depth["height"])
        sensed = np.zeros(z.shape)
        sensed[ok] = depth_m[row[ok].astype(int), col[ok].astype(int)]
        return ok & (sensed > 0) & (np.abs(z - sensed) <= np.maximum(0.05, 0.05 * z))

    def states(self, views: list[int]) -> dict[int, tuple[list[bool], list[bool]]]:
        """Per object: seen and absent per view (the test's own thresholds)."""
        out = {}
        for i, obj in self.objects.items():
            n = obj["size"]
            counts = [self.counts[f][i] for f in views]
            out[i] = ([c >= max(50, 0.05 * n) for c in counts], [c < 0.005 * n for c in counts])
        return out

    def seen(self, views: list[int]) -> set[int]:
        return {i for i, (s, _) in self.states(views).items() if any(s)}

    def named_seen(self, views: list[int]) -> list[int]:
        return sorted(i for i in self.seen(views) if self.objects[i]["nameable"])

    def distance(self, a: int, b: int) -> float:
        key = (min(a, b), max(a, b))
        if key not in self._distances:
            self._distances[key] = self._brute_distance(*key)
        return self._distances[key]

    def _brute_distance(self, a: int, b: int) -> float:
        pa, pb = self.objects[a]["points"], self.objects[b]["points"]
        best = np.inf
        for start in range(0, pa.shape[0], 512):
            chunk = pa[start:start + 512]
            d2 = ((chunk[:, None, :] - pb[None, :, :]) ** 2).sum(axis=2)
            best = min(best, float(d2.min()))
        return float(np.sqrt(best))

    def camera_distances(self, i: int, views: list[int]) -> list[float]:
        points = self.objects[i]["points"]
        return [float(np.sqrt(((points - self.centres[f]) ** 2).sum(axis=1).min()))
                for f in views]

    def theta(self, a: int, b: int, c: int) -> tuple[float, float, float]:
        pa, pb, pc = (self.objects[k]["centre"] for k in (a, b, c))
        f, w = pb - pa, pc - pa
        angle = float(np.degrees(np.arctan2(f[0] * w[1] - f[1] * w[0], f @ w)))
        return angle, float(np.hypot(*f)), float(np.hypot(*w))


def direction_word(theta: float, subtask: str) -> str:
    level = subtask.rsplit("_", 1)[1]
    zones = {
        "easy": [(15, 165, "left"), (-165, -15, "right")],
        "medium": [(30, 120, "left"), (-120, -30, "right"), (135, 180, "back"),
                   (-180, -135, "back")],
        "hard": [(15, 75, "front-left"), (105, 165, "back-left"), (-165, -105, "back-right"),
                 (-75, -15, "front-right")],
    }[level]
    return next((word for low, high, word in zones if low <= theta <= high), "")


def first_views(scene: Scene, views: list[int]) -> dict[int, int]:
    """Objects seen in the views, absent before their first-seen view: their first view."""
    out = {}
    for i, (seen, absent) in scene.states(views).items():
        if any(seen):
            first = seen.index(True)
            if all(absent[:first]):
                out[i] = first
    return out


# ----------------------------------------------------------------- eligible sets, by hand


def eligible(scene: Scene, subtask: str, views: list[int]) -> set:
    """Every eligible question of a view set, as comparable keys (test's own enumeration)."""
    states = scene.states(views)
    named = scene.named_seen(views)
    listable = [i for i in named if not re.search(r"[,;]", scene.objects[i]["label"])]
    if subtask == "nview_object_count":
        out = set()
        for label in {o["label"] for o in scene.objects.values()}:
            members = [i for i, o in scene.objects.items() if o["label"] == label]
            seen = [i for i in members if any(states[i][0])]
            glimpsed = [i for i in members if not any(states[i][0]) and not all(states[i][1])]
            if not glimpsed and 1 <= len(seen) <= 12:
                out.add(label)
        return out
    if subtask == "nview_object_abs_distance":
        return {frozenset((a, b)) for a, b in itertools.combinations(named, 2)
                if scene.distance(a, b) >= 0.2}
    if subtask == "nview_object_rel_distance":
        out = set()
        for x in listable:
            others = [o for o in listable if o != x]
            d = {o: scene.distance(x, o) for o in others}
            for a in others:
                close = [o for o in others if o != a and d[a] <= 0.8 * d[o] and d[o] - d[a] >= 0.15]
                far = [o for o in others if o != a and d[a] >= 1.25 * d[o] and d[a] - d[o] >= 0.15]
                if len(close) >= 3:
                    out.add((x, a, "closest"))
                if len(far) >= 3:
                    out.add((x, a, "farthest"))
        return out
    if subtask.startswith("nview_rel_direction_"):
        out = set()
        for a, b, c in itertools.permutations(named, 3):
            theta, f, w = scene.theta(a, b, c)
            if f >= 0.5 and w >= 0.5 and direction_word(theta, subtask):
                out.add((a, b, c))
        return out
    if subtask == "nview_appearance_order":
        first = {i: v for i, v in first_views(scene, views).items() if i in listable}
        return {tuple(sorted(combo, key=first.get)) for combo in itertools.combinations(first, 4)
                if len({first[i] for i in combo}) == 4}
    if subtask == "nview_camera_path_length":
        total = sum(float(np.linalg.norm(scene.centres[b] - scene.centres[a]))
                    for a, b in itertools.pairwise(views))
        return {"path"} if total >= 0.5 else set()
    if subtask == "nview_nearest_view":
        out = set()
        for x in named:
            d = sorted(scene.camera_distances(x, views))
            if d[0] <= 0.8 * d[1] and d[1] - d[0] >= 0.2:
                out.add(x)
        return out
    raise AssertionError(subtask)


def question_key(record: dict):
    meta, subtask = record["meta"], record["subtask"]
    if subtask == "nview_object_count":
        return meta["label"]
    if subtask == "nview_object_abs_distance":
        return frozenset(meta["objects"])
    if subtask == "nview_object_rel_distance":
        best = meta["options"][LETTERS.index(record["gt"])]
        return (meta["objects"][0], best, meta["ask"])
    if subtask.startswith("nview_rel_direction_"):
        return tuple(meta["objects"])
    if subtask == "nview_appearance_order":
        return tuple(meta["objects"])
    if subtask == "nview_camera_path_length":
        return "path"
    return meta["objects"][0]


# --------------------------------------------------------------------------------- fixture


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("nview")
    synth = root / "synth"
    # Raw scans only (no posed_images rescan): the test reads every .sens itself.
    write_synthetic_dataset(synth, SynthConfig(scenes=6, clips=0, seed=SEED, small=True,
                                               workers=1, variants=False))
    cache = root / "cache"
    prepare(PrepareConfig(cache=cache, scannet=synth / "scannet"))
    out = root / "out"
    summary = generate(GenerateConfig(
        cache=cache, out=out, tasks=("nview",), seed=SEED,
        settings=GenerateSettings(views=VIEWS, view_sets_per_scene=SETS),
    ))
    assert not [r for r in summary.results if r.status == "failed"]
    records = {split: [json.loads(line) for path in sorted((out / split).glob("nview/*.jsonl"))
                       for line in path.read_text().splitlines()] for split in ("train", "val")}
    names = {r["meta"]["scene"] for split in records.values() for r in split}
    scenes = {name: Scene(synth, name) for name in sorted(names)}
    return {"records": records, "scenes": scenes, "out": out, "cache": cache,
            "summary": summary}


def all_records(data: dict) -> list[dict]:
    return data["records"]["train"] + data["records"]["val"]


# ----------------------------------------------------------------------------------- tests


def test_visibility_recomputed_here_matches_the_cache(data: dict) -> None:
    for name, scene in data["scenes"].items():
        folder = data["cache"] / "scannet" / name
        frames = np.load(folder / "frame_index.npy").tolist()
        counts = np.load(folder / "object_visible_counts.npy")
        rows = {o["object_id"]: r for r, o in
                enumerate(json.loads((folder / "objects.json").read_text()))}
        for frame in scene.frames:
            for object_id, count in scene.counts[frame].items():
                assert counts[rows[object_id], frames.index(frame)] == count, (name, frame)


def test_every_subtask_is_generated_and_records_are_valid(data: dict) -> None:
    counts = Counter(r["subtask"] for r in all_records(data))
    assert set(counts) == set(NVIEW_SUBTASKS), counts
    for record in all_records(data):
        validate_record(record)
        views = record["meta"]["views"]
        assert record["meta"]["frames"] == views == sorted(views) and len(views) == VIEWS
        assert record["task"] == "nview" and record["meta"]["points"] == [[]] * VIEWS
        human = record["conversations"][0]["value"]
        assert human.startswith("".join(f"Image-{k}: <image>\n" for k in range(1, VIEWS + 1)))
        name = record["meta"]["scene"]
        assert record["image"] == [f"scannet/{name}/{f:05d}.jpg" for f in views]
        assert all((data["out"] / "images" / p).is_file() for p in record["image"])
        assert record["width_list"] == [160] * VIEWS and record["height_list"] == [120] * VIEWS
        chosen = record["meta"]["templates"]
        variant = record["meta"].get("ask") if record["subtask"].endswith("rel_distance") else None
        assert [chosen["description"], chosen["question"], chosen["answer"]] == record_draws(
            SEED, record["id"], compiled_templates(record["subtask"]).sizes(variant))


def _greedy(scene: Scene, start: int, count: int, gap: int) -> list[int]:
    """The test's own greedy coverage (boolean masks, no packing)."""
    frames = scene.frames
    covered = scene.visible[frames[start]].copy()
    chosen = [start]
    total = covered.size
    while len(chosen) < count:
        best, gain = None, -1
        for k, frame in enumerate(frames):
            if any(abs(k - c) < gap for c in chosen):
                continue
            new = int(np.count_nonzero(scene.visible[frame] & ~covered))
            if new > gain:
                best, gain = k, new
        if best is None or 100 * gain < total:
            return chosen
        chosen.append(best)
        covered |= scene.visible[frames[best]]
    return chosen


def test_view_sets_are_greedy_coverage_sets(data: dict) -> None:
    sets = {(r["meta"]["scene"], tuple(r["meta"]["views"])) for r in all_records(data)}
    assert len(sets) >= 6
    for name, views in sets:
        scene = data["scenes"][name]
        positions = [scene.frames.index(f) for f in views]
        gap = max(1, min(10, len(scene.frames) // (2 * VIEWS)))
        assert all(b - a >= gap for a, b in itertools.pairwise(positions))
        grown = [sorted(scene.frames[k] for k in _greedy(scene, p, VIEWS, gap)) for p in positions]
        assert list(views) in grown, (name, views)


def test_answers_recomputed_from_the_truth(data: dict) -> None:
    checked = Counter()
    for record in all_records(data):
        scene = data["scenes"][record["meta"]["scene"]]
        views, meta, subtask = record["meta"]["views"], record["meta"], record["subtask"]
        states = scene.states(views)
        seen = scene.seen(views)
        spans = re.findall(r"`([^`]*)`", record["conversations"][1]["value"])
        assert spans == [str(record["gt"])]
        prompt = record["conversations"][0]["value"]
        if subtask == "nview_object_count":
            members = [i for i, o in scene.objects.items() if o["label"] == meta["label"]]
            assert all(any(states[i][0]) or all(states[i][1]) for i in members)  # no glimpse
            assert meta["count_ids"] == sorted(i for i in members if i in seen)
            assert record["gt"] == len(meta["count_ids"]) and 1 <= record["gt"] <= 12
            assert meta["label"] in prompt
        elif subtask == "nview_object_abs_distance":
            a, b = meta["objects"]
            d = scene.distance(a, b)
            # the cache stores the aligned vertices as float32: agreement to 1e-5 m
            assert meta["distances_m"][0] == pytest.approx(d, abs=1e-5)
            assert d >= 0.2 and abs(record["gt"] - 1000 * d) <= 0.5 + 0.01
            assert record["gt"] == half_away(1000 * meta["distances_m"][0])
            assert {a, b} <= seen and scene.objects[a]["nameable"] and scene.objects[b]["nameable"]
            assert scene.objects[a]["label"] in prompt and scene.objects[b]["label"] in prompt
        elif subtask == "nview_object_rel_distance":
            (x,) = meta["objects"]
            d = [scene.distance(x, o) for o in meta["options"]]
            assert meta["distances_m"] == pytest.approx(d, abs=1e-5)
            order = np.argsort(d) if meta["ask"] == "closest" else np.argsort(-np.asarray(d))
            best, runner = d[order[0]], d[order[1]]
            if meta["ask"] == "closest":
                assert best <= 0.8 * runner and runner - best >= 0.15
            else:
                assert best >= 1.25 * runner and best - runner >= 0.15
            assert record["gt"] == LETTERS[order[0]]
            assert len({x, *meta["options"]}) == 5 and {x, *meta["options"]} <= seen
            for letter, option in zip(LETTERS, meta["options"], strict=True):
                assert f"{letter}. {scene.objects[option]['label']}" in prompt
        elif subtask.startswith("nview_rel_direction_"):
            a, b, c = meta["objects"]
            theta, f, w = scene.theta(a, b, c)
            assert meta["theta_deg"] == pytest.approx(theta, abs=1e-4)  # float32 vertices
            assert f >= 0.5 and w >= 0.5
            assert record["gt"] == direction_word(theta, subtask) != ""
            assert {a, b, c} <= seen and len({a, b, c}) == 3
        elif subtask == "nview_appearance_order":
            first = first_views(scene, views)
            objects = meta["objects"]
            assert all(i in first for i in objects)
            assert meta["first_seen"] == [first[i] + 1 for i in objects]
            assert len(set(meta["first_seen"])) == 4  # distinct first appearances
            correct = sorted(objects, key=first.get)
            assert meta["options"][LETTERS.index(record["gt"])] == correct
            assert len({tuple(o) for o in meta["options"]}) == 4
            assert all(sorted(o) == sorted(objects) for o in meta["options"])
        elif subtask == "nview_camera_path_length":
            segments = [float(np.linalg.norm(scene.centres[b] - scene.centres[a]))
                        for a, b in itertools.pairwise(views)]
            assert meta["segments_m"] == pytest.approx(segments, abs=1e-5)
            assert sum(segments) >= 0.5
            assert abs(record["gt"] - 1000 * sum(segments)) <= 0.5 + 0.01
            assert record["gt"] == half_away(1000 * sum(meta["segments_m"]))
        elif subtask == "nview_nearest_view":
            (x,) = meta["objects"]
            d = scene.camera_distances(x, views)
            assert meta["distances_m"] == pytest.approx(d, abs=1e-5)
            order = np.argsort(d)
            assert d[order[0]] <= 0.8 * d[order[1]] and d[order[1]] - d[order[0]] >= 0.2
            assert record["gt"] == str(order[0] + 1) and x in seen
        checked[subtask] += 1
    assert set(checked) == set(NVIEW_SUBTASKS)


def test_questions_are_the_eligible_ones_and_val_takes_them_all(data: dict) -> None:
    by_set: dict[tuple, dict[str, list]] = {}
    for split, records in data["records"].items():
        for record in records:
            key = (split, record["meta"]["scene"], tuple(record["meta"]["views"]))
            by_set.setdefault(key, {}).setdefault(record["subtask"], []).append(
                question_key(record))
    pool: dict[str, set] = {}
    val_taken: dict[str, list] = {}
    for (split, name, views), subtasks in by_set.items():
        scene = data["scenes"][name]
        for subtask in NVIEW_SUBTASKS:
            allowed = eligible(scene, subtask, list(views))
            got = subtasks.get(subtask, [])
            assert len(got) == len(set(got)) and set(got) <= allowed, (name, subtask)
            if split == "train":
                assert len(got) == min(TRAIN_CAPS[subtask], len(allowed)), (name, subtask)
            else:
                pool.setdefault(subtask, set()).update((name, views, q) for q in allowed)
                val_taken.setdefault(subtask, []).extend((name, views, q) for q in got)
    for subtask, everything in pool.items():
        taken = val_taken.get(subtask, [])
        assert len(taken) == min(300, len(everything)), subtask
        if len(everything) <= 300:
            assert set(taken) == everything, subtask


def test_prompts_state_the_conventions(data: dict) -> None:
    needed = {
        "nview_object_count": ["counts once"],
        "nview_object_abs_distance": ["closest points"],
        "nview_object_rel_distance": ["closest points"],
        "nview_rel_direction_easy": ["floor plan", "standing at the first object"],
        "nview_appearance_order": ["first appears"],
        "nview_camera_path_length": ["camera centre", "straight segment"],
        "nview_nearest_view": ["camera centre", "closest point"],
    }
    for record in all_records(data):
        prompt = record["conversations"][0]["value"]
        assert "static scene" in prompt and "order the camera captured" in prompt
        for phrase in needed.get(record["subtask"], []):
            assert phrase in prompt, (record["subtask"], phrase)
        chosen = record["meta"]["templates"]
        variant = record["meta"].get("ask") if record["subtask"].endswith("rel_distance") else None
        fields = {"answer": f"`{record['gt']}`"}
        if record["subtask"] == "nview_object_count":
            fields["label"] = record["meta"]["label"]
        if variant is None and record["subtask"] in ("nview_camera_path_length",):
            rendered = render_with_indices(record["subtask"], indices=chosen, fields=fields,
                                           num_images=VIEWS)
            assert rendered.human == prompt


def test_meta_fields_are_exactly_the_listed_ones(data: dict) -> None:
    common = ["source", "scene", "split", "frames", "points", "templates", "views"]
    extra = {
        "nview_object_count": ["label", "count_ids"],
        "nview_object_abs_distance": ["objects", "distances_m"],
        "nview_object_rel_distance": ["objects", "options", "ask", "distances_m"],
        "nview_rel_direction_easy": ["objects", "theta_deg"],
        "nview_rel_direction_medium": ["objects", "theta_deg"],
        "nview_rel_direction_hard": ["objects", "theta_deg"],
        "nview_appearance_order": ["objects", "first_seen", "options"],
        "nview_camera_path_length": ["segments_m"],
        "nview_nearest_view": ["objects", "distances_m"],
    }
    for record in all_records(data):
        assert list(record["meta"]) == common + extra[record["subtask"]]


def test_relative_distance_asks_both_ways(data: dict) -> None:
    asks = Counter(r["meta"]["ask"] for r in all_records(data)
                   if r["subtask"] == "nview_object_rel_distance")
    assert asks["closest"] > 0 and asks["farthest"] > 0


def test_ids_are_unique_and_key_on_the_objects(data: dict) -> None:
    ids = [r["id"] for r in all_records(data)]
    assert len(ids) == len(set(ids))
    same_views = Counter((r["subtask"], tuple(r["meta"]["views"])) for r in all_records(data))
    assert max(same_views.values()) > 1  # several questions on one view set, distinct ids


def test_a_short_camera_path_is_counted_under_its_own_key() -> None:
    # Regression: the reason was prefixed twice ("<subtask>:<subtask>:too_short").
    from multispa.tasks.nview_questions import candidates

    class StillCameras:
        camera_centres = np.zeros((4, 3))

    found = candidates("nview_camera_path_length", StillCameras(), np.random.default_rng(0))
    assert found.size == 0
    assert dict(found.skipped) == {
        "nview_camera_path_length:too_short": 1, "nview_camera_path_length:no_candidate": 1,
    }
