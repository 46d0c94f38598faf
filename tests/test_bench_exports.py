"""VLMEvalKit TSV and lmms-eval task folder exports of a hand-built BENCH folder."""

from __future__ import annotations

import ast
import base64
import csv
import importlib.util
import io
import json
from pathlib import Path
from typing import Any

import pyarrow.json as pyarrow_json
import pytest
import yaml
from PIL import Image

from multispa.errors import FormatError
from multispa.evaluate.backends.base import DEFAULT_INSTRUCTION
from multispa.formats import gt_text
from multispa.formats.lmms_eval import export_lmms_eval
from multispa.formats.vlmevalkit import (
    COLUMNS,
    export_vlmevalkit,
    main,
    read_predictions,
    write_predictions_jsonl,
)
from multispa.metrics.score import load_predictions, score_records
from multispa.report import load_bench
from test_report import RESPONSES_A, RESPONSES_B, make_bench


def _read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


@pytest.fixture
def bench(tmp_path: Path) -> Path:
    return make_bench(tmp_path)


# --------------------------------------------------------------------------- VLMEvalKit


def test_vlmevalkit_tsv_rows_images_and_answers(bench: Path, tmp_path: Path) -> None:
    tsv = export_vlmevalkit(bench, tmp_path / "vlm")
    items = load_bench(bench).items
    rows = _read_tsv(tsv)
    assert len(rows) == len(items) == 8
    assert tuple(rows[0]) == COLUMNS
    for index, (row, item) in enumerate(zip(rows, items, strict=True)):
        assert row["index"] == str(index) and row["id"] == item["id"]
        images = json.loads(row["image"])
        assert ast.literal_eval(row["image"]) == images  # VLMEvalKit reads it as a Python list
        assert len(images) == len(item["image"])
        for encoded, rel in zip(images, item["image"], strict=True):
            assert base64.b64decode(encoded) == (bench / "images" / rel).read_bytes()
        assert "image_path" not in row  # VLMEvalKit names the files (test_vlmevalkit_large)
        assert row["answer"] == gt_text(item)
        assert row["category"] == item["subtask"]
        assert json.loads(row["gt"]) == item["gt"]
        assert json.loads(row["meta"]) == item["meta"]
        assert json.loads(row["width_list"]) == item["width_list"]
        assert "<image>" not in row["question"]
        assert row["question"].endswith("\n" + DEFAULT_INSTRUCTION)
    assert rows[0]["answer"] == "left" and rows[3]["answer"] == "[ 245 , -38 , 912 ]"
    assert rows[5]["benchmark_key"] == "object_movement_distance_dot:adt"
    assert rows[5]["l2-category"] == "object_movement_distance"
    assert rows[0]["question"].startswith("Image-1:\nImage-2:\nQuestion about")
    scoring = (tmp_path / "vlm" / "SCORING.md").read_text(encoding="utf-8")
    assert scoring.startswith("# MultiSPA for VLMEvalKit")
    for needle in ("0.2", "5 %", "multispa eval", "predictions:", "PRED_FORMAT=tsv", "Average"):
        assert needle in scoring


def test_vlmevalkit_reencodes_non_jpeg_images(bench: Path, tmp_path: Path) -> None:
    rel = load_bench(bench).items[2]["image"][0]
    Image.new("RGB", (40, 30), (255, 0, 0)).save(bench / "images" / rel, format="PNG")
    rows = _read_tsv(export_vlmevalkit(bench, tmp_path / "vlm"))
    data = base64.b64decode(json.loads(rows[2]["image"])[0])
    assert data[:3] == b"\xff\xd8\xff"
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (40, 30) and image.format == "JPEG"


