"""The ``hf:`` backend on tiny random checkpoints: every item answered (garbage, greedily),
left-padded batches equal single items, bad items become error predictions, peft adapters,
the registry, scoring the garbage, and ``run_eval`` end to end."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from PIL import Image  # noqa: E402

from multispa.errors import ConfigError  # noqa: E402
from multispa.evaluate.backends.base import (  # noqa: E402
    DEFAULT_INSTRUCTION,
    EvalItem,
    parse_model_spec,
)
from multispa.evaluate.backends.hf import HFBackend  # noqa: E402
from multispa.evaluate.backends.registry import BackendOptions, make_backend  # noqa: E402
from multispa.metrics.score import score_records  # noqa: E402
from multispa.models import build_tiny_model, family_adapter  # noqa: E402
from multispa.tasks.templates import SUBTASKS, image_prefix  # noqa: E402

FAMILIES = ("internvl", "qwen2_5_vl")
PARSE_REASONS = {"empty", "no_match", "no_backtick_match"}

# (subtask, question, gt, image names)
_ITEMS: tuple[tuple[str, str, Any, tuple[str, ...]], ...] = (
    ("depth_estimation_dot", "How far from the camera is the red dot, in millimetres?",
     1834, ("a.jpg",)),
    ("camera_x_direction", "Did the camera move left or right between the two images?",
     "left", ("a.jpg", "b.jpg")),
    ("correspondence_mcq_dot", "Which labelled dot in Image-2 matches the red dot in Image-1?",
     "C", ("b.jpg", "c.jpg")),
    ("camera_translation_vector", "By how much did the camera move, as [ x , y , z ] in mm?",
     [120, -40, 300], ("c.jpg", "a.jpg")),
)


def _record(subtask: str, question: str, gt: Any, images: tuple[str, ...]) -> dict[str, Any]:
    spec = SUBTASKS[subtask]
    return {
        "id": f"val-{subtask}-sn-scene0007_00-0_1-0001",
        "image": [f"scannet/scene0007_00/{name}" for name in images],
        "conversations": [
            {"from": "human", "value": image_prefix(len(images)) + question},
            {"from": "gpt", "value": "unused"},
        ],
        "height_list": [48, 64, 40][: len(images)],
        "width_list": [64, 48, 100][: len(images)],
        "task": spec.family, "subtask": subtask, "answer_type": spec.answer_type, "gt": gt,
        "meta": {"source": "scannet", "scene": "scene0007_00", "split": "val"},
    }


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset folder: ``val/<task>/<subtask>.jsonl`` and three small JPEGs."""
    root = tmp_path_factory.mktemp("hf_data")
    folder = root / "images" / "scannet" / "scene0007_00"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    for name, (width, height) in {"a.jpg": (64, 48), "b.jpg": (48, 64),
                                  "c.jpg": (100, 40)}.items():
        pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / name, quality=85)
    for args in _ITEMS:
        record = _record(*args)
        path = root / "val" / record["task"] / f"{record['subtask']}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def records(data: Path) -> list[dict[str, Any]]:
    return [_record(*args) for args in _ITEMS]


@pytest.fixture(scope="module")
def items(data: Path, records: list[dict[str, Any]]) -> list[EvalItem]:
    return [
        EvalItem(r["id"], tuple(data / "images" / p for p in r["image"]),
                 r["conversations"][0]["value"] + "\n" + DEFAULT_INSTRUCTION,
                 r["subtask"], r["answer_type"], r)
        for r in records
    ]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf_tiny")
    return {family: build_tiny_model(family, root / family, seed=0) for family in FAMILIES}


def _answers(backend: HFBackend, items: list[EvalItem]) -> dict[str, str | None]:
    predictions = list(backend.generate(items))
    assert len(predictions) == len(items)
    return {p.id: p.response for p in predictions}


# ------------------------------------------------------------------------------------ answers


@pytest.mark.parametrize("family", FAMILIES)
def test_every_item_gets_a_garbage_answer_that_scores_wrong(
    tiny: dict[str, Path], items: list[EvalItem], records: list[dict[str, Any]], family: str,
) -> None:
    backend = HFBackend(tiny[family], batch_size=3, max_new_tokens=12)
    assert backend.name == f"hf:{tiny[family]}"
    predictions = list(backend.generate(items))
    backend.close()
    assert sorted(p.id for p in predictions) == sorted(i.id for i in items)
    assert all(p.error is None and isinstance(p.response, str) for p in predictions)
    assert all(p.latency_s > 0 for p in predictions)
    # batch time / batch size: the three items of the first batch share one latency
    assert len({p.latency_s for p in predictions[:3]}) == 1
    assert any(p.response for p in predictions)  # a random model still says something

    report = score_records(records, {p.id: p.response for p in predictions}, bootstrap=0)
    assert report["summary"]["records"] == len(records)
    assert report["summary"]["missing_predictions"] == 0
    per_record = report["records"]
    assert all(r["correct"] is False for r in per_record)
    assert all(r["reason"] in PARSE_REASONS for r in per_record if r["parsed"] is None)
    assert report["summary"]["parse_failures"] >= 1


