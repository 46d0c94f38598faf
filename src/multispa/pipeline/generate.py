"""``multispa generate``: prepared caches → MultiSPA records, resumable and deterministic.

Stages (see ``multispa.tasks.base``):

1. **plan**, per (split, family), in this process: the family selects every record's frames
   over all units of the split; selections are written per unit under ``OUT/_work/plan/`` and
   the stage is marked done.
2. **generate**, per (split, family, unit), on the executor: records and annotated images; each
   unit's shard is written under ``OUT/_work/shards/`` atomically and marked done.
3. **merge**: shards are concatenated in sorted unit order into
   ``OUT/<split>/<task>/<subtask>[.<adt|pstudio>].jsonl``; ids are checked unique; the manifest
   and the InternVL meta files are written.

A rerun skips finished plans and units; output bytes do not depend on ``--workers`` or the
executor, and a run killed at any point and restarted gives the same files (``_work``
included): every temporary file is written under ``OUT/_work/tmp/``, which a run clears when
it starts and removes when it ends. OUT is locked while the command runs (:mod:`multispa.lock`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from multispa import __version__
from multispa.cache.files import read_json, write_json
from multispa.errors import ConfigError
from multispa.executors.base import make_executor
from multispa.fs import check_output_dir, failure_text, naming, output_folder
from multispa.tasks import registry
from multispa.tasks.base import (
    SPLITS,
    CacheUnit,
    GenerateSettings,
    Selection,
    TaskFamily,
    UnitContext,
)
from multispa.tasks.records import record_line, source_code
from multispa.tasks.templates import SUBTASKS, templates_digest

WORK = "_work"
SCRATCH = "tmp"  # OUT/_work/tmp: every temporary file of a run
_SHARD_BUFFER = 1 << 20  # bytes of JSONL lines gathered per write to a shard


@dataclass(frozen=True)
class GenerateConfig:
    """Everything ``multispa generate`` needs.

    Attributes:
        cache: a folder written by ``multispa prepare``.
        out: the dataset folder to write.
        split: ``"train"``, ``"val"`` or ``"all"``.
        tasks: family or subtask names (all when None).
        quotas: per split, subtask → records wanted (None = keep all); defaults from
            ``registry.TRAIN_QUOTAS`` and ``registry.VAL_QUOTA``.
        scale: multiplies the training quotas (not the benchmark pool).
        max_per_subtask: caps every quota of both splits (also the uncapped ones).
        seed: master seed.
        settings: family options.
        workers, executor, ray_address: execution.
        force: regenerate even if OUT was generated with other settings.
    """

    cache: Path
    out: Path
    split: str = "all"
    tasks: tuple[str, ...] | None = None
    quotas: Mapping[str, Mapping[str, int | None]] = field(default_factory=dict)
    scale: float = 1.0
    max_per_subtask: int | None = None
    seed: int = 0
    settings: GenerateSettings = field(default_factory=GenerateSettings)
    workers: int = 1
    executor: str = "local"
    ray_address: str | None = None
    force: bool = False

    def splits(self) -> tuple[str, ...]:
        """The splits to generate."""
        if self.split == "all":
            return SPLITS
        if self.split not in SPLITS:
            raise ConfigError(f"--split must be train, val or all, got {self.split!r}")
        return (self.split,)

    def quota(self, split: str, subtask: str) -> int | None:
        """Records wanted for ``subtask`` in ``split`` after overrides, scale and cap."""
        given = self.quotas.get(split, {})
        if subtask in given:
            value = given[subtask]
        elif split == "train":
            value = registry.TRAIN_QUOTAS[subtask]
            if value is not None:
                value = int(np.floor(value * self.scale + 0.5))
        else:
            value = registry.VAL_QUOTA
        if self.max_per_subtask is not None:
            value = self.max_per_subtask if value is None else min(value, self.max_per_subtask)
        return value

    def output_settings(self) -> dict[str, Any]:
        """What determines the output bytes (recorded; a rerun must match)."""
        families = registry.resolve_tasks(list(self.tasks) if self.tasks else None)
        return {
            "splits": list(self.splits()),
            "tasks": families,
            "quotas": {
                split: {s: self.quota(split, s) for f in families.values() for s in f}
                for split in self.splits()
            },
            "seed": self.seed,
            "settings": asdict(self.settings),
            "templates_sha256": templates_digest(),
        }


def load_quotas_file(path: Path) -> dict[str, dict[str, int | None]]:
    """Read ``--quotas``: TOML or YAML with ``train:`` / ``val:`` maps of subtask → count.

    A flat map of subtask → count is taken as training quotas. ``null`` (YAML) or a negative
    number means "no cap".
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text ({error.reason})") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError, RecursionError) as error:
        raise ConfigError(f"{path}: not valid TOML/YAML ({error})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of subtask -> count")
    if not set(data) & set(SPLITS):
        data = {"train": data}
    quotas: dict[str, dict[str, int | None]] = {}
    for split, table in data.items():
        if split not in SPLITS or not isinstance(table, dict):
            raise ConfigError(f"{path}: top-level keys must be 'train' and/or 'val' mappings")
        for subtask, count in table.items():
            if subtask not in SUBTASKS:
                raise ConfigError(f"{path}: unknown subtask {subtask!r} under {split}")
            if count is not None and (not isinstance(count, int) or isinstance(count, bool)):
                raise ConfigError(f"{path}: {split}.{subtask} must be an integer or null")
            value = None if count is None or count < 0 else count
            quotas.setdefault(split, {})[subtask] = value
    return quotas


