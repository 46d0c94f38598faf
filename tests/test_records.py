"""Record ids, per-record draws, fast assembly and serialisation (docs/data-formats.md#record-ids,
docs/labels.md#randomness)."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from multispa.tasks.answers import format_value
from multispa.tasks.base import CacheUnit, GenerateSettings, UnitContext
from multispa.tasks.records import (
    FrameImages,
    MetaLayout,
    RecordError,
    RecordIds,
    RecordMaker,
    assemble_record,
    dumps_record,
    json_numbers,
    json_slot,
    many_record_draws,
    pixel_points,
    record_draws,
    record_id,
    record_line,
    validate_record,
)
from multispa.tasks.templates import SUBTASKS, compiled_templates


def reference_id(**kw: Any) -> str:
    """The record id written the plain way: ``json.dumps`` of the sample key, SHA-256."""
    key = {
        "split": kw["split"],
        "subtask": kw["subtask"],
        "source": kw["source"],
        "scene_or_clip": kw["scene_or_clip"],
        "frames": [int(f) for f in kw["frames"]],
        "points": [
            [[round(float(u), 2), round(float(v), 2)] for u, v in image] for image in kw["points"]
        ],
        "object_id": kw.get("object_id"),
        "track": kw.get("track"),
        "ask": kw.get("ask"),
        "reversed": bool(kw.get("reversed_pair", False)),
    }
    text = json.dumps(key, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
    frames = "_".join(f"{int(f):05d}" for f in kw["frames"])
    src = {"scannet": "scannet", "tapvid3d/adt": "adt", "tapvid3d/pstudio": "pstudio"}
    head = f"{kw['split']}-{kw['subtask']}-{src[kw['source']]}-{kw['scene_or_clip']}"
    return f"{head}-{frames}-{digest}"


def test_record_id_equals_plain_json_key() -> None:
    rng = np.random.default_rng(3)
    cases: list[dict[str, Any]] = [
        {"frames": (185, 155), "points": [[], []]},
        {"frames": [0, 99999], "points": [[], []], "object_id": 0},
        {"frames": [7], "points": [[(1296.0, 0.0), (0.004999, -0.005)]], "ask": "closer"},
        {"frames": [3, 4], "points": [[(214.83, 238.53)], []], "track": 12,
         "reversed_pair": True},
        {"frames": [np.int64(5), np.int32(6)],
         "points": [[(np.float32(1.125), np.float64(2.675))], []]},
        {"frames": [1, 2], "points": [[(-0.0, 1e-7)], [(1e16, 123456.789)]], "ask": "farther",
         "object_id": 41},
    ]
    for _ in range(200):
        count = int(rng.integers(1, 3))
        cases.append({
            "frames": rng.integers(0, 5000, size=count).tolist(),
            "points": [rng.uniform(-10, 2000, size=(int(rng.integers(0, 5)), 2)).tolist()
                       for _ in range(count)],
            "track": int(rng.integers(0, 100)) if rng.random() < 0.5 else None,
        })
    for scene, source in (("scene0000_00", "scannet"), ("apartment_seq100_1", "tapvid3d/adt"),
                          ("odd \"name\" é\\", "tapvid3d/pstudio")):
        for case in cases:
            kw = {"split": "val", "subtask": "depth_estimation_dot", "source": source,
                  "scene_or_clip": scene, **case}
            assert record_id(**kw) == reference_id(**kw)
            ids = RecordIds("val", "depth_estimation_dot", source, scene)
            fast = ids(kw["frames"], pixel_points(kw["points"]), kw.get("object_id"),
                       kw.get("track"), kw.get("ask"), kw.get("reversed_pair", False))
            assert fast == reference_id(**kw)


def test_record_draws_deterministic_uniform_and_seeded() -> None:
    sizes = (10, 15, 12)
    first = record_draws(7, "train-x-scannet-s-00001_00002-abcdef0123", sizes)
    assert first == record_draws(7, "train-x-scannet-s-00001_00002-abcdef0123", sizes)
    ids = [f"val-camera_x_direction-scannet-scene{k:04d}_00-00001_00002-{k:010x}"
           for k in range(6000)]
    draws = np.array([record_draws(7, rid, sizes) for rid in ids])
    for column, n in enumerate(sizes):
        counts = np.bincount(draws[:, column], minlength=n)
        assert counts.size == n and counts.min() > 0
        expected = len(ids) / n
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        assert chi2 < 3 * n  # far below for a uniform draw (mean n - 1)
    # The three indices of a record are independent: pairs spread over all combinations.
    pairs = Counter(zip(draws[:, 0].tolist(), draws[:, 1].tolist(), strict=True))
    assert len(pairs) == 150
    other_seed = np.array([record_draws(8, rid, sizes) for rid in ids[:500]])
    assert np.mean(np.all(other_seed == draws[:500], axis=1)) < 0.05
    other_tag = np.array([record_draws(7, rid, sizes, tag="marker") for rid in ids[:500]])
    assert np.mean(np.all(other_tag == draws[:500], axis=1)) < 0.05
    with pytest.raises(ValueError, match="positive sizes"):
        record_draws(0, "x", [3, 0])
    with pytest.raises(ValueError, match="positive sizes"):
        record_draws(0, "x", [2] * 9)


def test_many_record_draws_are_the_draws_of_each_id() -> None:
    ids = [f"train-camera_yaw_degree-scannet-s-{k:05d}_00002-{k:010x}" for k in range(300)]
    for sizes in ((13, 7, 9), (1,), (2**63 + 5, 3, 2**40, 1, 6, 5, 4, 2**64 - 1)):
        for tag in ("templates", "marker"):
            assert many_record_draws(5, ids, sizes, tag) == [
                record_draws(5, rid, sizes, tag) for rid in ids
            ]
    assert many_record_draws(5, [], (3,)) == []
    with pytest.raises(ValueError, match="positive sizes"):
        many_record_draws(0, ids, [3, 0])
    with pytest.raises(ValueError, match="positive sizes"):
        many_record_draws(0, [], [2] * 9)


def _record(**changes: Any) -> dict[str, Any]:
    templates = compiled_templates("camera_x_direction")
    human, gpt = templates.render([1, 2, 3], {"answer": "`left`"})
    kw: dict[str, Any] = {
        "record_id": "train-camera_x_direction-scannet-s-00001_00002-0123456789",
        "split": "train", "subtask": "camera_x_direction", "source": "scannet",
        "scene_or_clip": "s", "frames": [1, 2], "images": ["scannet/s/00001.jpg",
                                                           "scannet/s/00002.jpg"],
        "width_list": [1296, 1296], "height_list": [968, 968], "human": human, "gpt": gpt,
        "templates": {"description": 1, "question": 2, "answer": 3}, "gt": "left",
        "points": [[], []], "meta": {"overlap": 12.5},
    }
    kw.update(changes)
    return assemble_record(**kw)


def test_assemble_record_shape_and_cheap_checks() -> None:
    record = _record()
    validate_record(record)
    assert list(record) == ["id", "image", "conversations", "height_list", "width_list", "task",
                            "subtask", "answer_type", "gt", "meta"]
    assert list(record["meta"]) == ["source", "scene", "split", "frames", "points", "templates",
                                    "overlap"]
    assert record["task"] == "camera_movement" and record["answer_type"] == "label"
    with pytest.raises(RecordError, match="2 images expected"):
        _record(images=["scannet/s/00001.jpg"])
    with pytest.raises(RecordError, match="2 images expected"):
        _record(points=[[]])
    with pytest.raises(RecordError, match="backtick"):
        _record(gpt="It moved `left` and `right`.")
    with pytest.raises(RecordError, match="backtick"):
        _record(human="Image-1: <image>\nImage-2: <image>\nA `quoted` label\nWhich way?")


def test_record_maker_equals_assemble_and_checks() -> None:
    make = RecordMaker(seed=5, split="val", subtask="object_size_width", source="scannet",
                       scene_or_clip="scene0001_00")
    rid = make.ids((7, 3), [[], []], object_id=4)
    assert rid == record_id(split="val", subtask="object_size_width", source="scannet",
                            scene_or_clip="scene0001_00", frames=[7, 3], points=[[], []],
                            object_id=4)
    kw: dict[str, Any] = {
        "frames": [7, 3], "images": ["scannet/scene0001_00/00007.jpg",
                                     "scannet/scene0001_00/00003.jpg"],
        "width_list": [1296, 1296], "height_list": [968, 968], "gt": 812,
        "points": [[], []], "meta": {"object_id": 4, "label": "desk", "dims_mm": [700, 1400, 812]},
    }
    record = make(rid, fields={"answer": "`812`", "label": "desk"}, **kw)
    validate_record(record)
    indices = record_draws(5, rid, compiled_templates("object_size_width").sizes())
    human, gpt = compiled_templates("object_size_width").render(
        indices, {"answer": "`812`", "label": "desk"}
    )
    assert record == assemble_record(
        record_id=rid, split="val", subtask="object_size_width", source="scannet",
        scene_or_clip="scene0001_00", human=human, gpt=gpt,
        templates=dict(zip(("description", "question", "answer"), indices, strict=True)), **kw,
    )
    with pytest.raises(RecordError, match="backtick"):
        make(rid, fields={"answer": "`812`", "label": "desk`s"}, **kw)
    with pytest.raises(RecordError, match="2 images expected"):
        make(rid, fields={"answer": "`812`", "label": "desk"}, **{**kw, "frames": [7]})
    with pytest.raises(ValueError, match="variant"):
        make(rid, fields={"answer": "`812`", "label": "desk"}, variant="static", **kw)


def test_dumps_record_is_compact_utf8_json_of_the_record() -> None:
    record = _record(meta={"camera": {"t_m": [0.1, -2.5e-07, 3.0], "dyaw_deg": -29.7},
                           "label": "café \"chair\"\n", "tiny": 1e-05, "big": 1e16})
    line = dumps_record(record)
    assert json.loads(line) == record and "\n" not in line
    # Same text as the standard library's compact form but for the spelling of two floats.
    assert line.replace("0.00001", "1e-05").replace("e-7", "e-07") == json.dumps(
        record, ensure_ascii=False, separators=(",", ":")
    )
    assert '"label":"café \\"chair\\"\\n"' in line  # UTF-8, not \u-escaped
    assert record_line(record) == (line + "\n").encode("utf-8")
    assert list(json.loads(line)) == list(record)  # insertion order kept
    with pytest.raises(RecordError, match="cannot be written as JSON"):
        dumps_record({**record, "gt": np.int64(3)})
    with pytest.raises(RecordError, match=record["id"]):
        record_line({**record, "gt": np.float64(3.5)})


def test_ids_without_points_equal_the_general_id() -> None:
    ids = RecordIds("train", "camera_x_direction", "scannet", "scene0000_00")
    for frames in ([185, 155], [0, 99999], [7], [np.int64(12), 4, 5]):
        assert ids.without_points(frames) == ids(frames, [[] for _ in frames])
        assert ids.without_points(frames) == reference_id(
            split="train", subtask="camera_x_direction", source="scannet",
            scene_or_clip="scene0000_00", frames=frames, points=[[] for _ in frames],
        )


def test_frame_images_memo_matches_frame_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unit_path = tmp_path / "cache" / "scannet" / "scene0001_00"
    (unit_path / "images").mkdir(parents=True)
    for frame in (3, 40, 41, 42):
        (unit_path / "images" / f"{frame:05d}.jpg").write_bytes(b"jpeg %d" % frame)
    unit = CacheUnit("scannet/scene0001_00", unit_path, "train")
    out = tmp_path / "out"
    # A fresh output: the folder does not exist yet; frames are hard-linked.
    images = FrameImages(UnitContext(unit, 0, out, GenerateSettings()))
    assert images(40) == images(40) == "scannet/scene0001_00/00040.jpg"
    linked = out / "images" / images(40)
    assert linked.read_bytes() == b"jpeg 40"
    assert linked.stat().st_ino == (unit_path / "images" / "00040.jpg").stat().st_ino
    # Present already (listed once), or linked by another worker meanwhile: same paths.
    ctx = UnitContext(unit, 0, out, GenerateSettings())
    assert ctx.frame_image(3) == "scannet/scene0001_00/00003.jpg"
    images = FrameImages(ctx)
    assert images(3) == "scannet/scene0001_00/00003.jpg"
    assert ctx.frame_image(41) == "scannet/scene0001_00/00041.jpg"
    assert images(41) == "scannet/scene0001_00/00041.jpg"
    # Where hard links fail, the context's copy path does the work.
    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError("no links here")

    monkeypatch.setattr(os, "link", refuse)
    assert images(42) == "scannet/scene0001_00/00042.jpg"
    assert (out / "images" / images(42)).read_bytes() == b"jpeg 42"
    with pytest.raises(FileNotFoundError):
        images(77)  # no such cached frame


def test_frame_image_leaves_no_temporary_when_another_worker_linked_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race of two workers linking one cached frame: the target appears (a hard link to
    the same file) between the existence check and the rename, and rename(2) of two names of
    one inode does nothing; the temporary name must not stay behind."""
    unit_path = tmp_path / "cache" / "scannet" / "scene0001_00"
    (unit_path / "images").mkdir(parents=True)
    source = unit_path / "images" / "00005.jpg"
    source.write_bytes(b"jpeg 5")
    out = tmp_path / "out"
    ctx = UnitContext(CacheUnit("scannet/scene0001_00", unit_path, "train"), 0, out,
                      GenerateSettings())
    target = out / "images" / "scannet" / "scene0001_00" / "00005.jpg"
    real_link = os.link

    def link_after_the_other_worker(src: object, dst: object, **kwargs: object) -> None:
        if not target.exists():  # the other worker wins the race just now
            target.parent.mkdir(parents=True, exist_ok=True)
            real_link(source, target)
        real_link(src, dst, **kwargs)

    monkeypatch.setattr(os, "link", link_after_the_other_worker)
    assert ctx.frame_image(5) == "scannet/scene0001_00/00005.jpg"
    assert sorted(p.name for p in target.parent.iterdir()) == ["00005.jpg"]
    assert target.read_bytes() == b"jpeg 5"
