"""Read-throughput benchmark of the ``.sens`` reader (multispa.scenes.sens).

Writes two realistic ``.sens`` files (1296×968 JPEG colour of ~190 KB, 640×480 zlib depth of
~290 KB per frame) of two lengths in a temporary folder, then measures:

- index: opening the file (header + walk over every frame header, seeking past payloads);
- read skip k: opening, then for every k-th frame reading the colour bytes and inflating the
  depth to metres (``SensFile.iter_frames``), as the scene loader does.

For each it prints frames/s, the file bytes covered per second, the payload bytes actually read
per second, and the peak Python allocation (tracemalloc, in a separate pass so it does not slow
the timed pass). Streaming means the peak is about the same for both lengths.

Usage: ``.venv/bin/python benchmarks/bench_sens_read.py [--frames N] [--repeats R] [--json PATH]``
(the files have N/4 and N frames; default N = 1200). Files are read from the page cache (warm).
"""

from __future__ import annotations

import argparse
import io
import struct
import tempfile
import time
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from multispa.scenes.sens import SensFile
from report import add_json_option, write_results

COLOR_W, COLOR_H = 1296, 968
DEPTH_W, DEPTH_H = 640, 480
MB = 1e6


def _payloads(seed: int) -> tuple[bytes, bytes]:
    """One realistic JPEG colour payload and one zlib depth payload."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:COLOR_H, 0:COLOR_W]
    base = np.stack(
        [128 + 60 * np.sin(x / 37.0 + c) + 40 * np.cos(y / 23.0 - c) for c in range(3)], axis=-1
    )
    rgb = np.clip(base + rng.normal(0.0, 3.0, base.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=90)
    yd, xd = np.mgrid[0:DEPTH_H, 0:DEPTH_W]
    depth = 1500 + 0.8 * xd + 1.2 * yd + rng.normal(0.0, 1.5, (DEPTH_H, DEPTH_W))
    depth_mm = depth.astype(np.uint16)
    depth_mm[rng.random((DEPTH_H, DEPTH_W)) < 0.05] = 0  # holes
    return buf.getvalue(), zlib.compress(depth_mm.astype("<u2").tobytes())


def _write_sens(path: Path, num_frames: int, color: bytes, depth: bytes) -> None:
    """Stream a version-4 .sens file to ``path`` (same payload for every frame)."""
    k_color = np.array([[1170.19, 0, 647.75, 0], [0, 1170.19, 483.75, 0], [0, 0, 1, 0],
                        [0, 0, 0, 1]], dtype="<f4")
    k_depth = np.array([[571.62, 0, 319.5, 0], [0, 571.62, 239.5, 0], [0, 0, 1, 0],
                        [0, 0, 0, 1]], dtype="<f4")
    eye = np.eye(4, dtype="<f4")
    name = b"StructureSensor"
    with open(path, "wb") as f:
        f.write(struct.pack("<IQ", 4, len(name)) + name)
        for m in (k_color, eye, k_depth, eye):
            f.write(m.tobytes())
        f.write(struct.pack("<iiIIIIfQ", 2, 1, COLOR_W, COLOR_H, DEPTH_W, DEPTH_H, 1000.0,
                            num_frames))
        pose = np.eye(4, dtype="<f4")
        for i in range(num_frames):
            pose[:3, 3] = (0.01 * i, 0.002 * i, 1.5)
            frame_pose = np.full((4, 4), -np.inf, dtype="<f4") if i % 97 == 13 else pose
            f.write(frame_pose.tobytes())
            f.write(struct.pack("<QQQQ", 33333 * i, 33333 * i + 7, len(color), len(depth)))
            f.write(color)
            f.write(depth)
        f.write(b"\x00" * 4096)  # trailing IMU-like records


def _index(path: Path, skip: int) -> int:
    with SensFile(path) as sens:
        return sens.num_frames


def _read(path: Path, skip: int) -> int:
    """Open, then read colour bytes + depth in metres of every ``skip``-th frame."""
    total = 0
    with SensFile(path) as sens:
        for frame in sens.iter_frames(range(0, sens.num_frames, skip)):
            total += len(frame.color_bytes) + frame.depth_m.nbytes
    return total


def _timed(fn: Callable[[Path, int], int], path: Path, skip: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(path, skip)
        best = min(best, time.perf_counter() - start)
    return best


def _peak_alloc(fn: Callable[[Path, int], int], path: Path, skip: int) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        fn(path, skip)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1200, help="length of the long file")
    parser.add_argument("--repeats", type=int, default=2, help="timed repeats (best is kept)")
    add_json_option(parser)
    args = parser.parse_args()
    lengths = (max(args.frames // 4, 1), args.frames)

    color, depth = _payloads(seed=0)
    inflated_kb = DEPTH_W * DEPTH_H * 2 / 1e3
    print(f"payload per frame: colour JPEG {len(color) / 1e3:.0f} KB, "
          f"depth zlib {len(depth) / 1e3:.0f} KB (inflates to {inflated_kb:.0f} KB)")

    rows: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in lengths:
            path = Path(tmp) / f"bench_{n}.sens"
            start = time.perf_counter()
            _write_sens(path, n, color, depth)
            size = path.stat().st_size
            print(f"wrote {n} frames, {size / MB:.0f} MB in {time.perf_counter() - start:.2f} s")
            with SensFile(path) as sens:
                index_bytes = sum(
                    a.nbytes for a in (sens.poses, sens.color_offsets, sens.color_sizes,
                                       sens.depth_offsets, sens.depth_sizes,
                                       sens.color_timestamps, sens.depth_timestamps)
                )
                assert np.isneginf(sens.poses[13, 0, 0])
            per_frame = len(color) + len(depth)
            for label, fn, skip in (("index", _index, 1), ("read skip 1", _read, 1),
                                    ("read skip 5", _read, 5)):
                seconds = _timed(fn, path, skip, args.repeats)
                kept = len(range(0, n, skip)) if fn is _read else 0
                read_bytes = n * 96 + kept * per_frame
                peak = _peak_alloc(fn, path, skip)
                rows.append((
                    str(n), label, f"{seconds * 1e3:.1f}",
                    f"{(kept or n) / seconds:,.0f}",
                    f"{size / MB / seconds:,.0f}", f"{read_bytes / MB / seconds:,.0f}",
                    f"{peak / MB:.2f}",
                ))
            print(f"  index arrays: {index_bytes / 1e3:.1f} KB ({index_bytes / n:.0f} B/frame)")

    head = ("frames", "pass", "ms", "frames/s", "file MB/s", "read MB/s", "peak alloc MB")
    widths = [max(len(r[j]) for r in (head, *rows)) for j in range(len(head))]
    print()
    print("  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
    note = ("frames/s counts kept frames for reads and indexed frames for 'index'; file MB/s is "
            "the file size over the time; read MB/s counts frame headers + payload bytes read; "
            "peak alloc is tracemalloc's peak during the pass.")
    print("\n" + note)
    skip5 = [row for row in rows if row[1] == "read skip 5"]
    write_results(
        args.json,
        title="Read throughput of the .sens reader",
        summary=[
            "read every 5th frame: "
            + ", ".join(f"{row[3]} frames/s ({row[0]}-frame file)" for row in skip5)
            + "; peak allocation "
            + ", ".join(f"{row[6]} MB ({row[0]} frames)" for row in skip5),
        ],
        columns=head,
        rows=rows,
        notes=[f"Wall clock, best of {args.repeats}, files in the page cache. {note}"],
    )


if __name__ == "__main__":
    main()
