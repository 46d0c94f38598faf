"""Sample → tokens, labels and pixels: the label mask covers exactly the assistant answers and
their end-of-turn token, the predicted length equals the encoded one, too-long samples are
dropped and counted, bad images are named, batches pad correctly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from PIL import Image  # noqa: E402

from multispa.errors import FormatError, MissingFileError  # noqa: E402
from multispa.models import build_tiny_model, family_adapter, load_processor  # noqa: E402
from multispa.train.data import Sample, Turn, iter_annotation, read_meta  # noqa: E402
from multispa.train.encode import (  # noqa: E402
    IGNORE_INDEX,
    Collator,
    Encoder,
    configure_image_processor,
)
from multispa.train.index import scan  # noqa: E402

FAMILIES = ("internvl", "qwen2_5_vl")
# A fixed tokenizer corpus, so the hand-checked token positions below do not move when the
# task templates change.
CORPUS = ["Image-1: Image-2: Which way did the camera move? It moved `left`. It moved `right`.",
          "How far is it? About `1250` mm. Hello again. Be brief."] * 3


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("train_encode")
    Image.new("RGB", (64, 48), (200, 10, 10)).save(root / "a.jpg")
    Image.new("RGB", (200, 100), (0, 100, 10)).save(root / "b.jpg")
    for family in FAMILIES:
        build_tiny_model(family, root / family, corpus=CORPUS)
    return root


def _encoder(root: Path, family: str, max_length: int = 8192, max_tiles: int = 1) -> Encoder:
    processor = load_processor(root / family)
    configure_image_processor(processor, family, max_tiles=max_tiles, max_image_pixels=None)
    return Encoder(processor, family_adapter(family), max_length)


def _sample(root: Path, turns: tuple[Turn, ...], images: tuple[str, ...] = ("a.jpg", "b.jpg"),
            ) -> Sample:
    return Sample("s", tuple(root / name for name in images), turns, root / "d.jsonl", 7)


TWO_IMAGES = (Turn("user", "Image-1: <image>\nImage-2: <image>\nWhich way did the camera move?"),
              Turn("assistant", "It moved `left`."))


def test_internvl_label_mask_is_the_answer_and_its_end_token(root: Path) -> None:
    encoder = _encoder(root, "internvl")
    encoded = encoder.encode(_sample(root, TWO_IMAGES))
    tokenizer = encoder.tokenizer
    ids = encoded["input_ids"].tolist()
    tokens = tokenizer.convert_ids_to_tokens(ids)
    labels = encoded["labels"].tolist()
    image = ["<img>", *["<IMG_CONTEXT>"] * 4, "</img>"]  # 1 tile x 4 tokens per image
    # Hand-checked layout (ChatML; Ġ is a space, Ċ a newline).
    prompt = ["<|im_start|>", *tokenizer.tokenize("user\n"),
              *tokenizer.tokenize("Image-1: "), *image, "Ċ",
              *tokenizer.tokenize("Image-2: "), *image, "Ċ",
              *tokenizer.tokenize("Which way did the camera move?"), "<|im_end|>", "Ċ",
              "<|im_start|>", *tokenizer.tokenize("assistant\n")]
    answer = tokenizer.tokenize("It moved `left`.")
    assert tokens == [*prompt, *answer, "<|im_end|>", "Ċ"]
    start = len(prompt)
    labelled = [i for i, label in enumerate(labels) if label != IGNORE_INDEX]
    # the answer tokens and the end-of-turn token <|im_end|>; not the final newline
    assert labelled == list(range(start, start + len(answer) + 1))
    assert labelled[-1] == len(ids) - 2 and tokens[-1] == "Ċ"
    assert [labels[i] for i in labelled] == ids[start:start + len(answer) + 1]
    assert tokenizer.decode([ids[i] for i in labelled]) == "It moved `left`.<|im_end|>"
    assert encoder.header_ids == tuple(tokenizer.convert_tokens_to_ids(
        ["<|im_start|>", *tokenizer.tokenize("assistant\n")]))
    assert tuple(encoded["pixel_values"].shape) == (2, 3, 56, 56)
    assert encoder.predicted_length(_sample(root, TWO_IMAGES)) == len(ids)


def test_qwen_label_mask_skips_the_system_turn(root: Path) -> None:
    encoder = _encoder(root, "qwen2_5_vl")
    encoded = encoder.encode(_sample(root, TWO_IMAGES))
    ids, labels = encoded["input_ids"].tolist(), encoded["labels"].tolist()
    tokens = encoder.tokenizer.convert_ids_to_tokens(ids)
    assert tokens[:2] == ["<|im_start|>", *encoder.tokenizer.tokenize("system")[:1]]
    assert tokens.count("<|image_pad|>") == 4 + 10  # 64x48 -> 2x2, 200x100 -> 2x5 merged
    labelled = [i for i, label in enumerate(labels) if label != IGNORE_INDEX]
    answer = encoder.tokenizer.tokenize("It moved `left`.")
    assert labelled == list(range(len(ids) - len(answer) - 2, len(ids) - 1))
    assert encoder.tokenizer.decode([ids[i] for i in labelled]) == "It moved `left`.<|im_end|>"
    assert encoded["mm_token_type_ids"].shape == encoded["input_ids"].shape
    assert encoded["image_grid_thw"].tolist() == [[1, 4, 4], [1, 4, 10]]


@pytest.mark.parametrize("family", FAMILIES)
def test_multi_turn_text_only_labels_every_answer(root: Path, family: str) -> None:
    encoder = _encoder(root, family)
    turns = (Turn("system", "Be brief."), Turn("user", "How far is it?"),
             Turn("assistant", "About `1250` mm."), Turn("user", "Hello again."),
             Turn("assistant", "Hello again."))
    sample = _sample(root, turns, images=())
    encoded = encoder.encode(sample)
    assert "pixel_values" not in encoded
    ids, labels = encoded["input_ids"].tolist(), encoded["labels"].tolist()
    spans: list[list[int]] = []
    for i, label in enumerate(labels):
        if label != IGNORE_INDEX:
            if spans and spans[-1][-1] == i - 1:
                spans[-1].append(i)
            else:
                spans.append([i])
    decode = encoder.tokenizer.decode
    assert [decode([ids[i] for i in span]) for span in spans] == [
        "About `1250` mm.<|im_end|>", "Hello again.<|im_end|>"]
    assert encoder.predicted_length(sample) == len(ids)


@pytest.mark.parametrize("family", FAMILIES)
def test_predicted_length_matches_on_generated_records(
    root: Path, small_dataset: Path, family: str,
) -> None:
    encoder = _encoder(root, family, max_tiles=2)
    entries = [e for e in read_meta(small_dataset / "meta_train.json")
               if any(k in e.name for k in ("correspondence_mcq", "depth_estimation_dot",
                                            "object_movement_vector_coord"))]
    samples = [s for e in entries for _, _, s in list(iter_annotation(e))[:2]]
    assert len(samples) >= 4
    for sample in samples:
        assert encoder.predicted_length(sample) == encoder.encode(sample)["input_ids"].shape[0]


def test_too_long_records_are_dropped_and_counted(root: Path, tmp_path: Path) -> None:
    record = {"image": ["a.jpg", "b.jpg"], "conversations": [
        {"from": "human", "value": TWO_IMAGES[0].text}, {"from": "gpt", "value": "`left`"}]}
    long = {**record, "id": "long", "conversations": [
        {"from": "human", "value": TWO_IMAGES[0].text + " Which way?" * 40},
        {"from": "gpt", "value": "`left`"}]}
    lines = [json.dumps({**record, "id": f"r{i}"}) for i in range(3)]
    lines.insert(1, json.dumps(long))
    (tmp_path / "d.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "meta.json").write_text(json.dumps(
        {"mix": {"root": str(root), "annotation": "d.jsonl"}}))
    encoder = _encoder(root, "internvl", max_length=100)
    index, report = scan(read_meta(tmp_path / "meta.json"), encoder.predicted_length, 100)
    assert report.records == {"mix": 4} and report.kept == {"mix": 3}
    assert report.dropped_too_long == 1
    (dropped,) = report.dropped
    assert (dropped.id, dropped.origin) == ("long", f"{tmp_path / 'd.jsonl'}:2")
    assert dropped.tokens > 100 >= report.max_tokens
    assert index.line.tolist() == [1, 3, 4] and index.sample(1).id == "r1"
    assert index.tokens.tolist() == [report.max_tokens] * 3
    too_long = Sample("long", (root / "a.jpg", root / "b.jpg"),
                      (Turn("user", long["conversations"][0]["value"]),
                       Turn("assistant", "`left`")), tmp_path / "d.jsonl", 2)
    with pytest.raises(FormatError, match=r"line 2: encodes to .* more than max_length 100"):
        encoder.encode(too_long)


def test_missing_and_corrupt_images_name_file_and_record(root: Path, tmp_path: Path) -> None:
    encoder = _encoder(root, "internvl")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (tmp_path / "a.jpg").write_bytes((root / "a.jpg").read_bytes())
    missing = _sample(tmp_path, TWO_IMAGES, images=("a.jpg", "none.jpg"))
    with pytest.raises(MissingFileError, match=r"none\.jpg: image of .*d\.jsonl:7 not found"):
        encoder.predicted_length(missing)
    with pytest.raises(MissingFileError, match=r"none\.jpg"):
        encoder.encode(missing)
    corrupt = _sample(tmp_path, TWO_IMAGES, images=("bad.jpg", "bad.jpg"))
    with pytest.raises(FormatError, match=r"bad\.jpg: image of .*:7 cannot be read"):
        encoder.predicted_length(corrupt)


def test_collator_pads_right_and_concatenates_images(root: Path) -> None:
    encoder = _encoder(root, "qwen2_5_vl")
    with_images = encoder.encode(_sample(root, TWO_IMAGES))
    text_only = encoder.encode(_sample(root, (Turn("user", "Hi"), Turn("assistant", "Hello")),
                                       images=()))
    pad = encoder.tokenizer.pad_token_id
    batch: dict[str, Any] = Collator(pad)([text_only, with_images])
    longest = with_images["input_ids"].shape[0]
    short = text_only["input_ids"].shape[0]
    assert tuple(batch["input_ids"].shape) == (2, longest)
    assert batch["input_ids"][0, short:].eq(pad).all()
    assert batch["labels"][0, short:].eq(IGNORE_INDEX).all()
    assert batch["attention_mask"][0].tolist() == [1] * short + [0] * (longest - short)
    assert torch.equal(batch["input_ids"][1], with_images["input_ids"])
    assert torch.equal(batch["pixel_values"], with_images["pixel_values"])
    assert torch.equal(batch["image_grid_thw"], with_images["image_grid_thw"])