def test_ids_without_points_with_an_object_id_and_in_batches() -> None:
    ids = RecordIds("val", "object_size_width", "scannet", "scene0001_00")
    for frames in ([185, 155], [np.int64(3), 4], [9]):
        for object_id in (None, 0, 41):
            assert ids.without_points(frames, object_id) == ids(
                frames, [[] for _ in frames], object_id
            ) == reference_id(
                split="val", subtask="object_size_width", source="scannet",
                scene_or_clip="scene0001_00", frames=frames, points=[[] for _ in frames],
                object_id=object_id,
            )
    rows = [(185, 155), [0, 99999], (np.int64(12), 4, 5), [7], (155, 185), (185, 155)]
    assert ids.many_without_points(rows) == [ids.without_points(row) for row in rows]


def test_records_without_points_equal_the_record_by_record_path() -> None:
    for subtask in ("camera_x_direction", "camera_translation_vector", "camera_yaw_degree"):
        make = RecordMaker(seed=11, split="train", subtask=subtask, source="scannet",
                           scene_or_clip="scene0002_00")
        frames = [(40, 5), (5, 40), (135, 2000), (7, 8)]
        images = [[f"scannet/scene0002_00/{a:05d}.jpg", f"scannet/scene0002_00/{b:05d}.jpg"]
                  for a, b in frames]
        gts: list[Any] = {"camera_x_direction": ["left", "right", "left", "right"],
                          "camera_translation_vector": [[1, -2, 3], [0, 0, 51], [-9, 8, 7],
                                                        [100, 0, -100]],
                          "camera_yaw_degree": [3, 179, 45, 12]}[subtask]
        answers = [f"`{format_value(SUBTASKS[subtask].answer_type, gt)}`" for gt in gts]
        metas = [{"overlap": 10.0 + k, "camera": {"dyaw_deg": 1.5 * k}} for k in range(4)]
        batch = make.records_without_points(frames, images, (1296, 968), answers, gts, metas)
        single = [
            make(make.ids.without_points(pair), frames=list(pair), images=image_list,
                 width_list=[1296, 1296], height_list=[968, 968], fields={"answer": answer},
                 gt=gt, points=[[], []], meta=meta)
            for pair, image_list, answer, gt, meta in zip(
                frames, images, answers, gts, metas, strict=True
            )
        ]
        assert batch == single
        for record in batch:
            validate_record(record)
            assert record_line(record) == record_line(single[batch.index(record)])
        with pytest.raises(RecordError, match="backtick"):
            make.records_without_points(frames[:1], images[:1], (1, 1), ["`a` `b`"], gts[:1],
                                        metas[:1])
        with pytest.raises(RecordError, match="2 images expected"):
            make.records_without_points(frames[:1], [images[0][:1]], (1, 1), answers[:1],
                                        gts[:1], metas[:1])
    with pytest.raises(ValueError, match="only template field is the answer"):
        RecordMaker(seed=0, split="val", subtask="object_size_width", source="scannet",
                    scene_or_clip="s").records_without_points([], [], (1, 1), [], [], [])


