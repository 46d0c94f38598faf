"""The file-system policy (multispa.fs), the folder lock (multispa.lock) and the colour-image
check (multispa.scenes.image_check), in process; the CLI behaviour is in tests/faults/."""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from multispa.errors import FormatError, LockError, MultispaError, OutputError
from multispa.fs import (
    check_output_dir,
    check_output_file,
    failure_text,
    naming,
    output_folder,
    present_file,
    printable,
    write_output_file,
)
from multispa.lock import LOCK_NAME, FolderLock
from multispa.scenes.image_check import image_defect, jpeg_defect, too_many_bad


def test_printable_writes_undecodable_bytes_as_escapes() -> None:
    name = os.fsdecode(b"scene\xff_00")
    assert printable(name) == "scene\\xff_00"
    assert printable("scène") == "scène"


def test_failure_text_is_one_line_naming_the_path() -> None:
    denied = PermissionError(errno.EACCES, "Permission denied", "/data/a.json")
    assert failure_text(denied) == "/data/a.json: permission denied"
    full = OSError(errno.ENOSPC, "No space left on device")
    assert failure_text(naming(full, "/cache/x.npy")) == "/cache/x.npy: no space left on device"
    short = OSError("48813 requested and 33760 written")  # numpy's short write: no errno
    assert "/c/v.npy: " in failure_text(naming(short, "/c/v.npy"))
    assert failure_text(MultispaError("two\nlines")) == "two lines"
    assert failure_text(RecursionError()) == "input nested too deeply to be read"
    assert failure_text(KeyError("bug")) is None


def test_present_file_refuses_a_folder(tmp_path: Path) -> None:
    assert present_file(tmp_path / "none") is False
    (tmp_path / "f").write_text("x")
    assert present_file(tmp_path / "f") is True
    with pytest.raises(FormatError, match="is a folder, expected a file"):
        present_file(tmp_path)


def test_output_checks_name_the_file_in_the_way(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    check_output_dir(tmp_path / "new" / "deep")
    with pytest.raises(OutputError, match="exists and is not a folder"):
        check_output_dir(blocker)
    with pytest.raises(OutputError, match=f"{blocker} is a file, not a folder"):
        check_output_dir(blocker / "a" / "b")
    with pytest.raises(OutputError, match="is a folder, expected a file"):
        check_output_file(tmp_path)
    with pytest.raises(OutputError, match=r"is a file, not a folder \(--markdown\)"):
        check_output_file(blocker / "t.md", "--markdown")


def test_output_folder_removes_what_a_failed_command_created(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out"
    with pytest.raises(RuntimeError), output_folder(target, "test"):
        assert (target / LOCK_NAME).is_file()
        raise RuntimeError("failed")
    assert not (tmp_path / "a").exists()
    with pytest.raises(RuntimeError), output_folder(target, "test"):
        (target / "kept").write_text("partial output stays for a resume")
        raise RuntimeError("failed")
    assert sorted(p.name for p in target.iterdir()) == ["kept"]
    with output_folder(target, "test"):
        pass
    assert sorted(p.name for p in target.iterdir()) == ["kept"]  # the lock file is gone


def test_output_folder_names_itself_for_a_write_error_without_a_file(tmp_path: Path) -> None:
    with pytest.raises(OSError) as caught, output_folder(tmp_path / "o", "test"):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert caught.value.filename == str(tmp_path / "o")


def test_write_output_file_is_atomic_and_creates_its_folder(tmp_path: Path) -> None:
    path = write_output_file(tmp_path / "x" / "page.html", "<p>é</p>")
    assert path.read_bytes() == "<p>é</p>".encode()
    assert sorted(p.name for p in path.parent.iterdir()) == ["page.html"]


_HOLD = """
import sys, time
from multispa.lock import FolderLock
lock = FolderLock(sys.argv[1], "holder in a child")
lock.acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_lock_refuses_a_second_process_and_names_it(tmp_path: Path) -> None:
    with subprocess.Popen([sys.executable, "-c", _HOLD, str(tmp_path)],
                          stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout is not None and child.stdout.readline() == "held\n"
            with pytest.raises(LockError,
                               match=f"in use by holder in a child \\(pid {child.pid} "):
                FolderLock(tmp_path, "second").acquire()
        finally:
            child.kill()
    lock = FolderLock(tmp_path, "third")  # the kernel dropped the dead child's lock
    lock.acquire()
    assert lock.stale is not None and lock.stale.pid == child.pid
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    lock.release()
    assert not (tmp_path / LOCK_NAME).exists()


def _jpeg(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    rgb = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def test_jpeg_defect_catches_zeroed_truncated_foreign_and_resized_images() -> None:
    good = _jpeg((64, 48))
    assert jpeg_defect(good, (64, 48)) is None
    assert jpeg_defect(good + bytes(16), (64, 48)) is None  # zero padding after the end
    assert jpeg_defect(bytes(len(good)), (64, 48)).startswith("not a JPEG (starts with 00 00 00")
    assert jpeg_defect(good[: len(good) // 2], (64, 48)) == \
        "truncated JPEG (no end-of-image marker)"
    assert jpeg_defect(good, (48, 64)) == "64x48 pixels, expected 48x64 like the other frames"
    png = io.BytesIO()
    Image.new("RGB", (4, 4)).save(png, format="PNG")
    assert jpeg_defect(png.getvalue()).startswith("not a JPEG")
    assert image_defect(png.getvalue(), "png", (4, 4)) is None
    assert image_defect(bytes(47), "raw", (4, 4)) == "raw RGB payload of 47 bytes, expected 48"


def test_too_many_bad_images_makes_a_unit_unusable_above_half() -> None:
    assert too_many_bad({}, 10) is None
    assert too_many_bad({i: "x" for i in range(5)}, 10) is None
    reason = too_many_bad({i: "truncated" for i in range(3, 9)}, 10)
    assert reason == ("too_many_bad_images: 6 of 10 frames have unusable colour images (more "
                      "than 50%; first: frame 3: truncated)")
