r"""Distillation of the joint posterior into encoders for a subset of modalities.

A cohort that will only ever measure a subset :math:`S` of the modalities (e.g. clinical
data and one omics layer) is served by the teacher's :math:`q(z \mid x_S)`, which was
trained as one term among many. The student is a copy of the teacher whose encoders of the
modalities in :math:`S` are trained to match the teacher's posterior given every modality
each training observation has,

.. math::
    \min_{\phi_S}\; \frac{1}{|I|}\sum_{i \in I}
    \mathrm{KL}\big(q_{\text{teacher}}(z_i \mid x_{i, M_i}) \,\big\|\, q_{\phi_S}(z_i \mid x_{i, S \cap M_i})\big),

over the observations :math:`I` that have at least one modality of :math:`S` (:math:`M_i`:
the modalities observation :math:`i` has). Both posteriors are summarised by their means and
variances (mixtures by their moment-matched Gaussian), so the KL is that of two diagonal
Gaussians. Its direction covers the teacher's mass: where :math:`x_S` cannot tell what the
other modalities would, the student stays wide. The decoders, the other encoders and the
likelihoods are the teacher's, untouched (shared generative model): the student imputes
every modality from :math:`x_S` with intervals as the teacher does.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._utils import track
from ._validate import check_float, check_int, check_subset

log = logging.getLogger(__name__)


def gaussian_kl(mean_p: Tensor, var_p: Tensor, mean_q: Tensor, var_q: Tensor) -> Tensor:
    r""":math:`\mathrm{KL}(N(\mu_p, \sigma_p^2) \| N(\mu_q, \sigma_q^2))` summed over the last axis."""
    return 0.5 * (var_p / var_q + (mean_p - mean_q) ** 2 / var_q - 1.0 + var_q.log() - var_p.log()).sum(-1)


def distill_model(teacher, modalities: Sequence[str], *, mdata=None, max_epochs: int = 200, batch_size: int = 256,
                  lr: float = 1e-3, train_size: float = 0.9, patience: int = 20, progress_bar: bool = True) -> Any:
    """:meth:`BaseModel.distill`: the student, a copy of ``teacher`` with its subset encoders distilled."""
    teacher._require_trained()
    subset = check_subset("modalities", modalities, teacher.modalities)
    if len(set(subset)) != len(subset):
        msg = f"Expected modalities to list each modality once, got {list(modalities)!r}."
        raise ValueError(msg)
    if set(subset) == set(teacher.modalities):
        msg = (f"Expected modalities to be a proper subset of {teacher.modalities}, got all of them: the teacher's "
               "posterior given every modality is already what a student would learn. Leave one or more out.")
        raise ValueError(msg)
    if hasattr(teacher.module, "encode_graph"):
        msg = f"distill does not support {type(teacher).__name__} (its posterior reads a graph of observations)."
        raise TypeError(msg)
    check_int("max_epochs", max_epochs, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    check_int("patience", patience, minimum=1)
    check_float("lr", lr, low=0.0, high=float("inf"), low_open=True)
    check_float("train_size", train_size, low=0.0, high=1.0, low_open=True)
    tensors = teacher._require_tensors() if mdata is None else teacher.tensors(mdata)
    mods = teacher.modalities
    use_s = torch.tensor([m in subset for m in mods], device=teacher.device)
    presence = tensors.presence.to(teacher.device)
    rows = torch.nonzero((presence & use_s).any(1)).squeeze(1).cpu()
    if len(rows) < 2:
        msg = (f"distill needs observations with at least one of {subset}; the data have {len(rows)}. "
               "Pass mdata holding such observations.")
        raise ValueError(msg)
    mean_t, var_t = _moments(teacher, tensors, torch.arange(tensors.n_obs), None, batch_size)  # by row
    perm = rows[torch.randperm(len(rows))]
    n_train = len(rows) if train_size >= 1.0 else max(1, min(len(rows) - 1, round(len(rows) * train_size)))
    fit, held = perm[:n_train], perm[n_train:]
    student = _copy(teacher)
    student.module.eval()  # deterministic encoders (no dropout), as at prediction time
    params = [p for m in subset for p in student.module.encoders[m].parameters()]
    for p in student.module.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    optim = torch.optim.Adam(params, lr=lr)
    history: dict[str, list[float]] = {"train_kl": [], "val_kl": []}
    best, best_state, best_epoch = float("inf"), None, -1
    if len(held):  # the teacher's own encoders are the candidate to beat (epoch -1)
        best = float(_kl(student, tensors, held, use_s, mean_t, var_t, batch_size).mean())
        best_state = {k: v.detach().clone() for k, v in student.module.state_dict().items()}
    for epoch in track(range(max_epochs), description="distilling", total=max_epochs, progress_bar=progress_bar):
        order = fit[torch.randperm(len(fit))]
        total = 0.0
        for idx in torch.split(order, batch_size):
            batch = tensors.batch(idx, student.device)
            mean_s, var_s = student.module.posterior_moments(batch, use_s.expand_as(batch["presence"]))
            at = idx.to(mean_t.device)
            loss = gaussian_kl(mean_t[at], var_t[at], mean_s, var_s).mean()
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            total += float(loss.detach()) * len(idx)
        history["train_kl"].append(total / len(fit))
        if len(held):
            val = float(_kl(student, tensors, held, use_s, mean_t, var_t, batch_size).mean())
            history["val_kl"].append(val)
            if val < best:
                best, best_epoch = val, epoch
                best_state = {k: v.detach().clone() for k, v in student.module.state_dict().items()}
            elif epoch - best_epoch >= patience:  # no better held-out KL for `patience` epochs
                break
    if best_state is not None:  # the epoch with the lowest held-out KL
        student.module.load_state_dict(best_state)
    for p in student.module.parameters():
        p.requires_grad_(True)
    check = held if len(held) else fit
    kl_student = _kl(student, tensors, check, use_s, mean_t, var_t, batch_size)
    kl_teacher = _kl(teacher, tensors, check, use_s, mean_t, var_t, batch_size)
    student.distillation_ = {
        "modalities": subset, "n_train": len(fit), "n_heldout": len(held), "history": history,
        "best_epoch": best_epoch if len(held) else len(history["train_kl"]) - 1,
        "kl_teacher_subset": float(kl_teacher.mean()), "kl_student": float(kl_student.mean()),
    }
    log.info("distilled %s: KL to the full posterior %.3f (teacher given the subset %.3f) on %d %s observations",
             subset, student.distillation_["kl_student"], student.distillation_["kl_teacher_subset"], len(check),
             "held-out" if len(held) else "training")
    return student


@torch.no_grad()
def _moments(model, tensors, rows: Tensor, use: Tensor | None, batch_size: int) -> tuple[Tensor, Tensor]:
    """Posterior mean and variance of ``rows``, given ``use`` (``None``: every modality each row has)."""
    model.module.eval()
    means, variances = [], []
    for idx in torch.split(rows, batch_size):
        batch = tensors.batch(idx, model.device)
        mask = batch["presence"] if use is None else use.expand_as(batch["presence"])
        mean, var = model.module.posterior_moments(batch, mask)
        means.append(mean)
        variances.append(var)
    return torch.cat(means), torch.cat(variances)


@torch.no_grad()
def _kl(model, tensors, rows: Tensor, use: Tensor, mean_t: Tensor, var_t: Tensor, batch_size: int) -> np.ndarray:
    """KL of the teacher's full posterior to ``model``'s posterior given the subset, per row of ``rows``."""
    mean, var = _moments(model, tensors, rows, use, batch_size)
    at = rows.to(mean_t.device)
    return gaussian_kl(mean_t[at], var_t[at], mean, var).cpu().numpy()


def _copy(teacher):
    """An independent copy of ``teacher``: its module rebuilt through the one construction path, same weights."""
    memo = {id(teacher.module): None, id(teacher._tensors): teacher._tensors}  # data shared, module rebuilt
    student = copy.deepcopy(teacher, memo)
    student.module = type(teacher)._module_cls(student._spec, **student._module_kwargs)
    student.module.load_state_dict(teacher.module.state_dict())
    student.module.to(teacher.device)
    return student
