"""Method registry of the benchmark: mdlprob models, floors and scikit-learn/scikit-survival peers.

A method is a function ``CellContext -> Prediction``. Registering one is a single call::

    register_method("early_fusion", fit_predict, requires=("mdlprob.fusion",))

Whatever the method returns (imputed values with quantiles, a latent, a risk score) is
scored by the same code (:mod:`mdlprob.benchmark._scoring`); a latent is scored through the
mdlprob heads, so every latent-variable method gets the same downstream classifier and Cox model.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mudata as md
import numpy as np
from scipy.stats import norm

from ._data import BenchData
from ._frame import continuous_columns, dense_values
from .missingness import HiddenTruth

#: Quantile levels asked from every probabilistic method: 1/20, ..., 19/20. They give the 50%
#: and 90% central intervals and a quantile-sample CRPS.
LEVELS = tuple(round(k / 20, 2) for k in range(1, 20))


@dataclass
class CellContext:
    """Everything a method sees for one cell.

    Attributes
    ----------
    data
        The benchmark dataset (its ``mdata`` is the uncorrupted input: do not train on it).
    mdata
        The corrupted copy the method trains on (it may register fields on it).
    truth
        What the scenario hid (for scoring only: methods must not read it).
    seed
        Seed of the cell.
    train
        Training options of the suite (``max_epochs``, ``batch_size``, ``lr``, ``n_latent``,
        ``n_hidden``, ``n_samples``, ``head_epochs``, ``latent_samples``).
    device
        ``cpu``, ``cuda`` or ``auto``.
    """

    data: BenchData
    mdata: md.MuData
    truth: HiddenTruth
    seed: int
    train: dict[str, Any]
    device: str = "cpu"


@dataclass
class Prediction:
    """What a method returns; every field is optional.

    Attributes
    ----------
    mean
        ``(n_obs, n_vars)`` imputed values of the hidden modality, on the data scale.
    quantiles
        Level to ``(n_obs, n_vars)`` predictive quantiles (levels of :data:`LEVELS`).
    latent
        ``(n_obs, n_latent)`` latent posterior mean.
    latent_samples
        ``(S, n_obs, n_latent)`` latent posterior samples (fed to the heads).
    risk
        ``(n_obs,)`` survival risk score (higher = earlier event).
    survival_function
        Maps times ``(n_times,)`` to survival probabilities ``(n_obs, n_times)``.
    n_processed
        Observation passes made while fitting (``n_obs * epochs``), for observations/s.
    fit_s
        Seconds spent fitting.
    """

    mean: np.ndarray | None = None
    quantiles: dict[float, np.ndarray] | None = None
    latent: np.ndarray | None = None
    latent_samples: np.ndarray | None = None
    risk: np.ndarray | None = None
    survival_function: Callable[[np.ndarray], np.ndarray] | None = None
    n_processed: int = 0
    fit_s: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Method:
    """A registered method: ``fit_predict(ctx) -> Prediction`` and the packages it imports."""

    name: str
    fit_predict: Callable[[CellContext], Prediction]
    requires: tuple[str, ...] = ()
    description: str = ""

    def check_requirements(self) -> None:
        """Raise ``ImportError`` naming the missing package and how to install it."""
        for module in self.requires:
            try:
                importlib.import_module(module)
            except ImportError as err:
                msg = (f"Method {self.name!r} needs the package {module!r}, which failed to import ({err}). "
                       "Install the peers with `pip install mdlprob[peers]` or the package itself.")
                raise ImportError(msg) from err


METHODS: dict[str, Method] = {}


def register_method(name: str, fit_predict: Callable[[CellContext], Prediction], *, requires: tuple[str, ...] = (),
                    description: str = "", overwrite: bool = False) -> Method:
    """Add a method to :data:`METHODS` under ``name``; suites refer to it by that name.

    Isolated suite runs execute cells in spawned worker processes, which see the methods
    registered when :mod:`mdlprob.benchmark` is imported; register new methods there (one
    call at the end of a module it imports) or run with ``cells_per_process=0``.
    """
    if name in METHODS and not overwrite:
        msg = f"A method named {name!r} is already registered; pass overwrite=True to replace it."
        raise ValueError(msg)
    METHODS[name] = Method(name, fit_predict, tuple(requires), description)
    return METHODS[name]


def get_method(name: str) -> Method:
    """The registered method ``name``."""
    if name not in METHODS:
        msg = f"Expected method to be one of {sorted(METHODS)}, got {name!r}."
        raise ValueError(msg)
    return METHODS[name]


# ---------------------------------------------------------------------------------- mdlprob models
def _mdlprob_model(class_name: str) -> Callable[[CellContext], Prediction]:
    def fit_predict(ctx: CellContext) -> Prediction:
        from .. import models
        from ..data import setup_mudata

        opts = ctx.train
        mdata = ctx.mdata
        setup_mudata(mdata, likelihoods=ctx.data.likelihoods)
        model = models.get_model(class_name).cls(mdata, n_latent=opts["n_latent"], n_hidden=opts["n_hidden"])
        start = time.perf_counter()
        model.train(max_epochs=opts["max_epochs"], batch_size=opts["batch_size"], lr=opts["lr"],
                    accelerator=ctx.device, progress_bar=False)
        fit_s = time.perf_counter() - start
        epochs = len(model.history_["train_loss"])
        imp = model.impute(mdata, ctx.truth.modality, n_samples=opts["n_samples"], quantiles=LEVELS)
        names = imp.uns["mdlprob_impute"]["quantiles"]
        layer_names = [k for k in imp.layers if k not in ("mean", "std")]
        quantiles = {float(q): np.asarray(imp.layers[k], dtype=np.float64) for q, k in zip(names, layer_names, strict=True)}
        samples = model.get_latent(mdata, n_samples=opts["latent_samples"])
        return Prediction(mean=np.asarray(imp.layers["mean"], dtype=np.float64), quantiles=quantiles,
                          latent=samples.mean(0), latent_samples=samples, n_processed=mdata.n_obs * epochs,
                          fit_s=fit_s)

    return fit_predict


# ---------------------------------------------------------------------------------- floors and imputers
def feature_table(ctx: CellContext) -> tuple[np.ndarray, slice]:
    """All modalities side by side, standardised (log1p for counts), NaN where unknown.

    Returns the table and the column slice of the hidden modality (the last block; it keeps
    all its columns). Categorical columns of the other tables are left out.
    """
    target = ctx.truth.modality
    blocks = []
    for mod in [*(m for m in ctx.mdata.mod if m != target), target]:
        X = dense_values(ctx.mdata, mod)
        if mod != target:
            X = X[:, continuous_columns(ctx.mdata, mod)]
        if ctx.data.is_count(mod):
            X = np.log1p(X)
        loc, scale = loc_scale(X)
        blocks.append((X - loc) / scale)
    table = np.hstack(blocks)
    return table, slice(table.shape[1] - blocks[-1].shape[1], table.shape[1])


def loc_scale(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and sds over known entries (0 and 1 for columns without any)."""
    known = ~np.isnan(X)
    n = known.sum(0)
    loc = np.where(n > 0, np.nansum(X, 0) / np.maximum(n, 1), 0.0)
    var = np.where(n > 0, np.nansum((X - loc) ** 2, 0) / np.maximum(n, 1), 0.0)
    scale = np.sqrt(var)
    return loc, np.where(scale > 0, scale, 1.0)


