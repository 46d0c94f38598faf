"""One record layout for build_record, assemble_record and RecordMaker (multispa.tasks.records)."""

from __future__ import annotations

import pytest

from multispa.tasks.records import RecordError, assemble_record, build_record
from multispa.tasks.templates import RenderedPrompt, compiled_templates

RID = "train-camera_x_direction-scannet-s-00001_00002-0123456789"


def _prompt() -> RenderedPrompt:
    human, gpt = compiled_templates("camera_x_direction").render([1, 2, 3], {"answer": "`left`"})
    return RenderedPrompt(human, gpt, {"description": 1, "question": 2, "answer": 3})


def test_build_record_equals_assemble_record() -> None:
    prompt = _prompt()
    built = build_record(
        record_id=RID, split="train", subtask="camera_x_direction", source="scannet",
        scene_or_clip="s", frames=(1, 2), images=("scannet/s/00001.jpg", "scannet/s/00002.jpg"),
        sizes=[(1296, 968), (1296, 968)], prompt=prompt, gt="left",
        points=[[], []], meta={"overlap": 12.5, "split": "kept first"},
    )
    assembled = assemble_record(
        record_id=RID, split="train", subtask="camera_x_direction", source="scannet",
        scene_or_clip="s", frames=[1, 2], images=["scannet/s/00001.jpg", "scannet/s/00002.jpg"],
        width_list=[1296, 1296], height_list=[968, 968], human=prompt.human, gpt=prompt.gpt,
        templates={"description": 1, "question": 2, "answer": 3}, gt="left", points=[[], []],
        meta={"overlap": 12.5, "split": "kept first"},
    )
    assert built == assembled
    assert list(built) == list(assembled)
    # meta keys: the common ones first (an override keeps its place), then the subtask's.
    assert list(built["meta"]) == ["source", "scene", "split", "frames", "points", "templates",
                                   "overlap"]
    assert built["meta"]["split"] == "kept first"


def test_build_record_keeps_full_validation_messages() -> None:
    with pytest.raises(RecordError, match="2 <image> tokens but lengths"):
        build_record(
            record_id=RID, split="train", subtask="camera_x_direction", source="scannet",
            scene_or_clip="s", frames=(1,), images=("scannet/s/00001.jpg",),
            sizes=[(1296, 968)], prompt=_prompt(), gt="left", points=[[]],
        )
