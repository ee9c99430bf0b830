"""Torch networks of the fusion baselines and their losses; tensors only.

Every network maps ``x`` (modality → float ``(n, p_m)``, standardised, absent rows zero)
and ``presence`` (bool ``(n, M)`` in modality order) to an output ``(n, n_out)``: class
logits, or a log-risk ``(n, 1)`` for survival. Inputs of absent modalities are multiplied by
zero before use, so their values never reach the output.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

Target = dict[str, Tensor]
LossFn = Callable[[Tensor, Target], Tensor]

MAX_KRONECKER_WIDTH = 2**17


def mlp(n_in: int, n_out: int, *, n_hidden: int, n_layers: int, dropout: float) -> nn.Sequential:
    """``n_layers`` blocks Linear → ReLU → Dropout of width ``n_hidden``, then Linear to ``n_out``.

    ``n_hidden=0`` or ``n_layers=0`` gives a single linear map.
    """
    layers: list[nn.Module] = []
    width = n_in
    if n_hidden > 0:
        for _ in range(n_layers):
            layers += [nn.Linear(width, n_hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = n_hidden
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


def cox_nll(risk: Tensor, time: Tensor, event: Tensor) -> Tensor:
    """Negative Cox partial log-likelihood (Breslow ties) per event; 0 without events."""
    if not bool(event.any()):
        return risk.sum() * 0.0
    order = torch.argsort(time, descending=True, stable=True)
    r, t, e = risk[order], time[order], event[order]
    # The risk set of position i runs to the last entry tied with it (times descending).
    tie_end = torch.searchsorted(-t, -t, right=True) - 1
    log_risk_set = torch.logcumsumexp(r, dim=0)[tie_end]
    return -(r - log_risk_set)[e].sum() / e.sum()


def task_loss(task: str) -> LossFn:
    """Cross-entropy on logits, or the Cox loss on the log-risk (column 0)."""
    if task == "classification":
        return lambda out, target: nn.functional.cross_entropy(out, target["y"])
    return lambda out, target: cox_nll(out[:, 0], target["time"], target["event"])


def modality_dropout(presence: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
    """Multimodal dropout: drop each present modality with probability ``p``, never all of them.

    Parameters
    ----------
    presence
        Bool ``(n, M)``; every row has at least one True.
    p
        Drop probability in ``[0, 1)``.
    generator
        Torch generator for reproducible draws.

    Returns
    -------
    Bool ``(n, M)``, a subset of ``presence`` with at least one True per row: a row whose draws
    dropped every present modality gets one of them back, chosen uniformly.
    """
    if p == 0.0:
        return presence
    keep = presence & (torch.rand(presence.shape, generator=generator) >= p)
    empty = ~keep.any(dim=1)
    if bool(empty.any()):
        scores = torch.rand(presence.shape, generator=generator).masked_fill(~presence, -1.0)
        rows = torch.nonzero(empty).squeeze(1)
        keep[rows, scores[rows].argmax(dim=1)] = True
    return keep


class FusionNet(nn.Module):
    """Base network: ``loss`` is the task loss on the fused output."""

    def __init__(self, modalities: list[str]) -> None:
        super().__init__()
        self.modalities = list(modalities)

    def masked(self, x: dict[str, Tensor], presence: Tensor) -> list[Tensor]:
        """Modality blocks in order, rows of absent modalities set to exactly zero."""
        return [torch.where(presence[:, j:j + 1], x[m], 0.0) for j, m in enumerate(self.modalities)]

    def loss(self, x: dict[str, Tensor], presence: Tensor, target: Target, loss_fn: LossFn) -> Tensor:
        return loss_fn(self(x, presence), target)


class EarlyNet(FusionNet):
    """MLP on the concatenated (mean-filled) blocks and the presence indicators."""

    def __init__(self, dims: dict[str, int], n_out: int, *, n_hidden: int, n_layers: int, dropout: float) -> None:
        super().__init__(list(dims))
        n_in = sum(dims.values()) + len(dims)
        self.net = mlp(n_in, n_out, n_hidden=n_hidden, n_layers=n_layers, dropout=dropout)

    def forward(self, x: dict[str, Tensor], presence: Tensor) -> Tensor:
        return self.net(torch.cat([*self.masked(x, presence), presence.float()], dim=1))


class LateNet(FusionNet):
    """One head per modality; outputs combined with weights over the present modalities."""

    def __init__(self, dims: dict[str, int], n_out: int, *, n_hidden: int, n_layers: int, dropout: float,
                 combine: str, classification: bool) -> None:
        super().__init__(list(dims))
        self.heads = nn.ModuleDict({m: mlp(d, n_out, n_hidden=n_hidden, n_layers=n_layers, dropout=dropout)
                                    for m, d in dims.items()})
        self.weight_logits = nn.Parameter(torch.zeros(len(dims))) if combine == "learned" else None
        self.classification = classification

    def unimodal(self, x: dict[str, Tensor], presence: Tensor) -> Tensor:
        """Each head's output ``(n, M, n_out)``: logits or log-risks."""
        blocks = self.masked(x, presence)
        return torch.stack([self.heads[m](b) for m, b in zip(self.modalities, blocks, strict=True)], dim=1)

    def weights(self, presence: Tensor) -> Tensor:
        """Combination weights ``(n, M)``: zero for absent modalities, rows summing to 1."""
        logits = presence.new_zeros(presence.shape, dtype=torch.float32)
        if self.weight_logits is not None:
            logits = logits + self.weight_logits
        return logits.masked_fill(~presence, float("-inf")).softmax(dim=1)

    def combine(self, outs: Tensor, presence: Tensor) -> Tensor:
        w = self.weights(presence).unsqueeze(-1)
        if self.classification:  # mixture of the heads' class probabilities, as log-probabilities
            return torch.log((w * outs.softmax(dim=-1)).sum(dim=1).clamp_min(1e-12))
        return (w * outs).sum(dim=1)

    def forward(self, x: dict[str, Tensor], presence: Tensor) -> Tensor:
        return self.combine(self.unimodal(x, presence), presence)

    def loss(self, x: dict[str, Tensor], presence: Tensor, target: Target, loss_fn: LossFn) -> Tensor:
        """Each head's loss on the rows that have its modality (+ the combiner's, heads frozen)."""
        outs = self.unimodal(x, presence)
        total = outs.sum() * 0.0
        for j in range(len(self.modalities)):
            rows = presence[:, j]
            if bool(rows.any()):
                total = total + loss_fn(outs[rows, j], {k: v[rows] for k, v in target.items()})
        if self.weight_logits is not None:
            total = total + loss_fn(self.combine(outs.detach(), presence), target)
        return total


