"""Public model class shared by every mdlprob model: training, latent, imputation, save/load."""

from __future__ import annotations

import io
import json
import logging
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pyro
import torch
from torch import Tensor

from .._io import atomic_dir
from .._utils import progress, track
from ..data import get_registry, tensors_from_mudata, write_imputation
from ..data._backed import BackedTensors
from ..data._covariates import batch_column, batch_support, observation_batches
from ..data._feature_graph import feature_graph_indices
from ..data._setup import check_values, get_matrix
from ..data._tensors import MultimodalTensors, place, set_training_stats
from ..distributions import LIKELIHOODS
from ..exceptions import DataWarning, ModelFileError, NotTrainedError, RegistrationError
from ..train import FitConfig, check_parallel, fit, fit_spawned, fit_torchrun, launched_by_torchrun
from ..train._checkpoint import Checkpointer
from ..train._loop import kept_epoch
from ._base_module import MultimodalVAEModule
from ._calibration import calibratable, fit_scales, interpolated_quantile, widen
from ._distill import distill_model
from ._noise import build_noise_cache, newton_fit
from ._query import check_query_training, freeze_except, query_model, unfreeze
from ._validate import check_float, check_int, check_subset, renamed, resolve_device

LATENT_KEY = "X_mdlprob"
logger = logging.getLogger(__name__)
_WEIGHTS, _CONFIG = "model.pt", "config.json"
#: Layout version of the saved-model files this code writes (``config.json["format_version"]``).
#: Files without one predate versioning and read as version 0. Raise it when the layout changes,
#: and teach :meth:`BaseModel.load` to read every older version (tests/fixtures/models holds one
#: folder saved by each).
FORMAT_VERSION = 1


#: Values in the widest per-batch tensor of draws at inference (``n_draws x batch x width``, float32: 16 MB).
#: With the dozen such tensors a decode and a sample keep alive, inference memory stays near 0.2 GB for any
#: number of observations (``benchmarks/inference_memory.py``).
DRAW_BUDGET = 2**22

#: Values of each decoded parameter that :meth:`BaseModel.refit_noise` caches (rows x draws x features, 4 MB):
#: every Newton step scores them all, so the refit's cost is bounded whatever the number of observations.
REFIT_BUDGET = DRAW_BUDGET // 4

#: Smallest validation split that :meth:`BaseModel.refit_noise` uses on its own.
MIN_REFIT_VAL = 100


