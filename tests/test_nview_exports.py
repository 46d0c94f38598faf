"""N-view records (one view set of several images) through every export and back.

Dataset exports (LLaVA, OpenAI messages, HF Parquet, InternVL meta) and benchmark exports
(VLMEvalKit TSV, lmms-eval task) must keep all N images of an N-view record, in prompt order,
one per ``<image>`` tag; the benchmark exports also keep the N-view keys apart from the 12 rows.
"""

from __future__ import annotations

import base64
import csv
import json
from pathlib import Path

import pytest

from multispa.formats.dataset_export import export_dataset
from multispa.formats.hf_parquet import read_hf_parquet
from multispa.formats.internvl import read_internvl
from multispa.formats.llava import read_llava
from multispa.formats.lmms_eval import doc_to_visual, export_lmms_eval
from multispa.formats.messages import read_messages
from multispa.formats.vlmevalkit import export_vlmevalkit
from multispa.report import load_bench
from multispa.tasks.templates import NVIEW_SUBTASKS


@pytest.fixture(scope="module")
def nview_records(small_dataset: Path) -> dict[str, dict]:
    """The train split's N-view records by id (the small dataset's view sets have 8 images)."""
    records = {}
    for path in sorted((small_dataset / "train" / "nview").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            records[record["id"]] = record
    assert {r["subtask"] for r in records.values()} == set(NVIEW_SUBTASKS)
    assert all(len(r["image"]) == 8 for r in records.values())
    return records


@pytest.mark.parametrize("fmt", ["llava", "openai-messages", "hf-parquet", "internvl"])
def test_dataset_exports_keep_every_view(fmt: str, small_dataset: Path,
                                         nview_records: dict[str, dict], tmp_path: Path) -> None:
    out = tmp_path / fmt
    export_dataset(small_dataset, out, fmt, split="train")
    if fmt == "llava":
        samples = read_llava(out / "train.json")
    elif fmt == "openai-messages":
        samples = read_messages(out / "train.jsonl")
    elif fmt == "hf-parquet":
        samples = read_hf_parquet(out, "train")
    else:
        samples = read_internvl(out / "meta_train.json")
    found = {s.id: s for s in samples if s.id in nview_records}
    assert set(found) == set(nview_records)
    for rid, sample in found.items():
        record = nview_records[rid]
        assert sample.question == record["conversations"][0]["value"]
        assert sample.question.count("<image>") == len(sample.images) == 8
        tails = [Path(str(image)).as_posix() for image in sample.images]
        assert all(tail.endswith(rel) for tail, rel in zip(tails, record["image"], strict=True))
        if fmt == "hf-parquet":
            for data, rel in zip(sample.image_bytes, record["image"], strict=True):
                assert data == (small_dataset / "images" / rel).read_bytes()


def test_benchmark_exports_keep_every_view(small_bench: Path, tmp_path: Path) -> None:
    items = [item for item in load_bench(small_bench).items if item["subtask"] in NVIEW_SUBTASKS]
    assert items, "the small benchmark holds N-view items"
    tsv = export_vlmevalkit(small_bench, tmp_path / "vlm")
    with tsv.open(encoding="utf-8", newline="") as handle:
        rows = {row["id"]: row for row in csv.DictReader(handle, delimiter="\t")}
    for item in items:
        row = rows[item["id"]]
        images = json.loads(row["image"])
        assert "image_path" not in row  # VLMEvalKit names the decoded images itself
        assert len(images) == len(item["image"]) >= 2
        for encoded, rel in zip(images, item["image"], strict=True):
            assert base64.b64decode(encoded) == (small_bench / "images" / rel).read_bytes()
        assert row["l2-category"] == "nview" and row["benchmark_key"] == item["subtask"]
        assert row["question"].startswith("".join(f"Image-{k}:\n" for k in
                                                  range(1, len(images) + 1)))
    folder = tmp_path / "lmms"
    export_lmms_eval(small_bench, folder)
    docs = {json.loads(line)["id"]: json.loads(line)
            for line in (folder / "multispa.jsonl").read_text(encoding="utf-8").splitlines()}
    for item in items:
        doc = docs[item["id"]]
        assert doc["images"] == item["image"]
        visuals = doc_to_visual(doc, folder)
        assert len(visuals) == len(item["image"]) and all(v.mode == "RGB" for v in visuals)