def test_frame_images_link_all_links_what_the_memo_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unit_path = tmp_path / "cache" / "scannet" / "scene0001_00"
    (unit_path / "images").mkdir(parents=True)
    for frame in (3, 40, 41, 42, 43):
        (unit_path / "images" / f"{frame:05d}.jpg").write_bytes(b"jpeg %d" % frame)
    unit = CacheUnit("scannet/scene0001_00", unit_path, "train")
    out = tmp_path / "out"
    ctx = UnitContext(unit, 0, out, GenerateSettings())
    assert ctx.frame_image(3) == "scannet/scene0001_00/00003.jpg"  # present before
    images = FrameImages(ctx)
    images.link_all([40, 3, 40, np.int64(41)])
    assert dict(images.known) == {
        40: "scannet/scene0001_00/00040.jpg", 3: "scannet/scene0001_00/00003.jpg",
        41: "scannet/scene0001_00/00041.jpg",
    }
    folder = out / "images" / "scannet" / "scene0001_00"
    assert sorted(p.name for p in folder.iterdir()) == ["00003.jpg", "00040.jpg", "00041.jpg"]
    for name in ("00040.jpg", "00041.jpg"):  # hard links of the cached files
        assert (folder / name).stat().st_ino == (unit_path / "images" / name).stat().st_ino
    assert images(40) == "scannet/scene0001_00/00040.jpg"
    with pytest.raises(FileNotFoundError):
        images.link_all([77])  # no such cached frame
    # Linked meanwhile by another worker: success; links refused: the context copies.
    os.link(unit_path / "images" / "00042.jpg", folder / "00042.jpg")

    def refuse(*args: object, **kwargs: object) -> None:
        if os.path.basename(str(args[0])) == "00043.jpg":
            raise PermissionError("no links here")
        raise FileExistsError(args[0])

    monkeypatch.setattr(os, "link", refuse)
    images.link_all([42, 43])
    assert (folder / "00043.jpg").read_bytes() == b"jpeg 43"
    assert images.known[43] == "scannet/scene0001_00/00043.jpg"


