"""Runs last in the fault suite (file order): ``grep -r Traceback`` over the outputs of every
command the suite ran finds nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


def test_no_traceback_in_any_fault_case_output(fault_outputs: Path) -> None:
    kept = [p for p in fault_outputs.rglob("*") if p.is_file()]
    if not kept:
        pytest.skip("no fault case ran in this session (run the whole tests/faults/ folder)")
    found = subprocess.run(["grep", "-r", "-l", "Traceback", str(fault_outputs)],
                           capture_output=True, text=True, check=False)
    assert found.returncode == 1, f"tracebacks in: {found.stdout}"  # 1: no line matched
