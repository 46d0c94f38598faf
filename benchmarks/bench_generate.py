"""Generation throughput per subtask (records/s on one core) at ScanNet resolution.

Builds (or reuses, with --work) realistic synthetic data (colour 1296×968, TAPVid-3D 512×512 and
640×360), prepares it, plans up to --records selections per subtask from the training split and
times each family's ``generate`` (and the JSON serialisation of each record) in this process,
subtask by subtask. Printed beside each rate:
the upstream engine's stated rate (spec §9.2) and, for dot subtasks, the codec bound measured in
the same run: the time to decode the frame(s) and encode the annotated JPEG(s) a record needs.

Usage: python benchmarks/bench_generate.py [--records 300] [--work DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from PIL import Image

from multispa.pipeline.generate import GenerateConfig
from multispa.pipeline.prepare import PrepareConfig, prepare
from multispa.synth.config import SynthConfig
from multispa.synth.dataset import write_synthetic_dataset
from multispa.tasks import registry
from multispa.tasks.base import CacheUnit, GenerateSettings, UnitContext
from multispa.tasks.records import dumps_record
from multispa.tasks.templates import SUBTASKS

#: Upstream rates in records/s derived from the times its code states (spec §9.2).
UPSTREAM = {
    "depth_estimation_dot": 337_523 / (1.5 * 3600),
    "depth_estimation_coord": 331_295 / (51 * 60),
    "correspondence_mcq_dot": 500_000 / (7 * 3600),
    "correspondence_coord": 1_000_000 / (4 * 3600),
    **{s: 1_000_000 / (4 * 60) for s in SUBTASKS if s.startswith("camera_")},
}

#: Annotated images written per record (dot subtasks): the codec work a record needs.
ANNOTATED = {
    "depth_estimation_dot": 1,
    "depth_comparison_dot": 1,
    "correspondence_mcq_dot": 2,
    "object_movement_distance_dot": 1,
    "object_movement_vector_dot": 1,
}


def codec_seconds(jpeg: bytes, encodes: int, quality: int = 90) -> float:
    """Median time of one decode plus ``encodes`` JPEG encodes of that frame (after a warm-up)."""
    Image.open(io.BytesIO(jpeg)).convert("RGB").save(io.BytesIO(), format="JPEG", quality=quality)
    times = []
    for _ in range(15):
        start = time.perf_counter()
        image = Image.open(io.BytesIO(jpeg)).convert("RGB")
        image.load()
        for _ in range(encodes):
            image.save(io.BytesIO(), format="JPEG", quality=quality)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300, help="selections per subtask")
    parser.add_argument("--work", type=Path, default=None, help="reuse/keep data here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = args.work or Path(scratch)
        data, cache = work / "data", work / "cache"
        if not (cache / "manifest.json").is_file():
            write_synthetic_dataset(data, SynthConfig(scenes=3, clips=4, workers=2))
            prepare(
                PrepareConfig(
                    cache=cache, scannet=data / "scannet", tapvid3d=data / "tapvid3d", workers=2
                )
            )
        manifest = json.loads((cache / "manifest.json").read_text())
        units = [
            CacheUnit(unit_id, cache / unit_id, "train")
            for unit_id, info in sorted(manifest["units"].items())
            if info["split"] == "train" and info["status"] == "done"
        ]
        shutil.rmtree(work / "out", ignore_errors=True)  # time fresh writes, not overwrites
        config = GenerateConfig(cache=cache, out=work / "out", max_per_subtask=args.records)
        print(
            f"{'subtask':<34}{'records':>8}{'rec/s':>9}{'upstream':>10}{'ratio':>8}"
            f"{'codec bound/s':>15}{'of bound':>10}"
        )
        for family_name, subtasks in registry.resolve_tasks(None).items():
            family = registry.family(family_name)
            own = [u for u in units if u.dataset == family.dataset]
            for subtask in subtasks:
                quotas = {subtask: config.quota("train", subtask)}
                selections, _ = family.plan("train", own, quotas, 0, GenerateSettings())
                by_unit: dict[str, list] = {}
                for selection in selections:
                    by_unit.setdefault(selection.unit_id, []).append(selection)
                count, seconds = 0, 0.0
                sample_jpeg = None
                for unit in own:
                    rows = by_unit.get(unit.unit_id, [])
                    if not rows:
                        continue
                    context = UnitContext(unit, 0, work / "out", GenerateSettings())
                    start = time.perf_counter()
                    count += sum(len(dumps_record(r)) > 0 for r in family.generate(context, rows))
                    seconds += time.perf_counter() - start
                    if sample_jpeg is None:
                        sample_jpeg = next((unit.path / "images").glob("*.jpg")).read_bytes()
                rate = count / seconds if seconds else float("nan")
                upstream = UPSTREAM.get(subtask)
                bound = ""
                of_bound = ""
                if subtask in ANNOTATED and sample_jpeg is not None:
                    bound_rate = 1.0 / codec_seconds(sample_jpeg, ANNOTATED[subtask])
                    bound = f"{bound_rate:.1f}"
                    of_bound = f"{bound_rate / rate:.2f}x"
                print(
                    f"{subtask:<34}{count:>8}{rate:>9.1f}"
                    f"{(f'{upstream:.1f}' if upstream else '-'):>10}"
                    f"{(f'{rate / upstream:.1f}x' if upstream else '-'):>8}"
                    f"{bound:>15}{of_bound:>10}"
                )
        print(
            "rates on one core, in-process; 'of bound' = codec-bound rate / measured rate "
            "(1.00x = as fast as decoding and encoding alone)"
        )


if __name__ == "__main__":
    main()
