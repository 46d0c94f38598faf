"""Looking at the data: sample cards, top-down motion sketches, dataset statistics, a gallery.

- :mod:`multispa.viz.records`: find a record by id in a DATASET or BENCH folder;
- :mod:`multispa.viz.card`: one record as a Pillow image (``multispa show``);
- :mod:`multispa.viz.sketch`: top-down sketch of a camera or object displacement (frame-1 axes);
- :mod:`multispa.viz.stats`: counts and distributions, drawn with matplotlib;
- :mod:`multispa.viz.gallery`: a self-contained HTML page of cards and plots (``multispa gallery``).

matplotlib is imported lazily (:mod:`multispa.viz.canvas`) and only through
``matplotlib.figure.Figure`` with the Agg canvas: no pyplot, no global state.
"""

from __future__ import annotations

__all__: list[str] = []
