"""``predictions:<file.jsonl>``: answers produced elsewhere, scored like any model's.

The file holds ``{"id", "response"}`` lines (:func:`multispa.metrics.score.load_predictions`:
``response`` a string or null, ids unique). An item without a line gets a :class:`Prediction`
with an ``error`` (the runner scores it as missing); lines for ids the benchmark does not hold
are listed in :attr:`PredictionsFileBackend.unknown_ids`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

from multispa.evaluate.backends.base import EvalItem, Prediction
from multispa.metrics.score import load_predictions

__all__ = ["NO_PREDICTION", "PredictionsFileBackend"]

logger = logging.getLogger(__name__)

NO_PREDICTION = "no prediction for this id in the predictions file"


class PredictionsFileBackend:
    """Answers items from a predictions JSONL read once, at construction.

    Args:
        path: the predictions file.
        known_ids: every benchmark id (for :attr:`unknown_ids`); None skips that check.

    Raises:
        MissingFileError, FormatError: the file is absent or malformed.
    """

    def __init__(self, path: str | Path, known_ids: Sequence[str] | None = None) -> None:
        self.path = Path(path)
        self.name = f"predictions:{self.path}"
        self.responses = load_predictions(self.path)
        known = set(known_ids) if known_ids is not None else None
        self.unknown_ids: list[str] = (
            sorted(rid for rid in self.responses if rid not in known) if known is not None else []
        )
        if self.unknown_ids:
            logger.warning("%s: %d prediction(s) for ids not in the benchmark (ignored), e.g. %s",
                           self.path, len(self.unknown_ids), self.unknown_ids[0])

    def describe(self) -> dict[str, object]:
        """File, line count and unknown ids (recorded in the run's config)."""
        return {"file": str(self.path.resolve()), "predictions": len(self.responses),
                "unknown_ids": len(self.unknown_ids)}

    def generate(self, items: Sequence[EvalItem]) -> Iterator[Prediction]:
        """One prediction per item, in order; an ``error`` one for ids absent from the file."""
        for item in items:
            if item.id in self.responses:
                yield Prediction(item.id, self.responses[item.id])
            else:
                yield Prediction(item.id, None, error=NO_PREDICTION)

    def close(self) -> None:
        """Nothing to release."""
