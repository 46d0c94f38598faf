"""Dataset exports (LLaVA, OpenAI messages, HF Parquet, InternVL meta): round trips against the
source records, bad-input errors, atomic output, and the ``multispa export`` command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image

from multispa.cli import export as export_cli
from multispa.cli import main
from multispa.errors import ConfigError, DatasetError, FormatError, MissingFileError
from multispa.formats.dataset_export import (
    DATASET_FORMATS,
    EXPORT_MANIFEST,
    Sample,
    export_dataset,
)
from multispa.formats.hf_parquet import read_hf_parquet
from multispa.formats.internvl import read_internvl
from multispa.formats.llava import read_llava
from multispa.formats.messages import content_parts, content_text, read_messages

SPLITS = ("train", "val")


def _source_records(dataset: Path, split: str) -> list[dict[str, Any]]:
    """The split's records straight from the .jsonl files (sorted names, line order)."""
    files = sorted((dataset / split).glob("*/*.jsonl"),
                   key=lambda p: p.relative_to(dataset).as_posix())
    return [json.loads(line) for path in files
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def source(small_dataset: Path) -> dict[str, list[dict[str, Any]]]:
    return {split: _source_records(small_dataset, split) for split in SPLITS}


def _assert_same(samples: list[Sample], records: list[dict[str, Any]],
                 images: list[list[str]] | None = None) -> None:
    """Same ids, questions, answers and (given) image references, in the same order."""
    assert len(samples) == len(records) > 0
    for k, (sample, record) in enumerate(zip(samples, records, strict=True)):
        assert sample.id == record["id"]
        assert sample.question == record["conversations"][0]["value"]
        assert sample.answer == record["conversations"][1]["value"]
        expected = record["image"] if images is None else images[k]
        assert list(sample.images) == expected, sample.id


def _mini_dataset(dataset: Path, out: Path, lines: int = 3) -> tuple[Path, Path]:
    """A copy of one val file's first lines (images shared by a link); returns (DS, the file)."""
    manifest = json.loads((dataset / "manifest.json").read_text(encoding="utf-8"))
    name = sorted(manifest["counts"]["val"])[0]
    text = (dataset / name).read_text(encoding="utf-8").splitlines()[:lines]
    (out / name).parent.mkdir(parents=True)
    (out / name).write_text("\n".join(text) + "\n", encoding="utf-8")
    (out / "images").symlink_to(dataset / "images", target_is_directory=True)
    manifest["counts"] = {"val": {name: len(text)}}
    (out / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return out, out / name


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------ LLaVA


def test_llava_round_trip(small_dataset: Path, source: dict[str, list[dict[str, Any]]],
                          tmp_path: Path) -> None:
    out = tmp_path / "llava"
    result = export_dataset(small_dataset, out, "llava")
    assert result.counts == {split: len(source[split]) for split in SPLITS}
    assert result.image_folder == small_dataset.resolve() / "images"
    assert {p.name for p in result.files} == {"train.json", "val.json", EXPORT_MANIFEST}
    for split in SPLITS:
        samples = read_llava(out / f"{split}.json")
        _assert_same(samples, source[split])
        for sample in samples:
            assert all((result.image_folder / rel).is_file() for rel in sample.images)
        entries = json.loads((out / f"{split}.json").read_text(encoding="utf-8"))
        for entry, record in zip(entries, source[split], strict=True):
            assert set(entry) == {"id", "image", "conversations"}
            assert entry["conversations"] == record["conversations"]
            # one image: a string (LLaVA-1.5); several: a list in prompt order
            assert entry["image"] == (record["image"][0] if len(record["image"]) == 1
                                      else record["image"])
    assert any(isinstance(e["image"], str) for e in entries)
    assert any(isinstance(e["image"], list) for e in entries)
    manifest = json.loads((out / EXPORT_MANIFEST).read_text(encoding="utf-8"))
    assert manifest["format"] == "llava"
    assert manifest["image_folder"] == str(result.image_folder)
    assert manifest["splits"]["val"] == {"records": len(source["val"]), "files": ["val.json"]}
    assert not list(out.glob(".multispa-export-*"))
    export_dataset(small_dataset, out, "llava", split="val", image_paths="absolute")
    assert sorted(p.name for p in out.iterdir()) == [EXPORT_MANIFEST, "val.json"]
    absolute = [[str(result.image_folder / rel) for rel in r["image"]] for r in source["val"]]
    samples = read_llava(out / "val.json")
    _assert_same(samples, source["val"], absolute)


# ---------------------------------------------------------------------------- OpenAI messages


def test_content_parts_round_trip() -> None:
    text = "Image-1: <image>\nImage-2: <image>\nWhich way?"
    assert content_parts(text) == [
        {"type": "text", "text": "Image-1: "}, {"type": "image"},
        {"type": "text", "text": "\nImage-2: "}, {"type": "image"},
        {"type": "text", "text": "\nWhich way?"}]
    assert content_parts("<image>\nQ") == [{"type": "image"}, {"type": "text", "text": "\nQ"}]
    for sample in (text, "<image>\nQ", "<image><image>", "no image"):
        assert content_text(content_parts(sample)) == sample


def test_messages_string_and_parts(small_dataset: Path, source: dict[str, list[dict[str, Any]]],
                                   tmp_path: Path) -> None:
    images_root = small_dataset.resolve() / "images"
    out = tmp_path / "messages"
    result = export_dataset(small_dataset, out, "openai-messages")
    assert result.counts == {split: len(source[split]) for split in SPLITS}
    for split in SPLITS:
        absolute = [[str(images_root / rel) for rel in r["image"]] for r in source[split]]
        _assert_same(read_messages(out / f"{split}.jsonl"), source[split], absolute)
    line = json.loads((out / "val.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert [m["role"] for m in line["messages"]] == ["user", "assistant"]
    assert isinstance(line["messages"][0]["content"], str)
    info = json.loads((out / "dataset_info.json").read_text(encoding="utf-8"))
    assert set(info) == {"multispa_train", "multispa_val"}
    assert info["multispa_val"] == {
        "file_name": "val.jsonl", "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                 "assistant_tag": "assistant"}}
    # TRL's typed parts, relative paths, one split; the same folder is replaced whole
    result = export_dataset(small_dataset, out, "openai-messages", split="val", content="parts",
                            image_paths="relative")
    assert result.counts == {"val": len(source["val"])}
    assert sorted(p.name for p in out.iterdir()) == [EXPORT_MANIFEST, "val.jsonl"]
    _assert_same(read_messages(out / "val.jsonl"), source["val"])
    for text, record in zip((out / "val.jsonl").read_text(encoding="utf-8").splitlines(),
                            source["val"], strict=True):
        user, assistant = json.loads(text)["messages"]
        kinds = [part["type"] for part in user["content"]]
        assert kinds.count("image") == len(record["image"])
        assert all(set(part) == {"type"} for part in user["content"] if part["type"] == "image")
        assert assistant["content"] == [{"type": "text",
                                         "text": record["conversations"][1]["value"]}]


# --------------------------------------------------------------------------------- HF Parquet


def test_hf_parquet_loads_with_datasets(small_dataset: Path,
                                        source: dict[str, list[dict[str, Any]]],
                                        tmp_path: Path) -> None:
    import datasets

    out = tmp_path / "hf"
    result = export_dataset(small_dataset, out, "hf-parquet", max_shard_bytes=300_000)
    assert result.counts == {split: len(source[split]) for split in SPLITS}
    images_root = small_dataset / "images"
    for prefix in ("train", "validation"):  # 300 kB shards: several per split
        shards = sorted((out / "data").glob(f"{prefix}-*.parquet"))
        assert len(shards) > 1
        assert [p.name for p in shards] == [
            f"{prefix}-{k:05d}-of-{len(shards):05d}.parquet" for k in range(len(shards))]
        for shard in shards:
            metadata = pq.read_metadata(shard)
            assert metadata.num_rows >= 1
            assert all(metadata.row_group(g).num_rows <= 100
                       for g in range(metadata.num_row_groups))
            assert shard.stat().st_size < 300_000 + 100_000  # one record past the limit at most
    # the pyarrow reader: same questions, answers, image order and bytes
    for split in SPLITS:
        samples = read_hf_parquet(out, split)
        _assert_same(samples, source[split])
        for sample in samples:
            assert sample.image_bytes == tuple((images_root / rel).read_bytes()
                                               for rel in sample.images)
    card = (out / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\nconfigs:\n- config_name: default\n")
    assert "  - split: validation\n    path: data/validation-*\n" in card
    # the real `datasets` library, through the card's configs and as a plain parquet folder
    loaded = [datasets.load_dataset(str(out), cache_dir=str(tmp_path / "c1")),
              datasets.load_dataset("parquet", data_dir=str(out / "data"),
                                    cache_dir=str(tmp_path / "c2"))]
    for dataset_dict in loaded:
        assert set(dataset_dict) == {"train", "validation"}
        assert dataset_dict["train"].num_rows == len(source["train"])
        features = dataset_dict["validation"].features
        assert features["images"] == datasets.List(datasets.Image())
    val = loaded[1]["validation"]
    assert val["id"] == [r["id"] for r in source["val"]]
    rows = val.select_columns(["question", "answer", "messages", "subtask", "gt", "meta",
                               "width_list"]).to_list()
    for row, record in zip(rows, source["val"], strict=True):
        assert row["question"] == record["conversations"][0]["value"]
        assert row["answer"] == record["conversations"][1]["value"]
        assert row["messages"] == [{"role": "user", "content": row["question"]},
                                   {"role": "assistant", "content": row["answer"]}]
        assert row["subtask"] == record["subtask"]
        assert json.loads(row["gt"]) == record["gt"]
        assert json.loads(row["meta"]) == record["meta"]
        assert row["width_list"] == record["width_list"]
    raw = val.cast_column("images", datasets.List(datasets.Image(decode=False)))
    for row, record in zip(raw["images"], source["val"], strict=True):
        assert [image["bytes"] for image in row] == [(images_root / rel).read_bytes()
                                                     for rel in record["image"]]
        assert [image["path"] for image in row] == record["image"]
    for k in (0, len(source["val"]) - 1):  # decoded pixels equal the source images'
        for image, rel in zip(val[k]["images"], source["val"][k]["image"], strict=True):
            with Image.open(images_root / rel) as expected:
                assert np.array_equal(np.asarray(image), np.asarray(expected))


def test_hf_parquet_parts_content(small_dataset: Path, source: dict[str, list[dict[str, Any]]],
                                  tmp_path: Path) -> None:
    out = tmp_path / "hf"
    export_dataset(small_dataset, out, "hf-parquet", split="val", content="parts")
    assert sorted(p.name for p in (out / "data").iterdir()) == [
        "validation-00000-of-00001.parquet"]
    _assert_same(read_hf_parquet(out, "val"), source["val"])
    user = pq.read_table(out / "data" / "validation-00000-of-00001.parquet",
                         columns=["messages"]).to_pylist()[0]["messages"][0]
    assert {"type": "image", "text": None} in user["content"]


# ----------------------------------------------------------------------------------- InternVL


def test_internvl_meta(small_dataset: Path, source: dict[str, list[dict[str, Any]]],
                       tmp_path: Path) -> None:
    out = tmp_path / "internvl"
    result = export_dataset(small_dataset, out, "internvl", repeat_time=2)
    root = small_dataset.resolve()
    for split in SPLITS:
        meta = json.loads((out / f"meta_{split}.json").read_text(encoding="utf-8"))
        own = json.loads((small_dataset / f"meta_{split}.json").read_text(encoding="utf-8"))
        assert set(meta) == {name for name, entry in own.items() if entry["length"]}
        for name, entry in meta.items():
            assert set(entry) == {"root", "annotation", "data_augment", "repeat_time", "length"}
            assert entry["root"] == str(root / "images") + "/"
            assert Path(entry["annotation"]) == root / own[name]["annotation"]
            assert entry["length"] == own[name]["length"]
            assert entry["repeat_time"] == 2 and entry["data_augment"] is False
        assert sum(e["length"] for e in meta.values()) == result.counts[split]
        images = [[str(root / "images" / rel) for rel in r["image"]] for r in source[split]]
        _assert_same(read_internvl(out / f"meta_{split}.json"), source[split], images)
    export_dataset(small_dataset, out, "internvl", split="val", repeat_time=0.25)
    meta = json.loads((out / "meta_val.json").read_text(encoding="utf-8"))
    assert {entry["repeat_time"] for entry in meta.values()} == {0.25}
    assert not (out / "meta_train.json").exists()
    with pytest.raises(ConfigError, match="repeat_time"):
        export_dataset(small_dataset, out, "internvl", repeat_time=0)


# ----------------------------------------------------------------------------------- bad input


def test_missing_dataset_and_bad_options(small_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="dataset folder not found"):
        export_dataset(tmp_path / "nowhere", tmp_path / "out", "llava")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingFileError, match=r"no manifest\.json"):
        export_dataset(tmp_path / "empty", tmp_path / "out", "llava")
    with pytest.raises(ConfigError, match="unknown dataset export format"):
        export_dataset(small_dataset, tmp_path / "out", "vlmevalkit")
    with pytest.raises(ConfigError, match="content='html'"):
        export_dataset(small_dataset, tmp_path / "out", "openai-messages", content="html")
    with pytest.raises(ConfigError, match="dataset folder itself"):
        export_dataset(small_dataset, small_dataset, "internvl")
    mini, _ = _mini_dataset(small_dataset, tmp_path / "mini")
    with pytest.raises(DatasetError, match="no 'train' split"):
        export_dataset(mini, tmp_path / "out", "llava", split="train")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("edit", "error", "needles"), [
    ("bad_json", FormatError, ["line 2: invalid JSON"]),
    ("not_object", FormatError, ["line 2: expected a JSON object, found list"]),
    ("image_count", FormatError, ["line 2: the human turn has 2 <image> placeholders for 1"]),
    ("escape", FormatError, ["line 2: image path '../x.jpg' must be relative"]),
    ("missing_image", MissingFileError, ["scannet/nowhere/00000.jpg", "line 2", "not found"]),
    ("truncated", FormatError, ["2 records, manifest.json says 3"]),
])
def test_bad_records_name_file_and_line(small_dataset: Path, tmp_path: Path, edit: str,
                                        error: type[Exception], needles: list[str]) -> None:
    mini, path = _mini_dataset(small_dataset, tmp_path / "mini")
    lines = path.read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[1])
    if edit == "bad_json":
        lines[1] = lines[1][:-5]
    elif edit == "not_object":
        lines[1] = "[1, 2]"
    elif edit == "image_count":
        record["image"] = record["image"][:1]
        record["height_list"] = record["height_list"][:1]
        record["width_list"] = record["width_list"][:1]
    elif edit == "escape":
        record["image"][0] = "../x.jpg"
    elif edit == "missing_image":
        record["image"][0] = "scannet/nowhere/00000.jpg"
    else:
        del lines[2]
    if edit in ("image_count", "escape", "missing_image"):
        lines[1] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for format_name in DATASET_FORMATS:
        out = tmp_path / f"out-{format_name}"
        with pytest.raises(error) as caught:
            export_dataset(mini, out, format_name)
        message = str(caught.value)
        assert str(path) in message
        for needle in needles:
            assert needle in message, message
        assert not out.exists()  # nothing left behind, not even the folder


def test_failed_export_leaves_previous_output(small_dataset: Path, tmp_path: Path) -> None:
    mini, path = _mini_dataset(small_dataset, tmp_path / "mini")
    for format_name in DATASET_FORMATS:
        out = tmp_path / format_name
        export_dataset(mini, out, format_name)
        (out / "notes.txt").write_text("mine", encoding="utf-8")
        before = _tree(out)
        good = path.read_text(encoding="utf-8")
        path.write_text(good + "{broken\n", encoding="utf-8")
        with pytest.raises(FormatError, match="line 4"):
            export_dataset(mini, out, format_name)
        path.write_text(good, encoding="utf-8")
        assert _tree(out) == before
        assert not list(out.glob(".multispa-export-*"))


# ---------------------------------------------------------------------------------------- CLI


def test_cli_dataset_exports(small_dataset: Path, source: dict[str, list[dict[str, Any]]],
                             tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "llava"
    result = runner.invoke(main, ["export", "--dataset", str(small_dataset), "--format", "llava",
                                  "--split", "val", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"val {len(source['val'])} records" in result.output
    assert f"--image_folder {small_dataset.resolve() / 'images'}" in result.output
    _assert_same(read_llava(out / "val.json"), source["val"])
    assert not (out / "train.json").exists()
    result = runner.invoke(main, ["export", "--dataset", str(small_dataset), "--format",
                                  "internvl", "--repeat-time", "3", "--out", str(tmp_path / "iv")])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "iv" / "meta_train.json").read_text(encoding="utf-8"))
    assert {entry["repeat_time"] for entry in meta.values()} == {3}
    result = runner.invoke(main, ["export", "--dataset", str(small_dataset), "--format",
                                  "hf-parquet", "--split", "val", "--content", "parts",
                                  "--max-shard-mb", "1", "--out", str(tmp_path / "hf")])
    assert result.exit_code == 0, result.output
    _assert_same(read_hf_parquet(tmp_path / "hf", "val"), source["val"])
    result = runner.invoke(main, ["export", "--dataset", str(tmp_path / "nowhere"), "--format",
                                  "llava", "--out", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert "error:" in result.output and "dataset folder not found" in result.output


def test_cli_wrong_source_or_option(small_dataset: Path, small_bench: Path,
                                    tmp_path: Path) -> None:
    runner = CliRunner()
    out = ["--out", str(tmp_path / "o")]
    cases = [
        (["--bench", str(small_bench), "--format", "llava"], "exports a dataset: use --dataset"),
        (["--dataset", str(small_dataset), "--format", "vlmevalkit"],
         "exports a benchmark: use --bench"),
        (["--format", "llava"], "exactly one of --bench BENCH or --dataset DATASET"),
        (["--bench", str(small_bench), "--dataset", str(small_dataset), "--format", "llava"],
         "exactly one of"),
        (["--dataset", str(small_dataset), "--format", "llava", "--repeat-time", "2"],
         "--repeat-time applies to --format internvl only"),
        (["--dataset", str(small_dataset), "--format", "internvl", "--content", "parts"],
         "--content applies to --format openai-messages, hf-parquet only"),
        (["--bench", str(small_bench), "--format", "vlmevalkit", "--split", "val"],
         "--split applies to"),
    ]
    for args, needle in cases:
        result = runner.invoke(main, ["export", *args, *out])
        assert result.exit_code == 2, (args, result.output)
        assert needle in " ".join(result.output.split()), result.output
    assert not (tmp_path / "o").exists()
    # benchmark exports are unchanged
    result = runner.invoke(main, ["export", "--bench", str(small_bench), "--format", "vlmevalkit",
                                  *out])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o" / "MultiSPA.tsv").is_file()
    assert export_cli.DATASET_FORMATS == DATASET_FORMATS
    shutil.rmtree(tmp_path / "o")