def test_lines_without_points_are_the_record_lines() -> None:
    """Lines made without the dicts are byte for byte ``record_line`` of the records."""
    cases: list[tuple[str, str, str, list[Any], list[Any]]] = [
        ("camera_translation_vector", "scannet", "scene0002_00",
         [[1, -2, 3], [0, 0, 51], [-9, 8, 7], [100, 0, -100]],
         [{"overlap": 10.0, "camera": {"t_m": [1e-05, -2.5e-07, 1e16], "dyaw_deg": -0.0,
                                        "dpitch_deg": 0.1 + 0.2}},
          {"overlap": 6.25, "camera": {"t_m": [0.5, 1.0, -3.0], "dyaw_deg": float("nan"),
                                        "dpitch_deg": 179.99999999999997}},
          {"overlap": 35.0, "camera": {"t_m": [1, 2, 3], "dyaw_deg": 3, "dpitch_deg": -3}},
          {"overlap": 7.77, "camera": {"note": "café \"x\"\n\\ \u2028 <image>"}}]),
        ("camera_x_direction", "tapvid3d/adt", 'odd "clip" é\\ \u0000',
         ["left", "right", "left", "right"], [None, {}, {"extra": [[], {}]}, {"a": 1, "b": 2}]),
        ("camera_yaw_degree", "scannet", "scene0000_00", [3, 179, 45, 12],
         [{"frames": "replaces the common field"}, {"overlap": 1.5}, {"overlap": 2.5},
          {"split": "x", "overlap": 1.0}]),
    ]
    for subtask, source, scene, gts, metas in cases:
        make = RecordMaker(seed=3, split="val", subtask=subtask, source=source,
                           scene_or_clip=scene)
        frames = [(40, 5), [5, 40], (135, 2000), (7, 8)]
        images = [[f"x/{a:05d}.jpg", f"x/{b:05d}.jpg"] for a, b in frames]
        answers = [f"`{format_value(SUBTASKS[subtask].answer_type, gt)}`" for gt in gts]
        for size in ((1296, 968), (640, 480)):
            records = make.records_without_points(frames, images, size, answers, gts, metas)
            lines = make.lines_without_points(frames, images, size, answers, gts, metas)
            assert lines == [record_line(record) for record in records]
    make = RecordMaker(seed=3, split="val", subtask="camera_x_direction", source="scannet",
                       scene_or_clip="s")
    with pytest.raises(RecordError, match="cannot be written as JSON"):
        make.lines_without_points([(np.int64(1), 2)], [["a", "b"]], (1, 1), ["`left`"],
                                  ["left"], [None])
    with pytest.raises(RecordError, match="backtick"):
        make.lines_without_points([(1, 2)], [["a", "b"]], (1, 1), ["`a` `b`"], ["a"], [None])
    with pytest.raises(ValueError, match="only template field is the answer"):
        RecordMaker(seed=0, split="val", subtask="depth_comparison_dot", source="scannet",
                    scene_or_clip="s").lines_without_points([], [], (1, 1), [], [], [])


