"""Read RUN and BENCH folders for reports and exports.

RUN folder (``multispa eval``): ``config.json`` (model spec, prompt settings, bench hash...),
``scores.json`` (the scorer's report, :func:`multispa.metrics.score.score_records`),
``results.jsonl`` (per item ``{"id", "benchmark_key", "response", "parsed", "reason",
"correct", "mra"}``) and ``predictions.jsonl`` (``{"id", "response", "error", "latency_s"}``).
Only ``scores.json`` is required; without ``results.jsonl`` the per-item outcomes come from the
scorer's ``records`` list joined with ``predictions.jsonl``.

BENCH folder (``multispa bench build``): ``manifest.json``, ``bench.jsonl`` (one item per line:
``id``, ``image`` paths relative to ``BENCH/images``, ``text``, ``answer``, ``gt``,
``answer_type``, ``task``, ``subtask``, ``width_list``, ``height_list``, ``meta``) and
``images/``. The bench of a run is found from ``--bench``, else from a path in the run's config
(``bench``, ``bench_dir``, ``bench_path`` or ``bench.path``/``bench.dir``), relative paths being
tried against the run folder and the working directory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from multispa.errors import FormatError, MissingFileError
from multispa.evaluate.bench import BENCH_FORMAT, load_bench_manifest
from multispa.evaluate.bench import load_bench as load_bench_items
from multispa.jsonl import read_json_object
from multispa.metrics.score import load_jsonl

__all__ = [
    "BENCH_FORMAT",
    "Bench",
    "RunData",
    "find_bench_dir",
    "load_bench",
    "load_run",
    "load_runs",
    "run_is_blind",
    "run_label",
]



@dataclass(frozen=True)
class Bench:
    """A benchmark folder: its manifest and items (``bench.jsonl`` order).

    Attributes:
        root: the BENCH folder.
        manifest: ``manifest.json`` as a dict.
        items: the items, each a dict as stored in ``bench.jsonl``.
    """

    root: Path
    manifest: Mapping[str, Any]
    items: list[dict[str, Any]]

    def image_path(self, relative: str) -> Path:
        """The file of an item's image path (relative to ``BENCH/images``)."""
        return self.root / "images" / relative


@dataclass(frozen=True)
class RunData:
    """One evaluation run, as the report needs it.

    Attributes:
        path: the RUN folder.
        label: display name (the model spec, else the folder name).
        config: ``config.json`` (empty when absent).
        scores: ``scores.json``.
        outcomes: per item id, ``{"id", "key", "response", "parsed", "reason", "correct",
            "mra", "error"}`` (``response`` ``None`` when unknown; ``error`` the backend's
            failure message, if any).
        bench: the run's benchmark when found, else ``None``.
    """

    path: Path
    label: str
    config: Mapping[str, Any]
    scores: Mapping[str, Any]
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    bench: Bench | None = None


def _check_relative(path: Path, rid: object, value: object) -> str:
    """An image path must be relative, POSIX, without ``..`` (it stays inside BENCH/images)."""
    if not isinstance(value, str) or not value:
        raise FormatError(path, f"item {rid}: image paths must be non-empty strings, found "
                                f"{value!r}")
    pure = PurePosixPath(value)
    if pure.is_absolute() or ".." in pure.parts or "\\" in value:
        raise FormatError(path, f"item {rid}: image path {value!r} must be relative to "
                                "BENCH/images without '..'")
    return value


def load_bench(bench_dir: str | Path) -> Bench:
    """Read a BENCH folder (through :mod:`multispa.evaluate.bench`, plus image path checks).

    Raises:
        MissingFileError: no ``manifest.json`` or ``bench.jsonl``.
        FormatError: an unknown manifest format, or an item lacking a field or with an image
            path outside ``BENCH/images``.
    """
    root = Path(bench_dir)
    if not root.is_dir():
        raise MissingFileError(root, "benchmark folder not found")
    manifest = load_bench_manifest(root)
    path = root / "bench.jsonl"
    items = load_bench_items(root)
    for number, item in enumerate(items, start=1):
        if not isinstance(item["image"], list):
            raise FormatError(path, f"line {number}: 'image' must be a list of paths, found "
                                    f"{type(item['image']).__name__}")
        for value in item["image"]:
            _check_relative(path, item["id"], value)
    return Bench(root, manifest, items)


def run_is_blind(config: Mapping[str, Any]) -> bool:
    """Whether a run's config says its items were asked without images (``--blind``)."""
    return config.get("blind") is True


def run_label(config: Mapping[str, Any], run_dir: Path) -> str:
    """The display name of a run: its model spec, else the folder name; `` (blind)`` appended
    for a blind run."""
    label = _base_label(config, run_dir)
    return f"{label} (blind)" if run_is_blind(config) else label


