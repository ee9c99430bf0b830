"""Reference mapping ("architecture surgery", scArches): new batches added to a trained conditional model.

Every part of a conditional module that reads the covariate vector :math:`c` (the first
layer of each encoder, the first layer of each decoder, the likelihood heads of vector
modalities, the library-size regression) reads it as the last columns of its input, the
batch's one-hot block first. Adding :math:`K'` query batches inserts :math:`K'` zero columns
right after the reference's :math:`K` batch columns; with every other weight frozen, the
query's batch effects are learned from the query alone and the reference model is, bit for
bit, what it was.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn

from ..data._covariates import batch_support, categorical_values
from ..nn import ConvDecoder, ConvEncoder, GaussianEncoder
from ._validate import resolve_device


def query_model(cls, mdata, reference, *, train_first_layers: bool = False, accelerator: str = "auto"):
    """:meth:`BaseModel.load_query_data`: the reference's copy with the query's new batches added."""
    if isinstance(reference, (str, Path)):
        reference = cls.load(reference, accelerator=accelerator)
    if type(reference) is not cls:
        msg = (f"Expected reference to be a trained {cls.__name__} (or the folder it was saved to), got "
               f"{type(reference).__name__}; call {type(reference).__name__}.load_query_data instead.")
        raise TypeError(msg)
    reference._require_trained()
    registry = copy.deepcopy(reference.registry_)
    cov = registry.get("covariates") or {}
    key = cov.get("batch_key")
    if not key:
        msg = ("load_query_data adds the query's batches to a reference model with a batch; the reference was "
               "registered without one. Register the reference data with setup_mudata(..., batch_key=...) and retrain.")
        raise ValueError(msg)
    if key not in mdata.obs.columns:
        msg = f"The query lacks the batch column {key!r} in mdata.obs; add it (each query observation's batch)."
        raise KeyError(msg)
    known = cov["categories"][key]
    values = categorical_values(mdata.obs, key)
    column = mdata.obs[key]
    order = [str(c) for c in column.cat.categories] if isinstance(column.dtype, pd.CategoricalDtype) else sorted(set(values))
    new = [c for c in order if c in set(values) and c not in known]
    if not new:
        msg = (f"The query's batches {sorted(set(values))} are all batches of the reference; there is nothing to "
               "map. Use the reference directly: reference.get_latent(query), reference.impute(query, ...).")
        raise ValueError(msg)
    cov["categories"][key] = [*known, *new]
    grown = copy.deepcopy(reference.module).cpu()
    masks = add_batches(grown, len(known), len(new))
    self = cls.__new__(cls)
    self.registry_, self.var_names_, self._spec = registry, copy.deepcopy(reference.var_names_), copy.deepcopy(reference._spec)
    self._module_kwargs = {**copy.deepcopy(reference._module_kwargs), "covariates": cov}
    self.module = cls._module_cls(self._spec, **self._module_kwargs)  # the one construction path, then the weights
    self.module.load_state_dict(grown.state_dict())
    self.module.to(resolve_device(accelerator)).eval()
    self.history_ = {"train_loss": [], "val_loss": []}
    self.train_indices_, self.val_indices_ = [], []
    self.tuning_ = None
    self.interval_scale_ = dict(reference.interval_scale_)
    self.n_observed_ = dict(reference.n_observed_)
    self.is_trained_ = True
    self._tensors = self.tensors(mdata)
    if not isinstance(train_first_layers, bool):
        msg = f"Expected train_first_layers to be True or False, got {train_first_layers!r}."
        raise TypeError(msg)
    if train_first_layers:  # every input of each encoder's first layer, and its bias
        names = {id(m): name for name, m in self.module.named_modules()}
        for mod in self.modalities:
            layer = encoder_input(self.module, mod)
            for attr in ("weight", "bias"):
                masks[f"{names[id(layer)]}.{attr}"] = torch.ones_like(getattr(layer, attr), dtype=torch.bool)
    self._query_masks = masks
    support = batch_support(self._tensors, registry)
    self.batch_support_ = {m: sorted({*reference.batch_support_.get(m, []), *support.get(m, [])}) for m in support}
    self.distillation_ = copy.deepcopy(getattr(reference, "distillation_", None))
    return self


def check_query_training(*, weight_decay: float, inference: str, world: int, strategy: str) -> None:
    """Options under which fine-tuning a query model leaves the reference weights exactly unchanged."""
    if weight_decay:
        msg = (f"A query model fine-tunes its new batch columns only; weight_decay={weight_decay} would move the "
               "frozen reference weights. Train it with weight_decay=0.")
        raise ValueError(msg)
    if inference != "fast" or world > 1 or strategy == "ddp":
        msg = "A query model trains single-process with inference='fast'."
        raise ValueError(msg)


def unfreeze(module: nn.Module, handles: list[Any]) -> None:
    """Undo :func:`freeze_except`: remove the gradient hooks, every parameter trainable again."""
    for handle in handles:
        handle.remove()
    for param in module.parameters():
        param.requires_grad_(True)


def encoder_input(module: nn.Module, mod: str) -> nn.Linear:
    """The layer of modality ``mod``'s encoder that reads the covariates."""
    encoder = module.encoders[mod]
    if isinstance(encoder, GaussianEncoder):
        return encoder.body[0] if len(encoder.body) else encoder.out
    if isinstance(encoder, ConvEncoder):
        return encoder.out
    msg = f"Reference mapping does not support {type(encoder).__name__} experts (modality {mod!r})."
    raise TypeError(msg)


