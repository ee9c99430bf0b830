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
"""

from __future__ import annotations

from ._acquisition import acquisition_order, acquisition_table, rank_modalities
from ._gain import expected_information_gain, gain_agreement, realised_information_gain

__all__ = [
    "acquisition_order",
    "acquisition_table",
    "expected_information_gain",
    "gain_agreement",
    "rank_modalities",
    "realised_information_gain",
]
