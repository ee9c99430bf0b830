"""A deep ensemble of one model class over seeds: a mixture of the members' posterior predictives."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anndata as ad
import mudata as md
import numpy as np
import torch

from .._io import atomic_dir
from .._settings import settings
from ..base import BaseModel
from ..base._base_model import FORMAT_VERSION, _read_config, check_format_version
from ..base._validate import check_float, check_int, renamed
from ..exceptions import ModelFileError, NotTrainedError

_CONFIG = "ensemble.json"


class Ensemble:
    r"""Several copies of one model, trained from different seeds, predicting as one mixture.

    With members :math:`m = 1..M` (same architecture, different initialisation and mini-batch
    order), the predictive distribution of an absent modality is the equal-weight mixture

    .. math::
        p(x_t \mid x_S) = \frac1M \sum_{m=1}^M \int p_{\theta_m}(x_t \mid z)\, q_m(z \mid x_S)\, dz ,

    so imputed means average over members (less variance from a lucky or unlucky fit, which
    matters most on small cohorts) and the intervals also carry the disagreement between
    fits (Lakshminarayanan et al., 2017). Latent spaces of different members are not aligned
    (each is defined up to rotation), so an ensemble has no single latent representation:
    use a member (``ensemble.members_[0]``) for that.

    Parameters
    ----------
    model_cls
        A model class of :mod:`mdlprob.models` (or its name).
    mdata
        Registered training data, as for the model class.
    n_models
        Number of members.
    **model_kwargs
        Passed to every member's constructor.

    Attributes
    ----------
    members_
        The ``n_models`` models; member ``i`` is trained with ``mdlprob.settings.seed`` set
        to the seed in force when :meth:`train` is called plus ``i`` (plus 0 when unset).

    Examples
    --------
    >>> import mdlprob
    >>> mdata = mdlprob.datasets.synthetic(200, missing={"protein": 0.3})
    >>> mdlprob.data.setup_mudata(mdata, likelihoods={"rna": "nb", "protein": "nb", "clinical": "mixed"})
    >>> ens = mdlprob.models.Ensemble("PoEVAE", mdata, n_models=2, n_latent=4)
    >>> ens.train(max_epochs=2, progress_bar=False)
    >>> ens.impute(mdata, "protein", n_samples=20).shape
    (200, 30)
    """

    def __init__(self, model_cls: type[BaseModel] | str, mdata: md.MuData | None, *, n_models: int = 5,
                 **model_kwargs: Any) -> None:
        from ._registry import all_models

        if isinstance(model_cls, str):
            registered = all_models()
            if model_cls not in registered:
                msg = f"Expected model_cls to name a model of mdlprob.models {list(registered)}, got {model_cls!r}."
                raise ValueError(msg)
            model_cls = registered[model_cls].cls
        if not (isinstance(model_cls, type) and issubclass(model_cls, BaseModel)):
            msg = f"Expected model_cls to be an mdlprob model class, got {model_cls!r}."
            raise TypeError(msg)
        check_int("n_models", n_models, minimum=1)
        self.model_cls = model_cls
        self.model_kwargs = dict(model_kwargs)
        self.members_ = [] if mdata is None else [model_cls(mdata, **model_kwargs) for _ in range(n_models)]
        #: Predictive-spread factor per modality from :meth:`calibrate_intervals`.
        self.interval_scale_: dict[str, float | list[float]] = {}

    def __repr__(self) -> str:
        return f"Ensemble({self.model_cls.__name__} x {len(self.members_)})"

    @property
    def modalities(self) -> list[str]:
        return self.members_[0].modalities

    @property
    def is_trained_(self) -> bool:
        return bool(self.members_) and all(m.is_trained_ for m in self.members_)

    def train(self, **train_kwargs: Any) -> None:
        """Train every member with the same arguments (see the model's ``train``), seed ``s + i``.

        The arguments are kept in ``train_kwargs_``. Members share the first member's
        validation split (when there is one), so :meth:`calibrate_intervals` can use it.
        """
        self.train_kwargs_ = dict(train_kwargs)
        base = settings.seed or 0
        try:
            for i, member in enumerate(self.members_):
                settings.seed = base + i
                shared = {} if i == 0 or not self.members_[0].val_indices_ else {
                    "validation_indices": self.members_[0].val_indices_}
                member.train(**train_kwargs, **shared)
        finally:
            settings.seed = base

    def _check(self) -> None:
        if not self.is_trained_:
            msg = "This Ensemble is not trained yet; call .train() first."
            raise NotTrainedError(msg)

    def sample_predictive(self, mdata: md.MuData, modality: str, *, given: Sequence[str] | None = None,
                          n_samples: int = 100, n_proposals: int | None = None,
                          batch_size: int | None = None, allow_unobserved: bool = False,
                          importance: int | None = None) -> np.ndarray:
        """Draws ``(n_samples, n_obs, n_vars)`` from the mixture: an equal share from each member.

        ``importance`` is the deprecated name of ``n_proposals``.
        """
        self._check()
        n_proposals = renamed("n_proposals", n_proposals, "importance", importance, owner="sample_predictive")
        check_int("n_samples", n_samples, minimum=1)
        share = math.ceil(n_samples / len(self.members_))
        draws = [m.sample_predictive(mdata, modality, given=given, n_samples=share, n_proposals=n_proposals,
                                     batch_size=batch_size, allow_unobserved=allow_unobserved) for m in self.members_]
        return self._spread(modality, torch.as_tensor(np.concatenate(draws, axis=0))).numpy()[:n_samples]

    def _spread(self, modality: str, draws: torch.Tensor) -> torch.Tensor:
        """Pooled draws ``(S, n, p)`` spread by the calibrated factor of ``modality``, if any."""
        from ..base._calibration import widen

        scale = self.interval_scale_.get(modality)
        if scale is None:
            return draws
        return widen(draws, scale, self.members_[0].registry_["modalities"][modality]["likelihood"])

    @torch.no_grad()
    def impute(self, mdata: md.MuData, modality: str, *, given: Sequence[str] | None = None, n_samples: int = 100,
               quantiles: Sequence[float] = (0.05, 0.5, 0.95), n_proposals: int | None = None,
               batch_size: int | None = None, allow_unobserved: bool = False,
               importance: int | None = None) -> ad.AnnData:
        """The mixture's predictive distribution of ``modality``, laid out as the models' ``impute``.

        ``mean`` averages the members' predictive means; ``std`` and the quantiles are those of
        the pooled draws (``n_samples`` in all, an equal share per member). ``importance`` is the
        deprecated name of ``n_proposals``.
        """
        self._check()
        n_proposals = renamed("n_proposals", n_proposals, "importance", importance, owner="impute")
        first = self.members_[0]
        first._check_imputable(modality, allow_unobserved)
        check_int("n_samples", n_samples, minimum=2)
        qs = [check_float("quantiles", float(q), low=0.0, high=1.0, low_open=True, high_open=True) for q in quantiles]
        share = max(2, math.ceil(n_samples / len(self.members_)))
        tensors = first.tensors(mdata)
        if batch_size is None:  # every member walks the same batches: the smallest bound
            batch_size = min(m._draw_batch_size(max(share, m._importance(n_proposals, share)), modality,
                                                m._importance(n_proposals, share) > 0) for m in self.members_)
        streams = [m._predictive(tensors, modality, m._use_mask(given), share, m._importance(n_proposals, share), batch_size)
                   for m in self.members_]
        batches = ((torch.stack([m.module.likelihoods[modality].mean(p).mean(0) for m, (p, _) in zip(self.members_, parts,
                                                                                                      strict=True)]).mean(0),
                    self._spread(modality, torch.cat([d for _, d in parts])))
                   for parts in zip(*streams, strict=True))
        result = first._imputation(mdata, tensors, modality, batches, qs)
        result.uns["mdlprob_impute"] = {"modality": modality, "given": list(given or first.modalities),
                                        "n_samples": share * len(self.members_), "quantiles": qs,
                                        "n_models": len(self.members_)}
        return result

    @torch.no_grad()
    def calibrate_intervals(self, mdata: md.MuData | None = None, *, modalities: Sequence[str] | None = None,
                            level: float = 0.9, n_samples: int = 100,
                            per_feature: bool = False) -> dict[str, float | list[float]]:
        """Split-conformal factors for the mixture's predictive draws (as the models' ``calibrate_intervals``).

        Calibrates on ``mdata`` (held-out observations) or, by default, on the validation split
        the members share. Factors are kept in ``interval_scale_`` and applied by
        :meth:`impute` and :meth:`sample_predictive`.
        """
        from ..base._calibration import calibratable, fit_scales

        self._check()
        first = self.members_[0]
        check_float("level", level, low=0.0, high=1.0, low_open=True, high_open=True)
        share = max(2, math.ceil(n_samples / len(self.members_)))
        tensors, held_out = first._calibration_rows(mdata)  # the members share the first one's validation split
        names = [m for m in first.modalities if calibratable(first.registry_["modalities"][m]["likelihood"])]
        chosen = names if modalities is None else [m for m in names if m in set(modalities)]

        def draw(held, mod: str, others: list[str]) -> torch.Tensor:
            return torch.cat([d.cpu() for m in self.members_
                              for _, d in m._predictive(held, mod, m._use_mask(others), share,
                                                        m._importance(None, share), None)], 0)

        fitted = fit_scales(tensors, held_out, first.modalities, chosen, draw,
                            lambda m: first.module.likelihoods[m].is_discrete, level=level, per_feature=per_feature)
        self.interval_scale_.update(fitted)
        return fitted

    def log_likelihood(self, mdata: md.MuData, *, n_samples: int = 100, batch_size: int | None = None) -> np.ndarray:
        """Log of the members' average likelihood per observation (each an IWAE estimate)."""
        self._check()
        lls = np.stack([m.log_likelihood(mdata, n_samples=n_samples, batch_size=batch_size) for m in self.members_])
        top = lls.max(0)
        return top + np.log(np.exp(lls - top).mean(0))

    def save(self, path: str | Path, *, overwrite: bool = False) -> None:
        """One sub-folder per member (``member_0`` ...) plus ``ensemble.json``, written as one atomic folder."""
        self._check()
        for member in self.members_:
            member._check_finite()
        with atomic_dir(path, overwrite=overwrite) as tmp:
            for i, member in enumerate(self.members_):
                (tmp / f"member_{i}").mkdir()
                member._write(tmp / f"member_{i}")
            (tmp / _CONFIG).write_text(json.dumps({"model_class": self.model_cls.__name__, "format_version": FORMAT_VERSION,
                                                   "n_models": len(self.members_),
                                                   "model_kwargs": self.model_kwargs,
                                                   "interval_scale": self.interval_scale_}, indent=1))

    @classmethod
    def load(cls, path: str | Path, mdata: md.MuData | None = None, *, accelerator: str = "auto") -> Ensemble:
        """Load an ensemble saved with :meth:`save` (members with their class's ``load``)."""
        path = Path(path)
        config = _read_config(path, required=("model_class", "n_models"), name=_CONFIG, what="mdlprob ensemble")
        check_format_version(config, path / _CONFIG)
        try:
            name, n_models = config["model_class"], int(config["n_models"])
        except (ValueError, TypeError) as err:
            msg = f"{path / _CONFIG} is not a valid ensemble description ({err})."
            raise ModelFileError(msg) from None
        self = cls(name, None, **config.get("model_kwargs", {}))
        self.members_ = [self.model_cls.load(path / f"member_{i}", mdata, accelerator=accelerator) for i in range(n_models)]
        self.interval_scale_ = dict(config.get("interval_scale", {}))
        return self
