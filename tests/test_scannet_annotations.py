"""Tests of the ScanNet annotation parsers: ``<scene>.txt``, aggregation, segs, label map."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest

from multispa.errors import FormatError, MissingFileError
from multispa.scenes.scannet_annotations import (
    SegGroup,
    build_instances,
    read_aggregation,
    read_label_map,
    read_scene_meta,
    read_segs,
)

ALIGN_TEXT = "0.5 -0.25 0 1.5 0.25 0.5 0 -2 0 0 1 0.75 0 0 0 1"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_scene_meta_values(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "scene0001_00.txt",
        f"axisAlignment = {ALIGN_TEXT}\n"
        "colorHeight = 968\ncolorWidth = 1296\ndepthHeight = 480\ndepthWidth = 640\n"
        "fx_color = 1170.187988\nfy_color = 1170.187988\nmx_color = 647.75\nmy_color = 483.75\n"
        "fx_depth = 571.623718\nfy_depth = 571.5\nmx_depth = 319.5\nmy_depth = 239.5\n"
        "numColorFrames = 10\nsceneType = Living room / Lounge\n"
        "colorToDepthExtrinsics = 1 0 0 0 0 1 0 0 0 0 1 0 0 0 0 1\n\n",
    )
    meta = read_scene_meta(path)
    expected = np.array([float(v) for v in ALIGN_TEXT.split()]).reshape(4, 4)
    np.testing.assert_array_equal(meta.axis_alignment, expected)
    assert meta.axis_alignment.dtype == np.float64
    assert meta.has_axis_alignment
    assert meta.color_size == (1296, 968)
    assert meta.depth_size == (640, 480)
    c, d = meta.color_intrinsics, meta.depth_intrinsics
    assert c is not None and d is not None
    assert (c.fx, c.fy, c.cx, c.cy, c.width, c.height) == (
        1170.187988,
        1170.187988,
        647.75,
        483.75,
        1296,
        968,
    )
    assert (d.fx, d.fy, d.cx, d.cy, d.width, d.height) == (
        571.623718,
        571.5,
        319.5,
        239.5,
        640,
        480,
    )
    assert meta.path == path


def test_scene_meta_absent_keys(tmp_path: Path) -> None:
    meta = read_scene_meta(
        _write(
            tmp_path / "s.txt",
            "sceneType = Office\nfx_depth = 500\nfy_depth = 501\nmx_depth = 300\nmy_depth = 200\n",
        )
    )
    np.testing.assert_array_equal(meta.axis_alignment, np.eye(4))
    assert not meta.has_axis_alignment
    assert meta.color_size is None and meta.color_intrinsics is None
    # depth keys without a size: ScanNet's default depth size.
    assert meta.depth_intrinsics is not None
    assert (meta.depth_intrinsics.width, meta.depth_intrinsics.height) == (640, 480)
    assert meta.depth_intrinsics.fy == 501.0


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("1 0 0 0 0 1 0 0 0 0 1 0 0 0 0", "expected 16 numbers, found 15"),
        ("1 0 0 0 0 1 0 0 0 0 1 0 0 0 0 1 2", "expected 16 numbers, found 17"),
        ("1 0 0 inf 0 1 0 0 0 0 1 0 0 0 0 1", "non-finite"),
        ("1 0 0 nan 0 1 0 0 0 0 1 0 0 0 0 1", "non-finite"),
        ("1 0 0 x 0 1 0 0 0 0 1 0 0 0 0 1", "non-numeric"),
    ],
)
def test_scene_meta_malformed_alignment(tmp_path: Path, value: str, needle: str) -> None:
    path = _write(tmp_path / "scene0002_00.txt", f"axisAlignment = {value}\n")
    with pytest.raises(FormatError, match=needle) as info:
        read_scene_meta(path)
    assert "scene0002_00.txt" in str(info.value)
    assert "axisAlignment" in str(info.value)


def test_scene_meta_malformed_other_keys(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="colorWidth"):
        read_scene_meta(_write(tmp_path / "a.txt", "colorWidth = wide\ncolorHeight = 9\n"))
    with pytest.raises(FormatError, match="colorHeight"):
        read_scene_meta(_write(tmp_path / "b.txt", "colorWidth = 12\n"))
    with pytest.raises(FormatError, match="my_color"):
        read_scene_meta(_write(tmp_path / "c.txt", "fx_color = 1\nfy_color = 1\nmx_color = 1\n"))
    with pytest.raises(MissingFileError, match=re.escape("none.txt")):
        read_scene_meta(tmp_path / "none.txt")


def _agg(path: Path, groups: list[dict]) -> Path:
    return _write(path, json.dumps({"sceneId": "scannet.x", "segGroups": groups}))


def test_read_aggregation_and_segs(tmp_path: Path) -> None:
    path = _agg(
        tmp_path / "x.aggregation.json",
        [
            {"id": 0, "objectId": 0, "label": "office chair", "segments": [3, 1]},
            {"id": 1, "objectId": 1, "label": "table", "segments": []},
        ],
    )
    groups = read_aggregation(path)
    assert [(g.object_id, g.label, g.segments.tolist()) for g in groups] == [
        (0, "office chair", [3, 1]),
        (1, "table", []),
    ]
    assert groups[0].segments.dtype == np.int64
    segs = _write(tmp_path / "x.segs.json", json.dumps({"segIndices": [3, 3, 1, 7]}))
    seg_indices = read_segs(segs)
    assert seg_indices.dtype == np.int64
    assert seg_indices.tolist() == [3, 3, 1, 7]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('{"segGroups": [', "malformed JSON"),
        ('{"groups": []}', "segGroups"),
        ('{"segGroups": [{"objectId": 0, "label": "a"}]}', "segments"),
        ('{"segGroups": [{"objectId": -1, "label": "a", "segments": []}]}', "objectId"),
        ('{"segGroups": [{"objectId": 0, "label": 3, "segments": []}]}', "label"),
        ('{"segGroups": [{"objectId": 0, "label": "a", "segments": [1.5]}]}', "1.5"),
        (
            '{"segGroups": [{"objectId": 0, "label": "a", "segments": []},'
            ' {"objectId": 0, "label": "b", "segments": []}]}',
            "more than once",
        ),
    ],
)
def test_read_aggregation_malformed(tmp_path: Path, content: str, needle: str) -> None:
    path = _write(tmp_path / "bad.aggregation.json", content)
    with pytest.raises(FormatError, match=needle) as info:
        read_aggregation(path)
    assert "bad.aggregation.json" in str(info.value)


def test_read_segs_malformed(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="segIndices"):
        read_segs(_write(tmp_path / "a.segs.json", '{"params": {}}'))
    with pytest.raises(FormatError, match="expected integers"):
        read_segs(_write(tmp_path / "b.segs.json", '{"segIndices": [1, "2"]}'))
    with pytest.raises(FormatError, match="malformed JSON"):
        read_segs(_write(tmp_path / "c.segs.json", '{"segIndices": [1, 2'))


def _groups() -> list[SegGroup]:
    return [
        SegGroup(4, "chair", np.array([10, 12])),
        SegGroup(1, "table", np.array([11, 11])),  # duplicate within one group: no conflict
        SegGroup(2, "lamp", np.array([12, 13])),  # 12 also in objectId 4: the lamp wins
    ]


def test_build_instances_values_and_conflict(caplog: pytest.LogCaptureFixture) -> None:
    seg_indices = np.array([10, 10, 11, 12, 13, 14, 12, 11, 10, 14])
    with caplog.at_level(logging.WARNING):
        ids, objects, conflicts = build_instances(
            seg_indices, _groups(), 10, label_map={"chair": "chair", "lamp": "lamp"}
        )
    assert ids.dtype == np.int32
    assert ids.tolist() == [4, 4, 1, 2, 2, -1, 2, 1, 4, -1]
    assert conflicts == 1
    assert "later group wins" in caplog.text
    assert [o.object_id for o in objects] == [1, 2, 4]
    assert [o.label for o in objects] == ["table", "lamp", "chair"]
    assert [o.nyu40_class for o in objects] == [None, "lamp", "chair"]
    assert [o.vertex_indices.tolist() for o in objects] == [[2, 7], [3, 4, 6], [0, 1, 8]]
    assert all(o.vertex_indices.dtype == np.int64 for o in objects)


def test_build_instances_object_losing_every_segment() -> None:
    groups = [SegGroup(0, "a", np.array([5])), SegGroup(1, "b", np.array([5]))]
    ids, objects, conflicts = build_instances(np.array([5, 6, 5]), groups, 3)
    assert ids.tolist() == [1, -1, 1]
    assert conflicts == 1
    assert objects[0].vertex_indices.tolist() == []
    assert objects[1].vertex_indices.tolist() == [0, 2]


def test_build_instances_no_groups() -> None:
    ids, objects, conflicts = build_instances(np.array([1, 2]), [], 2)
    assert ids.tolist() == [-1, -1]
    assert objects == ()
    assert conflicts == 0


def test_build_instances_errors() -> None:
    segs = Path("scene_vh_clean_2.0.010000.segs.json")
    agg = Path("scene.aggregation.json")
    with pytest.raises(FormatError, match="has 3 entries but the mesh has 4 vertices") as info:
        build_instances(np.array([10, 11, 12]), _groups(), 4, segs_path=segs)
    assert segs.name in str(info.value)
    with pytest.raises(FormatError, match="objectId 2 \\('lamp'\\) lists segment 13") as info:
        build_instances(np.array([10, 11, 12]), _groups(), 3, segs_path=segs, aggregation_path=agg)
    assert agg.name in str(info.value)
    assert segs.name in str(info.value)


def test_read_label_map(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "scannetv2-labels.combined.tsv",
        "id\traw_category\tcategory\tcount\tnyu40id\tnyu40class\n"
        "1\twall\twall\t8277\t1\twall\n"
        "2\toffice chair\tchair\t4646\t5\tchair\n"
        "\n",
    )
    assert read_label_map(path) == {"wall": "wall", "office chair": "chair"}
    bad = _write(tmp_path / "bad.tsv", "id\traw_category\n1\twall\n")
    with pytest.raises(FormatError, match="nyu40class") as info:
        read_label_map(bad)
    assert "bad.tsv" in str(info.value)
    short = _write(tmp_path / "short.tsv", "raw_category\tx\tnyu40class\nwall\n")
    with pytest.raises(FormatError, match="line 2"):
        read_label_map(short)
