"""Rule (o): a thinned ``posed_images`` export is reported, and K_depth without a ``.sens`` is
chosen between the ``<scene>.txt`` depth keys and the rescaled colour intrinsics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from multispa.cli import main
from multispa.scenes.scannet import load_scannet_scene
from multispa.scenes.scannet_layouts import choose_depth_intrinsics
from multispa.scenes.types import Intrinsics
from multispa.synth.config import SynthConfig
from multispa.synth.dataset import write_synthetic_dataset

SCAN = "scene0000_01"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("posed")
    write_synthetic_dataset(out, SynthConfig(scenes=2, clips=0, seed=4, small=True, workers=1))
    return out


def test_rescaled_to_keeps_pixel_centres() -> None:
    k = Intrinsics(1170.0, 1168.0, 647.75, 483.75, 1296, 968)
    s_x, s_y = 640 / 1296, 480 / 968
    rescaled = k.rescaled_to(640, 480)
    assert rescaled.fx == pytest.approx(1170.0 * s_x) and rescaled.fy == pytest.approx(1168 * s_y)
    assert rescaled.cx == pytest.approx(648.25 * s_x - 0.5)
    assert rescaled.cy == pytest.approx(484.25 * s_y - 0.5)
    # the centre of the image stays the centre: (W - 1) / 2 maps to (W' - 1) / 2
    centred = Intrinsics(100.0, 100.0, 647.5, 483.5, 1296, 968).rescaled_to(640, 480)
    assert (centred.cx, centred.cy) == pytest.approx((319.5, 239.5))


def test_depth_intrinsics_choice() -> None:
    color = Intrinsics(1170.187988, 1170.187988, 647.75, 483.75, 1296, 968)  # scene0000_00
    expected = color.rescaled_to(640, 480)
    factory = Intrinsics(571.623718, 571.623718, 319.5, 239.5, 640, 480)
    k, source, note = choose_depth_intrinsics(factory, color, (640, 480), "*_depth keys")
    assert (k, source) == (expected, "rescaled_color")
    assert "1.49%" in note and "fy 571.62 vs 580.26" in note
    close = Intrinsics(expected.fx * 1.004, expected.fy, expected.cx - 1.0, expected.cy, 640, 480)
    assert choose_depth_intrinsics(close, color, (640, 480), "keys") == (close, "scene_txt", "")
    k, source, note = choose_depth_intrinsics(None, color, (640, 480), "keys")
    assert (k, source) == (expected, "rescaled_color") and note.startswith("no depth intrinsics")


def test_synthetic_rescan_is_a_thinned_export_of_room_0(synthetic: Path) -> None:
    scannet = synthetic / "scannet"
    frames_dir = scannet / "posed_images" / SCAN
    assert not (scannet / "scans" / SCAN / f"{SCAN}.sens").exists()
    truth = json.loads((synthetic / "synthetic_truth" / "scannet" / f"{SCAN}.json").read_text())
    exported = truth["frames"]
    assert [f["index"] for f in exported] == list(range(len(exported)))
    assert [f["source_frame"] for f in exported] == list(range(0, truth["num_frames"], 5))
    assert len(list(frames_dir.glob("*.txt"))) == len(exported) + 1  # + intrinsic.txt

    scene = load_scannet_scene(scannet / "scans", SCAN, frame_skip=1)
    assert scene.layout == "posed_images"
    assert scene.notes.exported_frames == len(exported)
    assert scene.notes.num_color_frames == truth["num_frames"] and scene.notes.thinned
    assert scene.notes.depth_intrinsics_source == "scene_txt"
    assert scene.depth_intrinsics.to_json() == truth["depth_intrinsics"]
    valid = [f for f in exported if f["valid"]]
    assert [f.index for f in scene.frames] == [f["index"] for f in valid]
    for info, frame in zip(scene.frames, valid, strict=True):
        np.testing.assert_allclose(info.world_from_cam, frame["world_from_cam"], atol=1e-5)


def test_inspect_and_prepare_warn_about_the_thinned_export(
    synthetic: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["inspect", "--scannet", str(synthetic / "scannet")])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    thinned = [line for line in warnings if "already thinned" in line]
    assert thinned == [
        f"warning: {SCAN}: posed_images export holds 30 of 150 frames (numColorFrames): already "
        "thinned, its file numbers are positions among the exported frames; consider "
        "--frame-skip 1"
    ]
    duplicates = [line for line in warnings if "duplicate segGroups" in line]
    assert len(duplicates) == 1 and duplicates[0].startswith(f"warning: {SCAN}: ")
    assert not any("scene0000_00" in line or "scene0001_00" in line for line in warnings)

    cache = tmp_path / "cache"
    result = runner.invoke(main, ["prepare", "--scannet", str(synthetic / "scannet"),
                                  "--cache", str(cache), "--scenes", SCAN])
    assert result.exit_code == 0, result.output
    assert f"warning: scannet/{SCAN}: posed_images export holds 30 of 150" in result.output
    notes = json.loads((cache / "manifest.json").read_text())["units"][f"scannet/{SCAN}"]["notes"]
    assert notes["thinned"] and notes["exported_frames"] == 30 and notes["num_color_frames"] == 150
    meta = json.loads((cache / "scannet" / SCAN / "meta.json").read_text())
    truth = json.loads((synthetic / "synthetic_truth" / "scannet" / f"{SCAN}.json").read_text())
    valid = [f["index"] for f in truth["frames"] if f["valid"]]
    assert meta["notes"] == notes and meta["frames"] == [i for i in range(0, 30, 5) if i in valid]
    # a rerun that finds the unit done still prints its warnings
    result = runner.invoke(main, ["prepare", "--scannet", str(synthetic / "scannet"),
                                  "--cache", str(cache), "--scenes", SCAN])
    assert "1 already done" in result.output and "already thinned" in result.output
