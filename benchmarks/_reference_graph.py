"""Hand-written reference of mdlprob's GraphPoEVAE (NB likelihoods, GCN experts), for benchmarks only.

Plain PyTorch plus torch-geometric's ``GCNConv`` (the layer the model uses); like
``_reference_poe.py``, whose decoders, input standardisation and NB density it reuses, it
imports nothing from mdlprob. Full-batch, over a fixed graph ``edge_index`` (row 0 the
sources, row 1 the targets: ``j -> i`` makes ``j`` a neighbour of ``i``):

* expert of modality ``m`` at node ``i``: ``e = Linear -> LayerNorm -> ReLU`` of the
  standardised ``log1p(x)`` of the nodes that have ``m`` (zero elsewhere); one GCN layer over
  the edges whose source has ``m`` plus a self-loop on each node that has it, edge ``j -> i``
  weighted ``(d_i d_j)^(-1/2)`` with ``d`` the number of a node's neighbours (itself included)
  that have ``m``; ``h = ReLU(gcn(e) + [i has m] W e_i)``; ``(mu, log var) = Linear([h, [i has m]])``,
  the log-variance clamped to [-10, 8];
* a node has expert ``m`` when it or a neighbour has ``m``;
* MVAE objective: the joint term takes the product of the prior and every expert the node has,
  each single-modality term only the node's own modality (when present); a term reconstructs
  its own modalities where present; analytic KL, one reparameterised draw per term.
"""

from __future__ import annotations

import warnings

import torch
from _reference_poe import LOG_MU_MAX, ReferencePoEVAE, nb_log_prob, poe_draw
from torch import Tensor, nn

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*torch.jit.script")
    from torch_geometric.nn import GCNConv


class ReferenceGraphPoEVAE(ReferencePoEVAE):
    """PoE-VAE with one-hop GCN experts over observations, trained full-batch on the MVAE objective."""

    def __init__(self, data: dict[str, Tensor], presence: Tensor, edge_index: Tensor, *, n_hidden: int,
                 n_latent: int) -> None:
        super().__init__(data, presence, n_hidden=n_hidden, n_latent=n_latent)
        self.register_buffer("edge_index", edge_index.long())
        self.bodies, self.convs, self.roots, self.outs = nn.ModuleList(), nn.ModuleList(), nn.ModuleList(), \
            nn.ModuleList()
        for mod in self.modalities:
            g = data[mod].shape[1]
            self.bodies.append(nn.Sequential(nn.Linear(g, n_hidden), nn.LayerNorm(n_hidden), nn.ReLU()))
            self.convs.append(GCNConv(n_hidden, n_hidden, add_self_loops=False, normalize=False))
            self.roots.append(nn.Linear(n_hidden, n_hidden, bias=False))
            self.outs.append(nn.Linear(n_hidden + 1, 2 * n_latent))
        del self.encoders  # the graph experts replace the MLP encoders

    def expert(self, j: int, x: Tensor, present: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Mean, log-variance and availability of modality ``j``'s expert at every node."""
        src, dst = self.edge_index
        flag = present.unsqueeze(1).float()
        h = (torch.log1p(x) - getattr(self, f"loc{j}")) / getattr(self, f"scale{j}")
        e = torch.where(present.unsqueeze(1), self.bodies[j](h), 0.0)
        keep = present[src]
        loops = torch.nonzero(present).squeeze(1)
        edges = torch.cat([self.edge_index[:, keep], loops.repeat(2, 1)], dim=1)
        degree = flag.squeeze(1).index_add(0, dst, flag.squeeze(1)[src])
        inv_sqrt = degree.clamp_min(1.0).rsqrt()
        h = torch.relu(self.convs[j](e, edges, edge_weight=inv_sqrt[edges[0]] * inv_sqrt[edges[1]])
                       + flag * self.roots[j](e))
        mu, logvar = self.outs[j](torch.cat([h, flag], dim=1)).chunk(2, dim=-1)
        avail = torch.zeros_like(present)
        avail[dst[keep]] = True
        return mu, logvar.clamp(-10.0, 8.0), avail | present

    def forward(self, xs: list[Tensor], presence: Tensor, rows: Tensor | None = None) -> Tensor:
        """Negative MVAE objective averaged over ``rows`` (default every node); ``xs`` hold every node."""
        mus, logvars, avails = zip(*(self.expert(j, x, presence[:, j]) for j, x in enumerate(xs)), strict=True)
        mu, prec_all, avail = torch.stack(mus), torch.exp(-torch.stack(logvars)), torch.stack(avails, 1)
        if rows is not None:
            mu, prec_all, avail = mu[:, rows], prec_all[:, rows], avail[rows]
            xs, presence = [x[rows] for x in xs], presence[rows]
        total = mu.new_zeros(())
        for t in range(len(self.terms)):
            use = (avail if t == 0 else presence) & self.term_masks[t]  # term 0: the joint
            z, kl = poe_draw(mu, prec_all, use)
            total = total + kl.sum()
            for j in self.decoded[t]:
                log_mu = self.decoders[j](z).clamp(max=LOG_MU_MAX)
                lp = nb_log_prob(xs[j], log_mu, self.log_theta[j]).sum(-1)
                total = total - torch.where(presence[:, j], lp, 0.0).sum()
        return total / presence.shape[0]


def copy_graph_from_mdlprob(ref: ReferenceGraphPoEVAE, module) -> bool:
    """Copy the weights of an mdlprob ``_GraphPoEVAEModule`` (NB, one GCN layer) into ``ref``; False if it does not fit."""
    try:
        with torch.no_grad():
            for j, mod in enumerate(ref.modalities):
                enc, dec, lik = module.encoders[mod], module.decoders[mod], module.likelihoods[mod]
                r_dec = ref.decoders[j]
                if len(enc.convs) != 1 or enc.kind != "gcn":
                    return False
                for dst, src in ((ref.bodies[j], enc.body), (ref.convs[j], enc.convs[0]), (ref.roots[j], enc.roots[0]),
                                 (ref.outs[j], enc.out), (r_dec[0], dec[0]), (r_dec[1], dec[1]),
                                 (r_dec[3], lik.mu_head)):
                    dst.load_state_dict(src.state_dict())
                for dst, src in ((getattr(ref, f"loc{j}"), lik.in_loc), (getattr(ref, f"scale{j}"), lik.in_scale),
                                 (ref.log_theta[j], lik.log_theta)):
                    dst.copy_(src)
        return True
    except (AttributeError, KeyError, IndexError, TypeError, RuntimeError):
        return False
