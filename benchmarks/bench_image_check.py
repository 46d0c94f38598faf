"""Cost of the colour-image check of ``prepare`` and ``inspect`` (multispa.scenes.image_check).

Writes one synthetic ScanNet scene at real resolution (colour 1296×968 JPEG, depth 640×480) and
one TAPVid-3D-like clip, then times, per frame and on this process's CPU clock
(``time.process_time``, steadier on a shared machine), the median over ``--repeat`` passes of:

- ``jpeg_defect``: the check (markers, header parse, size): what prepare and inspect run;
- a full decode (``Image.load``), what a decode-everything check would cost;
- a reduced decode (``Image.draft`` to 1/8 scale, then ``load``): entropy decoding without the
  full inverse DCT, the cheapest check that touches every coefficient;

and the whole ``prepare`` of the scene (CPU time, one process), for the share the check takes.

Usage: python benchmarks/bench_image_check.py [--frames 40] [--repeat 5] [--keep DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from multispa.pipeline.prepare import PrepareConfig, prepare
from multispa.scenes.image_check import jpeg_defect
from multispa.scenes.sens import SensFile
from multispa.synth.config import SynthConfig
from multispa.synth.dataset import write_synthetic_dataset
from report import add_json_option, write_results

REPORT_ARGS = ["--keep", "{scratch}/image_check"]  # how benchmarks/report.py runs this script


def _full(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as image:
        image.load()


def _draft(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (image.width // 8, image.height // 8))
        image.load()


def _per_frame_ms(check: Callable[[bytes], object], frames: list[bytes], repeat: int) -> float:
    passes = []
    for _ in range(repeat):
        start = time.process_time()
        for data in frames:
            check(data)
        passes.append((time.process_time() - start) / len(frames))
    return statistics.median(passes) * 1e3


def main() -> None:
    """Print the per-frame costs and the share of prepare."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=40, help="frames of the scene")
    parser.add_argument("--repeat", type=int, default=5, help="timed passes (median)")
    parser.add_argument("--keep", type=Path, default=None, help="work folder to keep")
    add_json_option(parser)
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_image_check_"))
    synth = work / "synth"
    if not (synth / "scannet").is_dir():
        write_synthetic_dataset(synth, SynthConfig(scenes=1, clips=1, seed=0, workers=1,
                                                   frames_per_scene=args.frames))
    sens_path = next((synth / "scannet" / "scans").glob("*/*.sens"))
    with SensFile(sens_path) as sens:
        frames = [sens.read_color_bytes(i) for i in range(sens.num_frames)]
        size = (sens.header.color_width, sens.header.color_height)
    assert all(jpeg_defect(data, size) is None for data in frames)
    kb = statistics.mean(len(data) for data in frames) / 1e3
    print(f"{len(frames)} colour frames {size[0]}x{size[1]}, {kb:.0f} kB on average; "
          f"CPU time per frame, median of {args.repeat} passes:")
    figures = {
        "check (jpeg_defect)": _per_frame_ms(lambda d: jpeg_defect(d, size), frames, args.repeat),
        "reduced decode (draft 1/8)": _per_frame_ms(_draft, frames, args.repeat),
        "full decode": _per_frame_ms(_full, frames, args.repeat),
    }
    for name, ms in figures.items():
        print(f"  {name:<28} {ms:8.3f} ms")

    cache = work / "cache"
    start = time.process_time()
    summary = prepare(PrepareConfig(cache=cache, scannet=synth / "scannet", force=True))
    seconds = time.process_time() - start
    kept = summary.total("frames")
    check_s = figures["check (jpeg_defect)"] * kept / 1e3
    print(f"prepare of the scene: {seconds:.2f} s CPU for {kept} kept frames "
          f"({seconds / max(kept, 1) * 1e3:.1f} ms a frame); the check's share "
          f"{check_s / seconds:.2%} (a full decode would add "
          f"{figures['full decode'] * kept / 1e3 / seconds:.0%})")
    check_ms, full_ms = figures["check (jpeg_defect)"], figures["full decode"]
    write_results(
        args.json,
        title=f"Colour-image check of prepare and inspect, {size[0]}×{size[1]} JPEG frames",
        summary=[
            f"check: {check_ms:.3f} ms a frame ({full_ms / check_ms:.0f}× cheaper than a full "
            f"decode, {full_ms:.2f} ms)",
            f"share of prepare: {check_s / seconds:.2%} (a full decode would add "
            f"{full_ms * kept / 1e3 / seconds:.0%})",
        ],
        columns=["per frame", "ms"],
        rows=[[name, f"{ms:.3f}"] for name, ms in figures.items()],
        notes=[f"CPU time per frame, median of {args.repeat} passes over {len(frames)} frames "
               f"({kb:.0f} kB on average); prepare of the scene {seconds:.2f} s CPU for {kept} "
               "kept frames"],
    )


if __name__ == "__main__":
    main()
