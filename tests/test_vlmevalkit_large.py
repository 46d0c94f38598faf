"""The VLMEvalKit export through VLMEvalKit's own dataset loading, large-file path included.

VLMEvalKit is not a dependency, so this module replays, step by step, what its loader does with a
custom dataset TSV in ``$LMUData`` (``CustomVQADataset.load_data``, ``tools.LOCALIZE`` →
``smp.file.localize_df`` / ``decode_img_omni``, ``ImageBaseDataset.__init__``, ``dump_image``
and ``build_prompt``; pandas reads and writes the TSV as VLMEvalKit does). Its 1 GB threshold is
a parameter here, so a small benchmark takes the large-file path. The image paths each prompt
ends up with must exist and hold the item's images, in order.
"""

from __future__ import annotations

import ast
import base64
import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from multispa.formats.vlmevalkit import TSV_NAME, export_vlmevalkit
from multispa.report import load_bench

pd = pytest.importorskip("pandas")

VLMEVALKIT_THRESHOLD_BYTES = 2**30  # VLMEvalKit: file_size(data_path, "GB") > 1


def _toliststr(value: Any) -> list[str]:
    """``vlmeval.smp.misc.toliststr`` (which uses ``eval``; the values here are literals)."""
    if isinstance(value, str) and len(value) > 1 and value[0] == "[" and value[-1] == "]":
        return [str(x) for x in ast.literal_eval(value)]
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(x) for x in value]
    raise TypeError(value)


def _decode_to_file(encoded: str, path: str) -> None:
    """``vlmeval.smp.vlm.decode_base64_to_image_file``: decode, RGB if paletted, Pillow save."""
    image = Image.open(io.BytesIO(base64.b64decode(encoded)))
    if image.mode in ("RGBA", "P", "LA"):
        image = image.convert("RGB")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image.save(path)


def _read_ok(path: str) -> bool:
    if not os.path.exists(path):
        return False
    with Image.open(path) as image:
        return image.size[0] > 0 and image.size[1] > 0


def _localize(tsv: Path, local: Path, lmu_root: Path) -> None:
    """``tools.LOCALIZE`` → ``localize_df``: images to disk, ``image`` dropped, TSV rewritten."""
    data = pd.read_csv(tsv, sep="\t")
    indices = [str(x) for x in data["index"]]
    images = list(data["image"])
    root = os.path.join(str(lmu_root), "images", tsv.stem)
    os.makedirs(root, exist_ok=True)
    if "image_path" in data:
        names = list(data["image_path"])
    else:
        names = [f"{index}.jpg" for index in indices]  # every image cell is > 64 characters
    written = []
    for name, cell in zip(names, images, strict=True):  # decode_img_omni
        encoded, paths = _toliststr(cell), _toliststr(name)
        if len(encoded) > 1 and len(paths) == 1:
            stem, ext = os.path.splitext(paths[0])
            paths = [f"{stem}_{k}{ext}" for k in range(len(encoded))]
        assert len(encoded) == len(paths)
        paths = [os.path.join(root, p) for p in paths]
        for path, one in zip(paths, encoded, strict=True):
            if not os.path.exists(path) and len(one) > 64:
                _decode_to_file(one, path)
        written.append(paths)
    data.pop("image")
    if "image_path" not in data:
        data["image_path"] = [p[0] if len(p) == 1 else p for p in written]
    data.to_csv(local, sep="\t", index=False, encoding="utf-8", quoting=csv.QUOTE_ALL)


def vlmevalkit_prompt_images(lmu_root: Path, name: str, threshold_bytes: int,
                             ) -> dict[str, list[str]]:
    """``{item id: image paths of its prompt}`` as VLMEvalKit builds them for dataset ``name``."""
    data_path = lmu_root / f"{name}.tsv"
    if data_path.stat().st_size > threshold_bytes:  # CustomVQADataset.load_data
        local = lmu_root / f"{name}_local.tsv"
        if not local.exists():
            _localize(data_path, local, lmu_root)
        data_path = local
    data = pd.read_csv(data_path, sep="\t")
    img_root = os.path.join(str(lmu_root), "images", name)  # ImageBaseDataset.__init__
    meta_only = "image" not in data
    if not meta_only:
        lists = [_toliststr(str(x)) for x in data["image"]]
        data["image"] = [x[0] if len(x) == 1 else x for x in lists]
    if "image_path" in data:
        paths = [_toliststr(x) for x in data["image_path"]]
        data["image_path"] = [x[0] if len(x) == 1 else x for x in paths]
    out: dict[str, list[str]] = {}
    for _, line in data.iterrows():  # build_prompt
        out[str(line["id"])] = (_toliststr(line["image_path"]) if meta_only
                                else _dump_image(line, img_root))
    return out


