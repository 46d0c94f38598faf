"""The evaluation loop behind ``multispa eval`` and ``multispa score``: resumable, then scored.

RUN folder::

    RUN/config.json        model spec, backend settings (no secrets), instruction, blind (the
                           images withheld), bench hash, selection (limit), versions,
                           started/finished times
    RUN/predictions.jsonl  {"id", "response", "error", "latency_s"}, one line per answered item,
                           appended, flushed and fsynced as each prediction arrives
    RUN/results.jsonl      per item: id, benchmark_key, response, error, parsed, reason, correct,
                           mra (from the scorer's per-record output)
    RUN/scores.json        the scorer's report (rows, Average, subtasks, CIs, parse failures)
                           plus a ``run`` block: ``asked`` counts the selected items the
                           backend answered over all the run's sessions (an error included,
                           each item once), ``errors`` the items whose answer is an error now;
                           both are the same for a run resumed after a kill as for one run
                           in one go

RUN is locked while a session runs (:mod:`multispa.lock`): a second ``eval`` into it stops.

Resume: ids already in ``predictions.jsonl`` without an error are not asked again, so a rerun
after a kill asks only the missing items, and a rerun of a finished run calls the backend zero
times. On load a truncated last line (a kill during a write) is dropped, and lines with an error
are removed (their items are asked again), so the file never holds two lines for one id.

A RUN folder belongs to one (model spec, benchmark content hash, instruction, blind or not) —
and, for the baselines, one seed and statistics source: :func:`run_eval` refuses another unless
``force``, which starts the run over (earlier predictions are deleted).

Scoring always goes through :func:`multispa.metrics.score.score_records`; an item whose
prediction has an error, or that has none, counts as wrong (reason ``"missing"``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from multispa import __version__
from multispa.errors import ConfigError, FormatError, MissingFileError
from multispa.evaluate.backends.base import (
    DEFAULT_INSTRUCTION,
    EvalItem,
    ModelBackend,
    ModelSpec,
    Prediction,
    blind_prompt,
    parse_model_spec,
)
from multispa.evaluate.backends.registry import BackendOptions, make_backend
from multispa.evaluate.bench import (
    IMAGES_NAME,
    ITEMS_NAME,
    item_to_record,
    load_bench,
    load_bench_manifest,
    write_text_atomic,
)
from multispa.fs import naming, writes_folder
from multispa.metrics.rows import benchmark_key
from multispa.metrics.score import score_records

__all__ = [
    "RUN_FORMAT",
    "PredictionLog",
    "build_eval_items",
    "format_scores_table",
    "run_eval",
    "select_items",
]

logger = logging.getLogger(__name__)

RUN_FORMAT = "multispa-run/1"
CONFIG_NAME = "config.json"
PREDICTIONS_NAME = "predictions.jsonl"
RESULTS_NAME = "results.jsonl"
SCORES_NAME = "scores.json"
NOT_RETURNED = "the backend returned no prediction for this item"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_json(path: Path, obj: object) -> None:
    write_text_atomic(path, json.dumps(obj, indent=1, ensure_ascii=False) + "\n")


# ------------------------------------------------------------------------------ items


def select_items(
    items: Sequence[Mapping[str, Any]], limit: int | None,
) -> list[Mapping[str, Any]]:
    """The first ``limit`` items of every benchmark-subtask key, in bench order (all if None)."""
    if limit is None:
        return list(items)
    if limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {limit}")
    taken: dict[str, int] = {}
    out: list[Mapping[str, Any]] = []
    for item in items:
        key = benchmark_key(item)
        if taken.get(key, 0) < limit:
            taken[key] = taken.get(key, 0) + 1
            out.append(item)
    return out


def build_eval_items(
    bench: str | Path, items: Iterable[Mapping[str, Any]], instruction: str | None,
    *, blind: bool = False,
) -> list[EvalItem]:
    """:class:`EvalItem` prompts: absolute image paths, ``text + "\\n" + instruction``.

    ``blind``: no images, and the text is :func:`~multispa.evaluate.backends.base.blind_prompt`
    (the placeholders removed, one sentence saying the images are not shown) + instruction.

    Raises:
        MissingFileError: an image is missing from ``BENCH/images`` (not checked when blind).
        FormatError: the number of ``<image>`` tokens differs from the number of images.
    """
    root = Path(bench).resolve() / IMAGES_NAME
    out: list[EvalItem] = []
    for item in items:
        images = tuple(root / rel for rel in item["image"])
        for image in () if blind else images:
            if not image.is_file():
                raise MissingFileError(image, f"image of benchmark item {item['id']} not found")
        text = item["text"]
        if text.count("<image>") != len(images):
            raise FormatError(Path(bench) / ITEMS_NAME,
                              f"item {item['id']}: {text.count('<image>')} <image> tokens for "
                              f"{len(images)} images")
        if blind:
            text, images = blind_prompt(text), ()
        if instruction:
            text = f"{text}\n{instruction}"
        out.append(EvalItem(id=item["id"], images=images, text=text, subtask=item["subtask"],
                            answer_type=item["answer_type"], record=item))
    return out


# ------------------------------------------------------------------------ predictions log


class PredictionLog:
    """``RUN/predictions.jsonl``: one JSON line per answered item, crash-safe.

    :meth:`load` reads it, drops a truncated last line and the lines with an error, and rewrites
    the file atomically when it dropped anything. :meth:`append` writes each line with a single
    ``write`` and flushes it at once, so a killed process loses only the items still in flight;
    ``fsync`` (which guards against an operating-system crash, not a kill) runs after a line when
    ``fsync_interval_s`` has passed since the last one, and on :meth:`close` — every line when
    the interval is 0. Each fsync costs milliseconds, which would otherwise bound instant
    backends (baselines, prediction files) to a few hundred items per second.

    Args:
        path: the file.
        fsync_interval_s: least time between two fsyncs, seconds.
    """

    def __init__(self, path: str | Path, fsync_interval_s: float = 0.2) -> None:
        self.path = Path(path)
        self.fsync_interval_s = fsync_interval_s
        self.entries: dict[str, dict[str, Any]] = {}
        self._handle: Any = None
        self._synced_at = 0.0
        self._unsynced = False

    def load(self) -> dict[str, dict[str, Any]]:
        """``{id: entry}`` of the answered items (no error).

        Raises:
            FormatError: a complete line is not a prediction object.
        """
        self.entries = {}
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return self.entries
        lines = data.split(b"\n")
        truncated = lines.pop() != b""  # text after the last newline: an interrupted write
        dropped = truncated
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                dropped = True
                continue
            try:
                obj = json.loads(raw)
            except (ValueError, RecursionError) as exc:
                raise FormatError(self.path, f"line {number}: invalid JSON ({exc})") from None
            rid = obj.get("id") if isinstance(obj, dict) else None
            response = obj.get("response") if isinstance(obj, dict) else None
            if not isinstance(rid, str) or not (response is None or isinstance(response, str)):
                raise FormatError(self.path, f"line {number}: expected {{\"id\": str, "
                                             "\"response\": str or null, ...}")
            if obj.get("error") is not None or rid in self.entries:
                dropped = True
                continue
            self.entries[rid] = obj
        if truncated:
            logger.warning("%s: ignored a truncated last line (interrupted write)", self.path)
        if dropped:
            write_text_atomic(self.path, "".join(self._line(e) for e in self.entries.values()))
        return self.entries

    @staticmethod
    def _line(entry: Mapping[str, Any]) -> str:
        return json.dumps(entry, ensure_ascii=False) + "\n"

    def append(self, prediction: Prediction) -> dict[str, Any]:
        """Write one prediction (flushed; fsynced per the interval) and return its entry."""
        entry = {"id": prediction.id, "response": prediction.response,
                 "error": prediction.error, "latency_s": round(float(prediction.latency_s), 4)}
        try:
            if self._handle is None:
                self._handle = self.path.open("a", encoding="utf-8", newline="\n")
            self._handle.write(self._line(entry))
            self._handle.flush()
            self._unsynced = True
            now = time.monotonic()
            if now - self._synced_at >= self.fsync_interval_s:
                self._sync(now)
        except OSError as error:  # e.g. a full disk: name the file
            raise naming(error, self.path) from None
        if prediction.error is None:
            self.entries[prediction.id] = entry
        return entry

    def _sync(self, now: float) -> None:
        os.fsync(self._handle.fileno())
        self._synced_at = now
        self._unsynced = False

    def close(self) -> None:
        """Fsync what is pending and close the append handle."""
        if self._handle is not None:
            handle, self._handle = self._handle, None
            try:
                if self._unsynced:
                    os.fsync(handle.fileno())
                    self._unsynced = False
                handle.close()
            except OSError as error:
                with contextlib.suppress(OSError):
                    handle.close()
                raise naming(error, self.path) from None


# ------------------------------------------------------------------------------ config


def _identity(
    spec: ModelSpec, manifest: Mapping[str, Any], instruction: str | None,
    options: BackendOptions, blind: bool = False,
) -> dict[str, Any]:
    """What makes two runs comparable; a RUN folder accepts only one. ``blind`` is recorded only
    when set, so sighted runs keep the identity of runs made before blind runs existed."""
    identity: dict[str, Any] = {
        "model": str(spec),
        "bench_content_sha256": manifest["content_sha256"],
        "instruction": instruction,
    }
    if spec.kind == "baseline":
        identity["baseline"] = options.to_config("baseline")
    if blind:
        identity["blind"] = True
    return identity


def _check_run_folder(out: Path, identity: Mapping[str, Any], force: bool) -> dict | None:
    """The previous config when it matches; clears the folder when ``force``; else refuses."""
    config_path = out / CONFIG_NAME
    previous: dict | None = None
    if config_path.exists():
        try:
            previous = json.loads(config_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            if not force:
                raise FormatError(config_path, f"not JSON ({exc}); use --force to start over") \
                    from None
        if previous is not None and not isinstance(previous, dict):
            previous = None
        if previous is not None:
            old = previous.get("identity", {})
            diff = sorted(k for k in set(old) | set(identity) if old.get(k) != identity.get(k))
            if not diff:
                return previous
            if not force:
                shown = "; ".join(f"{k}: run has {old.get(k)!r}, now {identity.get(k)!r}"
                                  for k in diff)
                raise ConfigError(f"{out} holds another run ({shown}); choose another --out or "
                                  "pass --force to start over")
    elif (out / PREDICTIONS_NAME).exists() and not force:
        raise ConfigError(f"{out} has {PREDICTIONS_NAME} but no {CONFIG_NAME}; choose another "
                          "--out or pass --force to start over")
    for name in (PREDICTIONS_NAME, RESULTS_NAME, SCORES_NAME, CONFIG_NAME):
        (out / name).unlink(missing_ok=True)
    return None


# ------------------------------------------------------------------------------- run


@writes_folder("multispa eval", argument="out_dir")
def run_eval(
    bench_dir: str | Path,
    spec: ModelSpec | str,
    out_dir: str | Path,
    *,
    instruction: str | None = DEFAULT_INSTRUCTION,
    limit: int | None = None,
    concurrency: int = 8,
    timeout_s: float = 120.0,
    max_retries: int = 3,
    api_key: str | None = None,
    batch_size: int = 1,
    max_new_tokens: int = 256,
    device: str | None = None,
    prior_from: str | Path | None = None,
    seed: int = 0,
    force: bool = False,
    backend: ModelBackend | None = None,
    progress: bool = True,
    bootstrap: int = 1000,
    blind: bool = False,
) -> dict[str, Any]:
    """Ask the model every benchmark item not yet answered in ``out_dir``, then score the run.

    Args:
        bench_dir: a BENCH folder (``multispa bench build``).
        spec: ``--model`` spec (string or parsed).
        out_dir: the RUN folder (created; resumed when it holds the same run).
        instruction: appended to every prompt after a newline; None sends the bare prompt.
        limit: only the first ``limit`` items of each benchmark-subtask key.
        concurrency, timeout_s, max_retries, api_key: OpenAI-compatible backend settings.
        batch_size, max_new_tokens, device: Hugging Face backend settings.
        prior_from: dataset folder whose train split gives the baselines' statistics (else the
            benchmark, leave-one-out).
        seed: seed of the baselines' draws.
        force: start over when ``out_dir`` holds another run.
        backend: use this backend instead of building one from ``spec`` (tests, embedding).
        progress: show a tqdm bar.
        bootstrap: resamples of the scorer's confidence intervals.
        blind: send the items without their images (a language-prior control; see
            :func:`build_eval_items`). The config records it and it is part of the run's
            identity. The baselines never look at images, so their blind runs answer alike;
            for ``predictions:`` the flag records that the answers came from a blind run.

    Returns:
        The report written to ``scores.json``.

    Raises:
        ConfigError: ``out_dir`` holds another run (without ``force``), or bad options.
        MissingFileError, FormatError: a bad benchmark or RUN folder.
        OutputError: ``out_dir`` cannot be written (a file in the way...).
        LockError: another process is writing ``out_dir``.
    """
    bench = Path(bench_dir)
    out = Path(out_dir)
    if isinstance(spec, str):
        spec = parse_model_spec(spec)
    if spec.kind == "predictions":
        spec = ModelSpec("predictions", str(Path(spec.name).resolve()))
    manifest = load_bench_manifest(bench)
    items = load_bench(bench)
    selected = select_items(items, limit)
    eval_items = build_eval_items(bench, selected, instruction, blind=blind)
    options = BackendOptions(
        concurrency=concurrency, timeout_s=timeout_s, max_retries=max_retries, api_key=api_key,
        batch_size=batch_size, max_new_tokens=max_new_tokens, device=device, seed=seed,
        prior_from=Path(prior_from) if prior_from is not None else None, bench_records=items,
    )
    identity = _identity(spec, manifest, instruction, options, blind)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    previous = _check_run_folder(out, identity, force)

    log = PredictionLog(out / PREDICTIONS_NAME)
    answered = log.load()
    pending = [item for item in eval_items if item.id not in answered]
    if backend is None and (pending or spec.kind in ("baseline", "predictions")):
        backend = make_backend(spec, options)
    describe = getattr(backend, "describe", None)
    config: dict[str, Any] = {
        "format": RUN_FORMAT,
        "identity": identity,
        "model": str(spec),
        "model_kind": spec.kind,
        "backend": {
            "name": getattr(backend, "name", None),
            "settings": options.to_config(spec.kind),
            "details": describe() if callable(describe) else None,
        },
        "instruction": {"enabled": instruction is not None, "text": instruction},
        "blind": blind,
        "bench": {
            "path": str(bench.resolve()),
            "content_sha256": manifest["content_sha256"],
            "items": len(items),
            "per_subtask": manifest.get("per_subtask"),
        },
        "selection": {"limit": limit, "items": len(selected)},
        "multispa_version": __version__,
        "started": previous.get("started") if previous else _now(),
        "last_started": _now(),
        "last_session_asked": len(pending),
        "finished": None,
    }
    _write_json(out / CONFIG_NAME, config)

    errors: dict[str, str] = {}
    if pending:
        assert backend is not None
        _ask(backend, pending, log, errors, total=len(eval_items), desc=str(spec),
             progress=progress)
    elif backend is not None:
        backend.close()

    scores = _score(bench, out, selected, log.entries, errors, backend, bootstrap)
    scores["run"] = {
        "model": str(spec),
        "bench_content_sha256": manifest["content_sha256"],
        "instruction_enabled": instruction is not None,
        "blind": blind,
        "limit": limit,
        "items": len(selected),
        "asked": sum(item["id"] in log.entries for item in selected) + len(errors),
        "errors": len(errors),
    }
    _write_json(out / SCORES_NAME, scores)
    config["finished"] = _now()
    _write_json(out / CONFIG_NAME, config)
    return scores


def _ask(
    backend: ModelBackend, pending: Sequence[EvalItem], log: PredictionLog,
    errors: dict[str, str], *, total: int, desc: str, progress: bool,
) -> None:
    """Stream the backend's predictions for ``pending`` into the log."""
    waiting = {item.id for item in pending}
    bar = tqdm(total=total, initial=total - len(pending), desc=desc, unit="item",
               disable=not progress, dynamic_ncols=True)
    try:
        for prediction in backend.generate(pending):
            if prediction.id not in waiting:
                logger.warning("%s: ignored a prediction for %r (not asked, or repeated)",
                               getattr(backend, "name", "backend"), prediction.id)
                continue
            waiting.discard(prediction.id)
            if prediction.response is not None and not isinstance(prediction.response, str):
                prediction = Prediction(prediction.id, None, error="response is not text",
                                        latency_s=prediction.latency_s)
            log.append(prediction)
            if prediction.error is not None:
                errors[prediction.id] = prediction.error
            bar.update(1)
        for rid in sorted(waiting):
            log.append(Prediction(rid, None, error=NOT_RETURNED))
            errors[rid] = NOT_RETURNED
            bar.update(1)
    finally:
        bar.close()
        log.close()
        backend.close()
    if errors:
        logger.warning("%d item(s) got an error (scored as missing; a rerun asks them again)",
                       len(errors))