def covariate_inputs(module: nn.Module) -> Iterator[tuple[nn.Module, str]]:
    """``(owner, name)`` of every weight whose input columns end with the covariate vector."""
    for mod in module.modalities:
        yield encoder_input(module, mod), "weight"
        decoder = module.decoders[mod]
        if isinstance(decoder, ConvDecoder):
            yield decoder.inp, "weight"
            continue
        if isinstance(decoder, nn.Sequential) and len(decoder):
            yield decoder[0], "weight"
        width = module.decoder_width + module.n_covariates
        for layer in module.likelihoods[mod].modules():
            if isinstance(layer, nn.Linear) and layer.in_features == width:
                yield layer, "weight"


def add_batches(module: nn.Module, n_reference: int, n_new: int) -> dict[str, Tensor]:
    """Insert ``n_new`` zero columns after the ``n_reference`` batch columns of every covariate input.

    Returns the trainable mask of each grown parameter, by its name in ``module``: true on
    the new columns only. ``module.n_covariates`` grows by ``n_new``.
    """
    if module.feature_graph is not None:
        msg = "Reference mapping of a model with a feature graph is not supported (its tied heads read the covariates)."
        raise ValueError(msg)
    n_cov = module.n_covariates
    names = {id(p): name for name, p in module.named_parameters()}
    masks: dict[str, Tensor] = {}
    seen: set[int] = set()
    for owner, attr in covariate_inputs(module):
        weight = getattr(owner, attr)
        if id(weight) in seen:
            continue
        seen.add(id(weight))
        at = weight.shape[1] - n_cov + n_reference
        grown = _insert_columns(weight.detach(), at, n_new)
        setattr(owner, attr, nn.Parameter(grown))
        if isinstance(owner, nn.Linear):
            owner.in_features = grown.shape[1]
        mask = torch.zeros_like(grown, dtype=torch.bool)
        mask[:, at:at + n_new] = True
        masks[names[id(weight)]] = mask
    if hasattr(module, "library_coef"):
        coef = module.library_coef
        at = coef.shape[1] - 1 - n_cov + n_reference
        module.library_coef = _insert_columns(coef, at, n_new)
    module.n_covariates = n_cov + n_new
    return masks


def freeze_except(module: nn.Module, masks: dict[str, Tensor]) -> list[Any]:
    """Freeze every parameter; those in ``masks`` keep gradients on their true entries only.

    Returns the gradient hooks' handles. With zero gradients and no weight decay, Adam leaves
    an entry exactly unchanged.
    """
    handles = []
    for name, param in module.named_parameters():
        mask = masks.get(name)
        param.requires_grad_(mask is not None)
        if mask is not None:
            handles.append(param.register_hook(lambda grad, m=mask: grad * m.to(grad.device, grad.dtype)))
    return handles


def _insert_columns(weight: Tensor, at: int, n_new: int) -> Tensor:
    zeros = weight.new_zeros(weight.shape[0], n_new)
    return torch.cat([weight[:, :at], zeros, weight[:, at:]], dim=1)