def _dump_image(line: Any, img_root: str) -> list[str]:
    """``ImageBaseDataset.dump_image`` for the row shapes an ``image`` column gives."""
    if isinstance(line["image"], list):
        names = (line["image_path"] if "image_path" in line
                 else [f"{line['index']}_{k}.png" for k in range(len(line["image"]))])
        paths = []
        for encoded, name in zip(line["image"], names, strict=False):
            path = os.path.join(img_root, name)
            if not _read_ok(path):
                _decode_to_file(encoded, path)
            paths.append(path)
        return paths
    if "image_path" in line:
        path = os.path.join(img_root, line["image_path"])
    else:
        path = os.path.join(img_root, f"{line['index']}.png")
    if not _read_ok(path):
        _decode_to_file(line["image"], path)
    return [path]


def _pixels(path: str | Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def _check_prompt_images(prompts: dict[str, list[str]], bench: Path, *, lossless: bool) -> None:
    """Every prompt's images exist (from any working directory) and are the item's images."""
    items = load_bench(bench).items
    assert set(prompts) == {item["id"] for item in items}
    originals = {rel: _pixels(bench / "images" / rel) for item in items for rel in item["image"]}
    for item in items:
        paths = prompts[item["id"]]
        assert len(paths) == len(item["image"])
        for path, rel in zip(paths, item["image"], strict=True):
            assert os.path.isabs(path) and os.path.isfile(path), path
            got = _pixels(path)
            expected = originals[rel]
            assert got.shape == expected.shape
            if lossless:
                assert np.array_equal(got, expected)
                continue
            # re-encoded as a JPEG by Pillow: close to its own image, farther from any other
            # (several items may share a frame: compare with the images of other content)
            error = float(np.abs(got - expected).mean())
            assert error < 20.0, (path, error)
            others = [float(np.abs(got - pixels).mean()) for pixels in originals.values()
                      if pixels.shape == got.shape and not np.array_equal(pixels, expected)]
            assert all(e > error for e in others), (path, error, min(others))


@pytest.fixture
def lmu_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ``$LMUData``; the working directory is an empty folder (bare names fail)."""
    root = tmp_path / "LMUData"
    root.mkdir()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return root


def _export_into(bench: Path, lmu_root: Path, tmp_path: Path) -> Path:
    tsv = export_vlmevalkit(bench, tmp_path / "export")
    target = lmu_root / TSV_NAME
    target.write_bytes(tsv.read_bytes())
    return target


def test_large_file_path_reaches_the_right_images(small_bench: Path, lmu_root: Path,
                                                 tmp_path: Path) -> None:
    tsv = _export_into(small_bench, lmu_root, tmp_path)
    size = tsv.stat().st_size
    assert size > 100_000
    prompts = vlmevalkit_prompt_images(lmu_root, "MultiSPA", threshold_bytes=size // 2)
    assert (lmu_root / "MultiSPA_local.tsv").is_file()
    local = pd.read_csv(lmu_root / "MultiSPA_local.tsv", sep="\t")
    assert "image" not in local and "image_path" in local
    assert any(len(paths) > 1 for paths in prompts.values())  # multi-image rows
    _check_prompt_images(prompts, small_bench, lossless=False)


def test_small_file_path_reaches_the_right_images(small_bench: Path, lmu_root: Path,
                                                 tmp_path: Path) -> None:
    _export_into(small_bench, lmu_root, tmp_path)
    prompts = vlmevalkit_prompt_images(lmu_root, "MultiSPA", VLMEVALKIT_THRESHOLD_BYTES)
    assert not (lmu_root / "MultiSPA_local.tsv").exists()
    _check_prompt_images(prompts, small_bench, lossless=True)


def test_replay_catches_bare_image_path_names(small_bench: Path, lmu_root: Path,
                                             tmp_path: Path) -> None:
    """The defect this export avoids: an ``image_path`` column of bare names breaks the
    large-file path (the replay is faithful enough to see it)."""
    tsv = _export_into(small_bench, lmu_root, tmp_path)
    data = pd.read_csv(tsv, sep="\t")
    data["image_path"] = [json.dumps([f"{index}_{k}.jpg" for k in range(1, len(
        json.loads(cell)) + 1)]) for index, cell in zip(data["index"], data["image"], strict=True)]
    data.to_csv(tsv, sep="\t", index=False, encoding="utf-8", quoting=csv.QUOTE_MINIMAL)
    prompts = vlmevalkit_prompt_images(lmu_root, "MultiSPA", threshold_bytes=1000)
    assert prompts and all(not os.path.exists(p) for paths in prompts.values() for p in paths)
