"""Late fusion: one head per modality, predictions combined over the available modalities."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from ._base import _FusionEstimator
from ._nn import FusionNet, LateNet

COMBINE = ("mean", "learned")


class LateFusion(_FusionEstimator):
    r"""Late (decision-level) fusion: unimodal heads whose predictions are averaged.

    Each modality has its own network :math:`f_m` on its standardised, mean-filled features
    (the architecture of :class:`EarlyFusion`), trained alone on the observations that have
    the modality. With :math:`A_i` the modalities observation :math:`i` has,

    .. math::

        w_{im} = \frac{a_{im}\, e^{\alpha_m}}{\sum_{k \in A_i} e^{\alpha_k}}, \qquad
        p(y_i \mid x_i) = \sum_{m \in A_i} w_{im}\, \mathrm{softmax}\, f_m(x_{im}), \qquad
        \eta_i = \sum_{m \in A_i} w_{im}\, f_m(x_{im}),

    for classification (a mixture of the heads' probabilities) and survival (a weighted
    log-risk) respectively. ``combine="mean"`` fixes :math:`\alpha = 0` (plain average over the
    available modalities); ``"learned"`` fits :math:`\alpha` on the fused loss with the heads held
    fixed (their gradients are stopped), so the heads stay unimodal.

    Parameters
    ----------
    task
        ``"classification"`` or ``"survival"``.
    combine
        ``"mean"`` or ``"learned"`` weighting of the available modalities.
    n_hidden, n_layers, dropout
        Architecture of every head (``n_hidden=0``: linear heads).
    max_epochs, batch_size, lr, weight_decay, random_state
        Training, as in :class:`EarlyFusion`.

    Attributes
    ----------
    modalities_, classes_, event_times_, cum_baseline_hazard_, loss_history_, net_
        As in :class:`EarlyFusion`.

    References
    ----------
    Baltrušaitis, Ahuja & Morency (2019), Multimodal machine learning: a survey and taxonomy,
    IEEE TPAMI 41(2).
    Kline et al. (2022), Multimodal machine learning in precision health: a scoping review,
    npj Digit. Med. 5:171.
    """

    def __init__(self, *, task: Literal["classification", "survival"] = "classification",
                 combine: Literal["mean", "learned"] = "mean", n_hidden: int = 32, n_layers: int = 1,
                 dropout: float = 0.1, max_epochs: int = 200, batch_size: int | None = None, lr: float = 3e-3,
                 weight_decay: float = 1e-4, random_state: Any = None) -> None:
        self.task = task
        self.combine = combine
        self.n_hidden = n_hidden
        self.n_layers = n_layers
        self.dropout = dropout
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.random_state = random_state

    def _check_params(self) -> None:
        super()._check_params()
        if self.combine not in COMBINE:
            msg = f"Expected `combine` to be one of {COMBINE}, got {self.combine!r}."
            raise ValueError(msg)

    def _build_net(self, dims: dict[str, int], n_out: int) -> FusionNet:
        return LateNet(dims, n_out, n_hidden=int(self.n_hidden), n_layers=int(self.n_layers),
                       dropout=float(self.dropout), combine=self.combine,
                       classification=self.task == "classification")

    def predict_unimodal(self, X: Any, *, presence: Any = None) -> dict[str, np.ndarray]:
        """Each head's own prediction, NaN in rows that lack the modality.

        Returns
        -------
        Modality → class probabilities ``(n_obs, n_classes)`` (classification) or log-risk
        ``(n_obs,)`` (survival).
        """
        x, pres = self._prepare(X, presence)
        self.net_.eval()
        with torch.no_grad():
            outs = self.net_.unimodal(x, pres)
            if self.task == "classification":
                outs = outs.softmax(dim=-1)
        result = {}
        for j, m in enumerate(self.modalities_):
            out = outs[:, j].double().numpy().copy()
            out[~pres[:, j].numpy()] = np.nan
            result[m] = out if self.task == "classification" else out[:, 0]
        return result

    @property
    def modality_weights_(self) -> dict[str, float]:
        """Combination weights when every modality is present (uniform for ``combine="mean"``)."""
        w = self.net_.weights(torch.ones(1, len(self.modalities_), dtype=torch.bool))[0]
        return {m: float(v) for m, v in zip(self.modalities_, w.detach(), strict=True)}