def _score(
    bench: Path, out: Path, selected: Sequence[Mapping[str, Any]],
    answered: Mapping[str, Mapping[str, Any]], errors: Mapping[str, str],
    backend: ModelBackend | None, bootstrap: int,
) -> dict[str, Any]:
    """Score the selected items, write ``results.jsonl``; return the report without records."""
    predictions: dict[str, str | None] = {
        item["id"]: answered[item["id"]]["response"]
        for item in selected if item["id"] in answered
    }
    for rid in getattr(backend, "unknown_ids", None) or ():
        predictions.setdefault(rid, None)
    records = [item_to_record(item) for item in selected]
    report = score_records(records, predictions, source=str(bench / ITEMS_NAME),
                           bootstrap=bootstrap)
    lines = []
    for row in report.pop("records"):
        rid = row["id"]
        entry = answered.get(rid)
        lines.append(json.dumps({
            "id": rid,
            "benchmark_key": row["key"],
            "response": entry["response"] if entry else None,
            "error": errors.get(rid) if entry is None else None,
            "parsed": row["parsed"],
            "reason": row["reason"],
            "correct": row["correct"],
            "mra": row["mra"],
        }, ensure_ascii=False) + "\n")
    write_text_atomic(out / RESULTS_NAME, "".join(lines))
    return report


