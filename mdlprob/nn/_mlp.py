"""Fully connected blocks shared by encoders and decoders."""

from __future__ import annotations

from torch import Tensor, nn


def mlp(n_in: int, n_hidden: int, n_layers: int, *, dropout: float = 0.0) -> nn.Sequential:
    """``n_layers`` blocks of Linear → LayerNorm → ReLU (→ Dropout), ending at width ``n_hidden``."""
    layers: list[nn.Module] = []
    for i in range(n_layers):
        layers += [nn.Linear(n_in if i == 0 else n_hidden, n_hidden), nn.LayerNorm(n_hidden), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class GaussianEncoder(nn.Module):
    """Maps a modality's encoder input to the mean and log-variance of a Gaussian expert.

    ``n_layers=0`` gives a linear expert: both moments are affine in the input.
    """

    def __init__(self, n_in: int, n_latent: int, n_hidden: int, n_layers: int, *, dropout: float = 0.0) -> None:
        super().__init__()
        self.body = mlp(n_in, n_hidden, n_layers, dropout=dropout)
        self.out = nn.Linear(n_hidden if n_layers else n_in, 2 * n_latent)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.out(self.body(x)).chunk(2, dim=-1)
        return mu, logvar.clamp(-10.0, 8.0)
