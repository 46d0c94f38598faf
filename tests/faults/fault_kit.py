"""Helpers of the fault-case suite: run the CLI as a user does (a subprocess, optionally without
the capabilities that let root ignore file permissions), keep every run's output for the final
``grep -r Traceback``, mutate copies of the shared synthetic source, and check the one-line
error contract."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Runs a command without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH: dropped from the bounding
#: set, they are not in the permitted or effective sets of the executed program either (root's
#: capabilities after execve are bounded by it), so file permissions apply to root too.
NO_DAC = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search")


@dataclass(frozen=True)
class Run:
    """One finished CLI run."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        """stdout and stderr lines (progress-bar carriage returns split too)."""
        return (self.stdout + "\n" + self.stderr).replace("\r", "\n").splitlines()

    def failed_line(self, unit: str) -> str:
        """The ``failed: <unit>: ...`` line of a prepare or generate summary."""
        for line in self.lines:
            if line.strip().startswith(f"failed: {unit}:"):
                return line.strip()
        raise AssertionError(f"no 'failed: {unit}:' line in:\n{self.stdout}\n{self.stderr}")


class Cli:
    """Runs ``python -m multispa ARGS`` and keeps stdout and stderr under ``outputs``."""

    def __init__(self, outputs: Path) -> None:
        self.outputs = outputs
        self.count = 0

    def __call__(self, *args: str | Path, no_dac: bool = False, wrap: tuple[str, ...] = (),
                 timeout: float = 300) -> Run:
        command = [sys.executable, "-m", "multispa", *map(str, args)]
        return self.run(command, no_dac=no_dac, wrap=wrap, timeout=timeout)

    def in_process(self, *args: str | Path) -> Run:
        """The same command through click's test runner in this process (no interpreter start:
        for the cases that fail before any work). An exception that escapes the command (a
        bug: the CLI would print its traceback) is kept with its traceback."""
        from click.testing import CliRunner

        from multispa.cli import main

        result = CliRunner().invoke(main, [str(arg) for arg in args])
        stderr = result.stderr
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            stderr += "".join(traceback.format_exception(result.exception))
        run = Run(("python", "-m", "multispa", *map(str, args)), result.exit_code,
                  result.stdout, stderr)
        self.keep(run)
        return run

    def run(self, command: list[str], *, no_dac: bool = False, wrap: tuple[str, ...] = (),
            timeout: float = 300) -> Run:
        """Run any command (e.g. the kill harness) the same way."""
        prefix = (*wrap, *(NO_DAC if no_dac and os.geteuid() == 0 else ()))
        done = subprocess.run([*prefix, *command], capture_output=True, timeout=timeout,
                              check=False)
        run = Run(tuple(command), done.returncode,
                  done.stdout.decode("utf-8", "backslashreplace"),
                  done.stderr.decode("utf-8", "backslashreplace"))
        self.keep(run)
        return run

    def keep(self, run: Run) -> None:
        """Store a run's output for the suite's final Traceback check, and check it now."""
        self.count += 1
        self.outputs.mkdir(parents=True, exist_ok=True)
        name = f"{self.count:04d}-{'_'.join(a for a in run.args[3:5] if '/' not in a)}"
        (self.outputs / f"{name}.out").write_text(run.stdout, encoding="utf-8")
        (self.outputs / f"{name}.err").write_text(run.stderr, encoding="utf-8")
        assert "Traceback" not in run.stdout + run.stderr, f"{run.args}:\n{run.stderr}"


def assert_one_line_error(run: Run, *needles: str | Path) -> str:
    """Exit status 1, no traceback, and a last stderr line ``error: ...`` holding ``needles``
    (the only ``error:`` line). Returns that line."""
    assert run.returncode == 1, (run.returncode, run.stdout, run.stderr)
    assert "Traceback" not in run.stdout + run.stderr
    errors = [line for line in run.stderr.split("\n") if line.startswith("error: ")]
    assert len(errors) == 1, run.stderr
    last = run.stderr.rstrip("\n").split("\n")[-1]
    assert last == errors[0], run.stderr
    for needle in needles:
        assert str(needle) in last, (needle, last)
    return last


def assert_valid_manifest(path: Path) -> dict:
    """``path`` is valid JSON (no NaN) and a JSON object."""
    def refuse(constant: str) -> None:
        raise AssertionError(f"{path}: bare {constant} (not JSON)")

    data = json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)
    assert isinstance(data, dict)
    return data


def tree_hashes(root: Path, *, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """SHA-256 of every file under ``root`` by relative path (folders named in ``skip``
    aside); empty folders count too (as ``<dir>``)."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in skip:
            continue
        if path.is_dir():
            if not any(path.iterdir()):
                out[str(rel)] = "<dir>"
            continue
        out[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


# ------------------------------------------------------------------------------ mutations


def copy_source(synth: Path, dst: Path, *, tapvid: bool = True) -> Path:
    """A writable copy of the synthetic source (``scannet/`` and optionally ``tapvid3d/``)."""
    shutil.copytree(synth / "scannet", dst / "scannet")
    if tapvid:
        shutil.copytree(synth / "tapvid3d", dst / "tapvid3d")
    return dst


def scene_dir(root: Path, scene: str) -> Path:
    """``<root>/scannet/scans/<scene>``."""
    return root / "scannet" / "scans" / scene


def set_ply_vertex(ply: Path, index: int, xyz: tuple[float, float, float]) -> None:
    """Overwrite vertex ``index`` of a binary little-endian ply written by the synthesiser
    (``x y z`` float32 then four uchar colours)."""
    data = bytearray(ply.read_bytes())
    start = data.index(b"end_header\n") + len(b"end_header\n")
    struct.pack_into("<3f", data, start + 16 * index, *xyz)
    ply.write_bytes(bytes(data))


def sens_colour_k_offset(sens: Path) -> int:
    """Byte offset of the colour K matrix in a ``.sens`` header."""
    with open(sens, "rb") as handle:
        _, name_length = struct.unpack("<IQ", handle.read(12))
    return 12 + name_length


def set_sens_fx(sens: Path, value: float) -> None:
    """Set the colour camera's fx (K[0, 0]) in a ``.sens`` header."""
    data = bytearray(sens.read_bytes())
    struct.pack_into("<f", data, sens_colour_k_offset(sens), value)
    sens.write_bytes(bytes(data))


def zero_sens_colour(sens: Path, frames: list[int]) -> None:
    """Zero the colour payloads of ``frames`` in a ``.sens`` file (sizes unchanged)."""
    from multispa.scenes.sens import SensFile

    with SensFile(sens) as reader:
        spans = [(int(reader.color_offsets[i]), int(reader.color_sizes[i])) for i in frames]
    data = bytearray(sens.read_bytes())
    for offset, size in spans:
        data[offset:offset + size] = bytes(size)
    sens.write_bytes(bytes(data))


def cut_clip_jpeg(npz: Path, frame: int) -> None:
    """Truncate frame ``frame``'s JPEG to half its bytes in a TAPVid-3D clip."""
    with np.load(npz, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    jpegs = arrays["images_jpeg_bytes"].tolist()
    jpegs[frame] = jpegs[frame][: len(jpegs[frame]) // 2]
    arrays["images_jpeg_bytes"] = np.array(jpegs)
    with open(npz, "wb") as handle:
        np.savez(handle, **arrays)


def rename_scene_bytes(root: Path, scene: str, new: bytes) -> bytes:
    """Rename a scene folder and its files to the non-UTF-8 name ``new``; return the new
    folder path as bytes."""
    folder = os.fsencode(scene_dir(root, scene))
    old = scene.encode()
    for name in os.listdir(folder):
        os.rename(os.path.join(folder, name), os.path.join(folder, name.replace(old, new)))
    target = os.path.join(os.path.dirname(folder), new)
    os.rename(folder, target)
    return target


def tmpfs_wrapper(mount: Path, size: str, copy_to: Path) -> tuple[str, ...]:
    """A prefix running a command in a private mount namespace where ``mount`` is a tmpfs of
    ``size`` bytes (e.g. ``"600k"``); what the command left there is copied to ``copy_to``
    afterwards (the tmpfs disappears with the namespace). Use with :meth:`Cli.run`'s ``wrap``:
    the command follows as ``"$@"``."""
    script = (f'mount -t tmpfs -o size={size} none "{mount}" || exit 99; "$@"; rc=$?; '
              f'cp -a "{mount}/." "{copy_to}/"; exit $rc')
    return ("unshare", "-m", "sh", "-c", script, "sh")
