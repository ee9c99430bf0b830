"""Graph experts: a modality's Gaussian expert from the node and its neighbours that have the modality."""

from __future__ import annotations

import warnings
from typing import Literal

import torch
from torch import Tensor, nn

from ._mlp import mlp

CONVS = ("gcn", "gat", "sage")


def _conv(kind: str, n_hidden: int) -> nn.Module:
    with warnings.catch_warnings():  # torch-geometric scripts classes at import; torch deprecates torch.jit.script
        warnings.filterwarnings("ignore", message=".*torch.jit.script")
        from torch_geometric.nn import GATConv, GCNConv, SAGEConv

    if kind == "gcn":
        return GCNConv(n_hidden, n_hidden, add_self_loops=False, normalize=False)
    if kind == "gat":
        return GATConv(n_hidden, n_hidden, heads=2, concat=False, add_self_loops=False)
    return SAGEConv(n_hidden, n_hidden, root_weight=False)


def masked_edges(edge_index: Tensor, present: Tensor) -> Tensor:
    """Edges whose source has the modality, plus a self-loop on every node that has it."""
    keep = present[edge_index[0]]
    loops = torch.nonzero(present).squeeze(1).repeat(2, 1)
    return torch.cat([edge_index[:, keep], loops], dim=1)


def available(edge_index: Tensor, present: Tensor) -> Tensor:
    """Bool ``(n_nodes,)``: the node has the modality or a neighbour (edge source) that has it."""
    src, dst = edge_index
    got = torch.zeros_like(present)
    got[dst[present[src]]] = True
    return got | present


class GraphGaussianEncoder(nn.Module):
    r"""Gaussian expert of one modality by message passing over the nodes that have it.

    Each node's own input goes through an MLP (:math:`e_i`); ``n_conv_layers`` graph
    convolutions (``gcn``: ``GCNConv``, ``gat``: ``GATConv``, ``sage``: ``SAGEConv``, from
    torch-geometric) then aggregate over the edges :math:`j \to i` whose source has the
    modality, plus the node itself when it has it:

    .. math::
        h_i = \mathrm{ReLU}\big(\mathrm{conv}(e, E_m)_i + \delta_{im} W e_i\big), \qquad
        (\mu_i, \log\sigma^2_i) = \mathrm{Linear}([h_i, \delta_{im}]),

    with :math:`\delta_{im}` the node's presence flag, so the expert knows whether its own
    data entered. A node lacking the modality never contributes: its input is not read.

    Parameters
    ----------
    conv
        Graph convolution type.
    n_conv_layers
        Message-passing hops.
    """

    def __init__(self, n_in: int, n_latent: int, n_hidden: int, n_layers: int, *,
                 conv: Literal["gcn", "gat", "sage"] = "gcn", n_conv_layers: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.kind = conv
        self.body = mlp(n_in, n_hidden, n_layers, dropout=dropout)
        self.convs = nn.ModuleList(_conv(conv, n_hidden) for _ in range(n_conv_layers))
        self.roots = nn.ModuleList(nn.Linear(n_hidden, n_hidden, bias=False) for _ in range(n_conv_layers))
        self.out = nn.Linear(n_hidden + 1, 2 * n_latent)

    def forward(self, x: Tensor, edge_index: Tensor, present: Tensor, degree: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance ``(n_nodes, n_latent)``; only rows where :func:`available` holds are meaningful.

        ``degree`` ``(n_nodes,)`` counts each node's neighbours (and itself) that have the
        modality in the whole graph; ``gcn`` normalises edge :math:`j \to i` by
        :math:`(d_i d_j)^{-1/2}` with it, so a node's expert does not depend on the batch.
        """
        flag = present.unsqueeze(1).to(x.dtype)
        h = torch.where(present.unsqueeze(1), self.body(x), x.new_zeros(()))
        edges = masked_edges(edge_index, present)
        extra = {}
        if self.kind == "gcn":
            inv_sqrt = degree.clamp_min(1.0).rsqrt()
            extra["edge_weight"] = inv_sqrt[edges[0]] * inv_sqrt[edges[1]]
        for conv, root in zip(self.convs, self.roots, strict=True):
            h = torch.relu(conv(h, edges, **extra) + flag * root(h))
        mu, logvar = self.out(torch.cat([h, flag], dim=1)).chunk(2, dim=-1)
        return mu, logvar.clamp(-10.0, 8.0)
