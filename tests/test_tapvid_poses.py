"""TAPVid-3D ADT camera poses from the static scene, checked against the synthetic truth.

- Estimated poses match the true ones (noise-free tracks: 0.02°, 1 mm; σ = 2 mm per
  coordinate: 0.1°, 3 mm).
- Object-movement answers from estimated poses equal those from the true extrinsics (noise-free:
  at least 99 %, static points static); with σ = 2 mm the agreement is printed and the answers
  are judged against the exact truth no worse than the true-extrinsics answers.
- Inconsistent extrinsics are detected; a clip without a dominant static scene is skipped with
  its reason; a clip with NaN tracks gives a one-line error naming the file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.spatial.transform import Rotation

from multispa.cli import main
from multispa.geometry.rigid import rigid_groups
from multispa.geometry.static_poses import static_scene_poses
from multispa.metrics.judge import judge
from multispa.metrics.parse import parse_answer
from multispa.pipeline.prepare import PrepareConfig, prepare
from multispa.scenes.tapvid3d import load_tapvid3d_clip
from multispa.scenes.tapvid_poses import PoseCheckConfig, resolve_clip_poses
from multispa.synth.config import SynthConfig
from multispa.synth.dataset import SynthSummary, write_synthetic_dataset
from multispa.synth.tapvid_writer import write_npz
from multispa.tasks.base import CacheUnit, GenerateSettings, UnitContext
from multispa.tasks.object_movement import ObjectMovementFamily

SEED = 3
COORD_SUBTASKS = ("object_movement_distance_coord", "object_movement_vector_coord")


def _synth(root: Path, noise_mm: float, clips: int, tracks: int = 200) -> SynthSummary:
    config = SynthConfig(
        scenes=0, clips=clips, seed=21, small=True, workers=1, track_noise_mm=noise_mm,
        tracks_per_clip=tracks,
    )
    return write_synthetic_dataset(root, config)


@pytest.fixture(scope="module", params=[0.0, 2.0], ids=["exact", "noise2mm"])
def synthetic(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Three ADT clips (extrinsics written, inconsistent, absent) and three PStudio ones."""
    root = tmp_path_factory.mktemp("poses")
    summary = _synth(root, request.param, clips=6)
    return {"root": root, "summary": summary, "noise_mm": request.param}


def _truth(root: Path, subset: str, clip: str) -> dict[str, Any]:
    path = root / "synthetic_truth" / "tapvid3d" / subset / f"{clip}.json"
    return json.loads(path.read_text())


def _adt(synthetic: dict) -> list[str]:
    return [c.split("/")[1] for c in synthetic["summary"].clips if c.startswith("adt/")]


def _pose_errors(world_from_cam: np.ndarray, truth: dict) -> tuple[float, float]:
    """Worst rotation (degrees) and camera-position (metres) error against the truth, both
    relative to frame 0's camera (the estimate's world)."""
    true = np.array(truth["world_from_cam"])
    relative = np.linalg.inv(true[0]) @ true
    delta = np.swapaxes(world_from_cam[:, :3, :3], 1, 2) @ relative[:, :3, :3]
    angle = np.degrees(Rotation.from_matrix(delta).magnitude()).max()
    shift = np.linalg.norm(world_from_cam[:, :3, 3] - relative[:, :3, 3], axis=1).max()
    return float(angle), float(shift)


def test_estimated_poses_match_the_truth(synthetic: dict) -> None:
    root = synthetic["root"]
    limits = {0.0: (0.02, 0.001), 2.0: (0.1, 0.003)}[synthetic["noise_mm"]]
    for clip_id in _adt(synthetic):
        clip = load_tapvid3d_clip(root / "tapvid3d" / "adt" / f"{clip_id}.npz")
        truth = _truth(root, "adt", clip_id)
        assert truth["track_noise_m"] == pytest.approx(synthetic["noise_mm"] / 1000)
        poses = static_scene_poses(clip.tracks_cam, rigid_groups(clip.tracks_cam))
        assert poses.usable, poses.message
        assert poses.world_from_cam is not None
        angle, shift = _pose_errors(poses.world_from_cam, truth)
        print(f"{clip_id} σ={synthetic['noise_mm']} mm: {angle:.4f}°, {1000 * shift:.3f} mm")
        assert angle < limits[0] and shift < limits[1], (clip_id, angle, shift)
        # The static group's inliers are exactly static tracks of the truth.
        moves = np.array(truth["tracks"]["moves"])
        assert not moves[poses.inliers].any()
        assert poses.inliers.size >= 0.9 * np.count_nonzero(~moves)


