"""``--model`` spec → backend. Heavy backends (OpenAI-compatible HTTP, Hugging Face) are
imported only when asked for, so baselines and prediction files need neither httpx nor torch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multispa.errors import ConfigError
from multispa.evaluate.backends.base import ModelBackend, ModelSpec

__all__ = ["BackendOptions", "make_backend"]


@dataclass(frozen=True)
class BackendOptions:
    """Settings a backend may need; each backend reads its own.

    Attributes:
        concurrency: parallel requests (openai).
        timeout_s: per-request timeout, seconds (openai).
        max_retries: retries of a failed request (openai).
        api_key: bearer token (openai); never written to disk (not in :meth:`to_config`).
        batch_size: items per forward pass (hf).
        max_new_tokens: generation length cap (hf).
        device: torch device, e.g. ``"cuda:0"`` (hf; None = automatic).
        seed: master seed of the baselines' draws.
        prior_from: dataset folder whose train split gives the baselines' statistics.
        bench_records: every benchmark item: baseline statistics (leave-one-out) and the
            known ids of a predictions file.
    """

    concurrency: int = 8
    timeout_s: float = 120.0
    max_retries: int = 3
    api_key: str | None = field(default=None, repr=False)
    batch_size: int = 1
    max_new_tokens: int = 256
    device: str | None = None
    seed: int = 0
    prior_from: Path | None = None
    bench_records: Sequence[Mapping[str, Any]] = field(default=(), repr=False)

    def to_config(self, kind: str) -> dict[str, Any]:
        """The settings the ``kind`` backend uses, JSON-able, without secrets."""
        if kind == "openai":
            return {"concurrency": self.concurrency, "timeout_s": self.timeout_s,
                    "max_retries": self.max_retries, "api_key_set": self.api_key is not None}
        if kind == "hf":
            return {"batch_size": self.batch_size, "max_new_tokens": self.max_new_tokens,
                    "device": self.device}
        if kind == "baseline":
            return {"seed": self.seed,
                    "prior_from": str(self.prior_from.resolve()) if self.prior_from else None}
        return {}


def _missing_extra(extra: str, exc: ImportError) -> ConfigError:
    return ConfigError(f"this backend needs the optional dependencies: pip install "
                       f"'multispa[{extra}]' ({exc})")


def _optional(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise _missing_extra(extra, exc) from None


def make_backend(spec: ModelSpec, options: BackendOptions | None = None) -> ModelBackend:
    """The backend for a parsed ``--model`` spec.

    Raises:
        ConfigError: unknown kind, or a backend whose optional dependencies are missing.
    """
    options = options or BackendOptions()
    if spec.kind == "baseline":
        from multispa.evaluate.backends.baselines import BaselineBackend

        return BaselineBackend(spec.name, options.bench_records, seed=options.seed,
                               prior_from=options.prior_from)
    if spec.kind == "predictions":
        from multispa.evaluate.backends.files import PredictionsFileBackend

        known = [str(r["id"]) for r in options.bench_records] if options.bench_records else None
        return PredictionsFileBackend(spec.name, known)
    if spec.kind == "openai":
        module = _optional("multispa.evaluate.backends.openai_api", "api")
        try:
            return module.OpenAIBackend(
                spec.name, spec.base_url, concurrency=options.concurrency,
                timeout_s=options.timeout_s, max_retries=options.max_retries,
                api_key=options.api_key,
            )
        except ImportError as exc:
            raise _missing_extra("api", exc) from None
    if spec.kind == "hf":
        module = _optional("multispa.evaluate.backends.hf", "hf")
        try:
            return module.HFBackend(spec.name, spec.adapter, batch_size=options.batch_size,
                                    max_new_tokens=options.max_new_tokens, device=options.device)
        except ImportError as exc:  # torch / transformers are imported by the constructor
            raise _missing_extra("hf", exc) from None
    raise ConfigError(f"unknown model kind {spec.kind!r} in {spec}")