def _back(ctx: CellContext, standardised: np.ndarray) -> np.ndarray:
    """Standardised target values back to the data scale."""
    loc, scale = feature_table_stats(ctx)
    x = standardised * scale + loc
    return np.expm1(x) if ctx.data.is_count(ctx.truth.modality) else x


def feature_table_stats(ctx: CellContext) -> tuple[np.ndarray, np.ndarray]:
    """``(loc, scale)`` of the hidden modality on its transformed scale, from the training values."""
    X = dense_values(ctx.mdata, ctx.truth.modality)
    return loc_scale(np.log1p(X) if ctx.data.is_count(ctx.truth.modality) else X)


def _feature_mean(ctx: CellContext) -> Prediction:
    start = time.perf_counter()
    loc, scale = feature_table_stats(ctx)
    shape = (ctx.mdata.n_obs, loc.size)
    count = ctx.data.is_count(ctx.truth.modality)
    inv = np.expm1 if count else (lambda a: a)
    quantiles = {q: np.broadcast_to(inv(loc + norm.ppf(q) * scale), shape).copy() for q in LEVELS}
    return Prediction(mean=np.broadcast_to(inv(loc), shape).copy(), quantiles=quantiles,
                      n_processed=ctx.mdata.n_obs, fit_s=time.perf_counter() - start)


def _sklearn_imputer(make: Callable[[int], Any]) -> Callable[[CellContext], Prediction]:
    def fit_predict(ctx: CellContext) -> Prediction:
        table, cols = feature_table(ctx)
        start = time.perf_counter()
        filled = make(ctx.seed).fit_transform(table)
        fit_s = time.perf_counter() - start
        return Prediction(mean=_back(ctx, filled[:, cols]), n_processed=ctx.mdata.n_obs, fit_s=fit_s)

    return fit_predict


