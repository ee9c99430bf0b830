"""Figures built on :class:`matplotlib.figure.Figure` directly, leaving pyplot's state alone (also ``mdlprob.pl``).

Every function returns the Figure, draws into a caller's ``ax`` when given one, and writes a
PNG atomically with ``path=``.

Imputation
    :func:`imputation`: imputed mean against the truth of one feature, with intervals.
    :func:`calibration`: empirical against nominal coverage of the imputation's intervals.
Training
    :func:`history`: training and validation loss, the epoch early stopping kept.
Survival
    :func:`survival`: predicted curves with bands by group, beside Kaplan–Meier.
Latent space
    :func:`embedding`: the latent (UMAP or two axes) coloured by batch, label or presence pattern (scanpy).
Images
    :func:`scan_panel`: observed scans next to an imputed scan's mean, sd and error maps.
Interpretation (:mod:`mdlprob.interpret`)
    :func:`acquisition_value`: per-observation value of measuring a missing view.
    :func:`shapley`: modality Shapley values with bootstrap intervals.
    :func:`cost_curve`: the metric of every subset of modalities against its size or cost.
Colours
    :func:`method_color`, :func:`method_colors`: one colour per method, the same in every figure.
"""

from __future__ import annotations

from ._embedding import embedding
from ._imputation import calibration, imputation
from ._interpret import acquisition_value, cost_curve, shapley
from ._palette import METHOD_COLORS, method_color, method_colors
from ._scans import scan_panel
from ._survival import survival
from ._training import history

__all__ = ["METHOD_COLORS", "acquisition_value", "calibration", "cost_curve", "embedding", "history", "imputation", "method_color",
           "method_colors", "scan_panel", "shapley",
           "survival"]
