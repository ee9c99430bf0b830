"""Early fusion: one network on the concatenated, mean-imputed modalities."""

from __future__ import annotations

from typing import Any, Literal

from ._base import _FusionEstimator
from ._nn import EarlyNet, FusionNet


class EarlyFusion(_FusionEstimator):
    r"""Early (feature-level) fusion: concatenate the modalities, then an MLP or a neural Cox model.

    Each modality :math:`m` is standardised with training statistics over the observations
    that have it; absent modalities and NaN entries are imputed by the training mean (0 after
    standardisation), and the input carries the presence indicators :math:`a_{im}` and one
    missing-entry indicator per feature that had NaN at fit:

    .. math::

        u_i = \big[\tilde x_{i1}, \dots, \tilde x_{iM}, a_{i1}, \dots, a_{iM}\big], \qquad
        f(u_i) = W_{L+1}\, \phi(\cdots \phi(W_1 u_i + b_1) \cdots) + b_{L+1},

    with :math:`\phi` ReLU (plus dropout). Classification: :math:`y_i \sim
    \mathrm{Categorical}(\mathrm{softmax}\, f(u_i))`, trained by cross-entropy. Survival:
    :math:`h(t \mid u_i) = h_0(t)\, e^{\eta_i}` with :math:`\eta_i = f(u_i)`, trained on the
    Cox partial likelihood (Breslow ties, DeepSurv), :math:`h_0` estimated by Breslow.

    Parameters
    ----------
    task
        ``"classification"`` or ``"survival"``.
    n_hidden
        Width of the hidden layers; 0 gives a linear (logistic / Cox) model.
    n_layers
        Number of hidden layers.
    dropout
        Dropout rate after each hidden layer.
    max_epochs
        Passes over the training data.
    batch_size
        Mini-batch size; ``None`` trains full batch (the Cox risk sets are then exact).
    lr, weight_decay
        Adam learning rate and L2 penalty.
    random_state
        Seed (or ``RandomState``) for initialisation, dropout and batches.

    Attributes
    ----------
    modalities_
        Modalities seen at fit, in the order of ``X``.
    classes_
        Class labels (classification).
    event_times_, cum_baseline_hazard_
        Distinct training event times and the Breslow :math:`H_0` there (survival).
    loss_history_
        Mean training loss per epoch.
    net_
        The fitted torch network.

    References
    ----------
    Katzman et al. (2018), DeepSurv: personalized treatment recommender system using a Cox
    proportional hazards deep neural network, BMC Med. Res. Methodol. 18:24.
    Baltrušaitis, Ahuja & Morency (2019), Multimodal machine learning: a survey and taxonomy,
    IEEE TPAMI 41(2).

    Examples
    --------
    >>> import mdlprob
    >>> from mdlprob.fusion import EarlyFusion, fusion_inputs
    >>> mdata = mdlprob.datasets.synthetic(200, missing={"protein": 0.3})
    >>> mdlprob.data.setup_mudata(mdata, likelihoods={"rna": "nb", "protein": "nb", "clinical": "mixed"})
    >>> X, presence = fusion_inputs(mdata)
    >>> model = EarlyFusion(max_epochs=20, random_state=0).fit(X, mdata.obs["label"], presence=presence)
    >>> model.predict_proba(X, presence=presence).shape
    (200, 3)
    """

    def __init__(self, *, task: Literal["classification", "survival"] = "classification", n_hidden: int = 32,
                 n_layers: int = 1, dropout: float = 0.1, max_epochs: int = 200, batch_size: int | None = None,
                 lr: float = 3e-3, weight_decay: float = 1e-4, random_state: Any = None) -> None:
        self.task = task
        self.n_hidden = n_hidden
        self.n_layers = n_layers
        self.dropout = dropout
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.random_state = random_state

    def _build_net(self, dims: dict[str, int], n_out: int) -> FusionNet:
        return EarlyNet(dims, n_out, n_hidden=int(self.n_hidden), n_layers=int(self.n_layers),
                        dropout=float(self.dropout))
