"""The strongest simple baselines of ``benchmarks/real.py``, tuned as ``../shared/BASELINES.md`` says.

Every function fits on training rows only and predicts the rest; hyper-parameters are chosen
by cross-validation inside the training rows (the same budget the mdlprob rows get).
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
from scipy.stats import norm
from sklearn.impute import KNNImputer
from sklearn.linear_model import LogisticRegressionCV, RidgeCV
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
from sklearn.neighbors import KNeighborsRegressor

from mdlprob import metrics

Z90 = norm.ppf(0.95)


# ------------------------------------------------------------------------------------ survival
def standardise(train: np.ndarray, test: np.ndarray, *, clip: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """z-score with training statistics (NaN kept), clipped to ``±clip``; constant columns get sd 1."""
    loc = np.nanmean(train, 0)
    loc = np.where(np.isfinite(loc), loc, 0.0)
    sd = np.nanstd(train, 0)
    sd = np.where(np.isfinite(sd) & (sd > 1e-12), sd, 1.0)
    return tuple(np.clip((a - loc) / sd, -clip, clip) for a in (train, test))


def impute_features(train: np.ndarray, test: np.ndarray, how: str) -> tuple[np.ndarray, np.ndarray]:
    """Standardise, then fill NaN with the training mean (0) or ``KNNImputer(k=10)`` on training donors."""
    train, test = standardise(train, test)
    if how == "mean":
        return np.nan_to_num(train), np.nan_to_num(test)
    knn = KNNImputer(n_neighbors=10, keep_empty_features=True).fit(train)
    return knn.transform(train), knn.transform(test)


def coxnet_cv(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, *, seed: int = 0,
              l1_ratios=(0.01, 0.1, 0.5), n_alphas: int = 40, inner_folds: int = 5):
    """Elastic-net Cox: ``l1_ratio`` and ``alpha`` (40-point path, ``alpha_min_ratio=0.01``) by inner
    stratified 5-fold CV of Harrell's C on the training rows. Returns (risk, survival function callable, params)."""

    cv = StratifiedKFold(inner_folds, shuffle=True, random_state=seed)
    best = (-np.inf, None, None, None)
    for l1 in l1_ratios:
        path = _coxnet_path(X_train, y_train, l1_ratio=l1, n_alphas=n_alphas)
        if path is None:
            continue
        scores = np.full((inner_folds, path.alphas_.size), np.nan)
        for f, (a, b) in enumerate(cv.split(X_train, y_train["event"])):
            fit = _coxnet_path(X_train[a], y_train[a], l1_ratio=l1, alphas=path.alphas_)
            if fit is None:
                continue
            yb = y_train[b]
            for j, alpha in enumerate(fit.alphas_):
                scores[f, j] = metrics.harrell_c(yb["event"], yb["time"], fit.predict(X_train[b], alpha=alpha))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(scores, 0)
        if np.isfinite(mean).any() and np.nanmax(mean) > best[0]:
            j = int(np.nanargmax(mean))
            best = (float(mean[j]), l1, float(path.alphas_[j]), path.alphas_[: j + 1])
    _, l1, alpha, alphas = best
    # refit along the path down to the chosen alpha (warm starts keep the small alphas stable)
    final = _coxnet_path(X_train, y_train, l1_ratio=l1, alphas=alphas, fit_baseline_model=True)
    return (final.predict(X_test, alpha=alpha), (lambda X: final.predict_survival_function(X, alpha=alpha)),
            {"l1_ratio": l1, "alpha": alpha})