def test_pose_sources_and_the_extrinsics_check(synthetic: dict) -> None:
    root = synthetic["root"]
    seen = {}
    for clip_id in _adt(synthetic):
        clip = load_tapvid3d_clip(root / "tapvid3d" / "adt" / f"{clip_id}.npz")
        kind = _truth(root, "adt", clip_id)["extrinsics"]
        poses = resolve_clip_poses(clip)
        seen[kind] = poses
        assert poses.usable and poses.cam_from_world is not None
        assert poses.residual_m is not None and poses.residual_m <= 0.005
        if kind == "written":
            assert poses.source == "extrinsics" and not poses.warning
            assert poses.drift_m is not None and poses.drift_m <= 0.01
        elif kind == "inconsistent":  # detected: the static scene drifts under them
            assert poses.source == "static_scene"
            assert poses.drift_m is not None and poses.drift_m > 0.1
            assert "extrinsics_w2c disagree with the tracks" in poses.warning
            assert f"at frame {poses.drift_frame}" in poses.warning
        else:
            assert poses.source == "static_scene" and poses.drift_m is None
    assert set(seen) == {"written", "inconsistent", "absent"}
    # Neither the extrinsics nor the static-scene poses pass: skipped with the reason.
    inconsistent = next(
        c for c in _adt(synthetic) if _truth(root, "adt", c)["extrinsics"] == "inconsistent"
    )
    clip = load_tapvid3d_clip(root / "tapvid3d" / "adt" / f"{inconsistent}.npz")
    strict = PoseCheckConfig(max_residual_m=1e-9)
    refused = resolve_clip_poses(clip, config=strict)
    assert (refused.usable, refused.reason) == (False, "extrinsics_drift")
    assert "static-scene poses unusable too (pose_residual:" in refused.message


def _official_copy(source: Path, target: Path, edit: Any = None) -> Path:
    """Copy a synthetic root's TAPVid-3D folder, writing its ADT clips with exactly the official
    key set (``edit`` may change the arrays further)."""
    shutil.copytree(source / "tapvid3d", target / "tapvid3d")
    for path in sorted((target / "tapvid3d" / "adt").glob("*.npz")):
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files if key != "extrinsics_w2c"}
        if edit is not None:
            arrays = edit(arrays)
        write_npz(path, arrays)
    return target / "tapvid3d"


def _prepared_unit(tapvid3d: Path, cache: Path, clip_id: str) -> CacheUnit:
    prepare(PrepareConfig(cache=cache, tapvid3d=tapvid3d))
    manifest = json.loads((cache / "manifest.json").read_text())
    unit_id = f"tapvid3d/adt/{clip_id}"
    assert manifest["units"][unit_id]["status"] == "done", manifest["units"][unit_id]
    return CacheUnit(unit_id, cache / unit_id, manifest["units"][unit_id]["split"])


def _exact_answer(truth: dict, track: int, f1: int, f2: int, vector: bool) -> Any:
    """The answer from the truth's exact positions and poses (rule (j)), in mm."""
    object_id = truth["tracks"]["object_id"][track]
    local = np.append(truth["tracks"]["local"][track], 1.0)
    if object_id < 0:
        d = np.zeros(3)
    else:
        poses = np.array(truth["objects"][object_id]["world_from_object"])
        d = (poses[f2] @ local)[:3] - (poses[f1] @ local)[:3]
    if np.linalg.norm(d) < 0.01:
        return [0, 0, 0] if vector else 0
    if not vector:
        return int(np.floor(1000 * np.linalg.norm(d) + 0.5))
    cam1_from_world = np.linalg.inv(np.array(truth["world_from_cam"][f1]))
    return [int(np.sign(v) * np.floor(abs(v) + 0.5)) for v in 1000 * cam1_from_world[:3, :3] @ d]


def test_answers_from_estimated_poses_equal_those_from_true_extrinsics(tmp_path: Path) -> None:
    """Noise-free tracks: the same selections answered with the true extrinsics (file A) and
    with static-scene poses (file B, the official key set) agree for >= 99 % of records."""
    agreement, correct = _compare_answers(tmp_path, 0.0)
    print(f"noise-free: answers equal after rounding for {100 * agreement['all']:.2f} % of "
          f"{agreement['records']:.0f} records; judged correct against the truth: static_scene "
          f"{100 * correct['static_scene']:.2f} %, extrinsics {100 * correct['extrinsics']:.2f} %")
    assert agreement["all"] >= 0.99
    # Static points are still answered as static.
    assert agreement["static_scene_static"] == agreement["extrinsics_static"] == 1.0
    assert correct["static_scene"] >= 0.99 and correct["extrinsics"] >= 0.99


