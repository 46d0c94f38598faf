"""VLMEvalKit export: the benchmark as one multi-image dataset TSV, and predictions back.

Layout written by :func:`export_vlmevalkit` (``multispa export --format vlmevalkit``) into
``OUT``::

    OUT/MultiSPA.tsv   one row per bench item, in bench order
    OUT/SCORING.md     this text: columns, scoring rules, how to score

Columns (tab-separated, UTF-8, fields quoted when they hold a tab, newline or ``"``):

- ``index``: 0, 1, 2... (unique integer);
- ``id``: the benchmark item id (carried into VLMEvalKit's prediction file; scoring joins on it);
- ``image``: a JSON list of base64 JPEG strings, one per image in prompt order (the original
  JPEG bytes; other formats are re-encoded as JPEG, quality 95); one to two images for the
  paper's subtasks, a whole view set (2–32, default 8) for the N-view subtasks;
- ``question``: the prompt as ``multispa eval`` sends it — the item's text without its
  ``<image>`` placeholders (the ``Image-1:``/``Image-2:`` labels stay; VLMEvalKit's default
  prompt puts the images first, in order) followed by the answer-format instruction;
- ``answer``: the ground truth as the text the reference answer puts between backticks
  (``left``, ``B``, ``1834``, ``[ 412 , 655 ]``, ``[ 12 , -40 , 300 ]``);
- ``category``: the subtask; ``l2-category``: the Table-2 row key (``nview`` for the N-view
  subtasks, which are in no row);
- ``benchmark_key``: subtask, or ``subtask:adt`` / ``subtask:pstudio`` for object movement;
- ``answer_type``: label, choice, scalar, vector or coord;
- ``gt``, ``width_list``, ``height_list``, ``meta``: JSON, as in the bench item.

There is deliberately **no** ``image_path`` column. VLMEvalKit rewrites a dataset TSV larger than
1 GB (the full benchmark is about 1.9 GB, every item embedding its own frames) into
``<name>_local.tsv``: it decodes the images into ``$LMUData/images/<name>/``, drops the ``image``
column and reads the images through ``image_path`` from then on. When the TSV has an
``image_path`` column, its values are kept as they are, so bare file names would point nowhere
(VLMEvalKit opens them relative to the working directory); without the column, VLMEvalKit names
the files itself (``<index>.jpg``, or ``<index>_<k>.jpg`` with ``k`` from 0 when a row has several
images) and writes their absolute paths into ``image_path``. Below 1 GB it decodes each row when
it is asked, to ``$LMUData/images/<name>/<index>_<k>.png`` (``<index>.png`` for one image). Both
paths therefore reach the right images with no ``image_path`` column (VLMEvalKit re-saves the
decoded pixels with Pillow: PNG, or JPEG at Pillow's default quality above 1 GB), and need no
sharding (which would split the benchmark into several datasets to run and merge) and no
absolute paths chosen at export time (which would tie the file to one machine's ``$LMUData``).

Scoring rules (deterministic, no LLM judge; written out in full in ``docs/metrics.md`` of the
multispa repository). VLMEvalKit's generic VQA scoring does not apply: score with multispa.

- Answer extraction: the last single-backtick span that parses for the item's answer type; else
  the last match of the type's fallback pattern (label: one of the subtask's words; N-view
  nearest view: the last ``image k``, else the last free-standing integer; choice:
  ``(X)``, then a letter after option/answer/point/label, then a standalone capital; scalar: a
  signed decimal, ``1,234`` separators allowed; vector: a bracketed triple; coord: a bracketed
  pair). A number followed by m, cm or mm (or the words) is converted to mm; a bare number is in
  the subtask's unit (mm, or degrees for the two degree subtasks; a count for the N-view object
  count, where a unit makes it unparsable). An unparsable answer is wrong and counted as a parse
  failure.
- Correct iff: label/choice exact after normalisation; N-view object count exactly equal;
  scalar ``|p − g| ≤ 0.2·|g|``; vector
  ``‖p − g‖ ≤ 0.2·‖g‖``; a static object-movement ``gt`` (0 or [0, 0, 0]) ``‖p‖ ≤ 10`` mm; coord
  pixel distance ≤ 5 % of the image width, both points mapped to pixels at cell centres
  ``u = (x + 0.5)·W/1000``, ``v = (y + 0.5)·H/1000`` with the last image's size; depth
  comparison by coordinate also needs the answer strictly nearer to the correct candidate than to
  the other one. All comparisons are exact (integers and rationals, squared norms).
- Aggregation: accuracy per benchmark key (the paper's 26 keys and the nine N-view keys); each
  of the paper's 12 Table-2 rows pools its keys' items; **Average** = unweighted mean of the 12
  rows; the N-view keys form a table of their own whose **N-view average** is the unweighted
  mean of the nine (not part of the Average). MRA (VSI-Bench mean relative
  accuracy) is reported next to accuracy for scalar and vector subtasks; 95 % intervals come from
  a stratified percentile bootstrap.

How to run and score:

1. Copy ``MultiSPA.tsv`` into ``$LMUData`` (VLMEvalKit's data root, ``~/LMUData`` by default) and
   run inference only, asking for a TSV prediction file, e.g.
   ``PRED_FORMAT=tsv python run.py --data MultiSPA --model <model> --mode infer``
   (the file is then ``outputs/<model>/.../<model>_MultiSPA.tsv``; with the default ``xlsx``
   convert it first, e.g. with pandas ``read_excel(...).to_csv(..., sep="\\t")``).
2. Convert the predictions to multispa's ``{"id", "response"}`` JSONL:
   ``python -m multispa.formats.vlmevalkit <model>_MultiSPA.tsv --out predictions.jsonl``
   (``.tsv``, ``.csv``, ``.json`` and ``.jsonl`` prediction files are read; rows are joined on the
   ``id`` column, or on ``index`` with ``--tsv MultiSPA.tsv``).
3. Score against the benchmark folder the TSV was made from:
   ``multispa eval --bench BENCH --model predictions:predictions.jsonl --out RUN`` writes
   ``RUN/scores.json`` (12 rows, Average, N-view table, every subtask, intervals, parse
   failures), and
   ``multispa report RUN --out report.html`` renders it; the scorer alone is
   ``python -m multispa.metrics.score BENCH/bench.jsonl --predictions predictions.jsonl
   --out scores.json``.
"""

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from multispa.errors import FormatError, MissingFileError
from multispa.formats import gt_text, question_text
from multispa.fs import check_output_dir, output_folder
from multispa.jsonl import read_json_file
from multispa.metrics.rows import NVIEW_GROUP, NVIEW_SUBTASKS, ROW_OF_SUBTASK, benchmark_key
from multispa.metrics.score import load_jsonl
from multispa.report.load import Bench, load_bench