def _coxnet_path(X: np.ndarray, y: np.ndarray, *, alphas: np.ndarray | None = None, n_alphas: int = 40,
                 **kwargs):
    """Coxnet along a path of alphas (default: scikit-survival's, down to 1% of the largest).

    When the smallest alphas diverge (``ArithmeticError``), the path is cut to its first three
    quarters until it fits; ``None`` when even its first alpha fails.
    """
    from sksurv.linear_model import CoxnetSurvivalAnalysis

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if alphas is None:
            try:
                return CoxnetSurvivalAnalysis(n_alphas=n_alphas, alpha_min_ratio=0.01, **kwargs).fit(X, y)
            except ArithmeticError:
                top = CoxnetSurvivalAnalysis(n_alphas=2, alpha_min_ratio=0.5, **{
                    k: v for k, v in kwargs.items() if k != "fit_baseline_model"}).fit(X, y).alphas_[0]
                alphas = top * np.logspace(0, -2, n_alphas)
        while True:
            try:
                return CoxnetSurvivalAnalysis(alphas=alphas, **kwargs).fit(X, y)
            except ArithmeticError:
                if len(alphas) == 1:
                    return None
                alphas = alphas[: max(1, len(alphas) * 3 // 4)]


def cox_clinical(C_train: np.ndarray, y_train: np.ndarray, C_test: np.ndarray):
    """Unpenalised Cox on standardised clinical covariates (age, sex). Returns (risk, survival fn)."""
    from sksurv.linear_model import CoxPHSurvivalAnalysis

    train, test = standardise(C_train, C_test)
    train, test = np.nan_to_num(train), np.nan_to_num(test)
    fit = CoxPHSurvivalAnalysis(ties="breslow").fit(train, y_train)
    return fit.predict(test), (lambda X: fit.predict_survival_function(X)), test


def step_functions_at(fns, times: np.ndarray) -> np.ndarray:
    """Evaluate scikit-survival step functions at ``times``: ``(n_obs, n_times)``."""
    return np.vstack([fn(times) for fn in fns])


# ------------------------------------------------------------------------------------ classification
def logistic_cv(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, *, seed: int = 0):
    """``StandardScaler`` + ``LogisticRegressionCV`` (L2, ``Cs=logspace(-4, 2, 13)``, 5-fold stratified,
    neg-log-loss). NaN entries take the training mean. Returns (classes, test probabilities)."""
    train, test = standardise(X_train, X_test, clip=np.inf)
    train, test = np.nan_to_num(train), np.nan_to_num(test)
    clf = LogisticRegressionCV(Cs=np.logspace(-4, 2, 13), cv=StratifiedKFold(5, shuffle=True, random_state=seed),
                               scoring="neg_log_loss", max_iter=5000).fit(train, y_train)
    return clf.classes_, clf.predict_proba(test)


# ------------------------------------------------------------------------------------ imputation
def ridge_gaussian(X_train: np.ndarray, Y_train: np.ndarray, X_test: np.ndarray):
    """``RidgeCV`` (efficient leave-one-out, one alpha per target on a 30-point grid) on standardised
    inputs, with a Gaussian predictive whose sd is each target's leave-one-out residual sd.
    Returns (mean, sd) for the test rows."""
    train, test = standardise(X_train, X_test, clip=np.inf)
    model = RidgeCV(alphas=np.logspace(-2, 5, 30), alpha_per_target=True, store_cv_results=True).fit(
        np.nan_to_num(train), Y_train)
    loo = model.cv_results_  # (n_train, n_targets, n_alphas): squared LOO errors
    chosen = np.searchsorted(np.logspace(-2, 5, 30), model.alpha_)
    sd = np.sqrt(loo[:, np.arange(Y_train.shape[1]), np.minimum(chosen, loo.shape[2] - 1)].mean(0))
    return model.predict(np.nan_to_num(test)), np.broadcast_to(sd, (test.shape[0], sd.size))


def knn_cv(X_train: np.ndarray, Y_train: np.ndarray, X_test: np.ndarray, *, seed: int = 0):
    """``KNeighborsRegressor`` with k in {3, 5, 10, 15, 20, 30} by 5-fold CV (MSE) on the training rows.
    Returns (mean, neighbours' values ``(k, n_test, n_targets)`` as a predictive sample, k)."""
    ks = [k for k in (3, 5, 10, 15, 20, 30) if k < 0.8 * len(X_train)]
    search = GridSearchCV(KNeighborsRegressor(), {"n_neighbors": ks}, cv=KFold(5, shuffle=True, random_state=seed),
                          scoring="neg_mean_squared_error").fit(X_train, Y_train)
    best = search.best_estimator_
    idx = best.kneighbors(X_test, return_distance=False)
    return best.predict(X_test), np.transpose(Y_train[idx], (1, 0, 2)), int(best.n_neighbors)


def mofa_plus(views: dict[str, np.ndarray], target: str, *, n_factors: int = 15, seed: int = 0):
    """MOFA+ (mofapy2, Gaussian views, standardised), imputing the NaN rows of ``target`` with its
    predictive variance. Returns (mean, sd) on the scale of ``views[target]``."""
    from mofapy2.run.entry_point import entry_point

    names = list(views)
    scaled, stats = [], {}
    for m in names:
        loc, sd = np.nanmean(views[m], 0), np.nanstd(views[m], 0)
        sd = np.where(sd > 1e-12, sd, 1.0)
        stats[m] = (loc, sd)
        scaled.append([(views[m] - loc) / sd])
    with contextlib.redirect_stdout(io.StringIO()):
        ent = entry_point()
        ent.set_data_options(scale_views=False, center_groups=False)
        ent.set_data_matrix(scaled, likelihoods=["gaussian"] * len(names), views_names=names)
        ent.set_model_options(factors=n_factors)
        ent.set_train_options(iter=1000, convergence_mode="fast", seed=seed, quiet=True, verbose=False)
        ent.build()
        ent.run()
        ent.impute(uncertainty=True, mask_outliers=False)
    j = names.index(target)
    loc, sd = stats[target]
    mean = np.asarray(ent.imputed_data["mean"][j], dtype=np.float64) * sd + loc
    var = np.maximum(np.asarray(ent.imputed_data["variance"][j], dtype=np.float64), 0.0)
    return mean, np.sqrt(var) * sd