# Numbers whose JSON text is easy to get wrong: signed zero, exponents either side of orjson's
# switch to exponent form, rounding halves, the float closest to 0.1 + 0.2, 64-bit limits,
# subnormals, and the non-finite values that JSON writes as null.
AWKWARD_NUMBERS: list[Any] = [
    -0.0, 0.0, 1e-05, 1e-07, -2.5e-07, 1e16, 1e15, 123456789012345680.0, 1e22, 0.5, 2.5, -2.5,
    1.005, 0.1 + 0.2, 179.99999999999997, 5e-324, 1.7976931348623157e308, 0, -1,
    2**63 - 1, -(2**63), 2**64 - 1, float("nan"), float("inf"), -float("inf"), True, None,
]


def test_json_numbers_are_the_texts_record_line_writes() -> None:
    texts = json_numbers(AWKWARD_NUMBERS)
    assert texts == [orjson.dumps(value) for value in AWKWARD_NUMBERS]
    record = _record(meta={f"v{k}": value for k, value in enumerate(AWKWARD_NUMBERS)})
    line = record_line(record)
    members = b",".join(b'"v%d":%b' % (k, text) for k, text in enumerate(texts))
    assert line.endswith(members + b"}}\n")
    assert json_numbers(tuple(AWKWARD_NUMBERS[:3])) == texts[:3]
    assert json_numbers([]) == [] and json_numbers(["a b", "c"]) == [b'"a b"', b'"c"']
    for bad in (2**64, -(2**63) - 1, np.float64(1.5), np.int64(3)):
        with pytest.raises(RecordError, match="cannot be written as JSON"):
            json_numbers([1.0, bad])
        with pytest.raises(RecordError, match="cannot be written as JSON"):
            record_line(_record(meta={"v": bad}))
    with pytest.raises(RecordError, match="holds a comma"):
        json_numbers([1.0, [2.0, 3.0]])