def test_answers_with_2mm_track_noise(tmp_path: Path) -> None:
    """σ = 2 mm per coordinate: the agreement is reported; judged against the exact truth, the
    static-scene answers are as good as the true-extrinsics ones (within 1 point), and truly
    static points are answered static as often. (The distance-binned sampler picks a static
    track's pairs that noise pushed past 1 cm, so under noise many sampled static points look
    moving with either poses.)"""
    agreement, correct = _compare_answers(tmp_path, 2.0)
    print(f"σ = 2 mm: answers equal after rounding for {100 * agreement['all']:.1f} % of "
          f"{agreement['records']:.0f} records; truly static points answered static: static_scene "
          f"{100 * agreement['static_scene_static']:.1f} %, extrinsics "
          f"{100 * agreement['extrinsics_static']:.1f} %; judged correct against the truth: "
          f"static_scene {100 * correct['static_scene']:.1f} %, extrinsics "
          f"{100 * correct['extrinsics']:.1f} %")
    assert correct["static_scene"] >= correct["extrinsics"] - 0.01
    assert agreement["static_scene_static"] >= agreement["extrinsics_static"] - 0.02


def _compare_answers(tmp_path: Path, noise_mm: float) -> tuple[dict, dict]:
    synth = tmp_path / "synth"
    summary = _synth(synth, noise_mm, clips=1)  # one ADT clip with its true extrinsics
    (clip_id,) = [c.split("/")[1] for c in summary.clips]
    truth = _truth(synth, "adt", clip_id)
    official = _official_copy(synth, tmp_path / "official")
    unit_a = _prepared_unit(synth / "tapvid3d", tmp_path / "cache_a", clip_id)
    unit_b = _prepared_unit(official, tmp_path / "cache_b", clip_id)
    meta_a = json.loads((unit_a.path / "meta.json").read_text())
    meta_b = json.loads((unit_b.path / "meta.json").read_text())
    assert (meta_a["pose_source"], meta_b["pose_source"]) == ("extrinsics", "static_scene")
    family = ObjectMovementFamily()
    settings = GenerateSettings()
    selections, _ = family.plan(
        unit_a.split, [unit_a], dict.fromkeys(COORD_SUBTASKS, None), SEED, settings
    )
    records = {}
    for name, unit in (("extrinsics", unit_a), ("static_scene", unit_b)):
        ctx = UnitContext(unit, SEED, tmp_path / f"out_{name}", settings)
        records[name] = {rec["id"]: rec for rec in family.generate(ctx, selections)}
    assert records["extrinsics"].keys() == records["static_scene"].keys()
    assert len(records["extrinsics"]) > 500
    equal, static_total = 0, 0
    static_kept = {"extrinsics": 0, "static_scene": 0}
    correct = {"extrinsics": 0, "static_scene": 0}
    for rid, rec_a in records["extrinsics"].items():
        rec_b = records["static_scene"][rid]
        assert rec_b["meta"]["track"]["pose_source"] == "static_scene"
        equal += rec_a["gt"] == rec_b["gt"]
        f1, f2 = rec_a["meta"]["frames"]
        vector = rec_a["answer_type"] == "vector"
        exact = _exact_answer(truth, rec_a["meta"]["track"]["index"], f1, f2, vector)
        if exact in (0, [0, 0, 0]):
            static_total += 1
            static_kept["extrinsics"] += rec_a["gt"] in (0, [0, 0, 0])
            static_kept["static_scene"] += rec_b["gt"] in (0, [0, 0, 0])
        for name, rec in (("extrinsics", rec_a), ("static_scene", rec_b)):
            parsed = parse_answer(rec["conversations"][1]["value"], rec["answer_type"],
                                  rec["subtask"])
            correct[name] += judge(parsed, {**rec, "gt": exact}).correct
    count = len(records["extrinsics"])
    assert static_total > 20
    agreement = {"all": equal / count, "records": float(count)}
    agreement.update({f"{name}_static": n / static_total for name, n in static_kept.items()})
    return agreement, {name: n / count for name, n in correct.items()}


