"""Ray execution: the same unit function as Ray tasks, on a cluster or a local Ray instance.

Install with ``pip install 'multispa[ray]'``. Without ``address`` a local Ray instance is started
(or an existing one joined through ``RAY_ADDRESS``, which only the CLI reads).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from multispa.errors import ConfigError

UnitT = TypeVar("UnitT")
ResultT = TypeVar("ResultT")


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--executor ray needs Ray: pip install 'multispa[ray]'"
        ) from None
    return ray


class RayExecutor:
    """Runs units as Ray tasks, at most ``max_in_flight`` at a time."""

    def __init__(self, workers: int, address: str | None = None) -> None:
        self.workers = workers
        self.address = address

    def map_unordered(
        self, fn: Callable[[UnitT], ResultT], units: Sequence[UnitT]
    ) -> Iterator[ResultT]:
        """Yield ``fn(unit)`` for every unit, in completion order."""
        ray = _import_ray()
        started_here = not ray.is_initialized()
        if started_here:
            ray.init(
                address=self.address,
                num_cpus=None if self.address else self.workers,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        try:
            remote_fn = ray.remote(num_cpus=1)(fn)
            pending = list(reversed(units))
            running: list[Any] = []
            max_in_flight = 2 * self.workers
            while pending or running:
                while pending and len(running) < max_in_flight:
                    running.append(remote_fn.remote(pending.pop()))
                done, running = ray.wait(running, num_returns=1)
                for ref in done:
                    yield ray.get(ref)
        finally:
            if started_here:
                ray.shutdown()