# ---------------------------------------------------------------------------- printing


def _pct(value: float | None) -> str:
    return "    -" if value is None else f"{value:6.2f}"


def format_scores_table(scores: Mapping[str, Any]) -> str:
    """The 12 rows (accuracy %, 95 % interval, n) and the Average, as aligned text; then, when
    the run has N-view items, the N-view subtasks and their average in a table of their own."""
    lines = [f"{'Row':<28} {'Acc %':>6}  {'95% CI':<17} {'n':>5}"]
    for row in scores["rows"]:
        ci = row.get("ci_pct")
        shown = f"[{ci[0]:6.2f}, {ci[1]:6.2f}]" if ci else f"{'-':<17}"
        lines.append(f"{row['short_name']:<28} {_pct(row['accuracy_pct'])}  {shown:<17} "
                     f"{row['n']:>5}")
    summary = scores["summary"]
    ci = summary.get("average_ci_pct")
    shown = f"[{ci[0]:6.2f}, {ci[1]:6.2f}]" if ci else f"{'-':<17}"
    lines.append(f"{'Average':<28} {_pct(summary['average_pct'])}  {shown:<17} "
                 f"{summary['records']:>5}")
    if summary.get("rows_missing"):
        lines.append(f"(Average over {summary['average_rows']} rows; missing: "
                     f"{', '.join(summary['rows_missing'])})")
    nview = scores.get("nview") or {}
    if nview.get("average_pct") is not None:
        lines.append("")
        lines.append(f"{'N-view subtask':<28} {'Acc %':>6}  {'95% CI':<17} {'n':>5}")
        for row in nview["subtasks"]:
            ci = row.get("ci_pct")
            shown = f"[{ci[0]:6.2f}, {ci[1]:6.2f}]" if ci else f"{'-':<17}"
            lines.append(f"{row['name']:<28} {_pct(row['accuracy_pct'])}  {shown:<17} "
                         f"{row['n']:>5}")
        ci = nview.get("average_ci_pct")
        shown = f"[{ci[0]:6.2f}, {ci[1]:6.2f}]" if ci else f"{'-':<17}"
        lines.append(f"{'N-view average':<28} {_pct(nview['average_pct'])}  {shown:<17} "
                     f"{sum(row['n'] for row in nview['subtasks']):>5}")
    run = scores.get("run") or {}
    if run.get("blind"):
        lines.append("Blind run: the items were asked without their images.")
    if run.get("errors"):
        lines.append(f"{run['errors']} item(s) had a backend error and count as wrong; rerun to "
                     "retry them")
    return "\n".join(lines)