def test_clip_without_dominant_static_scene_is_skipped_with_its_reason(tmp_path: Path) -> None:
    synth = tmp_path / "synth"
    summary = _synth(synth, 1.5, clips=1)
    (clip_id,) = [c.split("/")[1] for c in summary.clips]
    moves = np.array(_truth(synth, "adt", clip_id)["tracks"]["moves"])
    keep = np.flatnonzero(~moves)[:25]  # 25 static tracks: fewer than the 30 needed

    def fewer_tracks(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        arrays["tracks_XYZ"] = arrays["tracks_XYZ"][:, keep]
        arrays["visibility"] = arrays["visibility"][:, keep]
        arrays["queries_xyt"] = arrays["queries_xyt"][keep]
        return arrays

    official = _official_copy(synth, tmp_path / "official", fewer_tracks)
    cache = tmp_path / "cache"
    summary_prepare = prepare(PrepareConfig(cache=cache, tapvid3d=official))
    (report,) = summary_prepare.reports
    assert report.status == "unusable"
    assert report.error is not None and report.error.startswith("no_static_scene: ")
    assert "25 track(s), fewer than 30" in report.error
    manifest = json.loads((cache / "manifest.json").read_text())
    assert manifest["tapvid3d_poses"]["counts"]["unusable_no_static_scene"] == 1
    result = CliRunner().invoke(main, ["inspect", "--tapvid3d", str(official)])
    assert result.exit_code == 0, result.output
    assert "no (no_static_scene: largest rigid group has 25 track(s)" in result.output


def test_nan_tracks_give_a_one_line_error_naming_the_file(tmp_path: Path) -> None:
    synth = tmp_path / "synth"
    summary = _synth(synth, 1.5, clips=1)
    (clip_id,) = [c.split("/")[1] for c in summary.clips]

    def with_nan(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        arrays["tracks_XYZ"][4, 7, 1] = np.nan
        return arrays

    official = _official_copy(synth, tmp_path / "official", with_nan)
    path = official / "adt" / f"{clip_id}.npz"
    expected = f"{path}: 'tracks_XYZ' has 1 non-finite (NaN/inf) position(s), first at (t=4, n=7)"
    result = CliRunner().invoke(
        main, ["prepare", "--tapvid3d", str(official), "--cache", str(tmp_path / "cache")]
    )
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if "failed: tapvid3d/adt" in line]
    assert len(lines) == 1 and expected in lines[0]
    result = CliRunner().invoke(main, ["inspect", "--tapvid3d", str(official)])
    assert result.exit_code == 1
    rows = [line for line in result.output.splitlines() if clip_id in line]
    assert len(rows) == 1 and "ERROR" in rows[0] and expected in rows[0]


def test_old_clip_caches_are_refused_and_rebuilt_by_prepare(tmp_path: Path) -> None:
    from multispa.cache.tapvid_cache import load_tapvid_cache
    from multispa.errors import CacheError

    synth = tmp_path / "synth"
    summary = _synth(synth, 1.5, clips=1, tracks=64)
    (clip_id,) = [c.split("/")[1] for c in summary.clips]
    cache = tmp_path / "cache"
    config = PrepareConfig(cache=cache, tapvid3d=synth / "tapvid3d")
    prepare(config)
    unit = cache / "tapvid3d" / "adt" / clip_id
    # Make it look like a cache of the previous format (version 1, no pose source).
    meta = json.loads((unit / "meta.json").read_text())
    meta["cache_version"] = 1
    meta["identity_extrinsics"] = False
    del meta["pose_source"], meta["poses"]
    (unit / "meta.json").write_text(json.dumps(meta))
    marker = cache / "_done" / "tapvid3d" / "adt" / f"{clip_id}.json"
    done = json.loads(marker.read_text())
    done["settings_digest"] = config.settings_digest()  # what the previous version stored
    marker.write_text(json.dumps(done))
    with pytest.raises(CacheError) as error:
        load_tapvid_cache(unit)
    message = str(error.value)
    assert "\n" not in message and str(unit) in message
    assert "format 1, expected 2" in message and "run `multispa prepare` again" in message
    (report,) = prepare(config).reports
    assert report.status == "built"
    assert load_tapvid_cache(unit).meta["pose_source"] == "extrinsics"
    (report,) = prepare(config).reports
    assert report.status == "skipped"