def _knn(seed: int) -> Any:
    from sklearn.impute import KNNImputer

    return KNNImputer(n_neighbors=15, keep_empty_features=True)


def _iterative(seed: int) -> Any:
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer

    return IterativeImputer(max_iter=5, n_nearest_features=50, keep_empty_features=True, random_state=seed)


def _coxnet(ctx: CellContext) -> Prediction:
    from sksurv.linear_model import CoxnetSurvivalAnalysis
    from sksurv.util import Surv

    from ._scoring import downstream_split

    if not ctx.data.survival:
        msg = f"coxnet needs survival data (obs time/event); dataset {ctx.data.name!r} has none."
        raise ValueError(msg)
    table, _ = feature_table(ctx)
    X = np.nan_to_num(table)  # standardised: NaN -> feature mean
    train, _ = downstream_split(ctx)
    obs = ctx.mdata.obs
    y = Surv.from_arrays(obs["event"].to_numpy()[train].astype(bool), obs["time"].to_numpy()[train])
    start = time.perf_counter()
    model = CoxnetSurvivalAnalysis(l1_ratio=0.5, alpha_min_ratio=0.05, n_alphas=30, fit_baseline_model=True)
    model.fit(X[train], y)
    fit_s = time.perf_counter() - start
    alpha = model.alphas_[len(model.alphas_) // 2]

    def survival_function(times: np.ndarray) -> np.ndarray:
        fns = model.predict_survival_function(X, alpha=alpha)
        return np.vstack([fn(times) for fn in fns])

    return Prediction(risk=model.predict(X, alpha=alpha), survival_function=survival_function,
                      n_processed=int(train.sum()), fit_s=fit_s)


def _fusion(class_name: str, **options: Any) -> Callable[[CellContext], Prediction]:
    """A supervised survival baseline of :mod:`mdlprob.fusion`, fitted on the downstream training split."""

    def fit_predict(ctx: CellContext) -> Prediction:
        from sksurv.util import Surv

        from .. import fusion
        from ..data import setup_mudata
        from ._scoring import downstream_split

        if not ctx.data.survival:
            msg = f"{class_name} is scored on survival; dataset {ctx.data.name!r} has no obs time/event."
            raise ValueError(msg)
        setup_mudata(ctx.mdata, likelihoods=ctx.data.likelihoods)
        X, presence = fusion.fusion_inputs(ctx.mdata)
        train, _ = downstream_split(ctx)
        obs = ctx.mdata.obs
        y = Surv.from_arrays(obs["event"].to_numpy()[train].astype(bool), obs["time"].to_numpy()[train])
        model = getattr(fusion, class_name)(task="survival", random_state=ctx.seed, **options)
        start = time.perf_counter()
        model.fit({m: v[train] for m, v in X.items()}, y, presence={m: v[train] for m, v in presence.items()})
        fit_s = time.perf_counter() - start
        return Prediction(risk=model.predict_risk(X, presence=presence),
                          survival_function=lambda times: model.predict_survival_function(X, times, presence=presence),
                          n_processed=int(train.sum()) * int(model.max_epochs), fit_s=fit_s)

    return fit_predict


def _register_models() -> None:
    """One method per registered model (:func:`mdlprob.models.all_models`), named after its class."""
    from ..models import all_models

    for name, info in all_models().items():
        graph = " on a kNN graph of the observations" if info.sample_graph else ""
        register_method(name, _mdlprob_model(name), description=f"mdlprob {name}{graph} + mdlprob heads on its latent")


_register_models()
register_method("feature_mean", _feature_mean, description="per-feature mean, Gaussian intervals (mean ± z sd)")
register_method("knn_imputer", _sklearn_imputer(_knn), requires=("sklearn",),
                description="scikit-learn KNNImputer (15 neighbours) on all standardised modalities")
register_method("iterative_imputer", _sklearn_imputer(_iterative), requires=("sklearn",),
                description="scikit-learn IterativeImputer (5 rounds, 50 nearest features)")
register_method("coxnet", _coxnet, requires=("sksurv",),
                description="scikit-survival CoxnetSurvivalAnalysis on all mean-filled standardised features")
register_method("early_fusion", _fusion("EarlyFusion"), requires=("sksurv",),
                description="mdlprob.fusion.EarlyFusion (concatenation, neural Cox) on the observed modalities")
register_method("late_fusion", _fusion("LateFusion"), requires=("sksurv",),
                description="mdlprob.fusion.LateFusion (one Cox head per modality, averaged over available ones)")
register_method("intermediate_fusion", _fusion("IntermediateFusion", fusion="kronecker"), requires=("sksurv",),
                description="mdlprob.fusion.IntermediateFusion (Kronecker-gated encoders, multimodal dropout)")