def _vlmevalkit_output(path: Path, tsv: Path, responses: dict[str, str],
                       with_id: bool = True) -> None:
    """A prediction file as VLMEvalKit writes it with PRED_FORMAT=tsv (all fields quoted)."""
    rows = _read_tsv(tsv)
    columns = [c for c in COLUMNS if c != "image" and (with_id or c != "id")] + ["prediction"]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            row = {**row, "prediction": responses.get(row["id"], "")}
            writer.writerow([row[c] for c in columns])


def test_vlmevalkit_predictions_round_trip_to_scores(bench: Path, tmp_path: Path) -> None:
    tsv = export_vlmevalkit(bench, tmp_path / "vlm")
    responses = {**RESPONSES_B, "val-object_size_height-a": 'a "quoted"\tanswer\n`810` mm'}
    pred = tmp_path / "model_MultiSPA.tsv"
    _vlmevalkit_output(pred, tsv, responses)
    read = read_predictions(pred)
    items = load_bench(bench).items
    assert set(read) == {item["id"] for item in items}
    for rid, response in responses.items():
        assert read[rid] == response
    out = write_predictions_jsonl(read, tmp_path / "predictions.jsonl")
    via_file = score_records(items, load_predictions(out), bootstrap=0)
    direct = score_records(items, read, bootstrap=0)
    assert via_file["records"] == direct["records"]
    assert via_file["records"][-1]["correct"] is True  # 810 vs 800
    # without an id column, rows are joined on index through the exported TSV
    bare = tmp_path / "bare.tsv"
    _vlmevalkit_output(bare, tsv, responses, with_id=False)
    with pytest.raises(FormatError, match="no 'id' column"):
        read_predictions(bare)
    assert read_predictions(bare, tsv=tsv) == read
    # the module's command line
    assert main([str(pred), "--out", str(tmp_path / "cli.jsonl")]) == 0
    assert load_predictions(tmp_path / "cli.jsonl") == read
    records = [{"index": 0, "id": "x", "prediction": "`left`"}]
    as_json = tmp_path / "p.json"
    as_json.write_text(json.dumps(records), encoding="utf-8")
    assert read_predictions(as_json) == {"x": "`left`"}
    with pytest.raises(FormatError, match="unsupported prediction file"):
        read_predictions(tmp_path / "p.xlsx")


# ----------------------------------------------------------------------------- lmms-eval


class _TaskLoader(yaml.SafeLoader):
    """PyYAML loader that reads lmms-eval's ``!function module.name`` tags as strings."""


_TaskLoader.add_constructor(
    "!function", lambda loader, node: f"!function {loader.construct_scalar(node)}"
)


def _import_utils(folder: Path) -> Any:
    spec = importlib.util.spec_from_file_location("multispa_lmms_utils_test", folder / "utils.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lmms_eval_yaml_has_the_task_keys(bench: Path, tmp_path: Path) -> None:
    yaml_path = export_lmms_eval(bench, tmp_path / "task")
    config = yaml.load(yaml_path.read_text(encoding="utf-8"), Loader=_TaskLoader)
    for key in ("task", "dataset_path", "dataset_kwargs", "test_split", "output_type",
                "doc_to_visual", "doc_to_text", "doc_to_target", "process_results",
                "metric_list", "generation_kwargs", "metadata"):
        assert key in config, key
    assert config["task"] == "multispa" and config["output_type"] == "generate_until"
    assert config["dataset_path"] == "json" and config["test_split"] == "test"
    data = Path(config["dataset_kwargs"]["data_files"]["test"])
    assert data.is_absolute() and data.is_file()
    assert config["doc_to_visual"] == "!function utils.doc_to_visual"
    assert config["process_results"] == "!function utils.process_results"
    assert config["doc_to_target"] == "answer"
    assert config["generation_kwargs"]["until"] == []
    metrics = {m["metric"]: m for m in config["metric_list"]}
    assert set(metrics) == {"accuracy", "average", "nview_average"}
    assert metrics["accuracy"]["aggregation"] == "!function utils.aggregate_accuracy"
    assert metrics["nview_average"]["aggregation"] == "!function utils.aggregate_nview_average"
    assert all(m["higher_is_better"] is True for m in metrics.values())
    post = config["lmms_eval_specific_kwargs"]["default"]["post_prompt"]
    assert post == "\n" + DEFAULT_INSTRUCTION
    # every image is in the folder; documents keep one type per field (one Arrow schema)
    docs = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines()]
    assert len(docs) == 8
    for field in docs[0]:
        assert len({type(doc[field]).__name__ for doc in docs}) == 1, field
    for doc in docs:
        assert all((tmp_path / "task" / "images" / rel).is_file() for rel in doc["images"])
    table = pyarrow_json.read_json(data)  # the Arrow JSON reader behind HF's json builder
    assert table.num_rows == 8 and table.column("id").to_pylist() == [d["id"] for d in docs]