__all__ = [
    "COLUMNS",
    "SCORING_TEXT",
    "TSV_NAME",
    "export_vlmevalkit",
    "main",
    "read_predictions",
    "write_predictions_jsonl",
]

TSV_NAME = "MultiSPA.tsv"
COLUMNS: tuple[str, ...] = (
    "index", "id", "image", "question", "answer", "category", "l2-category",
    "benchmark_key", "answer_type", "gt", "width_list", "height_list", "meta",
)


def _markdown(docstring: str) -> str:
    """The module docstring minus its summary line, reST markup turned into Markdown."""
    body = docstring.split("\n", 2)[2]
    body = re.sub(r":func:`(\w+)`", r"`\1()`", body).replace("``", "`")
    return "# MultiSPA for VLMEvalKit\n\n" + body.replace("::\n", ":\n")


SCORING_TEXT: str = _markdown(__doc__ or "\n\n")
_JPEG_MAGIC = b"\xff\xd8\xff"


def _jpeg_base64(path: Path) -> str:
    """Base64 of the image file's JPEG bytes (re-encoded at quality 95 if not a JPEG)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MissingFileError(path, "benchmark image not found") from None
    if not data.startswith(_JPEG_MAGIC):
        try:
            with Image.open(io.BytesIO(data)) as image:
                buffer = io.BytesIO()
                image.convert("RGB").save(buffer, format="JPEG", quality=95)
        except (UnidentifiedImageError, OSError) as exc:
            raise FormatError(path, f"not a readable image ({exc})") from None
        data = buffer.getvalue()
    return base64.b64encode(data).decode("ascii")


def _compact(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _row(index: int, item: Mapping[str, Any], bench: Bench) -> dict[str, str]:
    try:
        key = benchmark_key(item)
    except ValueError as exc:
        raise FormatError(bench.root / "bench.jsonl", str(exc)) from None
    images = [_jpeg_base64(bench.image_path(rel)) for rel in item["image"]]
    return {
        "index": str(index),
        "id": str(item["id"]),
        "image": json.dumps(images),
        "question": question_text(item),
        "answer": gt_text(item),
        "category": str(item["subtask"]),
        "l2-category": ROW_OF_SUBTASK.get(key, NVIEW_GROUP if key in NVIEW_SUBTASKS else ""),
        "benchmark_key": key,
        "answer_type": str(item["answer_type"]),
        "gt": _compact(item["gt"]),
        "width_list": _compact(item.get("width_list")),
        "height_list": _compact(item.get("height_list")),
        "meta": _compact(item.get("meta")),
    }


def export_vlmevalkit(bench_dir: str | Path, out_dir: str | Path) -> Path:
    """Write ``OUT/MultiSPA.tsv`` and ``OUT/SCORING.md`` from a BENCH folder; return the TSV.

    Raises:
        MissingFileError, FormatError: the bench folder or one of its images is missing or
            malformed.
        OutputError, LockError: OUT cannot be written, or another process writes it.
    """
    out = Path(out_dir)
    check_output_dir(out)
    bench = load_bench(bench_dir)
    with output_folder(out, "multispa export"):
        tsv = out / TSV_NAME
        tmp = tsv.with_suffix(".tsv.tmp")
        try:
            with tmp.open("w", encoding="utf-8", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=COLUMNS, delimiter="\t",
                                        lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
                writer.writeheader()
                for index, item in enumerate(bench.items):
                    writer.writerow(_row(index, item, bench))
            tmp.replace(tsv)
        finally:
            tmp.unlink(missing_ok=True)
        (out / "SCORING.md").write_text(SCORING_TEXT, encoding="utf-8")
    return tsv


# ------------------------------------------------------------------------------ predictions


def _table_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a VLMEvalKit prediction file (.tsv, .csv, .json list of records, .jsonl)."""
    suffix = path.suffix.lower()
    if suffix in (".tsv", ".csv"):
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise MissingFileError(path) from None
        except UnicodeDecodeError as exc:
            raise FormatError(path, f"not UTF-8 text ({exc.reason})") from None
        limit = csv.field_size_limit()
        csv.field_size_limit(max(limit, len(text) + 1))
        try:
            reader = csv.DictReader(io.StringIO(text, newline=""),
                                    delimiter="\t" if suffix == ".tsv" else ",")
            return list(reader)
        except csv.Error as exc:
            raise FormatError(path, f"malformed {suffix[1:]} ({exc})") from None
        finally:
            csv.field_size_limit(limit)
    if suffix == ".jsonl":
        return load_jsonl(path)
    if suffix == ".json":
        data = read_json_file(path)
        if isinstance(data, list) and all(isinstance(row, dict) for row in data):
            return data
        raise FormatError(path, "expected a JSON list of row objects")
    raise FormatError(path, f"unsupported prediction file type {suffix!r}: expected .tsv, .csv, "
                            ".json or .jsonl (set PRED_FORMAT=tsv in VLMEvalKit, or convert .xlsx)")


