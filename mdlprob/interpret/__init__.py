"""Which modality matters, and which to measure next.

:func:`expected_information_gain`
    Per observation lacking a view: the expected reduction of the latent posterior's
    entropy, of a head's predictive interval, and the probability that its decision changes,
    were the view measured (simulated from the model's posterior predictive).
:func:`realised_information_gain`, :func:`gain_agreement`
    The same on observations that have the view, hidden then revealed: expected against
    realised gains, with their Spearman ρ.
:func:`acquisition_table`, :func:`rank_modalities`, :func:`acquisition_order`
    Every (observation, missing view) pair valued and costed; modalities ranked; a greedy
    cost-weighted acquisition order under a budget.
:func:`modality_contributions`
    The metric (accuracy, C-index, imputation r or your own) of every subset of
    modalities, their Shapley values with bootstrap intervals, and the cost curve.
:func:`feature_attributions`
    Integrated-gradients attributions (Captum, the ``interpret`` extra) of an imputation or
    a head's prediction to the features of one view, averaged over posterior draws.
:func:`variance_explained`
    Variance of each modality explained by each latent dimension, through any model's
    decoder (the FactorModel's :math:`R^2_{mk}` for every model).
"""

from __future__ import annotations

from ._acquisition import acquisition_order, acquisition_table, rank_modalities
from ._attributions import feature_attributions
from ._contributions import Contributions, modality_contributions
from ._gain import expected_information_gain, gain_agreement, realised_information_gain
from ._variance import variance_explained

__all__ = [
    "Contributions",
    "acquisition_order",
    "acquisition_table",
    "expected_information_gain",
    "feature_attributions",
    "gain_agreement",
    "modality_contributions",
    "rank_modalities",
    "realised_information_gain",
    "variance_explained",
]
