"""Shared estimator machinery of the fusion baselines: checks, training loop, predictions."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.metrics import accuracy_score
from sklearn.utils import assert_all_finite, check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from ..heads._base import _check_number
from ..heads._survival import _check_survival, _check_times
from ..metrics import harrell_c
from ._inputs import Standardiser, check_inputs, fusion_inputs
from ._nn import FusionNet, Target, modality_dropout, task_loss

TASKS = ("classification", "survival")


class _FusionEstimator(BaseEstimator):
    """Base class; subclasses set their hyper-parameters and implement ``_build_net``."""

    # ---------------------------------------------------------------- params
    def _check_params(self) -> None:
        if self.task not in TASKS:
            msg = f"Expected `task` to be one of {TASKS}, got {self.task!r}."
            raise ValueError(msg)
        _check_number("n_hidden", self.n_hidden, kind=Integral, low=0)
        _check_number("n_layers", self.n_layers, kind=Integral, low=0)
        _check_number("dropout", self.dropout, kind=Real, low=0, high=1, high_open=True)
        _check_number("max_epochs", self.max_epochs, kind=Integral, low=1)
        _check_number("lr", self.lr, kind=Real, low=0, low_open=True)
        _check_number("weight_decay", self.weight_decay, kind=Real, low=0)
        if self.batch_size is not None:
            _check_number("batch_size", self.batch_size, kind=Integral, low=2)

    def _build_net(self, dims: dict[str, int], n_out: int) -> FusionNet:
        raise NotImplementedError

    def _training_presence(self, presence: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Presence seen by one training step (multimodal dropout overrides this)."""
        return presence

    # --------------------------------------------------------------- targets
    def _encode_target(self, y: Any, n_obs: int) -> Target:
        if self.task == "survival":
            event, time = _check_survival(y, n_obs)
            if not event.any():
                msg = f"Expected at least one observed event in `y`, got all {event.size} observations censored."
                raise ValueError(msg)
            self._train_event, self._train_time = event, time
            return {"time": torch.tensor(np.ascontiguousarray(time), dtype=torch.float32),
                    "event": torch.tensor(np.ascontiguousarray(event))}
        if y is None:
            msg = f"{type(self).__name__}(task='classification') needs class labels `y`, got None."
            raise ValueError(msg)
        y = column_or_1d(y, warn=True)
        if y.dtype.kind in "fc":
            assert_all_finite(y, input_name="y")
        check_classification_targets(y)
        if y.shape[0] != n_obs:
            msg = f"Expected `y` to have one label per observation ({n_obs}), got {y.shape[0]}."
            raise ValueError(msg)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if self.classes_.size < 2:
            msg = (f"Expected `y` to contain at least 2 classes, got only {self.classes_[0]!r}; "
                   "a classifier cannot be fitted on a single class.")
            raise ValueError(msg)
        return {"y": torch.as_tensor(codes.reshape(-1), dtype=torch.long)}

    # ------------------------------------------------------------------- fit
    def fit(self, X: Any, y: Any, *, presence: Any = None) -> _FusionEstimator:
        """Fit the network by Adam on the task loss.

        Parameters
        ----------
        X
            Modality name → float array ``(n_obs, p_m)``; NaN marks missing entries.
        y
            Class labels ``(n_obs,)`` (``task="classification"``), or a structured array
            (event indicator, time) as made by ``sksurv.util.Surv.from_arrays`` (``"survival"``).
        presence
            Modality name → bool ``(n_obs,)``: whether each observation has the modality
            (default: all present). Values in absent rows are ignored.

        Returns
        -------
        The fitted estimator.

        Raises
        ------
        TypeError
            ``X`` is not a dict of numeric arrays, or ``presence`` not a dict.
        KeyError
            ``presence`` names a modality that is not in ``X``.
        ValueError
            Invalid hyper-parameters; modalities with different numbers of rows; an observation
            with no present modality; a modality absent everywhere; a single class; survival
            targets with negative times or no event; ``y`` of the wrong length.
        """
        self._check_params()
        arrays, masks = check_inputs(X, presence)
        n_obs = next(iter(masks.values())).size
        target = self._encode_target(y, n_obs)
        self.modalities_ = list(arrays)
        self.standardiser_ = Standardiser().fit(arrays, masks)
        x = self.standardiser_.transform(arrays, masks)
        pres = torch.from_numpy(np.column_stack([masks[m] for m in self.modalities_]))
        dims = {m: self.standardiser_.n_inputs(m) for m in self.modalities_}
        n_out = self.classes_.size if self.task == "classification" else 1
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = self._build_net(dims, n_out)
            self.loss_history_ = self._train(net, x, pres, target, torch.Generator().manual_seed(seed))
        net.eval()
        self.net_ = net
        if self.task == "survival":
            self._fit_baseline(self._output(x, pres)[:, 0])
        return self

    def fit_mudata(self, mdata: Any, y: Any, *, log1p: bool = True) -> _FusionEstimator:
        """Fit on a MuData registered with :func:`mdlprob.data.setup_mudata`.

        ``X`` and ``presence`` come from :func:`fusion_inputs` (``log1p`` of count modalities
        by default); predict with ``fusion_inputs(mdata_test, log1p=log1p)`` likewise.
        """
        X, presence = fusion_inputs(mdata, log1p=log1p)
        return self.fit(X, y, presence=presence)

    def _train(self, net: FusionNet, x: dict[str, torch.Tensor], pres: torch.Tensor, target: Target,
               generator: torch.Generator) -> np.ndarray:
        opt = torch.optim.Adam(net.parameters(), lr=float(self.lr), weight_decay=float(self.weight_decay))
        loss_fn = task_loss(self.task)
        n = pres.shape[0]
        size = n if self.batch_size is None else min(int(self.batch_size), n)
        history = []
        net.train()
        for _ in range(int(self.max_epochs)):
            order = torch.randperm(n, generator=generator) if size < n else torch.arange(n)
            total = 0.0
            for start in range(0, n, size):
                idx = order[start:start + size]
                xb = {m: v[idx] for m, v in x.items()}
                pb = self._training_presence(pres[idx], generator)
                loss = net.loss(xb, pb, {k: v[idx] for k, v in target.items()}, loss_fn)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * idx.numel()
            history.append(total / n)
        return np.asarray(history)

    def _fit_baseline(self, risk: np.ndarray) -> None:
        """Breslow estimator of the cumulative baseline hazard at the training risks."""
        event, time = self._train_event, self._train_time
        order = np.argsort(time, kind="stable")
        at_risk = np.cumsum(np.exp(risk[order])[::-1])[::-1]  # sum over t_j >= t_sorted[k]
        self.event_times_, n_events = np.unique(time[event], return_counts=True)
        start = np.searchsorted(time[order], self.event_times_, side="left")
        self.cum_baseline_hazard_ = np.cumsum(n_events / at_risk[start])
        del self._train_event, self._train_time

    # ------------------------------------------------------------ prediction
    def _prepare(self, X: Any, presence: Any) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        check_is_fitted(self, "net_")
        arrays, masks = check_inputs(X, presence, modalities=self.modalities_)
        x = self.standardiser_.transform(arrays, masks)
        return x, torch.from_numpy(np.column_stack([masks[m] for m in self.modalities_]))

    def _output(self, x: dict[str, torch.Tensor], pres: torch.Tensor) -> np.ndarray:
        self.net_.eval()
        with torch.no_grad():
            return self.net_(x, pres).double().numpy()

    def _require(self, task: str, method: str) -> None:
        check_is_fitted(self, "net_")
        if self.task != task:
            msg = f"{method} needs task={task!r}; this {type(self).__name__} was fitted with task={self.task!r}."
            raise AttributeError(msg)

    def predict_proba(self, X: Any, *, presence: Any = None) -> np.ndarray:
        """Class probabilities ``(n_obs, n_classes)``, columns in the order of ``classes_``; rows sum to 1."""
        self._require("classification", "predict_proba")
        out = torch.from_numpy(self._output(*self._prepare(X, presence)))
        return torch.softmax(out, dim=1).numpy()

    def predict_risk(self, X: Any, *, presence: Any = None) -> np.ndarray:
        """Log-risk :math:`\\eta(x)` ``(n_obs,)`` (higher = earlier event)."""
        self._require("survival", "predict_risk")
        return self._output(*self._prepare(X, presence))[:, 0]

    def predict(self, X: Any, *, presence: Any = None) -> np.ndarray:
        """Most probable class ``(n_obs,)`` (classification) or the risk score (survival)."""
        check_is_fitted(self, "net_")
        if self.task == "survival":
            return self.predict_risk(X, presence=presence)
        return self.classes_[np.argmax(self.predict_proba(X, presence=presence), axis=1)]

    def predict_survival_function(self, X: Any, times: Any, *, presence: Any = None) -> np.ndarray:
        """Survival probabilities :math:`S(t \\mid x) = \\exp(-H_0(t)\\, e^{\\eta(x)})`, Breslow :math:`H_0`.

        Parameters
        ----------
        X, presence
            As for :meth:`fit`.
        times
            Non-negative evaluation times ``(n_times,)``.

        Returns
        -------
        ``(n_obs, n_times)`` in [0, 1], non-increasing in time.
        """
        self._require("survival", "predict_survival_function")
        t = _check_times(times)
        idx = np.searchsorted(self.event_times_, t, side="right") - 1
        cum_h0 = np.where(idx >= 0, self.cum_baseline_hazard_[np.maximum(idx, 0)], 0.0)
        risk = self.predict_risk(X, presence=presence)
        return np.exp(-cum_h0[None, :] * np.exp(risk)[:, None])

    def score(self, X: Any, y: Any, *, presence: Any = None) -> float:
        """Accuracy (classification) or Harrell's concordance index (survival) on ``y``."""
        pred = self.predict(X, presence=presence)
        if self.task == "survival":
            event, time = _check_survival(y, pred.shape[0])
            return harrell_c(event, time, pred)
        y = column_or_1d(y)
        if y.shape[0] != pred.shape[0]:
            msg = f"Expected `y` to have one label per observation ({pred.shape[0]}), got {y.shape[0]}."
            raise ValueError(msg)
        return float(accuracy_score(y, pred))


class _ModalityDropoutMixin:
    """Adds multimodal dropout (Cheerla & Gevaert, 2019) to the training presence."""

    def _training_presence(self, presence: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return modality_dropout(presence, float(self.modality_dropout), generator)
