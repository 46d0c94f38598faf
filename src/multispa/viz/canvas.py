"""matplotlib without pyplot, and the fonts cards are drawn with.

matplotlib is imported on first use, inside :func:`_matplotlib`. When its config or cache folder is
not writable it logs warnings (and falls back to a temporary folder); those records are demoted to
this module's ``debug`` log while the import runs, so a read-only home does not print warnings on
every ``multispa show``. Nothing global is set: no ``rcParams``, no backend selection, no
environment variables (matplotlib itself may set ``MPLCONFIGDIR`` to its temporary folder).

Figures are ``matplotlib.figure.Figure`` objects rendered by their own ``FigureCanvasAgg``.
"""

from __future__ import annotations

import functools
import io
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageFont

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["figure_to_image", "figure_to_png", "new_figure", "ui_font"]

_log = logging.getLogger(__name__)
#: matplotlib loggers that warn about unwritable folders or font-cache building during import.
_NOISY_LOGGERS = ("matplotlib", "matplotlib.font_manager")


class _Demote(logging.Filter):
    """Drops a record after re-logging it at debug level under this module's logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        _log.debug("matplotlib: %s", record.getMessage())
        return False


@functools.cache
def _matplotlib() -> tuple[Any, Any, Path]:
    """``(Figure, FigureCanvasAgg, data folder)``, importing matplotlib quietly (module doc)."""
    demote = _Demote()
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    for logger in loggers:
        logger.addFilter(demote)
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    finally:
        for logger in loggers:
            logger.removeFilter(demote)
    return Figure, FigureCanvasAgg, Path(matplotlib.get_data_path())


def new_figure(width_px: int, height_px: int, *, dpi: int = 100, layout: str | None = None
               ) -> Figure:
    """A ``width_px`` × ``height_px`` figure with an Agg canvas attached (white background).

    Args:
        width_px, height_px: size of the rendered image, pixels.
        dpi: dots per inch (text sizes in points scale with it).
        layout: matplotlib layout engine (``"constrained"``) or ``None``.
    """
    figure_class, canvas_class, _ = _matplotlib()
    figure = figure_class(figsize=(width_px / dpi, height_px / dpi), dpi=dpi, layout=layout,
                          facecolor="white")
    canvas_class(figure)
    return figure


def figure_to_image(figure: Figure) -> Image.Image:
    """Render ``figure`` and return it as an RGB Pillow image of its pixel size."""
    canvas = figure.canvas
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())  # (H, W, 4) uint8
    return Image.fromarray(rgba[..., :3].copy(), mode="RGB")


def figure_to_png(figure: Figure) -> bytes:
    """Render ``figure`` as PNG bytes (the figure's own size and dpi)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=figure.dpi, facecolor="white")
    return buffer.getvalue()


_FONT_FILES = {
    "regular": "DejaVuSans.ttf",
    "bold": "DejaVuSans-Bold.ttf",
    "mono": "DejaVuSansMono.ttf",
}


@functools.lru_cache(maxsize=32)
def ui_font(size: int, style: str = "regular") -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans (shipped with matplotlib; covers Δ, −, °, →) at ``size`` pixels.

    ``style`` is ``"regular"``, ``"bold"`` or ``"mono"``. Falls back to Pillow's bundled font
    (the marker letters' font) when the file cannot be read.
    """
    name = _FONT_FILES.get(style)
    if name is None:
        raise ValueError(f"ui_font: style {style!r}, expected one of {sorted(_FONT_FILES)}")
    try:
        path = _matplotlib()[2] / "fonts" / "ttf" / name
        return ImageFont.truetype(str(path), size)
    except OSError:
        _log.debug("font %s not readable; using Pillow's default font", name)
        return ImageFont.load_default(size=size)
