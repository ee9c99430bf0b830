"""Intermediate fusion: per-modality encoders fused by a gated Kronecker product or attention."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, Literal

from ..heads._base import _check_number
from ._base import _FusionEstimator, _ModalityDropoutMixin
from ._nn import MAX_KRONECKER_WIDTH, FusionNet, IntermediateNet

FUSIONS = ("kronecker", "attention")


class IntermediateFusion(_ModalityDropoutMixin, _FusionEstimator):
    r"""Intermediate fusion of per-modality embeddings, trained with multimodal dropout.

    Each modality is standardised and mean-filled as in :class:`EarlyFusion` and encoded,
    :math:`h_{im} = a_{im}\, \mathrm{ReLU}(g_m(\tilde x_{im})) \in \mathbb R^d` (zero when absent,
    :math:`a_{im} = 0`), then fused:

    ``fusion="kronecker"`` (PathomicFusion, Chen et al. 2020): gated embeddings with a 1
    appended, multiplied out across modalities,

    .. math::

        \bar h_{im} = \sigma\big(G_m [h_{i1}, a_{i1}, \dots, h_{iM}, a_{iM}]\big) \odot h_{im}, \qquad
        u_i = \begin{bmatrix}\bar h_{i1}\\ 1\end{bmatrix} \otimes \cdots \otimes
              \begin{bmatrix}\bar h_{iM}\\ 1\end{bmatrix} \in \mathbb R^{(d+1)^M},

    so the unimodal and all cross-modal interaction terms are kept; an absent modality
    contributes :math:`[0; 1]` and the appended 1 keeps the other modalities' terms.

    ``fusion="attention"`` (attention pooling, Ilse et al. 2018) over the present modalities only:

    .. math::

        s_{im} = w^\top \tanh(V h_{im}), \qquad
        \alpha_{im} = \frac{a_{im} e^{s_{im}}}{\sum_k a_{ik} e^{s_{ik}}}, \qquad
        u_i = \sum_m \alpha_{im} h_{im}.

    A head MLP maps :math:`u_i` to class logits or a Cox log-risk :math:`\eta_i`, trained as
    in :class:`EarlyFusion`. Multimodal dropout (Cheerla & Gevaert 2019): at every training
    step each present modality of each observation is dropped (treated as absent) with
    probability ``modality_dropout``; an observation never loses all its modalities.

    Parameters
    ----------
    task
        ``"classification"`` or ``"survival"``.
    fusion
        ``"kronecker"`` or ``"attention"``.
    n_latent
        Embedding dimension :math:`d`; the Kronecker product has :math:`(d+1)^M` entries.
    modality_dropout
        Probability in [0, 1) of dropping a present modality at a training step.
    n_hidden, n_layers, dropout
        Hidden width, depth and dropout of the encoders and of the head.
    max_epochs, batch_size, lr, weight_decay, random_state
        Training, as in :class:`EarlyFusion`.

    Attributes
    ----------
    modalities_, classes_, event_times_, cum_baseline_hazard_, loss_history_, net_
        As in :class:`EarlyFusion`.

    References
    ----------
    Chen et al. (2020), Pathomic Fusion: an integrated framework for fusing histopathology and
    genomic features for cancer diagnosis and prognosis, IEEE Trans. Med. Imaging 41(4).
    Cheerla & Gevaert (2019), Deep learning with multimodal representation for pancancer
    prognosis prediction, Bioinformatics 35(14).
    Ilse, Tomczak & Welling (2018), Attention-based deep multiple instance learning, ICML.
    """

    def __init__(self, *, task: Literal["classification", "survival"] = "classification",
                 fusion: Literal["kronecker", "attention"] = "kronecker", n_latent: int = 8,
                 modality_dropout: float = 0.25, n_hidden: int = 32, n_layers: int = 1, dropout: float = 0.1,
                 max_epochs: int = 200, batch_size: int | None = None, lr: float = 3e-3,
                 weight_decay: float = 1e-4, random_state: Any = None) -> None:
        self.task = task
        self.fusion = fusion
        self.n_latent = n_latent
        self.modality_dropout = modality_dropout
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
        if self.fusion not in FUSIONS:
            msg = f"Expected `fusion` to be one of {FUSIONS}, got {self.fusion!r}."
            raise ValueError(msg)
        _check_number("n_latent", self.n_latent, kind=Integral, low=1)
        _check_number("modality_dropout", self.modality_dropout, kind=Real, low=0, high=1, high_open=True)

    def _build_net(self, dims: dict[str, int], n_out: int) -> FusionNet:
        width = (int(self.n_latent) + 1) ** len(dims)
        if self.fusion == "kronecker" and width > MAX_KRONECKER_WIDTH:
            msg = (f"The Kronecker product of {len(dims)} modalities with n_latent={self.n_latent} has {width} "
                   f"entries (more than {MAX_KRONECKER_WIDTH}); lower n_latent or use fusion='attention'.")
            raise ValueError(msg)
        return IntermediateNet(dims, n_out, n_latent=int(self.n_latent), n_hidden=int(self.n_hidden),
                               n_layers=int(self.n_layers), dropout=float(self.dropout), fusion=self.fusion)
