"""Run ``multispa ARGS`` in this process and SIGKILL it just before the N-th call of a function.

    python kill_at.py MODULE:ATTR N -- ARGS...

``MODULE:ATTR`` names the function to watch (``os:replace``,
``multispa.evaluate.runner:PredictionLog.append``...); the process kills itself with SIGKILL
when that function is called for the N-th time (1-based), before the call runs: a kill at a
chosen, repeatable point of a real run (the kill-and-resume tests).
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from typing import Any


def _watch(target: str, when: int) -> None:
    module_name, attribute = target.split(":")
    owner: Any = importlib.import_module(module_name)
    *path, name = attribute.split(".")
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, name)
    calls = 0

    def watched(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == when:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)

    setattr(owner, name, watched)


def main() -> None:
    """Parse ``MODULE:ATTR N -- ARGS`` and run the CLI."""
    split = sys.argv.index("--")
    target, when = sys.argv[1], int(sys.argv[2])
    from multispa.cli import main as cli

    _watch(target, when)
    cli(sys.argv[split + 1:], prog_name="multispa")


if __name__ == "__main__":
    main()