@pytest.mark.parametrize("family", FAMILIES)
def test_left_padded_batches_answer_like_single_items(
    tiny: dict[str, Path], items: list[EvalItem], family: str,
) -> None:
    single = _answers(HFBackend(tiny[family], batch_size=1, max_new_tokens=8), items)
    batched = _answers(HFBackend(tiny[family], batch_size=4, max_new_tokens=8), items)
    assert batched == single


def test_bad_items_become_error_predictions(
    tiny: dict[str, Path], items: list[EvalItem], tmp_path: Path,
) -> None:
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8 not really a jpeg")
    good = items[0]
    bad = [
        EvalItem("missing", (tmp_path / "nowhere.jpg",), good.text, good.subtask,
                 good.answer_type),
        EvalItem("corrupt", (corrupt,), good.text, good.subtask, good.answer_type),
        EvalItem("count", good.images, "Image-1: <image>\nImage-2: <image>\nQ?", good.subtask,
                 good.answer_type),
    ]
    backend = HFBackend(tiny["qwen2_5_vl"], batch_size=2, max_new_tokens=4)
    predictions = {p.id: p for p in backend.generate([bad[0], good, bad[1], bad[2]])}
    assert set(predictions) == {"missing", good.id, "corrupt", "count"}
    assert predictions[good.id].error is None
    assert "file not found" in (predictions["missing"].error or "")
    assert "cannot read" in (predictions["corrupt"].error or "")
    assert "2 <image> placeholders but 1 images" in (predictions["count"].error or "")
    assert all(predictions[i].response is None for i in ("missing", "corrupt", "count"))


def test_adapter_is_applied(
    tiny: dict[str, Path], items: list[EvalItem], tmp_path: Path,
) -> None:
    import warnings

    pytest.importorskip("peft")
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    path = tiny["internvl"]
    base = AutoModelForImageTextToText.from_pretrained(path)
    targets = family_adapter("internvl").language_lora_targets()
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing",
                                category=FutureWarning)
        torch.manual_seed(1)
        # random B (not zeros), so the adapter changes the answers
        lora = get_peft_model(base, LoraConfig(r=4, lora_alpha=16, target_modules=targets,
                                               init_lora_weights=False))
    lora.save_pretrained(tmp_path / "lora")

    plain = _answers(HFBackend(path, batch_size=4, max_new_tokens=8), items)
    adapted_backend = HFBackend(path, tmp_path / "lora", batch_size=4, max_new_tokens=8)
    assert adapted_backend.name == f"hf:{path}+{tmp_path / 'lora'}"
    assert type(adapted_backend.model).__name__ == "PeftModel"
    adapted = _answers(adapted_backend, items)
    assert adapted.keys() == plain.keys() and adapted != plain


def test_registry_builds_the_backend_and_bad_folders_are_config_errors(
    tiny: dict[str, Path], tmp_path: Path,
) -> None:
    spec = parse_model_spec(f"hf:{tiny['qwen2_5_vl']}")
    backend = make_backend(spec, BackendOptions(batch_size=2, max_new_tokens=5, device=None))
    assert isinstance(backend, HFBackend)
    assert (backend.batch_size, backend.max_new_tokens) == (2, 5)
    assert backend.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert backend.family.name == "qwen2_5_vl"
    with pytest.raises(ConfigError, match="does not exist"):
        HFBackend(tmp_path / "nothing")
    with pytest.raises(ConfigError, match="adapter folder"):
        HFBackend(tiny["qwen2_5_vl"], tmp_path / "no-adapter")
    with pytest.raises(ConfigError, match="unknown dtype"):
        HFBackend(tiny["qwen2_5_vl"], dtype="float13")


# --------------------------------------------------------------------------------- end to end


@pytest.mark.skipif(importlib.util.find_spec("multispa.evaluate.runner") is None,
                    reason="the evaluation runner is not in this tree")
def test_run_eval_end_to_end(tiny: dict[str, Path], data: Path, tmp_path: Path) -> None:
    from multispa.evaluate.bench import build_bench
    from multispa.evaluate.runner import run_eval

    bench = tmp_path / "bench"
    build_bench(data, bench, per_subtask=5, seed=0)
    out = tmp_path / "run"
    report = run_eval(bench, f"hf:{tiny['internvl']}", out, batch_size=2, max_new_tokens=8,
                      device="cpu", progress=False, bootstrap=0)
    lines = (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    predictions = [json.loads(line) for line in lines]
    assert sorted(p["id"] for p in predictions) == sorted(r["id"] for r in
                                                          (_record(*a) for a in _ITEMS))
    assert all(p["error"] is None and isinstance(p["response"], str) for p in predictions)
    assert report["summary"]["records"] == len(_ITEMS)
    assert report["summary"]["accuracy_pct"] == 0.0
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["model"] == f"hf:{tiny['internvl']}"
