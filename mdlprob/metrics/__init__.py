"""Evaluation metrics as pure functions on numpy arrays or torch tensors.

Imputation
    :func:`pearson_per_feature`, :func:`spearman_per_feature`, :func:`rmse`,
    :func:`interval_coverage`, :func:`crps`.
Survival (scikit-survival conventions)
    :func:`harrell_c`, :func:`uno_c`, :func:`brier_score`,
    :func:`integrated_brier_score`, :func:`cumulative_dynamic_auc`.
Classification
    :func:`accuracy`, :func:`macro_f1`, :func:`auroc`, :func:`brier`,
    :func:`expected_calibration_error`.
Images (one flattened image per row)
    :func:`psnr`, :func:`ssim`, :func:`pixel_interval_coverage`,
    :func:`uncertainty_error_correlation`.

Every function accepts numpy arrays or torch tensors (on any device) and returns
python floats or numpy arrays.
"""

from __future__ import annotations

from ._classification import (
    accuracy,
    auroc,
    brier,
    expected_calibration_error,
    macro_f1,
)
from ._image import (
    pixel_interval_coverage,
    psnr,
    ssim,
    uncertainty_error_correlation,
)
from ._imputation import (
    crps,
    interval_coverage,
    pearson_per_feature,
    rmse,
    spearman_per_feature,
)
from ._survival import (
    brier_score,
    cumulative_dynamic_auc,
    harrell_c,
    integrated_brier_score,
    uno_c,
)

__all__ = [
    "accuracy",
    "auroc",
    "brier",
    "brier_score",
    "crps",
    "cumulative_dynamic_auc",
    "expected_calibration_error",
    "harrell_c",
    "integrated_brier_score",
    "interval_coverage",
    "macro_f1",
    "pearson_per_feature",
    "pixel_interval_coverage",
    "psnr",
    "rmse",
    "spearman_per_feature",
    "ssim",
    "uncertainty_error_correlation",
    "uno_c",
]