@dataclass(frozen=True)
class GenerateUnit:
    """One work unit of stage 2."""

    split: str
    family: str
    unit: CacheUnit
    out: Path
    seed: int
    settings: GenerateSettings

    @property
    def key(self) -> str:
        """``<split>/<family>/<unit id with / → __>``."""
        return f"{self.split}/{self.family}/{self.unit.unit_id.replace('/', '__')}"


@dataclass(frozen=True)
class UnitResult:
    """Outcome of one generate unit."""

    key: str
    status: str  # "built", "skipped" (already done) or "failed"
    records: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    error: str | None = None


@dataclass
class GenerateSummary:
    """What a run produced."""

    counts: dict[str, dict[str, int]]  # split -> output file (relative) -> records
    skipped: dict[str, dict[str, int]]  # split -> reason -> count
    results: list[UnitResult]
    wall_seconds: float


def _work(out: Path, *parts: str) -> Path:
    return out.joinpath(WORK, *parts)


def shard_path(out: Path, key: str) -> Path:
    """Where the shard of work unit ``key`` (:attr:`GenerateUnit.key`) is written."""
    return _work(out, "shards", f"{key}.jsonl")


def write_shard(
    family: TaskFamily,
    context: UnitContext,
    selections: Sequence[Selection],
    shard: Path,
    *,
    scratch: Path | None = None,
) -> int:
    """Write one unit's records to ``shard`` as JSONL; return how many were written.

    The lines are :func:`~multispa.tasks.records.record_line` of each record the family's
    ``generate`` yields, or, for a family that also has ``generate_lines`` (the same records'
    lines, made without the dicts), what that yields. They go to a temporary file in ``scratch``
    (beside ``shard`` when None), renamed to ``shard`` once all are written; on any error the
    temporary file is removed and the error raised, an OS error naming the file it concerns.
    (Annotated images are written by the family as it generates.)
    """
    if not shard.parent.is_dir():  # one stat for every unit but the first
        shard.parent.mkdir(parents=True, exist_ok=True)
    folder = shard.parent if scratch is None else scratch
    # <split>__<family>__<unit>.jsonl: unique in a shared scratch folder
    temporary = folder / f".{'__'.join(shard.parts[-3:])}.{os.getpid()}.tmp"
    count = 0
    try:
        make_lines = getattr(family, "generate_lines", None)
        lines = (
            make_lines(context, selections) if make_lines is not None
            else map(record_line, family.generate(context, selections))
        )
        with open(temporary, "wb", buffering=_SHARD_BUFFER) as handle:
            write = handle.write
            for line in lines:
                write(line)
                count += 1
    except OSError as error:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise naming(error, temporary) from None
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, shard)
    return count


def run_generate_unit(unit: GenerateUnit) -> UnitResult:
    """Generate one unit's shard unless already done (module level: runs in any worker)."""
    done = _work(unit.out, "done", f"{unit.key}.json")
    if done.is_file():
        info = read_json(done)
        return UnitResult(unit.key, "skipped", info["records"], info["skipped"])
    plan_file = _work(unit.out, "plan", f"{unit.key}.jsonl")
    selections = [
        Selection.from_json(json.loads(line))
        for line in plan_file.read_text(encoding="utf-8").splitlines()
    ]
    scratch = _work(unit.out, SCRATCH)
    context = UnitContext(unit.unit, unit.seed, unit.out, unit.settings, scratch=scratch)
    shard = shard_path(unit.out, unit.key)
    try:
        scratch.mkdir(parents=True, exist_ok=True)
        count = write_shard(registry.family(unit.family), context, selections, shard,
                            scratch=scratch)
    except Exception as error:  # reported per unit; the others go on
        message = failure_text(error) or f"{type(error).__name__}: {error}"
        return UnitResult(unit.key, "failed", error=message)
    done.parent.mkdir(parents=True, exist_ok=True)
    write_json(done, {"records": count, "skipped": dict(sorted(context.skipped.items()))})
    return UnitResult(unit.key, "built", count, dict(context.skipped))


