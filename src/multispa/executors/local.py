"""Local execution: in-process when ``workers == 1``, else a bounded process pool (spawn)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import TypeVar

UnitT = TypeVar("UnitT")
ResultT = TypeVar("ResultT")


class LocalExecutor:
    """Runs units in ``workers`` processes, at most ``2 × workers`` submitted at a time."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def map_unordered(
        self, fn: Callable[[UnitT], ResultT], units: Sequence[UnitT]
    ) -> Iterator[ResultT]:
        """Yield ``fn(unit)`` for every unit, in completion order."""
        if self.workers == 1 or len(units) <= 1:
            for unit in units:
                yield fn(unit)
            return
        context = multiprocessing.get_context("spawn")
        pending = list(reversed(units))
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=context) as pool:
            running: set[Future[ResultT]] = set()
            while pending or running:
                while pending and len(running) < 2 * self.workers:
                    running.add(pool.submit(fn, pending.pop()))
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
