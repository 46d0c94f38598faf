"""SHA-256 of every file a default ``synth → prepare → generate`` run writes (output-bytes check).

A performance change must not change what ``multispa generate`` writes. This script builds (or
reuses) the synthetic data and its prepared cache under ``--work`` at the CLI's default sizes,
runs ``generate`` with its defaults (all families, default quotas, seed 0) into
``WORK/<--name>``, and writes ``WORK/<--name>.sha256``: one ``<sha256>  <path>`` line per file
under the output folder, paths relative to it and sorted (records, annotated and linked images,
plans, shards, done markers, manifests). It prints the SHA-256 of that listing.

Run it once with the tree before the change and once with the tree after it, on the same
``--work`` (the cache path is recorded in ``manifest.json``), and compare the listings::

    PYTHONPATH=OLD/src python benchmarks/output_digest.py --work /tmp/digest --name before
    PYTHONPATH=NEW/src python benchmarks/output_digest.py --work /tmp/digest --name after
    diff /tmp/digest/before.sha256 /tmp/digest/after.sha256 && echo identical

Equivalent CLI commands: ``multispa synth WORK/data``, ``multispa prepare --cache WORK/cache
--scannet WORK/data/scannet --tapvid3d WORK/data/tapvid3d --workers 2`` and ``multispa generate
--cache WORK/cache --out WORK/NAME --workers 2``. About ten minutes on two cores the first time
(synthesis and prepare), a few minutes per ``generate`` after that.

Usage: python benchmarks/output_digest.py --work DIR [--name out] [--workers 2]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import time
from pathlib import Path

from multispa.pipeline.generate import GenerateConfig, generate
from multispa.pipeline.prepare import PrepareConfig, prepare
from multispa.synth.config import SynthConfig
from multispa.synth.dataset import write_synthetic_dataset


def file_digests(root: Path) -> list[str]:
    """``"<sha256>  <path>"`` of every file under ``root`` (relative POSIX paths, sorted)."""
    lines = []
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder, name)
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            lines.append(f"{digest}  {path.relative_to(root).as_posix()}")
    return sorted(lines, key=lambda line: line.split("  ", 1)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="data, cache and outputs here")
    parser.add_argument("--name", default="out", help="output folder name under WORK")
    parser.add_argument("--workers", type=int, default=2, help="parallel units")
    args = parser.parse_args()
    data, cache, out = args.work / "data", args.work / "cache", args.work / args.name
    start = time.perf_counter()
    if not (cache / "manifest.json").is_file():
        write_synthetic_dataset(data, SynthConfig(workers=args.workers))
        prepare(PrepareConfig(
            cache=cache, scannet=data / "scannet", tapvid3d=data / "tapvid3d", workers=args.workers
        ))
        print(f"synth + prepare: {time.perf_counter() - start:.0f} s", flush=True)
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    summary = generate(GenerateConfig(cache=cache, out=out, workers=args.workers))
    failed = [r for r in summary.results if r.status == "failed"]
    if failed:
        raise SystemExit(f"generate failed: {failed[0].key}: {failed[0].error}")
    records = sum(sum(counts.values()) for counts in summary.counts.values())
    lines = file_digests(out)
    listing = "".join(line + "\n" for line in lines)
    (args.work / f"{args.name}.sha256").write_text(listing, encoding="utf-8")
    print(
        f"generate: {records} records in {time.perf_counter() - start:.0f} s; {len(lines)} files; "
        f"listing {args.work / f'{args.name}.sha256'}; "
        f"sha256 of listing {hashlib.sha256(listing.encode()).hexdigest()}"
    )


if __name__ == "__main__":
    main()
