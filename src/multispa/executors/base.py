"""The executor contract: map a picklable function over small unit descriptions.

Skip bookkeeping (completion markers) lives in the unit function, not here, so every executor
behaves the same and a unit can also be run by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, TypeVar

from multispa.errors import ConfigError

UnitT = TypeVar("UnitT")
ResultT = TypeVar("ResultT")


class Executor(Protocol):
    """Runs ``fn`` over units, yielding results as they complete (any order)."""

    def map_unordered(
        self, fn: Callable[[UnitT], ResultT], units: Sequence[UnitT]
    ) -> Iterator[ResultT]:
        """Yield ``fn(unit)`` for every unit, in completion order."""
        ...


def make_executor(kind: str, workers: int, ray_address: str | None = None) -> Executor:
    """Build the executor named ``kind`` (``"local"`` or ``"ray"``)."""
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if kind == "local":
        from multispa.executors.local import LocalExecutor

        return LocalExecutor(workers)
    if kind == "ray":
        from multispa.executors.ray import RayExecutor

        return RayExecutor(workers, address=ray_address)
    raise ConfigError(f"unknown executor {kind!r}: expected 'local' or 'ray'")
