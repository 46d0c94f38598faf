"""`multispa prepare` throughput and peak memory on realistic synthetic scenes.

Writes synthetic ScanNet scenes at real resolution (colour 1296×968, depth 640×480, ~1e5+ mesh
vertices), then prepares 2 and 8 of them in a fresh process each (one worker) and prints frames/s
and the peak RSS of that process. Peak memory must depend on the largest scene, not on how many
scenes there are.

Usage: python benchmarks/bench_prepare.py [--frames 100] [--scenes 8] [--keep DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from multispa.synth.config import SynthConfig
from multispa.synth.dataset import write_synthetic_dataset
from report import add_json_option, write_results

CHILD = """
import json, resource, sys, time
from pathlib import Path
from multispa.pipeline.prepare import PrepareConfig, prepare
root, cache, scenes = Path(sys.argv[1]), Path(sys.argv[2]), tuple(sys.argv[3].split(","))
start = time.perf_counter()
summary = prepare(PrepareConfig(cache=cache, scannet=root, scenes=scenes, workers=1))
seconds = time.perf_counter() - start
print(json.dumps({
    "seconds": seconds,
    "frames": summary.total("frames"),
    "pairs": summary.total("pairs"),
    "vertices": max(r.counts.get("vertices", 0) for r in summary.reports),
    "failed": summary.count("failed"),
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


#: How benchmarks/report.py runs this script (4 scenes: a shorter synthesis than the default 8).
REPORT_ARGS = ["--scenes", "4"]


def run_prepare(root: Path, cache: Path, scenes: list[str]) -> dict[str, float]:
    """Prepare ``scenes`` in a fresh interpreter; return its figures."""
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), str(cache), ",".join(scenes)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100, help="frames per synthetic scene")
    parser.add_argument("--scenes", type=int, default=8, help="scenes in the large run")
    parser.add_argument("--keep", type=Path, default=None, help="keep data in this folder")
    add_json_option(parser)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        work = args.keep or Path(scratch)
        data = work / "data"
        if not (data / "scannet").is_dir():
            start = time.perf_counter()
            write_synthetic_dataset(
                data,
                SynthConfig(scenes=args.scenes, clips=0, frames_per_scene=args.frames, workers=2),
            )
            print(f"synth: {args.scenes} scenes × {args.frames} frames in "
                  f"{time.perf_counter() - start:.1f} s")
        scene_ids = sorted(p.name for p in (data / "scannet" / "scans").iterdir())
        print(f"{'scenes':>7}{'frames':>8}{'pairs':>9}{'max verts':>11}{'seconds':>9}"
              f"{'frames/s':>10}{'peak RSS MB':>13}")
        rows = []
        for count in (2, len(scene_ids)):
            figures = run_prepare(data / "scannet", work / f"cache{count}", scene_ids[:count])
            assert figures["failed"] == 0
            rows.append((
                str(count), str(figures["frames"]), str(figures["pairs"]),
                str(figures["vertices"]), f"{figures['seconds']:.1f}",
                f"{figures['frames'] / figures['seconds']:.1f}", f"{figures['peak_rss_mb']:.0f}",
            ))
            print(
                f"{count:>7}{figures['frames']:>8}{figures['pairs']:>9}{figures['vertices']:>11}"
                f"{rows[-1][4]:>9}{rows[-1][5]:>10}{rows[-1][6]:>13}"
            )
        note = ("frames/s counts kept frames (every 5th) per second on one worker, including "
                "reading the .sens, visibility, JPEG copy, depth PNG, pairs and objects.")
        print(note)
    write_results(
        args.json,
        title="`multispa prepare` throughput and peak memory on realistic synthetic scenes",
        summary=[
            f"prepare: {rows[-1][5]} kept frames/s on one worker; peak RSS {rows[0][6]} MB for "
            f"{rows[0][0]} scenes, {rows[-1][6]} MB for {rows[-1][0]} (the largest scene "
            "counts, not the number of scenes)",
        ],
        columns=("scenes", "frames", "pairs", "max verts", "seconds", "frames/s", "peak RSS MB"),
        rows=rows,
        notes=[f"Wall clock, each run in a fresh process. {note}"],
    )


if __name__ == "__main__":
    main()