def test_lmms_eval_utils_score_like_the_scorer(bench: Path, tmp_path: Path) -> None:
    folder = tmp_path / "task"
    yaml_path = export_lmms_eval(bench, folder)
    config = yaml.load(yaml_path.read_text(encoding="utf-8"), Loader=_TaskLoader)
    utils = _import_utils(folder)
    docs = [json.loads(line) for line in (folder / "multispa.jsonl").read_text(
        encoding="utf-8").splitlines()]
    items = load_bench(bench).items
    for responses in (RESPONSES_A, RESPONSES_B):
        answers = {doc["id"]: responses.get(doc["id"], "") for doc in docs}
        report = score_records(items, answers, bootstrap=0)
        expected = {r["id"]: r for r in report["records"]}
        outcomes = []
        for doc in docs:
            result = utils.process_results(doc, [answers[doc["id"]]])
            assert set(result) == {"accuracy", "average", "nview_average"}
            outcome = result["accuracy"]
            assert outcome["correct"] == expected[doc["id"]]["correct"]
            assert outcome["mra"] == expected[doc["id"]]["mra"]
            assert outcome["parsed"] == expected[doc["id"]]["parsed"]
            outcomes.append(outcome)
        assert utils.aggregate_accuracy(outcomes) == pytest.approx(
            report["summary"]["accuracy_pct"])
        assert utils.aggregate_average(outcomes) == pytest.approx(
            report["summary"]["average_pct"])
        assert utils.aggregate_nview_average(outcomes) == 0.0  # no N-view item in this bench
    # a right and a wrong answer to the same document
    label_doc = docs[0]
    assert utils.process_results(label_doc, ["It went `left`."])["accuracy"]["correct"] is True
    assert utils.process_results(label_doc, ["`right`"])["accuracy"]["correct"] is False
    assert utils.process_results(label_doc, [""])["accuracy"]["reason"] == "empty"
    # visuals and text
    for doc, item in zip(docs, items, strict=True):
        images = utils.doc_to_visual(doc)
        assert [im.size for im in images] == list(zip(item["width_list"], item["height_list"],
                                                      strict=True))
        assert all(im.mode == "RGB" for im in images)
        text = utils.doc_to_text(doc, config["lmms_eval_specific_kwargs"]["default"])
        assert "<image>" not in text and text.endswith(DEFAULT_INSTRUCTION)
        assert doc["answer"] == gt_text(item)
    assert utils.doc_to_text(docs[2], None) == (
        "Question about depth_estimation_dot?\n" + DEFAULT_INSTRUCTION)


def test_lmms_eval_readme_says_how_to_install(bench: Path, tmp_path: Path) -> None:
    export_lmms_eval(bench, tmp_path / "task")
    readme = (tmp_path / "task" / "README.md").read_text(encoding="utf-8")
    assert "pip install multispa" not in readme  # not on PyPI
    assert "not published on PyPI" in readme and "pip install /path/to/multispa" in readme
    assert '"filelock<4"' in readme and "torchvision" in readme and "torchaudio" in readme
    assert f"--include_path {(tmp_path / 'task').resolve()}" in readme