def _index_to_id(tsv: Path) -> dict[str, str]:
    return {str(row.get("index")): str(row.get("id")) for row in _table_rows(tsv)}


def _cell_text(value: object) -> str | None:
    """A prediction cell as text; empty/NaN cells become ``None`` (scored as empty)."""
    if value is None:
        return None
    if isinstance(value, float) and value != value:
        return None
    return value if isinstance(value, str) else str(value)


def read_predictions(path: str | Path, *, tsv: str | Path | None = None) -> dict[str, str | None]:
    """``{item id: response}`` from a VLMEvalKit prediction file (``prediction`` column).

    Rows are matched by their ``id`` column; without one, ``index`` is mapped to ids through the
    exported ``tsv``.

    Raises:
        FormatError: no ``prediction`` column, no way to find a row's id, or a repeated id.
    """
    path = Path(path)
    rows = _table_rows(path)
    by_index = _index_to_id(Path(tsv)) if tsv is not None else None
    out: dict[str, str | None] = {}
    for number, row in enumerate(rows, start=1):
        if "prediction" not in row:
            raise FormatError(path, f"row {number}: no 'prediction' column")
        rid = row.get("id")
        if not (isinstance(rid, str) and rid):
            if by_index is None:
                raise FormatError(path, f"row {number}: no 'id' column; pass the exported TSV "
                                        "to map 'index' to ids")
            rid = by_index.get(str(row.get("index")))
            if rid is None:
                raise FormatError(path, f"row {number}: index {row.get('index')!r} is not in "
                                        f"{tsv}")
        if rid in out:
            raise FormatError(path, f"row {number}: id {rid!r} repeated")
        out[rid] = _cell_text(row["prediction"])
    return out


def write_predictions_jsonl(predictions: Mapping[str, str | None], out: str | Path) -> Path:
    """Write ``{"id", "response"}`` lines (the scorer's and ``predictions:`` backend's input)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for rid, response in predictions.items():
            handle.write(json.dumps({"id": rid, "response": response}, ensure_ascii=False) + "\n")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m multispa.formats.vlmevalkit PRED_FILE --out predictions.jsonl [--tsv T]``."""
    parser = argparse.ArgumentParser(
        prog="python -m multispa.formats.vlmevalkit",
        description="Convert a VLMEvalKit prediction file to multispa predictions JSONL.")
    parser.add_argument("predictions", help="VLMEvalKit prediction file (.tsv/.csv/.json/.jsonl)")
    parser.add_argument("--out", required=True, help="predictions JSONL to write")
    parser.add_argument("--tsv", help="the exported MultiSPA.tsv (when rows lack 'id')")
    args = parser.parse_args(argv)
    try:
        predictions = read_predictions(args.predictions, tsv=args.tsv)
    except (FormatError, MissingFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write_predictions_jsonl(predictions, args.out)
    print(f"{len(predictions)} predictions -> {args.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