def _cache_units(cache: Path) -> dict[str, list[CacheUnit]]:
    """Prepared units by split (units without a split are not used)."""
    manifest_path = cache / "manifest.json"
    if not manifest_path.is_file():
        raise ConfigError(f"{cache}: no manifest.json; run `multispa prepare` first")
    manifest = read_json(manifest_path)
    by_split: dict[str, list[CacheUnit]] = {split: [] for split in SPLITS}
    for unit_id, info in sorted(manifest["units"].items()):
        if info.get("status") == "done" and info.get("split") in SPLITS:
            by_split[info["split"]].append(CacheUnit(unit_id, cache / unit_id, info["split"]))
    return by_split


def _plan(
    config: GenerateConfig,
    split: str,
    family_name: str,
    subtasks: list[str],
    units: list[CacheUnit],
) -> tuple[list[str], dict[str, int]]:
    """Run (or reload) one family's plan for a split: the unit ids with selections, and the
    planner's reason-coded drop counts. Selections are stored per unit under the work folder."""
    root = _work(config.out, "plan", split, family_name)
    marker = _work(config.out, "plan", split, f"{family_name}.done.json")
    if not marker.is_file():
        family = registry.family(family_name)
        own = [u for u in units if u.dataset == family.dataset]
        quotas = {s: config.quota(split, s) for s in subtasks}
        selections, stats = family.plan(split, own, quotas, config.seed, config.settings)
        by_unit: dict[str, list[Selection]] = {}
        for selection in selections:
            by_unit.setdefault(selection.unit_id, []).append(selection)
        temporary = root.with_name(f".{root.name}.tmp")
        shutil.rmtree(temporary, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
        temporary.mkdir(parents=True)
        for unit_id, rows in by_unit.items():
            rows.sort(key=lambda s: json.dumps(s.to_json(), sort_keys=True))
            lines = "".join(json.dumps(s.to_json(), sort_keys=True) + "\n" for s in rows)
            (temporary / f"{unit_id.replace('/', '__')}.jsonl").write_text(lines, "utf-8")
        os.replace(temporary, root)
        write_json(marker, {"units": sorted(by_unit), "skipped": dict(sorted(stats.items()))})
    info = read_json(marker)
    return list(info["units"]), info["skipped"]


def _output_file(split: str, record: Mapping[str, Any]) -> str:
    source = record["meta"]["source"]
    suffix = "" if source == "scannet" else f".{source_code(source)}"
    return f"{split}/{record['task']}/{record['subtask']}{suffix}.jsonl"


def _merge(out: Path, split: str, keys: list[str]) -> dict[str, int]:
    """Concatenate shards (sorted keys) into per-subtask files; check ids are unique."""
    handles: dict[str, Any] = {}
    counts: Counter[str] = Counter()
    ids: dict[str, set[bytes]] = {}
    try:
        for key in sorted(keys):
            shard = shard_path(out, key)
            with open(shard, encoding="utf-8") as lines:
                for line in lines:
                    record = json.loads(line)
                    name = _output_file(split, record)
                    digest = hashlib.blake2b(record["id"].encode(), digest_size=12).digest()
                    seen = ids.setdefault(name, set())
                    if digest in seen:
                        raise ConfigError(f"duplicate record id {record['id']} in {name}")
                    seen.add(digest)
                    if name not in handles:
                        (out / name).parent.mkdir(parents=True, exist_ok=True)
                        handles[name] = open(  # noqa: SIM115
                            _merge_temporary(out, name), "w", encoding="utf-8")
                    handles[name].write(line)
                    counts[name] += 1
    finally:
        for handle in handles.values():
            handle.close()
    for name in handles:
        os.replace(_merge_temporary(out, name), out / name)
    return dict(sorted(counts.items()))


def _merge_temporary(out: Path, name: str) -> Path:
    return _work(out, SCRATCH, "merge__" + name.replace("/", "__"))


def _internvl_meta(counts: Mapping[str, int]) -> dict[str, Any]:
    """InternVL meta file: one entry per subtask file (paths relative to the dataset folder)."""
    meta = {}
    for name, length in counts.items():
        key = Path(name).with_suffix("").as_posix().replace("/", "_")
        meta[key] = {
            "root": "images/",
            "annotation": name,
            "data_augment": False,
            "repeat_time": 1,
            "length": length,
        }
    return meta


def _check_settings(config: GenerateConfig) -> None:
    path = config.out / "generate_settings.json"
    settings = config.output_settings()
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    if path.is_file() and not config.force:
        previous = read_json(path)
        if previous.get("digest") != digest:
            raise ConfigError(
                f"{config.out} was generated with other settings; use another --out or --force"
            )
    if config.force:
        shutil.rmtree(config.out / WORK, ignore_errors=True)
    write_json(path, {"digest": digest, "settings": settings})


def generate(
    config: GenerateConfig,
    on_start: Callable[[int], None] | None = None,
    on_result: Callable[[UnitResult], None] | None = None,
) -> GenerateSummary:
    """Run the three stages and write ``manifest.json`` and ``meta_<split>.json``.

    Raises:
        ConfigError: bad settings, no prepared cache, or OUT generated with other settings.
        OutputError: OUT cannot be written (a file in the way...).
        LockError: another process is writing OUT.
    """
    start = time.perf_counter()
    check_output_dir(config.out)
    by_split = _cache_units(config.cache)
    families = registry.resolve_tasks(list(config.tasks) if config.tasks else None)
    with output_folder(config.out, "multispa generate"):
        _check_settings(config)
        scratch = _work(config.out, SCRATCH)
        shutil.rmtree(scratch, ignore_errors=True)  # temporaries of a killed run
        scratch.mkdir(parents=True)
        summary = _generate(config, by_split, families, start, on_start, on_result)
        shutil.rmtree(scratch, ignore_errors=True)
        return summary


def _generate(
    config: GenerateConfig,
    by_split: dict[str, list[CacheUnit]],
    families: dict[str, list[str]],
    start: float,
    on_start: Callable[[int], None] | None,
    on_result: Callable[[UnitResult], None] | None,
) -> GenerateSummary:
    """Plan, generate and merge into the locked OUT (see the module docstring)."""
    work_units: list[GenerateUnit] = []
    plan_skipped: dict[str, Counter[str]] = {split: Counter() for split in config.splits()}
    unit_of = {u.unit_id: u for units in by_split.values() for u in units}
    for split in config.splits():
        for family_name, subtasks in families.items():
            unit_ids, skipped = _plan(config, split, family_name, subtasks, by_split[split])
            plan_skipped[split].update(skipped)
            for unit_id in sorted(unit_ids):
                unit = unit_of[unit_id]
                work_units.append(
                    GenerateUnit(split, family_name, unit, config.out, config.seed, config.settings)
                )
    if on_start is not None:
        on_start(len(work_units))
    executor = make_executor(config.executor, config.workers, config.ray_address)
    results: list[UnitResult] = []
    for result in executor.map_unordered(run_generate_unit, work_units):
        results.append(result)
        if on_result is not None:
            on_result(result)
    results.sort(key=lambda r: r.key)
    failed = [r for r in results if r.status == "failed"]
    counts: dict[str, dict[str, int]] = {}
    skipped: dict[str, dict[str, int]] = {}
    for split in config.splits():
        keys = [u.key for u in work_units if u.split == split]
        if not failed:
            counts[split] = _merge(config.out, split, keys)
        total = Counter(plan_skipped[split])
        for result in results:
            if result.key.startswith(f"{split}/"):
                total.update(result.skipped)
        skipped[split] = dict(sorted(total.items()))
    summary = GenerateSummary(counts, skipped, results, time.perf_counter() - start)
    if failed:
        return summary
    for split, split_counts in counts.items():
        write_json(config.out / f"meta_{split}.json", _internvl_meta(split_counts))
    cache_manifest = (config.cache / "manifest.json").read_bytes()
    write_json(
        config.out / "manifest.json",
        {
            "multispa_version": __version__,
            "settings": config.output_settings(),
            "cache": {
                "path": str(config.cache),
                "manifest_sha256": hashlib.sha256(cache_manifest).hexdigest(),
                # how scenes and clips were split (lists, or the hash fallback and its warning)
                "splits": json.loads(cache_manifest).get("splits", {}),
            },
            "counts": counts,
            "skipped": skipped,
        },
    )
    return summary