def _base_label(config: Mapping[str, Any], run_dir: Path) -> str:
    for key in ("label", "name"):
        if isinstance(config.get(key), str) and config[key]:
            return config[key]
    model = config.get("model")
    if isinstance(model, str) and model:
        return model
    if isinstance(model, Mapping):
        for key in ("spec", "name"):
            if isinstance(model.get(key), str) and model[key]:
                return model[key]
    spec = config.get("model_spec")
    if isinstance(spec, str) and spec:
        return spec
    return run_dir.resolve().name


def find_bench_dir(config: Mapping[str, Any], run_dir: Path) -> Path | None:
    """The BENCH folder named in a run's config, if it exists (see the module docstring)."""
    candidates: list[object] = [config.get("bench"), config.get("bench_dir"),
                                config.get("bench_path")]
    bench = config.get("bench")
    if isinstance(bench, Mapping):
        candidates += [bench.get("path"), bench.get("dir")]
    for value in candidates:
        if not isinstance(value, str) or not value:
            continue
        raw = Path(value)
        for path in (raw,) if raw.is_absolute() else (run_dir / raw, raw):
            if (path / "manifest.json").is_file() and (path / "bench.jsonl").is_file():
                return path
    return None


def _outcomes(run_dir: Path, scores: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per-item outcomes from ``results.jsonl``, else ``scores.records`` + predictions."""
    results = run_dir / "results.jsonl"
    out: dict[str, dict[str, Any]] = {}
    if results.is_file():
        for row in load_jsonl(results):
            rid = row.get("id")
            if not isinstance(rid, str):
                raise FormatError(results, f"a row has no string 'id' (found {rid!r})")
            out[rid] = {
                "id": rid, "key": row.get("benchmark_key") or row.get("key"),
                "response": row.get("response"), "parsed": row.get("parsed"),
                "reason": row.get("reason"), "correct": bool(row.get("correct")),
                "mra": row.get("mra"), "error": row.get("error"),
            }
        return out
    responses: dict[str, Any] = {}
    predictions = run_dir / "predictions.jsonl"
    if predictions.is_file():
        for row in load_jsonl(predictions):
            if isinstance(row.get("id"), str):
                responses[row["id"]] = row.get("response")
    for record in scores.get("records") or []:
        if not isinstance(record, Mapping) or not isinstance(record.get("id"), str):
            continue
        rid = record["id"]
        out[rid] = {
            "id": rid, "key": record.get("key"), "response": responses.get(rid),
            "parsed": record.get("parsed"), "reason": record.get("reason"),
            "correct": bool(record.get("correct")), "mra": record.get("mra"),
        }
    return out


def load_run(run_dir: str | Path, *, bench_dir: str | Path | None = None,
             _benches: dict[Path, Bench] | None = None) -> RunData:
    """Read a RUN folder (and its bench, from ``bench_dir`` or the config, when found).

    Raises:
        MissingFileError: no ``scores.json`` (or ``bench_dir`` given but missing).
        FormatError: ``scores.json`` without the 12 ``rows``, or a malformed JSON file.
    """
    root = Path(run_dir)
    if not root.is_dir():
        raise MissingFileError(root, "run folder not found")
    scores = read_json_object(root / "scores.json")
    rows = scores.get("rows")
    if not isinstance(rows, list) or not all(isinstance(r, Mapping) and "key" in r
                                             for r in rows):
        raise FormatError(root / "scores.json", "no 'rows' list of row objects (is this the "
                                                "scorer's report?)")
    config_path = root / "config.json"
    config = read_json_object(config_path) if config_path.is_file() else {}
    bench_path = Path(bench_dir) if bench_dir is not None else find_bench_dir(config, root)
    bench = None
    if bench_path is not None:
        cache = {} if _benches is None else _benches
        key = bench_path.resolve()
        if key not in cache:
            cache[key] = load_bench(bench_path)
        bench = cache[key]
    return RunData(root, run_label(config, root), config, scores, _outcomes(root, scores), bench)


def load_runs(run_dirs: Sequence[str | Path], *,
              bench_dir: str | Path | None = None) -> list[RunData]:
    """:func:`load_run` for several folders, reading each distinct bench once; run labels that
    repeat get their folder name appended (``label (folder)``)."""
    benches: dict[Path, Bench] = {}
    runs = [load_run(path, bench_dir=bench_dir, _benches=benches) for path in run_dirs]
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.label] = counts.get(run.label, 0) + 1
    return [replace(run, label=f"{run.label} ({run.path.resolve().name})")
            if counts[run.label] > 1 else run for run in runs]
