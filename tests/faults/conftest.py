"""Fixtures of the fault-case suite: the CLI runner that keeps every output, and whether file
permissions can be made to apply (the tests run as root)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from fault_kit import NO_DAC, Cli


@pytest.fixture(scope="session")
def fault_outputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder collecting the outputs of every fault-case run of this session."""
    return tmp_path_factory.mktemp("fault_outputs")


@pytest.fixture
def cli(fault_outputs: Path, request: pytest.FixtureRequest) -> Cli:
    """Run ``python -m multispa ...`` in a subprocess; outputs are kept (one folder per test,
    checked by ``test_zz_no_traceback.py``) and checked for a traceback at once."""
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in request.node.name)
    return Cli(fault_outputs / name)


@pytest.fixture(scope="session")
def permissions_apply(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Skip unless an unreadable file really is unreadable for the commands under test.

    As root, the command runs under ``setpriv`` without CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH; this checks that this works here (a container may forbid it).
    """
    probe = tmp_path_factory.mktemp("permission_probe") / "secret"
    probe.write_text("x")
    probe.chmod(0)
    if os.geteuid() != 0:
        command = ["cat", str(probe)]
    elif shutil.which(NO_DAC[0]) is None:
        pytest.skip("running as root without setpriv: cannot drop CAP_DAC_OVERRIDE, so "
                    "permission-denied cases cannot be produced")
    else:
        command = [*NO_DAC, "cat", str(probe)]
    try:
        result = subprocess.run(command, capture_output=True, check=False, timeout=30)
    except OSError as error:
        pytest.skip(f"cannot run {command[0]}: {error}")
    if result.returncode == 0:
        pytest.skip("an unreadable file could still be read (capabilities not dropped here): "
                    "permission-denied cases cannot be produced")