class BaseModel:
    """Registry handling, training loop, ``get_latent``, ``impute`` and ``save``/``load``.

    A model is one file: a :class:`MultimodalVAEModule` subclass plus a subclass of this
    class that names it in ``_module_cls``.
    """

    _module_cls: ClassVar[type[MultimodalVAEModule]]
    #: Importance-resampling proposals per predictive sample used by :meth:`impute` by default.
    default_importance: ClassVar[int] = 0
    #: Steps of :meth:`refit_noise` run at the end of :meth:`train` by default (0: none).
    default_refit_noise_steps: ClassVar[int] = 0

    def __init__(self, mdata: md.MuData, **module_kwargs: Any) -> None:
        if not isinstance(mdata, md.MuData):
            msg = f"Expected mdata to be a mudata.MuData, got {type(mdata).__name__}."
            raise TypeError(msg)
        check_int("n_latent", module_kwargs["n_latent"], minimum=1)
        check_int("n_hidden", module_kwargs["n_hidden"], minimum=1)
        check_int("n_layers", module_kwargs["n_layers"], minimum=0)
        if module_kwargs.get("decoder", "mlp") not in ("mlp", "linear"):
            msg = f"Expected decoder in ('mlp', 'linear'), got {module_kwargs['decoder']!r}."
            raise ValueError(msg)
        check_float("dropout", module_kwargs["dropout"], low=0.0, high=1.0, high_open=True)
        registry = get_registry(mdata)
        pyro.clear_param_store()
        tensors = tensors_from_mudata(mdata, registry)
        self.registry_ = registry
        self.var_names_ = {m: [str(v) for v in mdata.mod[m].var_names] for m in registry["modalities"]}
        self._spec = {
            m: {**{k: v for k, v in e.items() if k not in ("layer",)}, "has_nan": LIKELIHOODS[e["likelihood"]].is_table or tensors.observed[m] is not None}
            for m, e in registry["modalities"].items()
        }
        graph = registry.get("feature_graph")
        if graph is not None:
            graph = feature_graph_indices(graph, self.var_names_, list(registry["modalities"]))
        self._module_kwargs = {**module_kwargs, "outcome": registry.get("outcome"), "feature_graph": graph}
        if registry.get("covariates"):  # absent otherwise: configurations from before covariates stay the same
            self._module_kwargs["covariates"] = registry["covariates"]
        self.module = self._module_cls(self._spec, **self._module_kwargs)
        set_training_stats(self.module.likelihoods, tensors)
        self._tensors: MultimodalTensors | None = tensors
        self.history_: dict[str, list[float]] = {"train_loss": [], "val_loss": []}
        self.train_indices_: list[int] = []
        self.val_indices_: list[int] = []
        #: The search that chose this configuration (:func:`mdlprob.tune.tune`), saved with the model.
        self.tuning_: dict[str, Any] | None = None
        #: Predictive-spread factor per modality from :meth:`calibrate_intervals` (saved with the model).
        self.interval_scale_: dict[str, float | list[float]] = {}
        #: Training observations that have each modality (a never-observed one cannot be imputed meaningfully).
        self.n_observed_: dict[str, int] = {m: int(n) for m, n in zip(registry["modalities"], tensors.presence.sum(0).tolist(), strict=True)}
        #: With a batch: modality to the training batches in which some observation had it.
        self.batch_support_: dict[str, list[str]] = batch_support(tensors, registry)
        #: For a student made by :meth:`distill`: its modalities and how closely it matches the teacher.
        self.distillation_: dict[str, Any] | None = None
        self.is_trained_ = False

    # ------------------------------------------------------------------ properties
    @property
    def modalities(self) -> list[str]:
        """Registered modalities in registry order."""
        return list(self.registry_["modalities"])

    @property
    def device(self) -> torch.device:
        return self.module.device

    def __repr__(self) -> str:
        mods = ", ".join(f"{m}: {e['likelihood']}" for m, e in self.registry_["modalities"].items())
        state = "trained" if self.is_trained_ else "not trained"
        return f"{type(self).__name__}({mods}; n_latent={self._module_kwargs['n_latent']}; {state})"

    # ------------------------------------------------------------------ training
    def train(
        self,
        *,
        max_epochs: int | None = None,
        batch_size: int = 256,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        accelerator: str = "auto",
        train_size: float = 1.0,
        early_stopping: bool | Literal["auto"] = "auto",
        patience: int = 30,
        beta: float = 1.0,
        kl_warmup_epochs: int = 0,
        inference: Literal["fast", "svi"] = "fast",
        progress_bar: bool = True,
        devices: int = 1,
        strategy: Literal["auto", "ddp"] = "auto",
        chunk_size: int | None = None,
        refit_noise_steps: int | None = None,
        validation_indices: Sequence[int] | None = None,
        checkpoint_dir: str | Path | None = None,
        checkpoint_every: int = 1,
        resume: bool = False,
    ) -> None:
        """Fit the model by stochastic variational inference.

        Parameters
        ----------
        max_epochs
            Passes over the training observations; default ``min(400, 8e6 / n_obs)`` epochs
            (at least 20), as scvi-tools does, then an upper bound for early stopping.
        batch_size
            Observations per gradient step and process. Data stay on the device; batches are
            gathered by index there. Backed data (see ``chunk_size``) are read from disk.
        lr, weight_decay
            Adam step size and L2 penalty.
        accelerator
            ``auto`` (CUDA if available), ``cpu``, ``gpu``/``cuda`` or ``mps``.
        train_size
            Fraction of observations used for training; the rest form a validation split
            whose loss is tracked in ``history_["val_loss"]``. Split indices are stored with
            the model. With ``early_stopping`` and ``train_size=1`` a 10% split is made.
        early_stopping
            Stop when the validation loss has not improved for ``patience`` epochs and
            restore the best weights. ``"auto"`` (default): on when ``max_epochs`` is left
            to its default, off when you give it (you asked for that many epochs); the
            stopping and best epochs are logged and recorded in ``history_["stopped_epoch"]``
            and ``history_["best_epoch"]``. Before this default, training never stopped early:
            pass ``early_stopping=False`` to reproduce such runs.
        beta
            Weight of the KL term (β-VAE); 1 gives the ELBO.
        kl_warmup_epochs
            Epochs over which the KL weight rises linearly from 0 to ``beta``.
        inference
            ``fast``: the hand-fused loss (same objective as the Pyro model/guide, see
            ``tests/models/test_poe_vae.py``); ``svi``: Pyro ``SVI`` with ``TraceMeanField_ELBO``
            on the module's ``model``/``guide`` (2–3× slower, useful to check or extend).
        progress_bar
            Show a progress bar over epochs.
        devices
            Processes for data-parallel training, one per device (GPUs with a CUDA
            accelerator, else CPU processes with the gloo backend). Each step, every process
            takes ``batch_size`` rows of one global batch of ``batch_size * devices`` and
            gradients are averaged, so one step equals a single-process step on the global
            batch. See ``docs/scale.md``.
        strategy
            ``auto``: data-parallel when ``devices > 1``; ``ddp``: also join an external
            ``torchrun`` launch (``WORLD_SIZE``/``RANK`` set), one process per device.
        chunk_size
            Backed data only (a MuData from ``mudata.read_h5mu(path, backed="r")``): rows
            per contiguous read. Chunks are visited in random order, rows shuffled within
            each, the next chunk read by a background thread. Default: about 64 MB of
            values, between 1,024 and 65,536 rows.
        refit_noise_steps
            Steps of :meth:`refit_noise` after the fit (0: keep the noise the objective
            learned). Default: the model's ``default_refit_noise_steps`` (300 for the
            mixture models MoEVAE and MoPoEVAE, whose objectives inflate it, else 0), but
            never more steps than the training took. The posterior draws are decoded once
            for a bounded set of rows; a refit step then only re-scores cached parameters.
        validation_indices
            Positions of the observations that form the validation split, instead of a
            random ``1 - train_size`` of them (e.g. the same split for several models).
        checkpoint_dir
            Folder for ``checkpoint.pt``: the weights, optimiser, random generators, epoch,
            history and early-stopping state, replaced atomically every ``checkpoint_every``
            epochs and at the end. While it is set, SIGINT and SIGTERM stop training after
            the current step with a checkpoint (mid-epoch for data in memory) and raise
            :class:`~mdlprob.exceptions.TrainingInterrupted`. Single-process training only.
        checkpoint_every
            Epochs between checkpoints.
        resume
            Continue from the checkpoint in ``checkpoint_dir`` (same model, data and
            options; ``max_epochs`` may grow): on CPU the result is bit for bit that of an
            uninterrupted run. The model may be a fresh one built from the same data or one
            loaded with ``load(path, mdata, for_training=True)``.

        Raises
        ------
        TrainingDivergedError
            The loss became non-finite. The model is put back to the early-stopping best
            weights, else those of the last finite epoch (or the weights it started from),
            and ``history_["diverged_epoch"]`` records where; it never keeps non-finite weights.
        """
        tensors = self._require_tensors()
        n = tensors.n_obs
        if early_stopping == "auto":
            early_stopping = max_epochs is None
        elif not isinstance(early_stopping, bool):
            msg = f"Expected early_stopping to be True, False or 'auto', got {early_stopping!r}."
            raise ValueError(msg)
        if max_epochs is None:
            max_epochs = int(min(400, max(20, round(8e6 / n))))
            logger.info("Training %s for up to %d epochs (automatic for %d observations)%s.", type(self).__name__,
                        max_epochs, n, f", early stopping after {patience} epochs without improvement"
                        if early_stopping else "")
        check_int("max_epochs", max_epochs, minimum=1)
        check_int("batch_size", batch_size, minimum=1)
        check_int("patience", patience, minimum=1)
        check_int("kl_warmup_epochs", kl_warmup_epochs, minimum=0)
        check_float("lr", lr, low=0.0, high=math.inf, low_open=True)
        check_float("weight_decay", weight_decay, low=0.0, high=math.inf)
        check_float("train_size", train_size, low=0.0, high=1.0, low_open=True)
        check_float("beta", beta, low=0.0, high=math.inf)
        if chunk_size is not None:
            check_int("chunk_size", chunk_size, minimum=1)
        if refit_noise_steps is not None:
            check_int("refit_noise_steps", refit_noise_steps, minimum=0)
        if inference not in ("fast", "svi"):
            msg = f"Expected inference in ('fast', 'svi'), got {inference!r}."
            raise ValueError(msg)
        device = resolve_device(accelerator)
        world = check_parallel(devices, strategy, inference, device)
        query = getattr(self, "_query_masks", None)
        if query is not None:
            check_query_training(weight_decay=weight_decay, inference=inference, world=world, strategy=strategy)
            refit_noise_steps = 0  # the noise parameters are the reference's
        if early_stopping and train_size == 1.0:
            train_size = 0.9
        if validation_indices is None:
            train_idx, val_idx = self._split(n, train_size)
        else:
            val_idx = np.unique(np.asarray(validation_indices))
            if val_idx.dtype.kind not in "iu" or len(val_idx) != len(validation_indices) or len(val_idx) >= n \
                    or (len(val_idx) and (val_idx.min() < 0 or val_idx.max() >= n)):
                msg = (f"Expected validation_indices to be distinct positions in [0, {n}) leaving observations to "
                       f"train on, got {len(validation_indices)} values.")
                raise ValueError(msg)
            train_idx = np.setdiff1d(np.arange(n), val_idx)
        if isinstance(tensors, BackedTensors) and not tensors.stats_streamed:
            set_training_stats(self.module.likelihoods, tensors)
        cfg = FitConfig(max_epochs=max_epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                        early_stopping=early_stopping, patience=patience, beta=beta, kl_warmup_epochs=kl_warmup_epochs,
                        inference=inference, chunk_size=chunk_size, progress_bar=progress_bar,
                        description=f"Training {type(self).__name__}")
        n_val_before = len(self.history_["val_loss"])
        checkpointer, resumed = self._checkpointer(checkpoint_dir, checkpoint_every, resume, cfg, train_size,
                                                   world > 1 or (strategy == "ddp" and launched_by_torchrun()),
                                                   train_idx, val_idx, n_val_before)
        if resumed is not None:
            train_idx, val_idx = resumed["train_idx"].numpy(), resumed["val_idx"].numpy()
            n_val_before = int(resumed["val_start"])
        self.module.to(device)
        handles = [] if query is None else freeze_except(self.module, query)
        try:
            if world > 1:
                best_state = fit_spawned(self.module, tensors, train_idx, val_idx, device, cfg, self.history_, world)
            elif strategy == "ddp" and launched_by_torchrun():
                best_state = fit_torchrun(self.module, tensors, train_idx, val_idx, device, cfg, self.history_)
            else:
                best_state = fit(self.module, place(tensors, device), train_idx, val_idx, device, cfg, self.history_,
                                 checkpoint=checkpointer, resume=resumed)
        finally:
            self.module.eval()
            if query is not None:
                unfreeze(self.module, handles)
        if best_state is not None:
            self.module.load_state_dict(best_state)
        if early_stopping and len(self.history_["val_loss"]) > n_val_before:
            self._record_stopping(max_epochs, n_val_before)
        self.module.eval()
        self.train_indices_, self.val_indices_ = [int(i) for i in train_idx], [int(i) for i in val_idx]
        self.is_trained_ = True
        if query is None:  # a query model keeps the reference's library regression
            self._fit_library_model(tensors, train_idx)
        if refit_noise_steps is None:  # never more refit steps than training steps: a short fit stays short
            steps_per_epoch = math.ceil(len(train_idx) / (batch_size * world))
            refit_noise_steps = min(self.default_refit_noise_steps, len(self.history_["train_loss"]) * steps_per_epoch)
        if refit_noise_steps:
            self.refit_noise(n_steps=refit_noise_steps, progress_bar=progress_bar)

    def _checkpointer(self, directory: str | Path | None, every: int, resume: bool, cfg: FitConfig, train_size: float,
                      parallel: bool, train_idx: np.ndarray, val_idx: np.ndarray,
                      val_start: int) -> tuple[Checkpointer | None, dict[str, Any] | None]:
        """The checkpoint writer of a ``train`` call and, with ``resume``, the state it continues from."""
        if not isinstance(resume, bool):
            msg = f"Expected resume to be True or False, got {resume!r}."
            raise TypeError(msg)
        if directory is None:
            if resume:
                msg = "resume=True continues a checkpoint: pass the checkpoint_dir it was written to."
                raise ValueError(msg)
            return None, None
        check_int("checkpoint_every", every, minimum=1)
        if parallel:
            msg = "checkpoint_dir is supported for single-process training; train with devices=1 to checkpoint."
            raise ValueError(msg)
        identity = {
            "model": type(self).__name__,
            "module": _digest(self._module_kwargs), "data": _digest([self._tensors.n_obs, self.var_names_]),
            "train_size": train_size,
            **{f: getattr(cfg, f) for f in ("batch_size", "lr", "weight_decay", "early_stopping", "patience", "beta",
                                            "kl_warmup_epochs", "inference", "chunk_size")},
        }
        checkpointer = Checkpointer(directory, every, identity,
                                    extra={"train_idx": torch.as_tensor(train_idx), "val_idx": torch.as_tensor(val_idx),
                                           "val_start": val_start})
        if not resume:
            return checkpointer, None
        state = checkpointer.load()
        checkpointer.extra = {k: state[k] for k in checkpointer.extra}
        return checkpointer, state

    def refit_noise(self, *, n_steps: int = 300, n_proposals: int = 16, lr: float | None = None,
                    batch_size: int | None = None, progress_bar: bool = True) -> None:
        r"""Re-estimate the likelihoods' noise parameters under the model's posterior, all else fixed.

        The noise parameters are those a likelihood holds itself rather than decodes (NB
        inverse dispersion :math:`\theta`, Gaussian/Laplace scales, Beta concentration). With
        the encoders and decoders fixed, posterior draws and what the decoders make of them do
        not change while the noise moves, so they are computed once: each row :math:`i` gets
        draws :math:`z_{ik} \sim p(z \mid x_{iM_i})` by importance resampling of ``n_proposals``
        encoder draws (the model's own posterior given every modality the row has, see
        :meth:`impute`), and their decoded parameters are kept, at most
        :data:`REFIT_BUDGET` values (rows × draws × features of the modalities with noise;
        up to 8 draws per row, and a random subset of rows when they do not fit). The noise
        then minimises :math:`-\sum_{i,k} \sum_m \log p_{\theta_m}(x_{im} \mid z_{ik})` over
        the cached pairs (a Monte Carlo EM M-step) by damped Newton steps, one per parameter
        element (each acts on its own features' densities), re-scoring cached parameters
        without running a network; it stops when the decrease the next steps promise is below 1e-6 of the loss.

        The rows are the validation split when the model has one of at least 100 observations
        (``train(train_size<1)`` or ``early_stopping``): rows the decoders never fit, whose
        errors are those of new data. Else all the training observations, whose in-sample
        errors are slightly smaller (intervals on new data then come out a little narrow).

        Why: the mixture objectives (MoE, MoPoE) ask every single-modality posterior to
        reconstruct all modalities, and the decoders' noise grows to absorb the error of
        those weaker posteriors. Predictive intervals then cover more than nominal (at
        n=3000 on ``synthetic``, MoEVAE's 50% interval covered 57%); after this refit they
        are close to nominal (``tests/models/test_calibration.py``). The loss per cached pair
        (over the modalities with noise parameters) after each step is appended to
        ``history_["noise_loss"]``.

        Parameters
        ----------
        n_steps
            Most Newton steps (they usually converge in a few dozen).
        n_proposals
            Encoder proposals per row for the importance resampling.
        lr
            Deprecated and ignored: the refit used to take Adam steps of this size; Newton
            steps need none.
        batch_size
            Rows drawn and decoded at a time while building the cache (memory); default: as
            many as keep the proposals within :data:`DRAW_BUDGET` values.
        progress_bar
            Show a progress bar over the steps.
        """
        self._require_trained()
        tensors = self._require_tensors()
        check_int("n_steps", n_steps, minimum=1)
        check_int("n_proposals", n_proposals, minimum=1)
        if lr is not None:
            warnings.warn("refit_noise(lr=...) is deprecated and ignored: the noise refit takes Newton steps, which "
                          "need no step size. Drop the argument.", FutureWarning, stacklevel=2)
        if batch_size is None:
            batch_size = self._draw_batch_size(n_proposals, None, True)
        check_int("batch_size", batch_size, minimum=1)
        module = self.module
        noise = [p for m in self.modalities for p in module.likelihoods[m].parameters(recurse=False)]
        if not noise:
            return
        use_val = len(self.val_indices_) >= MIN_REFIT_VAL
        rows = torch.as_tensor(self.val_indices_ if use_val else self.train_indices_ + self.val_indices_, dtype=torch.long)
        module.eval()
        cache = build_noise_cache(module, tensors, rows, n_proposals=n_proposals, budget=REFIT_BUDGET,
                                  chunk_size=batch_size)
        bar = progress(n_steps, "Refitting noise", progress_bar=progress_bar)
        try:
            losses = newton_fit(module, cache, noise, max_steps=n_steps, on_step=bar.update)
        finally:
            bar.close()
        self.history_.setdefault("noise_loss", []).extend(losses)

    def _record_stopping(self, max_epochs: int, start: int) -> None:
        """Log and record where this run's early stopping ended and which epoch's weights were kept."""
        val = self.history_["val_loss"][start:]
        stopped, best = len(val), kept_epoch(val)  # the loop's rule, not the raw minimum
        self.history_["stopped_epoch"], self.history_["best_epoch"] = [stopped], [best]
        if stopped < max_epochs and best:
            logger.info("Early stopping at epoch %d of %d; restored the weights of epoch %d (validation loss %.4g).",
                        stopped, max_epochs, best, val[best - 1])

    @torch.no_grad()
    def _fit_library_model(self, tensors: MultimodalTensors, rows: np.ndarray, *, max_rows: int = 50_000) -> None:
        r"""Fit :math:`\log \ell_m \sim \mathcal{N}(a_m^\top d, s_m^2)` for each count modality with a library.

        Imputing an absent count modality needs its depth. Least squares (with a small ridge
        penalty) of each training observation's log total count on the regressors :math:`d`
        of :meth:`MultimodalVAEModule.library_design`: the posterior mean of :math:`z` given
        its *other* modalities, as at imputation, and the log depths of its other count
        modalities (cells sequenced deeply in RNA tend to be deep in ADT too); :math:`s_m`
        is the residual sd. At most ``max_rows`` training rows (a random subset) are used.
        """
        module = self.module
        if not module.library_modalities or len(rows) == 0:
            return
        rows = torch.as_tensor(rows, dtype=torch.long)
        if len(rows) > max_rows:
            rows = rows[torch.randperm(len(rows))[:max_rows]]
        rows = rows.sort().values
        module.eval()
        for k, mod in enumerate(module.library_modalities):  # centres first: every design uses them all
            j = self.modalities.index(mod)
            logs = []
            for idx in torch.split(rows, 4096):
                batch = tensors.batch(idx, self.device)
                logs.append(module.likelihoods[mod].log_library(batch["x"][mod])[batch["presence"][:, j]])
            module.library_center[k] = torch.cat(logs).mean() if sum(len(v) for v in logs) else 0.0
        for k, mod in enumerate(module.library_modalities):
            j = self.modalities.index(mod)
            zs, ys = [], []
            for idx in torch.split(rows, 1024):
                batch = tensors.batch(idx, self.device)
                keep = batch["presence"][:, j]
                use = batch["presence"].clone()
                use[:, j] = False
                design = module.library_design(mod, module.posterior_moments(batch, use)[0], batch, use)
                zs.append(design[keep])
                ys.append(module.likelihoods[mod].log_library(batch["x"][mod])[keep])
            design = torch.cat(zs).double()
            y = torch.cat(ys).double()
            if len(y) < 2:
                continue
            penalty = 1e-3 * len(y) * torch.eye(design.shape[1], dtype=design.dtype, device=design.device)
            penalty[-1, -1] = 0.0
            coef = torch.linalg.solve(design.T @ design + penalty, design.T @ y)
            module.library_coef[k] = coef.float()
            module.library_sd[k] = (y - design @ coef).pow(2).mean().sqrt().clamp_min(1e-3).float()

    def _split(self, n: int, train_size: float) -> tuple[np.ndarray, np.ndarray]:
        perm = torch.randperm(n).numpy()
        n_train = n if train_size >= 1.0 else max(1, min(n - 1, round(n * train_size)))
        return np.sort(perm[:n_train]), np.sort(perm[n_train:])

    # ------------------------------------------------------------------ inference
    def _require_trained(self) -> None:
        if not self.is_trained_:
            msg = f"This {type(self).__name__} is not trained yet; call .train() first."
            raise NotTrainedError(msg)

    def _require_tensors(self) -> MultimodalTensors:
        if self._tensors is None:
            msg = "This model was loaded for inference only; training needs the model built from data (PoEVAE(mdata))."
            raise NotTrainedError(msg)
        return self._tensors

    def tensors(self, mdata: md.MuData) -> MultimodalTensors:
        """Validate ``mdata`` against the model's registry and return its tensors."""
        if not isinstance(mdata, md.MuData):
            msg = f"Expected mdata to be a mudata.MuData, got {type(mdata).__name__}."
            raise TypeError(msg)
        for mod, entry in self.registry_["modalities"].items():
            if mod in mdata.mod:
                check_values(get_matrix(mdata.mod[mod], entry.get("layer") or None, mod), mod, entry["likelihood"])
        tensors = tensors_from_mudata(mdata, self.registry_, var_names=self.var_names_)
        for mod in self.modalities:
            if tensors.observed[mod] is not None and not self._spec[mod]["has_nan"]:
                msg = (
                    f"Modality {mod!r} has NaN entries, but the model was trained on data without any, so its "
                    f"encoder cannot mark them missing. Retrain on data that include NaN entries, or drop those observations."
                )
                raise ValueError(msg)
        return tensors

    def _use_mask(self, given: Sequence[str] | None) -> Tensor:
        chosen = check_subset("given", given, self.modalities)
        return torch.tensor([m in chosen for m in self.modalities], device=self.device)

    def _batches(self, tensors: MultimodalTensors, batch_size: int, description: str = ""):
        """Consecutive batches; with a ``description``, a progress bar when there are several."""
        chunks = torch.split(torch.arange(tensors.n_obs), batch_size)
        if description and len(chunks) > 1:
            chunks = track(chunks, description=description, total=len(chunks), leave=False)
        for idx in chunks:
            yield idx, tensors.batch(idx, self.device)

    @torch.no_grad()
    def get_latent(self, mdata: md.MuData, *, given: Sequence[str] | None = None, n_samples: int = 0,
                   give_std: bool = True, batch_size: int = 1024) -> np.ndarray:
        """Posterior of the latent variable for every observation of ``mdata``.

        Writes ``mdata.obsm["X_mdlprob"]`` (posterior mean) and, with ``give_std``,
        ``mdata.obsm["X_mdlprob_std"]``; nothing else of ``mdata`` changes. With covariates
        (``setup_mudata(..., batch_key=...)``) the encoders read each observation's own, so
        the latent describes what is left once the batch is accounted for (batch-corrected).

        Parameters
        ----------
        given
            Modalities the posterior conditions on (default: all registered ones each
            observation has). An observation with none of them gets the prior N(0, I).
        n_samples
            When > 0, return that many posterior samples ``(n_samples, n_obs, n_latent)``.

        Returns
        -------
        The posterior mean ``(n_obs, n_latent)``, or samples when ``n_samples > 0``.
        """
        mean, sd, samples = self._posterior(mdata, given, n_samples, batch_size)
        mdata.obsm[LATENT_KEY] = mean
        if give_std:
            mdata.obsm[f"{LATENT_KEY}_std"] = sd
        return samples if n_samples else mean

    def _posterior(self, mdata: md.MuData, given: Sequence[str] | None, n_samples: int,
                   batch_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Posterior mean and sd of the latent, and ``n_samples`` draws when > 0; ``mdata`` untouched."""
        self._require_trained()
        check_int("n_samples", n_samples, minimum=0)
        check_int("batch_size", batch_size, minimum=1)
        use = self._use_mask(given)
        tensors = self.tensors(mdata)
        self.module.eval()
        k = self.module.n_latent  # results go straight into arrays of their final size (see _imputation)
        means = np.empty((tensors.n_obs, k), dtype=np.float32)
        sds = np.empty((tensors.n_obs, k), dtype=np.float32)
        samples = np.empty((n_samples, tensors.n_obs, k), dtype=np.float32) if n_samples else None
        for idx, batch in self._batches(tensors, batch_size):
            rows = slice(int(idx[0]), int(idx[-1]) + 1)
            batch_use = use.expand_as(batch["presence"])
            mean, var = self.module.posterior_moments(batch, batch_use)
            means[rows], sds[rows] = mean.cpu().numpy(), var.sqrt().cpu().numpy()
            if n_samples:
                samples[:, rows] = self.module.sample_posterior(batch, batch_use, n_samples).cpu().numpy()
        return means, sds, samples

    @torch.no_grad()
    def get_latent_representation(self, mdata: md.MuData, *, given: Sequence[str] | None = None,
                                  give_mean: bool = True, batch_size: int = 1024) -> np.ndarray:
        """The scvi-tools name: the posterior mean (or, with ``give_mean=False``, one posterior draw) of the latent.

        Unlike :meth:`get_latent`, writes nothing into ``mdata`` (as scvi-tools); store it
        yourself, e.g. ``mdata.obsm["X_mdlprob"] = model.get_latent_representation(mdata)``.
        """
        if not give_mean:
            return self.sample_latent(mdata, given=given, n_samples=1, batch_size=batch_size)[0]
        return self._posterior(mdata, given, 0, batch_size)[0]

    @torch.no_grad()
    def sample_latent(self, mdata: md.MuData, *, given: Sequence[str] | None = None, mask: np.ndarray | None = None,
                      n_samples: int = 20, batch_size: int = 1024) -> np.ndarray:
        """Posterior draws of the latent variable; unlike :meth:`get_latent`, writes nothing into ``mdata``.

        Parameters
        ----------
        given
            Modalities the posterior conditions on (default: all registered ones each
            observation has).
        mask
            Boolean ``(n_obs, n_modalities)`` (modalities in registry order): per observation,
            the modalities it may condition on, on top of ``given`` (e.g. to drop a view for
            some observations only). An observation left with none gets the prior.
        n_samples
            Draws per observation.

        Returns
        -------
        ``(n_samples, n_obs, n_latent)`` float32 draws.
        """
        self._require_trained()
        check_int("n_samples", n_samples, minimum=1)
        check_int("batch_size", batch_size, minimum=1)
        use = self._use_mask(given)
        tensors = self.tensors(mdata)
        if mask is not None:
            mask = np.asarray(mask)
            if mask.dtype != bool or mask.shape != (tensors.n_obs, len(self.modalities)):
                msg = (f"Expected mask to be a boolean array of shape {(tensors.n_obs, len(self.modalities))} "
                       f"(observations x modalities {self.modalities}), got {mask.dtype} {mask.shape}.")
                raise ValueError(msg)
        self.module.eval()
        samples = []
        for idx, batch in self._batches(tensors, batch_size):
            batch_use = use.expand_as(batch["presence"])
            if mask is not None:
                batch_use = batch_use & torch.as_tensor(mask[idx.numpy()], device=self.device)
            samples.append(self.module.sample_posterior(batch, batch_use, n_samples).cpu())
        return torch.cat(samples, dim=1).numpy()

    @torch.no_grad()
    def impute(self, mdata: md.MuData, modality: str, *, given: Sequence[str] | None = None,
               n_samples: int = 100, quantiles: Sequence[float] = (0.05, 0.5, 0.95),
               n_proposals: int | None = None, batch_size: int | None = None,
               allow_unobserved: bool = False, transform_batch: Any = None,
               importance: int | None = None, inplace: bool = False, fill: bool = False) -> ad.AnnData:
        """Posterior predictive distribution of ``modality`` for every observation.

        For observation :math:`i`, samples :math:`z^{(s)} \\sim q(z \\mid x_{i,\\text{given}})`
        and :math:`x^{(s)} \\sim p(x \\mid z^{(s)})` give the predictive quantiles and sd; the
        mean is :math:`\\frac1S \\sum_s \\mathbb{E}[x \\mid z^{(s)}]`.

        Parameters
        ----------
        modality
            Registered modality to impute (present or absent).
        given
            Modalities to condition on (default: every registered one the observation has,
            ``modality`` included where present). Pass the others to score imputation.
        n_samples
            Posterior predictive samples per observation (>= 2).
        quantiles
            Levels in (0, 1) written as layers ``q05``, ``q50``, ``q95`` (``q{100 level:g}``,
            two digits at least). For integer-valued likelihoods (``nb``, ``zinb``,
            ``poisson``, ``bernoulli``) they are quantiles of the continuous extension
            :math:`x + U(-\\frac12, \\frac12)` of the predictive draws: integer quantiles
            cover too much through ties, these are calibrated (score them with
            ``mdlprob.metrics.interval_coverage(..., discrete=True)``; round them when integer
            bounds are needed).
        n_proposals
            Encoder proposals per observation for sampling-importance-resampling from the
            model's exact posterior :math:`p(z \\mid x_{\\text{given}})` (see
            :meth:`MultimodalVAEModule.sample_model_posterior`; the ``n_samples`` draws are
            resampled from them); 0 uses the encoder's posterior directly. Default: the
            model's ``default_importance`` times ``n_samples`` (0 for product-of-experts
            posteriors, 4 for mixtures, whose intervals are otherwise too wide in the centre).
            The same count as :meth:`refit_noise`'s ``n_proposals``.
        batch_size
            Observations per internal batch. Default: as many as keep the widest tensor of
            draws near ``DRAW_BUDGET`` (4M) values, so memory is bounded, whatever ``n_obs``;
            quantiles are computed batch by batch.
        allow_unobserved
            Impute a modality that no training observation had (its decoder never saw
            data: the result is the untrained decoder's output) with a warning instead of an error.
        transform_batch
            For a model with a batch (``setup_mudata(..., batch_key=...)``): a training batch
            :math:`b`. The latent posterior still conditions on each observation's own batch
            (its data were measured there), but the decoder is given :math:`b`, so the result
            is the prediction as if every observation had been measured in batch :math:`b`
            (batch-corrected values on a common scale). Default: each observation's own batch.
        importance
            Deprecated name of ``n_proposals`` (a :class:`FutureWarning`).
        inplace
            Also write the result where scverse tools look (:func:`mdlprob.data.write_imputation`):
            ``mdata[modality].layers["mdlprob_mean"]``, ``["mdlprob_std"]`` and one
            ``["mdlprob_q05"]``-style layer per quantile, for the observations that have the
            modality (the modality's AnnData holds only those).
        fill
            With ``inplace``: also fill only the missing entries, keeping every measured value:
            ``mdata[modality].layers["mdlprob_filled"]`` (NaN entries replaced by the mean) and
            the complete matrix, absent observations included, in
            ``mdata.obsm["<modality>_filled"]`` (:func:`mdlprob.data.fill_missing`).

        Returns
        -------
        AnnData ``(n_obs, n_vars)`` of ``modality`` with ``X`` and layer ``mean``, layer
        ``std`` and one layer per quantile, all on the data scale; ``obs["observed"]``
        says whether the observation had the modality. For categorical columns of a
        ``mixed`` table, ``mean`` holds the most frequent sampled code and ``std`` is NaN.
        For an image modality ``uns["image_shape"]`` is copied, so each layer reshapes to
        mean / sd / quantile images: ``result.layers["std"].reshape(-1, *shape)``.
        """
        self._require_trained()
        self._check_imputable(modality, allow_unobserved)
        check_int("n_samples", n_samples, minimum=2)
        for name, flag in (("inplace", inplace), ("fill", fill)):
            if not isinstance(flag, bool):
                msg = f"Expected {name} to be True or False, got {flag!r}."
                raise TypeError(msg)
        if fill and not inplace:
            msg = "fill=True fills the missing entries in mdata; pass inplace=True with it (or call mdlprob.data.fill_missing)."
            raise ValueError(msg)
        qs = [check_float("quantiles", float(q), low=0.0, high=1.0, low_open=True, high_open=True) for q in quantiles]
        use = self._use_mask(given)
        tensors = self.tensors(mdata)
        lik = self.module.likelihoods[modality]
        n_proposals = self._importance(renamed("n_proposals", n_proposals, "importance", importance, owner="impute"),
                                       n_samples)
        decoder_covariates = None
        if transform_batch is not None:
            decoder_covariates = self._transformed_covariates(tensors, transform_batch)
        else:
            self._warn_unsupported_batches(tensors, modality)
        batches = ((lik.mean(params).mean(0), draws)
                   for params, draws in self._predictive(tensors, modality, use, n_samples, n_proposals, batch_size,
                                                         decoder_covariates=decoder_covariates))
        result = self._imputation(mdata, tensors, modality, batches, qs)
        result.uns["mdlprob_impute"] = {"modality": modality, "given": check_subset("given", given, self.modalities),
                                        "n_samples": n_samples, "quantiles": qs, "n_proposals": n_proposals}
        if transform_batch is not None:
            result.uns["mdlprob_impute"]["transform_batch"] = str(transform_batch)
        if (~tensors.presence[:, use.cpu()].any(1)).any():
            warnings.warn("Some observations have none of the `given` modalities; their imputation comes from the prior.",
                          DataWarning, stacklevel=2)
        if inplace:
            write_imputation(mdata, result, fill=fill)
        return result

    def _check_imputable(self, modality: str, allow_unobserved: bool) -> None:
        """``modality`` is registered and was observed in training (else an error, or a warning when allowed)."""
        if modality not in self.modalities:
            msg = f"Expected modality to be one of the registered modalities {self.modalities}, got {modality!r}."
            raise ValueError(msg)
        if getattr(self, "n_observed_", {}).get(modality, 1) == 0:
            msg = (f"No training observation had modality {modality!r}: its decoder never saw data, so an imputation "
                   "would be the untrained decoder's output.")
            if not allow_unobserved:
                raise ValueError(msg + " Train on data that include it, or pass allow_unobserved=True to get it anyway.")
            warnings.warn(msg, DataWarning, stacklevel=3)

    def _imputation(self, mdata: md.MuData, tensors: MultimodalTensors, modality: str, batches,
                    qs: Sequence[float]) -> ad.AnnData:
        """The AnnData of :meth:`impute` from per-batch ``(predictive mean, draws (S, batch, n_vars))``."""
        lik = self.module.likelihoods[modality]
        cat_cols = lik.categorical_columns
        # Results go straight into arrays of their final size: small per-batch pieces kept alive between
        # large freed scratch blocks would pin the allocator's heap and let memory grow with n_obs.
        layers = {k: np.empty((tensors.n_obs, lik.n_vars), dtype=np.float32)
                  for k in ["mean", "std", *(_q_name(q) for q in qs)]}
        start = 0
        for pred_mean, draws in batches:
            rows = slice(start, start + draws.shape[1])
            start = rows.stop
            pred_sd = draws.std(0)
            if cat_cols is not None and len(cat_cols):
                pred_mean[:, cat_cols] = torch.mode(draws[:, :, cat_cols], dim=0).values
                pred_sd[:, cat_cols] = float("nan")
            layers["mean"][rows] = pred_mean.cpu().numpy()
            layers["std"][rows] = pred_sd.cpu().numpy()
            if lik.is_discrete:
                draws = draws + torch.rand_like(draws) - 0.5  # continuous extension for calibrated quantiles
            sorted_draws = draws.sort(dim=0).values
            del draws
            for q in qs:
                layers[_q_name(q)][rows] = interpolated_quantile(sorted_draws, q).cpu().numpy()
        var = mdata.mod[modality].var.copy() if modality in mdata.mod else pd.DataFrame(index=self.var_names_[modality])
        j = self.modalities.index(modality)
        obs = pd.DataFrame({"observed": tensors.presence[:, j].numpy()}, index=mdata.obs_names.copy())
        result = ad.AnnData(X=layers["mean"].copy(), obs=obs, var=var, layers=layers)
        if lik.image_shape is not None:
            result.uns["image_shape"] = list(lik.image_shape)
        return result

    @torch.no_grad()
    def sample_predictive(self, mdata: md.MuData, modality: str, *, given: Sequence[str] | None = None,
                          n_samples: int = 100, n_proposals: int | None = None,
                          batch_size: int | None = None, allow_unobserved: bool = False,
                          importance: int | None = None) -> np.ndarray:
        """Draws from the posterior predictive distribution of ``modality``, as :meth:`impute` uses.

        Parameters are those of :meth:`impute`. Score them with
        :func:`mdlprob.metrics.crps`; mind the memory of ``n_samples * n_obs * n_vars`` floats.

        Returns
        -------
        ``(n_samples, n_obs, n_vars)`` float32 draws on the data scale.
        """
        self._require_trained()
        self._check_imputable(modality, allow_unobserved)
        check_int("n_samples", n_samples, minimum=1)
        tensors = self.tensors(mdata)
        n_proposals = self._importance(
            renamed("n_proposals", n_proposals, "importance", importance, owner="sample_predictive"), n_samples)
        chunks = [d.cpu() for _, d in self._predictive(tensors, modality, self._use_mask(given), n_samples,
                                                       n_proposals, batch_size)]
        return torch.cat(chunks, dim=1).numpy()

    @torch.no_grad()
    def calibrate_intervals(self, mdata: md.MuData | None = None, *, modalities: Sequence[str] | None = None,
                            level: float = 0.9, n_samples: int = 100,
                            per_feature: bool = False) -> dict[str, float | list[float]]:
        """Widen (or narrow) each modality's predictive draws so held-out intervals cover ``level``.

        Split conformal calibration (see :mod:`mdlprob.base._calibration`): for observations the
        model did not train on that have the modality and another one, the modality is
        predicted from the others and compared with the truth; the factor that makes the
        central ``level`` interval cover ``level`` of those entries then spreads every later
        predictive draw of the modality (:meth:`impute` and :meth:`sample_predictive`; means
        are unchanged). Factors are kept in ``interval_scale_`` and saved with the model.

        Parameters
        ----------
        mdata
            Held-out observations (not used for training). Default: the model's validation
            observations (``train(train_size<1)`` or early stopping) of its training data.
        modalities
            Modalities to calibrate (default: every one with a continuous or count likelihood).
        level
            Interval level the factor is fitted for.
        per_feature
            One factor per feature (e.g. per pixel) instead of one per modality; needs
            enough held-out observations (a feature with too few takes the pooled factor).

        Returns
        -------
        The fitted factors, modality to factor (1: the intervals were right).
        """
        self._require_trained()
        check_float("level", level, low=0.0, high=1.0, low_open=True, high_open=True)
        check_int("n_samples", n_samples, minimum=10)
        tensors, held_out = self._calibration_rows(mdata)
        names = [m for m in self.modalities if calibratable(self.registry_["modalities"][m]["likelihood"])]
        chosen = names if modalities is None else check_subset("modalities", modalities, names)
        saved, self.interval_scale_ = self.interval_scale_, {}  # calibrate the model's own spread

        def draw(held, mod: str, others: list[str]) -> Tensor:
            batches = self._predictive(held, mod, self._use_mask(others), n_samples, self._importance(None, n_samples), None)
            return torch.cat([d.cpu() for _, d in batches], 1)

        try:
            fitted = fit_scales(tensors, held_out, self.modalities, chosen, draw,
                                lambda m: self.module.likelihoods[m].is_discrete, level=level, per_feature=per_feature)
        finally:
            self.interval_scale_ = saved
        self.interval_scale_.update(fitted)
        return fitted

    def _draw_batch_size(self, n_draws: int, modality: str | None, all_modalities: bool) -> int:
        """Observations per batch so that the widest ``(n_draws, batch, width)`` tensor holds about
        :data:`DRAW_BUDGET` values: inference memory is bounded by it, whatever the number of observations.

        The width is the widest per-draw row the call makes: the decoded parameters of ``modality``
        (per channel for images), a decoder hidden layer, or every modality's features
        (``all_modalities``: importance weights and log-likelihoods decode them all).
        """
        liks = self.module.likelihoods
        widths = [self.module.decoder_width]
        if modality is not None:
            widths.append(liks[modality].n_vars * (1 + getattr(self.module.decoders[modality], "out_channels", 0)))
        if all_modalities:
            widths.append(sum(liks[m].n_vars for m in self.modalities))
        return int(max(1, min(1024, DRAW_BUDGET // (n_draws * max(widths)))))

    def _calibration_rows(self, mdata: md.MuData | None) -> tuple[MultimodalTensors, Tensor]:
        """Tensors to calibrate on and which of their rows are held out: all of ``mdata``, else the validation split."""
        if mdata is not None:
            tensors = self.tensors(mdata)
            return tensors, torch.ones(tensors.n_obs, dtype=torch.bool)
        if not self.val_indices_:
            msg = ("There are no validation observations to calibrate on: train with train_size<1 or "
                   "early_stopping, or pass held-out data as mdata.")
            raise ValueError(msg)
        tensors = self._require_tensors()
        if isinstance(tensors, BackedTensors):
            msg = "Calibrating on the validation split of backed data is not supported; pass held-out mdata in memory."
            raise ValueError(msg)
        held_out = torch.zeros(tensors.n_obs, dtype=torch.bool)
        held_out[torch.as_tensor(self.val_indices_)] = True
        return tensors, held_out

    def _importance(self, n_proposals: int | None, n_samples: int) -> int:
        if n_proposals is None:
            return self.default_importance * n_samples
        check_int("n_proposals", n_proposals, minimum=0)
        return n_proposals

    def _warn_unsupported_batches(self, tensors: MultimodalTensors, modality: str) -> None:
        """Warn when observations belong to batches in which no training observation had ``modality``."""
        support = getattr(self, "batch_support_", {}).get(modality)
        if support is None or tensors.covariates is None:
            return
        batches = observation_batches(tensors, self.registry_["covariates"])
        unseen = sorted(set(batches) - set(support))
        if unseen:
            n = int(np.isin(batches, unseen).sum())
            msg = (f"No training observation of batch(es) {unseen} had modality {modality!r}, so its batch effect there "
                   f"is unknown and the prediction for those {n} observation(s) uses decoder weights no {modality!r} "
                   f"datum trained. Predict as if measured in a batch that had it: transform_batch in {support}.")
            warnings.warn(msg, DataWarning, stacklevel=3)

    def _transformed_covariates(self, tensors: MultimodalTensors, batch: Any) -> Tensor:
        """The covariate vectors of ``tensors`` with every observation's batch replaced by ``batch``."""
        block, column = batch_column(self.registry_.get("covariates"), batch)
        covariates = tensors.covariates.clone()
        covariates[:, block] = 0.0
        covariates[:, column] = 1.0
        return covariates

    def _predictive(self, tensors: MultimodalTensors, modality: str, use: Tensor, n_samples: int,
                    importance: int, batch_size: int | None, *, decoder_covariates: Tensor | None = None):
        """Per batch: decoded likelihood parameters and one predictive draw for each latent draw.

        ``decoder_covariates`` ``(n_obs, n_covariates)`` replace the observations' own
        covariates in the decoder of ``modality`` (not in the posterior of the latent).
        """
        lik = self.module.likelihoods[modality]
        if batch_size is None:
            batch_size = self._draw_batch_size(max(n_samples, importance), modality, importance > 0)
        check_int("batch_size", batch_size, minimum=1)
        self.module.eval()
        for idx, batch in self._batches(tensors, batch_size, f"Sampling {modality}"):
            batch_use = use.expand_as(batch["presence"])
            if importance:
                z = self.module.sample_model_posterior(batch, batch_use, n_samples, importance)
            else:
                z = self.module.sample_posterior(batch, batch_use, n_samples)
            if decoder_covariates is not None:
                batch = {**batch, "covariates": decoder_covariates[idx].to(self.device)}
            log_library = None
            if modality in self.module.library_modalities:  # the target's depth: observed if given, else drawn
                j = self.modalities.index(modality)
                known = batch_use[:, j] & batch["presence"][:, j]
                log_library = torch.where(known, lik.log_library(batch["x"][modality]),
                                          self.module.sample_log_library(modality, z, batch, batch_use))
            params = self.module.decode(modality, z, batch, log_library=log_library)
            draws = lik.sample(params)
            scale = self.interval_scale_.get(modality)
            yield params, draws if scale is None else widen(draws, scale, lik.name)

    @torch.no_grad()
    def predict_outcome(self, mdata: md.MuData, *, given: Sequence[str] | None = None, n_samples: int = 100,
                        level: float = 0.9, batch_size: int = 1024) -> pd.DataFrame:
        """Outcome predicted by a model trained jointly with one (``setup_mudata(..., outcome=...)``).

        Integrates over ``n_samples`` posterior draws of the latent variable, so an
        observation with fewer or less informative modalities gets a wider interval.

        Parameters
        ----------
        given
            Modalities to condition on (default: all registered ones each observation has).
            The outcome itself is never an input.
        level
            Coverage of the central intervals over the latent draws.

        Returns
        -------
        DataFrame indexed like ``mdata.obs``. Categorical outcome: one column of predictive
        probabilities per class (the mean over draws), ``<class>_lower``/``<class>_upper``,
        ``predicted`` (most probable class) and ``entropy`` (nats). Survival outcome:
        ``risk`` (higher = earlier event; the linear risk for ``coxph``, the cumulative
        hazard over the follow-up bins for ``logistic_hazard``), ``risk_lower`` and
        ``risk_upper``.
        """
        self._require_trained()
        head = self.module.outcome
        if head is None:
            msg = ("This model has no outcome: register one with setup_mudata(mdata, ..., outcome={...}) before "
                   "building the model, or fit a head on its latent (mdlprob.heads).")
            raise ValueError(msg)
        check_int("n_samples", n_samples, minimum=2)
        check_float("level", level, low=0.0, high=1.0, low_open=True, high_open=True)
        use = self._use_mask(given)
        tensors = self.tensors(mdata)
        self.module.eval()
        draws = []
        for _, batch in self._batches(tensors, batch_size):
            z = self.module.sample_posterior(batch, use.expand_as(batch["presence"]), n_samples)
            draws.append((torch.softmax(head(z), -1) if head.type == "categorical" else head.risk(z)).cpu())
        d = torch.cat(draws, dim=1).double().numpy()
        lo, hi = np.quantile(d, [(1 - level) / 2, (1 + level) / 2], axis=0)
        point = d.mean(0)
        index = mdata.obs_names.copy()
        if head.type != "categorical":
            return pd.DataFrame({"risk": point, "risk_lower": lo, "risk_upper": hi}, index=index)
        classes = [str(c) for c in self.registry_["outcome"]["classes"]]
        out = pd.DataFrame(point, index=index, columns=classes)
        for k, c in enumerate(classes):
            out[f"{c}_lower"], out[f"{c}_upper"] = lo[:, k], hi[:, k]
        out["predicted"] = pd.Categorical.from_codes(point.argmax(1), categories=classes)
        out["entropy"] = -(point * np.log(np.clip(point, 1e-12, None))).sum(1)
        return out

    @torch.no_grad()
    def log_likelihood(self, mdata: md.MuData, *, n_samples: int = 100, batch_size: int | None = None) -> np.ndarray:
        r"""Importance-weighted estimate of :math:`\log p(x_{\text{observed}})` per observation.

        .. math::
            \log p(x) \approx \log \frac{1}{K} \sum_{k=1}^{K}
            \frac{p(x \mid z_k)\, p(z_k)}{q(z_k \mid x)}, \qquad z_k \sim q(z \mid x),

        with :math:`q` the posterior given every modality the observation has and only its
        non-missing entries in :math:`p(x \mid z)` (the IWAE bound of Burda et al., 2016). It
        is a lower bound that tightens as ``n_samples`` grows; compare models on held-out data
        with the same ``n_samples``.

        Returns
        -------
        ``(n_obs,)`` log-likelihood estimates in nats, on the data scale.
        """
        self._require_trained()
        check_int("n_samples", n_samples, minimum=1)
        if batch_size is None:  # memory bounded by the batch (see _draw_batch_size)
            batch_size = self._draw_batch_size(n_samples, None, True)
        check_int("batch_size", batch_size, minimum=1)
        tensors = self.tensors(mdata)
        use = self._use_mask(None)
        self.module.eval()
        out = np.empty(tensors.n_obs, dtype=np.float32)
        for idx, batch in self._batches(tensors, batch_size, "Log-likelihood"):
            batch_use = use.expand_as(batch["presence"])
            z = self.module.sample_posterior(batch, batch_use, n_samples)
            log_w = (torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
                     - self.module.posterior_log_prob(z, batch, batch_use))
            for j, mod in enumerate(self.modalities):
                log_w = log_w + self.module.recon_log_prob(mod, j, z, batch)
            out[idx.numpy()] = (torch.logsumexp(log_w, 0) - math.log(n_samples)).cpu().numpy()
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, *, overwrite: bool = False) -> None:
        """Write ``model.pt`` (weights, loadable with ``weights_only=True``) and ``config.json``.

        The folder is written as a hidden sibling of ``path``, flushed to disk and renamed
        into place only when complete (see :mod:`mdlprob._io`): a crash or a full disk
        leaves ``path`` as it was. With ``overwrite`` an existing folder (or file) at
        ``path`` is replaced as a whole. Weights that are not finite are refused.
        """
        self._require_trained()
        self._check_finite()
        with atomic_dir(path, overwrite=overwrite) as tmp:
            self._write(tmp)

    def _check_finite(self) -> None:
        bad = [k for k, v in self.module.state_dict().items() if v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            msg = (f"This {type(self).__name__} holds non-finite weights ({', '.join(bad[:3])}"
                   f"{', ...' if len(bad) > 3 else ''}); it is not saved. Retrain it (e.g. with a lower lr).")
            raise FloatingPointError(msg)

    def _write(self, folder: Path) -> None:
        """Write the model's files into the (temporary) ``folder``; subclasses add theirs."""
        from .. import __version__

        config = {
            "model_class": type(self).__name__, "format_version": FORMAT_VERSION, "mdlprob_version": __version__,
            "module_kwargs": self._module_kwargs,
            "spec": self._spec, "registry": self.registry_, "var_names": self.var_names_, "history": self.history_,
            "train_indices": self.train_indices_, "val_indices": self.val_indices_,
            "tuning": getattr(self, "tuning_", None), "interval_scale": getattr(self, "interval_scale_", {}),
            "n_observed": getattr(self, "n_observed_", {}),
            "batch_support": getattr(self, "batch_support_", {}),
            "distillation": getattr(self, "distillation_", None),
        }
        buffer = io.BytesIO()  # serialised in memory: a full disk then fails as a plain, reported write
        torch.save({k: v.detach().cpu() for k, v in self.module.state_dict().items()}, buffer)
        (folder / _WEIGHTS).write_bytes(buffer.getvalue())
        (folder / _CONFIG).write_text(json.dumps(config, indent=1))

    def distill(self, modalities: Sequence[str], *, mdata: md.MuData | None = None, max_epochs: int = 200,
                batch_size: int = 256, lr: float = 1e-3, train_size: float = 0.9, patience: int = 20,
                progress_bar: bool = True) -> BaseModel:
        r"""A student of this model for cohorts that will only ever have ``modalities``.

        The student is a copy of this (teacher) model whose encoders of ``modalities`` (a
        subset :math:`S`) are trained to match the teacher's posterior given every modality
        each training observation has:

        .. math::
            \min_{\phi_S} \frac{1}{|I|}\sum_{i \in I} \mathrm{KL}\big(q_{\text{teacher}}(z_i \mid x_{i, M_i})
            \,\big\|\, q_{\phi_S}(z_i \mid x_{i, S \cap M_i})\big),

        over the observations :math:`I` with at least one modality of :math:`S` (mixture
        posteriors are summarised by their moment-matched Gaussians; the KL covers the
        teacher's mass, so the student stays wide where :math:`x_S` cannot tell). Decoders,
        likelihoods, the other encoders and the interval calibration are the teacher's: the
        student's ``get_latent``, ``impute`` and ``predict_outcome`` given :math:`S` use the
        same generative model. Use the student only on data with (a part of) :math:`S`: its
        encoders of :math:`S` no longer form the teacher's product with the other encoders.

        Parameters
        ----------
        modalities
            The subset :math:`S`, a proper subset of the registered modalities.
        mdata
            Observations to distill on (default: the teacher's training data), registered
            like the training data; they should have the other modalities too, since the
            teacher's posterior given them is the target.
        max_epochs, batch_size, lr
            Adam on the KL above (only the encoders of ``modalities`` are updated).
        train_size
            Fraction of the observations the encoders are fitted on; the rest score the
            student and stop the fit (``1``: fit and score on all, ``max_epochs`` epochs).
        patience
            Stop when the held-out KL has not improved for this many epochs; the epoch with
            the lowest held-out KL is kept, or the teacher's own encoders (``best_epoch`` -1)
            when no epoch beats them, so on the held-out observations the student is never
            further from the full posterior than the teacher given :math:`S` (the part of the
            full posterior that :math:`x_S` cannot predict is noise to the student, which it
            soon starts to fit).

        Returns
        -------
        The student, a trained model of this class (saved and loaded like any model), with
        ``distillation_``: the modalities, the KL history, and on the held-out observations the
        mean KL from the teacher's full posterior to the student's (``kl_student``) and to the
        teacher's own posterior given :math:`S` (``kl_teacher_subset``); the student should
        come closer. The teacher is unchanged.
        """
        return distill_model(self, modalities, mdata=mdata, max_epochs=max_epochs, batch_size=batch_size, lr=lr,
                             train_size=train_size, patience=patience, progress_bar=progress_bar)

    @classmethod
    def load_query_data(cls, mdata: md.MuData, reference: BaseModel | str | Path, *,
                        train_first_layers: bool = False, accelerator: str = "auto") -> BaseModel:
        r"""A model for new batches ``mdata`` (a query) built on a trained ``reference`` (scArches surgery).

        The reference must have a batch (``setup_mudata(..., batch_key=...)``). Its registry
        is extended with the query's new batches (categories of the batch column unseen by
        the reference), and every part of the module that reads the batch gets zero-initialised
        columns for them (see :mod:`mdlprob.base._query`). :meth:`train` then fine-tunes those
        columns only (and, with ``train_first_layers``, the encoders' first layers), on the
        query alone: every other reference weight stays bit for bit what it was (no weight
        decay; no noise refit; the library-size regression is the reference's).
        Before training, the model maps the query with the new batches' effects at zero
        ("no fine-tuning"). The query may lack modalities the reference had (absent for all
        its observations); they are imputed as usual, with intervals.

        Parameters
        ----------
        mdata
            The query: the reference's modalities (any subset present) with the same features,
            and ``obs`` holding the reference's covariate columns. It need not be registered.
        reference
            A trained model of this class, or the folder it was saved to.
        train_first_layers
            Also fine-tune the first layer of every encoder (all its inputs and its bias; as
            scArches does when it does not freeze the expression inputs), so the query's
            encoders can adapt beyond an additive batch effect. The decoders, i.e. the
            reference's generative model, stay frozen; the reference object itself is never
            changed (its weights are copied).

        Returns
        -------
        A trained model of this class whose training data are ``mdata``; ``model.train(...)``
        fine-tunes it. Saved and loaded like any model.
        """
        return query_model(cls, mdata, reference, train_first_layers=train_first_layers, accelerator=accelerator)

    @classmethod
    def load(cls, path: str | Path, mdata: md.MuData | None = None, *, accelerator: str = "auto",
             for_training: bool = False) -> BaseModel:
        """Load a model saved with :meth:`save`; weights are read with ``weights_only=True``.

        Parameters
        ----------
        mdata
            When given, checked against the saved registry (same modalities' features):
            a mismatch raises :class:`RegistrationError`.
        for_training
            Keep ``mdata`` (required) as the training data, so that :meth:`train` continues
            from the saved weights (a new optimiser; to continue an interrupted run exactly,
            use ``train(..., checkpoint_dir=..., resume=True)``). Otherwise the model is for
            inference only.

        Raises
        ------
        ModelFileError
            The folder is incomplete or damaged; the message names the file and the problem.
        """
        path = Path(path)
        if for_training and mdata is None:
            msg = "load(..., for_training=True) needs the training data: pass mdata."
            raise ValueError(msg)
        config = _read_config(path, required=_CONFIG_KEYS)
        check_format_version(config, path / _CONFIG)
        if config["model_class"] != cls.__name__:
            msg = f"{path} holds a {config['model_class']}, not a {cls.__name__}; load it with mdlprob.models.{config['model_class']}.load."
            raise RegistrationError(msg)
        self = cls.__new__(cls)
        self.registry_, self.var_names_, self._spec = config["registry"], config["var_names"], config["spec"]
        self._module_kwargs, self.history_ = config["module_kwargs"], config["history"]
        self.train_indices_, self.val_indices_ = config["train_indices"], config["val_indices"]
        self.tuning_ = config.get("tuning")
        self.interval_scale_ = dict(config.get("interval_scale", {}))
        self.n_observed_ = dict(config.get("n_observed", {}))  # empty for models saved before it was recorded
        self.batch_support_ = dict(config.get("batch_support", {}))
        self.distillation_ = config.get("distillation")
        try:
            self.module = cls._module_cls(self._spec, **self._module_kwargs)
        except (TypeError, ValueError, KeyError) as err:
            msg = f"{path / _CONFIG} describes a model that cannot be built ({type(err).__name__}: {err})."
            raise ModelFileError(msg) from None
        device = resolve_device(accelerator)
        state = _read_weights(path / _WEIGHTS, device)
        try:
            self.module.load_state_dict(state)
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0]
            msg = f"{path / _WEIGHTS} does not match {path / _CONFIG} ({first}); the folder mixes two models."
            raise ModelFileError(msg) from None
        bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            msg = f"{path / _WEIGHTS} holds non-finite weights ({', '.join(bad[:3])}); retrain and save the model again."
            raise ModelFileError(msg)
        self.module.to(device).eval()
        self._tensors, self.is_trained_ = None, True
        if mdata is not None:
            tensors = self.tensors(mdata)
            if for_training:
                self._tensors = tensors
        return self


_CONFIG_KEYS = ("model_class", "module_kwargs", "spec", "registry", "var_names", "history", "train_indices",
                "val_indices")


def _read_config(path: Path, *, required: Sequence[str], name: str = _CONFIG,
                 what: str = "mdlprob model") -> dict[str, Any]:
    """``path/name`` parsed, with errors that name the file and what is wrong with it."""
    if not path.is_dir():
        msg = f"No saved {what} at {path}: it is {'a file' if path.exists() else 'missing'}; expected a folder written by save()."
        raise FileNotFoundError(msg)
    file = path / name
    if not file.is_file():
        msg = f"No saved {what} in {path}: {name} is missing (an incomplete copy?)."
        raise FileNotFoundError(msg)
    try:
        config = json.loads(file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        msg = f"{file} is not valid JSON ({err}); the folder is damaged. Save the model again."
        raise ModelFileError(msg) from None
    except OSError as err:
        msg = f"{file} cannot be read ({err.strerror or err})."
        raise ModelFileError(msg) from None
    if not isinstance(config, dict):
        msg = f"{file} holds a JSON {type(config).__name__}, not the description of a saved {what}."
        raise ModelFileError(msg)
    missing = [k for k in required if k not in config]
    if missing:
        msg = f"{file} lacks {', '.join(map(repr, missing))}: not a complete saved {what}. Save the model again."
        raise ModelFileError(msg)
    return config


def check_format_version(config: dict[str, Any], file: Path) -> int:
    """The file's layout version (0 when absent: saved before versions were recorded); a newer one is refused."""
    version = config.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        msg = f"{file} has format_version {version!r}; expected a non-negative int. The file is damaged."
        raise ModelFileError(msg)
    if version > FORMAT_VERSION:
        from .. import __version__

        msg = (f"{file} was saved in model format {version} (by mdlprob {config.get('mdlprob_version', '?')}); "
               f"this mdlprob {__version__} reads formats up to {FORMAT_VERSION}. Upgrade mdlprob to load it.")
        raise ModelFileError(msg)
    return version


def _read_weights(file: Path, device: torch.device) -> dict[str, Tensor]:
    """The weights in ``file``, read with ``weights_only=True``; a damaged file is reported as such."""
    if not file.is_file():
        msg = f"{file} is missing: the saved model folder is incomplete. Save the model again."
        raise ModelFileError(msg)
    try:
        state = torch.load(file, map_location=device, weights_only=True)
    except Exception as err:  # torch's own message advises weights_only=False, unsafe for a damaged or foreign file
        msg = (f"{file} is not a readable mdlprob weights file ({type(err).__name__}); it is truncated, damaged or "
               "not mdlprob's. Save the model again; never load such a file with weights_only=False.")
        raise ModelFileError(msg) from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        msg = f"{file} does not hold a dictionary of weights; it is not mdlprob's."
        raise ModelFileError(msg)
    return state


def _digest(value: Any) -> str:
    """A short fingerprint of a JSON-able value (tensors and other objects by their text)."""
    import hashlib

    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _q_name(q: float) -> str:
    pct = f"{q * 100:g}"
    return f"q{pct.zfill(2) if '.' not in pct else pct}"
