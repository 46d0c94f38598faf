"""Shared session fixtures: one small synthetic dataset (and benchmark) that several test modules
read without modifying (copy before changing anything)."""

from __future__ import annotations

from pathlib import Path

import pytest

from multispa.evaluate.bench import build_bench
from multispa.pipeline.generate import GenerateConfig, generate
from multispa.pipeline.prepare import PrepareConfig, prepare
from multispa.synth.config import SynthConfig
from multispa.synth.dataset import write_synthetic_dataset


@pytest.fixture(scope="session")
def small_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder behind ``small_dataset``: ``synth/`` (4 ScanNet scenes and 4 TAPVid-3D clips
    in the real formats, seed 5), ``cache/`` (prepared) and ``dataset/`` (generated).

    Read-only for tests: copy it before modifying anything.
    """
    root = tmp_path_factory.mktemp("shared_small")
    write_synthetic_dataset(
        root / "synth", SynthConfig(scenes=6, clips=4, seed=5, small=True, workers=1)
    )
    summary = prepare(
        PrepareConfig(
            cache=root / "cache", scannet=root / "synth" / "scannet",
            tapvid3d=root / "synth" / "tapvid3d",
        )
    )
    assert summary.count("failed") == 0
    out = root / "dataset"
    generated = generate(GenerateConfig(cache=root / "cache", out=out, max_per_subtask=40, seed=1))
    assert not [r for r in generated.results if r.status == "failed"]
    return root


@pytest.fixture(scope="session")
def small_dataset(small_source: Path) -> Path:
    """A generated MultiSPA dataset folder (train and val, all subtasks, ≤ 40 per subtask).

    Read-only for tests: copy it before modifying anything.
    """
    return small_source / "dataset"


@pytest.fixture(scope="session")
def small_bench(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A benchmark folder built from ``small_dataset`` (≤ 5 items per benchmark key). Read-only."""
    out = tmp_path_factory.mktemp("shared_bench") / "bench"
    build_bench(small_dataset, out, per_subtask=5, seed=3)
    return out
