"""``write_synthetic_dataset``: the whole synthetic dataset in the real on-disk layouts.

Layout under ``OUT``::

    scannet/scans/<scene>/{<scene>.sens, <scene>_vh_clean_2.ply, <scene>.aggregation.json,
                           <scene>_vh_clean_2.0.010000.segs.json, <scene>.txt}
    scannet/scannetv2_train.txt, scannet/scannetv2_val.txt
    scannet/scannetv2-labels.combined.tsv, scannet/posed_images/scene0000_01/  (variants)
    tapvid3d/{adt,pstudio}/<sequence>_<k>.npz, tapvid3d/{adt,pstudio}/{train,val}.txt
    synthetic_truth/scannet/<scene>.json, synthetic_truth/tapvid3d/<subset>/<clip>.json
    synthetic_truth/config.json

Ground truth (outside the dataset layouts, for tests and demos; every number exact):

- ``synthetic_truth/scannet/<scene>.json``: ``axis_alignment`` A (aligned = A · raw), room box,
  both intrinsics, ``frames[i]`` = {``index``, ``valid``, aligned ``world_from_cam``} (also for
  the ``invalid_frames`` whose stored pose is −inf), ``objects`` (``object_id``, raw ``label``,
  oriented-box ``centre``, ``yaw_deg``, ``length_m`` ≥ ``width_m``, ``height_m``,
  ``world_from_object``, mesh ``vertex_start``/``vertex_end``, ``parts`` as world boxes) and
  ``structure`` (walls, floor, ceiling with their ``object_id`` and vertex ranges);
- ``synthetic_truth/tapvid3d/<subset>/<clip>.json``: output ``frame`` ("world" for adt,
  "camera" for pstudio), ``camera_centres`` (T, 3), the true ``world_from_cam`` (T, 4, 4), what
  the file carries as ``extrinsics`` and the ``track_noise_m``, ``objects`` with ``moves`` and
  per-frame ``world_from_object`` (T, 4, 4), ``tracks`` (``object_id`` or −1 for the room,
  ``part_id``, ``moves``, ``local`` point in the object frame, ``query_frame``) and the
  visibility rule.

ADT clips of the ``val`` split have exactly the official key set (no ``extrinsics_w2c``), as the
files users download; ``train`` ADT clips cycle through extrinsics written, extrinsics
inconsistent with the tracks (camera axes turned 90°) and absent, in clip order.

Each file's ``conventions`` entry states the frames and rules in words.

With ``SynthConfig.variants`` (default) room 0 and its rescan ``scene0000_01`` carry the real
downloads' pitfalls (:mod:`multispa.synth.scannet_variants`).

Each scene and each clip is one unit of work with its own generator, seeded from SHA-256 of
(seed, unit name); units run in a process pool (forkserver or spawn) and write their own files,
so the bytes never depend on the worker count. Existing files of the same names are replaced;
other files under ``OUT`` are left alone.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from multispa.fs import writes_folder
from multispa.synth.config import SynthConfig
from multispa.synth.scannet_rescan import write_rescan
from multispa.synth.scannet_synth import write_scene
from multispa.synth.scannet_variants import RESCANNED_ROOM, rescan_id, write_label_map
from multispa.synth.scannet_writer import write_bytes_atomic, write_json_atomic
from multispa.synth.tapvid_tracks import write_clip

PSTUDIO_TRAIN_SEQUENCES = ("boxes", "football", "juggle", "softball", "tennis")
PSTUDIO_VAL_SEQUENCE = "basketball"


@dataclass(frozen=True)
class Unit:
    """One scene or clip to write.

    Attributes:
        kind: ``"scannet"``, ``"adt"`` or ``"pstudio"``.
        name: scene id or clip id.
        index: position among the units of its kind (for a rescan: its room's).
        split: ``"train"`` or ``"val"``.
        extrinsics: for ADT clips, what the file carries (``"written"``, ``"absent"`` or
            ``"inconsistent"``); ``""`` otherwise.
    """

    kind: str
    name: str
    index: int
    split: str
    extrinsics: str = ""

    @property
    def key(self) -> str:
        """The unit's stable name, also the key of its random generator."""
        if self.kind == "scannet":
            return f"scannet/{self.name}"
        return f"tapvid3d/{self.kind}/{self.name}"

    @property
    def rescan(self) -> bool:
        """A ScanNet scan other than a room's first (``_00``): the rescan variant."""
        return self.kind == "scannet" and not self.name.endswith("_00")


@dataclass(frozen=True)
class SynthSummary:
    """What ``write_synthetic_dataset`` wrote.

    Attributes:
        out: the output folder.
        scenes: ScanNet scene ids, train then val.
        val_scenes: the val scene ids.
        clips: ``"<subset>/<clip_id>"`` of every clip.
        val_clips: the val ones.
        files: every written file, sorted.
        total_bytes: their total size.
        seconds: wall time of the whole call.
        unit_seconds: wall time per unit key (inside its worker).
    """

    out: Path
    scenes: tuple[str, ...]
    val_scenes: tuple[str, ...]
    clips: tuple[str, ...]
    val_clips: tuple[str, ...]
    files: tuple[Path, ...]
    total_bytes: int
    seconds: float
    unit_seconds: dict[str, float]

    def __str__(self) -> str:
        return (
            f"{len(self.scenes)} scenes ({len(self.val_scenes)} val), {len(self.clips)} clips "
            f"({len(self.val_clips)} val), {len(self.files)} files, "
            f"{self.total_bytes / 1e6:.1f} MB in {self.seconds:.1f} s"
        )


def unit_rng(seed: int, key: str) -> np.random.Generator:
    """The generator of one unit: SHA-256 of ``"<seed>:<key>"`` (never Python's ``hash``)."""
    digest = hashlib.sha256(f"multispa-synth:{seed}:{key}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def _val_count(count: int) -> int:
    """About a quarter of ``count`` (at least one when there are two or more)."""
    return 0 if count < 2 else max(1, int(np.floor(count / 4 + 0.5)))


def _clip_ids(subset: str, count: int) -> list[tuple[str, str]]:
    """``(clip_id, split)`` for ``count`` clips; train and val sequences are disjoint."""
    train = count - _val_count(count)
    out = []
    for j in range(count):
        if subset == "adt":
            sequence = f"apartment_seq{100 + j // 2:03d}" if j < train else None
            sequence = sequence or f"apartment_seq{200 + (j - train) // 2:03d}"
            k = (j if j < train else j - train) % 2 + 1
        elif j < train:
            sequence = PSTUDIO_TRAIN_SEQUENCES[j % len(PSTUDIO_TRAIN_SEQUENCES)]
            k = j // len(PSTUDIO_TRAIN_SEQUENCES) + 1
        else:
            sequence, k = PSTUDIO_VAL_SEQUENCE, j - train + 1
        out.append((f"{sequence}_{k}", "train" if j < train else "val"))
    return out


#: What train ADT clips carry as ``extrinsics_w2c``, cycled in clip order.
TRAIN_ADT_EXTRINSICS = ("written", "inconsistent", "absent")


def plan_units(config: SynthConfig) -> list[Unit]:
    """Every unit, scenes first (in id order), then ADT and PStudio clips."""
    units = []
    val_scenes = _val_count(config.scenes)
    for i in range(config.scenes):
        split = "val" if i >= config.scenes - val_scenes else "train"
        units.append(Unit("scannet", f"scene{i:04d}_00", i, split))
        if config.variants and i == RESCANNED_ROOM:
            units.append(Unit("scannet", rescan_id(units[-1].name), i, split))
    counts = {"adt": (config.clips + 1) // 2, "pstudio": config.clips // 2}
    for subset, count in counts.items():
        for j, (clip_id, split) in enumerate(_clip_ids(subset, count)):
            extrinsics = ""
            if subset == "adt":
                cycle = TRAIN_ADT_EXTRINSICS
                extrinsics = "absent" if split == "val" else cycle[j % len(cycle)]
            units.append(Unit(subset, clip_id, j, split, extrinsics))
    return units


def run_unit(out: str, unit: Unit, config: SynthConfig) -> tuple[str, list[str], float]:
    """Write one unit (in a worker process); returns its key, written paths and seconds."""
    start = time.perf_counter()
    root = Path(out)
    settings = config.settings()
    rng = unit_rng(config.seed, unit.key)
    if unit.rescan:
        room_key = f"scannet/scene{unit.index:04d}_00"
        paths = write_rescan(
            root / "scannet",
            root / "synthetic_truth" / "scannet",
            unit.name,
            unit.index,
            unit_rng(config.seed, room_key),
            rng,
            settings,
        )
    elif unit.kind == "scannet":
        paths = write_scene(
            root / "scannet" / "scans",
            root / "synthetic_truth" / "scannet",
            unit.name,
            unit.index,
            rng,
            settings,
        )
    else:
        paths = write_clip(
            root / "tapvid3d" / unit.kind / f"{unit.name}.npz",
            root / "synthetic_truth" / "tapvid3d" / unit.kind / f"{unit.name}.json",
            unit.kind,
            rng,
            settings,
            unit.extrinsics or "written",
        )
    return unit.key, [str(path) for path in paths], time.perf_counter() - start


def _pool_context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _write_lists(root: Path, units: list[Unit]) -> list[Path]:
    """Split lists: ScanNet's ``scannetv2_{train,val}.txt`` and TAPVid-3D ``{train,val}.txt``."""
    written = []
    groups: dict[Path, list[str]] = {}
    for unit in units:
        if unit.kind == "scannet":
            path = root / "scannet" / f"scannetv2_{unit.split}.txt"
        else:
            path = root / "tapvid3d" / unit.kind / f"{unit.split}.txt"
        groups.setdefault(path, []).append(unit.name)
    # Both lists always exist (possibly empty), as readers take both or neither.
    if any(unit.kind == "scannet" for unit in units):
        for split in ("train", "val"):
            groups.setdefault(root / "scannet" / f"scannetv2_{split}.txt", [])
    if any(unit.kind != "scannet" for unit in units):
        for subset in ("adt", "pstudio"):
            for split in ("train", "val"):
                groups.setdefault(root / "tapvid3d" / subset / f"{split}.txt", [])
    for path, names in sorted(groups.items()):
        write_bytes_atomic(path, "".join(f"{name}\n" for name in names).encode("ascii"))
        written.append(path)
    return written


@writes_folder("multispa synth", argument="out", option="OUT")
def write_synthetic_dataset(
    out: Path, config: SynthConfig, progress: Callable[[str], None] | None = None
) -> SynthSummary:
    """Write ``config.scenes`` ScanNet-like scenes and ``config.clips`` TAPVid-3D-like clips.

    Args:
        out: output folder (created if needed; locked while writing).
        config: what to generate; the same config (whatever ``workers``) gives the same bytes.
        progress: called with one line per finished unit.

    Returns:
        The summary (ids, splits, files, sizes and timings).

    Raises:
        OutputError, LockError: ``out`` cannot be written, or another process writes it.
    """
    start = time.perf_counter()
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    units = plan_units(config)
    results: dict[str, tuple[list[str], float]] = {}

    def finished(key: str, paths: list[str], seconds: float) -> None:
        results[key] = (paths, seconds)
        if progress is not None:
            progress(f"{key}: written in {seconds:.1f} s ({len(results)}/{len(units)})")

    workers = min(config.workers, len(units))
    if workers <= 1:
        for unit in units:
            finished(*run_unit(str(root), unit, config))
    elif units:
        with ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context()) as pool:
            futures = [pool.submit(run_unit, str(root), unit, config) for unit in units]
            for future in as_completed(futures):
                finished(*future.result())

    files = [Path(p) for unit in units for p in results[unit.key][0]]
    files += _write_lists(root, units)
    if config.variants and any(unit.kind == "scannet" for unit in units):
        files.append(write_label_map(root / "scannet"))
    config_path = root / "synthetic_truth" / "config.json"
    write_json_atomic(config_path, config.to_json())
    files.append(config_path)
    files = sorted(files)
    return SynthSummary(
        out=root,
        scenes=tuple(u.name for u in units if u.kind == "scannet"),
        val_scenes=tuple(u.name for u in units if u.kind == "scannet" and u.split == "val"),
        clips=tuple(f"{u.kind}/{u.name}" for u in units if u.kind != "scannet"),
        val_clips=tuple(
            f"{u.kind}/{u.name}" for u in units if u.kind != "scannet" and u.split == "val"
        ),
        files=tuple(files),
        total_bytes=sum(path.stat().st_size for path in files),
        seconds=time.perf_counter() - start,
        unit_seconds={unit.key: results[unit.key][1] for unit in units},
    )