class IntermediateNet(FusionNet):
    """Per-modality encoders fused by a gated Kronecker product or by attention pooling."""

    def __init__(self, dims: dict[str, int], n_out: int, *, n_latent: int, n_hidden: int, n_layers: int,
                 dropout: float, fusion: str) -> None:
        super().__init__(list(dims))
        n_mod = len(dims)
        self.encoders = nn.ModuleDict({
            m: nn.Sequential(mlp(d, n_latent, n_hidden=n_hidden, n_layers=n_layers, dropout=dropout), nn.ReLU())
            for m, d in dims.items()})
        self.fusion = fusion
        if fusion == "kronecker":
            self.gates = nn.ModuleDict({m: nn.Linear(n_mod * (n_latent + 1), n_latent) for m in dims})
            width = (n_latent + 1) ** n_mod
        else:
            self.attention = nn.Sequential(nn.Linear(n_latent, n_latent), nn.Tanh(), nn.Linear(n_latent, 1))
            width = n_latent
        self.head = mlp(width, n_out, n_hidden=n_hidden, n_layers=n_layers, dropout=dropout)

    def embed(self, x: dict[str, Tensor], presence: Tensor) -> Tensor:
        """Embeddings ``(n, M, n_latent)``; exactly zero for absent modalities."""
        blocks = self.masked(x, presence)
        h = torch.stack([self.encoders[m](b) for m, b in zip(self.modalities, blocks, strict=True)], dim=1)
        return h * presence.unsqueeze(-1)

    def forward(self, x: dict[str, Tensor], presence: Tensor) -> Tensor:
        h = self.embed(x, presence)
        if self.fusion == "kronecker":
            return self.head(self._kronecker(h, presence))
        scores = self.attention(h).squeeze(-1).masked_fill(~presence, float("-inf"))
        return self.head((scores.softmax(dim=1).unsqueeze(-1) * h).sum(dim=1))

    def _kronecker(self, h: Tensor, presence: Tensor) -> Tensor:
        """Gate each embedding, append 1, and take the outer product across modalities."""
        context = torch.cat([h, presence.unsqueeze(-1).float()], dim=2).flatten(1)
        one = h.new_ones(h.shape[0], 1)
        fused = one
        for j, m in enumerate(self.modalities):
            gated = torch.sigmoid(self.gates[m](context)) * h[:, j]  # zero when absent: the 1 keeps the rest
            fused = (fused.unsqueeze(2) * torch.cat([gated, one], dim=1).unsqueeze(1)).flatten(1)
        return fused