def _odd_meta(a: Any, b: Any, c: Any) -> dict[str, Any]:
    """A meta with nesting, a list, a constant, and keys that need care in a format string."""
    return {"100%": a, "é \"q\"": {"pair": [b, 7, "%s %b"], "last": c}, "flag": False}


def test_meta_layout_writes_the_bytes_of_the_meta_dicts() -> None:
    layout = MetaLayout(_odd_meta(json_slot("a"), json_slot("b"), json_slot("c")), "abc")
    values = list(zip(AWKWARD_NUMBERS, AWKWARD_NUMBERS[5:] + AWKWARD_NUMBERS[:5],
                      reversed(AWKWARD_NUMBERS), strict=True))
    texts = json_numbers([v for row in values for v in row])
    members = layout.members(zip(texts[0::3], texts[1::3], texts[2::3], strict=True))
    assert len(members) == len(values)
    for text, row in zip(members.texts, values, strict=True):
        assert text == b"," + orjson.dumps(_odd_meta(*row))[1:-1]
    # In records, the lines made from the members are those of the records made from the dicts.
    make = RecordMaker(seed=2, split="train", subtask="camera_yaw_degree", source="scannet",
                       scene_or_clip="scene0001_00")
    frames = [(k, k + 3) for k in range(len(values))]
    images = [[f"s/{a:05d}.jpg", f"s/{b:05d}.jpg"] for a, b in frames]
    gts = [k * 7 % 181 for k in range(len(values))]
    answers = [f"`{gt}`" for gt in gts]
    records = make.records_without_points(frames, images, (1296, 968), answers, gts,
                                          [_odd_meta(*row) for row in values])
    lines = make.lines_without_points(frames, images, (1296, 968), answers, gts, members)
    assert lines == [record_line(record) for record in records]
    with pytest.raises(ValueError, match="none of"):
        MetaLayout({"frames": json_slot("a")}, "a")
    with pytest.raises(ValueError, match="needs fields"):
        MetaLayout({}, ())
    with pytest.raises(RecordError, match="slot 'a' not found once, in order"):
        MetaLayout({"x": json_slot("a"), "y": json_slot("b")}, "ba")
    with pytest.raises(RecordError, match="slot 'a' not found once"):
        MetaLayout({"x": json_slot("a"), "y": [json_slot("a")]}, "a")
