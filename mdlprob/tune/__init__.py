"""Model selection built in: cross-validated search of a model's hyper-parameters on Optuna.

:func:`tune`
    K-fold cross-validation of a configuration's held-out log-likelihood (or its imputation
    of a hidden modality), searched with Optuna's TPE sampler and median pruning; the
    chosen configuration is refitted and recorded on the model (``tuning_``, saved with it).
:data:`DEFAULT_SPACE`
    The default search space (latent size, width, depth, dropout, learning rate, weight decay).
"""

from __future__ import annotations

from ._tune import DEFAULT_SPACE, TuneResult, tune

__all__ = ["DEFAULT_SPACE", "TuneResult", "tune"]
