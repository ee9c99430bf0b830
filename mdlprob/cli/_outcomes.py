"""Commands that predict an outcome: ``head fit``, ``head predict`` and ``predict-outcome``.

A head (classifier or survival model of :mod:`mdlprob.heads`) is fitted on a saved model's
latent posterior draws (:class:`~mdlprob.heads.LatentHead`) and saved to a folder without
pickle; predictions (probabilities or risks, with intervals) go to a CSV/TSV/parquet table
or into the ``obs`` of a copy of the ``.h5mu`` input.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Annotated

import typer

from ._app import _check_out, _columns, _labelled, _load_model, _one_line_errors, _read, _Seed, _setup_logging, app

head_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Fit a classifier or survival head on a saved model's latent "
                       "posterior, or predict with one.")
app.add_typer(head_app, name="head")

_HEADS = {"classifier": "ClassifierHead", "coxph": "CoxPHHead", "logistic_hazard": "LogisticHazardHead",
          "weibull_aft": "WeibullAFTHead"}
_TABLES = (".csv", ".tsv", ".parquet", ".h5mu")
_Out = Annotated[Path, typer.Option(help="Output: .csv, .tsv, .parquet (a table indexed by observation) or .h5mu "
                                         "(a copy of DATA with the columns in obs, prefixed by --key-added).")]
_KeyAdded = Annotated[str, typer.Option(help="Prefix of the obs columns written into a .h5mu output.")]


def _check_table(out: Path) -> None:
    if out.suffix not in _TABLES:
        msg = f"Expected --out to end in {', '.join(_TABLES)}, got {out.name}."
        raise typer.BadParameter(msg)


def _write_table(table, out: Path, mdata, key_added: str) -> None:
    """Write ``table`` (indexed like ``mdata.obs``) to ``out``, crash-safely."""
    from .._io import atomic_path

    with atomic_path(out) as tmp:
        if out.suffix == ".h5mu":
            for col in table.columns:
                mdata.obs[f"{key_added}_{col}"] = table[col].to_numpy()
            mdata.write(tmp)
        elif out.suffix == ".parquet":
            table.to_parquet(tmp)
        else:
            table.to_csv(tmp, sep="\t" if out.suffix == ".tsv" else ",", index_label="obs_name")


def _model_digest(model_dir: Path) -> str:
    """SHA-256 of the saved model's files: a head remembers which model it was fitted on."""
    digest = hashlib.sha256()
    for file in sorted(p for p in model_dir.iterdir() if p.is_file()):
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _survival_target(mdata, names: list[str]):
    """The ``(event, time)`` structured array scikit-survival expects, from two obs columns."""
    import numpy as np
    import pandas as pd

    time = pd.to_numeric(mdata.obs[names[0]].astype("object"), errors="coerce").to_numpy(dtype=float)
    event = pd.to_numeric(mdata.obs[names[1]].astype("object"), errors="coerce").to_numpy(dtype=float)
    if not np.isin(event, (0.0, 1.0)).all():
        msg = f"obs column {names[1]!r} must hold 0/1 or booleans (1 = event observed), got {np.unique(event)[:5]}."
        raise typer.BadParameter(msg)
    y = np.empty(mdata.n_obs, dtype=[("event", bool), ("time", np.float64)])
    y["event"], y["time"] = event == 1.0, time
    return y


def _prior_scale(value: str) -> str | float:
    if value in ("auto", "eb", "ard"):
        return value
    try:
        scale = float(value)
    except ValueError:
        scale = 0.0
    if not scale > 0:
        msg = f"Expected --prior-scale to be auto, eb, ard or a number > 0, got {value!r}."
        raise typer.BadParameter(msg)
    return scale


@head_app.command("fit")
@_one_line_errors
def head_fit(
    model_dir: Annotated[Path, typer.Argument(metavar="MODEL_DIR", help="Folder written by `mdlprob fit`.")],
    data: Annotated[Path, typer.Argument(metavar="DATA", help="Input .h5mu file holding the target in obs.")],
    target: Annotated[str, typer.Option(metavar="COLUMN|TIME,EVENT", help="A label column of obs, or a survival time and event (0/1) column. Observations without it (NaN) are not used.")],
    out: Annotated[Path, typer.Option(help="Folder to write the head to.")],
    head: Annotated[str, typer.Option(help="classifier (default for a label), coxph (default for TIME,EVENT), logistic_hazard or weibull_aft.")] = "",
    covariate: Annotated[list[str], typer.Option(metavar="NAME", help="A numeric obs column or modality feature given to the head besides the latent (repeat).")] = [],  # noqa: B006
    n_samples: Annotated[int, typer.Option(help="Latent posterior draws per observation, at fit and prediction.")] = 20,
    prior_scale: Annotated[str, typer.Option(help="auto (per-group empirical Bayes times a cross-validated multiplier), eb, ard, or a fixed number.")] = "auto",
    modality_latents: Annotated[str, typer.Option(help="Also give each modality's own latent: auto (by cross-validation), on or off.")] = "auto",
    modality_dropout: Annotated[float, typer.Option(help="Probability of hiding one of an observation's modalities per training draw.")] = 0.5,
    max_epochs: Annotated[int, typer.Option(help="SVI steps of the head.")] = 300,
    level: Annotated[float, typer.Option(help="Coverage of the predictive intervals.")] = 0.9,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing head folder.")] = False,
    seed: _Seed = 0,
) -> None:
    """Fit a classifier or survival head on the latent posterior of a saved model.

    The head sees latent draws, the presence of each modality and the covariates; each
    training draw may lose one modality, so observations lacking views are predicted as
    well as complete ones, with wider intervals (mdlprob.heads.LatentHead).
    """
    import mdlprob
    from mdlprob import heads

    _setup_logging()
    names = _columns(target, "--target")
    kind = head.replace("-", "_") or ("classifier" if len(names) == 1 else "coxph")
    if kind not in _HEADS:
        msg = f"Expected --head to be one of {', '.join(_HEADS)}, got {head!r}."
        raise typer.BadParameter(msg)
    if (kind == "classifier") != (len(names) == 1):
        msg = f"--head {kind} needs --target {'COLUMN' if kind == 'classifier' else 'TIME,EVENT'}, got --target {target!r}."
        raise typer.BadParameter(msg)
    if modality_latents not in ("auto", "on", "off"):
        msg = f"Expected --modality-latents to be auto, on or off, got {modality_latents!r}."
        raise typer.BadParameter(msg)
    scale = _prior_scale(prior_scale)
    _check_out(out, [data, model_dir], overwrite, folder=True)
    mdata = _read(data)
    model = _load_model(model_dir, mdata)
    mdlprob.settings.seed = seed
    rows = _labelled(mdata, names)
    if not rows.any():
        msg = f"No observation of {data.name} has {target}; the head needs labelled observations."
        raise typer.BadParameter(msg)
    train = mdata if rows.all() else mdlprob.data.subset(mdata, rows.nonzero()[0])
    if kind == "classifier":
        values = train.obs[names[0]]
        y = values.astype(str).to_numpy() if values.dtype == object or str(values.dtype) == "category" else values.to_numpy()
    else:
        y = _survival_target(train, names)
    est = heads.LatentHead(model, getattr(heads, _HEADS[kind])(prior_scale=scale, max_epochs=max_epochs, level=level,
                                                               random_state=seed),
                           covariates=covariate or None, modality_dropout=modality_dropout, n_samples=n_samples,
                           modality_latents={"auto": "auto", "on": True, "off": False}[modality_latents],
                           random_state=seed)
    logging.getLogger("mdlprob").info("Fitting %s on %d observations (%d latent draws each)...", _HEADS[kind],
                                      train.n_obs, n_samples)
    est.fit(train, y)
    score = est.score(train, y)
    heads.save_head(est, out, overwrite=overwrite, metadata={
        "target": names, "kind": kind, "model_digest": _model_digest(model_dir), "n_train": int(train.n_obs)})
    typer.echo(f"Fitted {_HEADS[kind]} on {train.n_obs} of {mdata.n_obs} observations ({int((~rows).sum())} without "
               f"{target} skipped); training {'accuracy' if kind == 'classifier' else 'C-index'} {score:.3f}. "
               f"Saved to {out}")


@head_app.command("predict")
@_one_line_errors
def head_predict(
    head_dir: Annotated[Path, typer.Argument(metavar="HEAD_DIR", help="Folder written by `mdlprob head fit`.")],
    model_dir: Annotated[Path, typer.Argument(metavar="MODEL_DIR", help="The model folder the head was fitted on.")],
    data: Annotated[Path, typer.Argument(metavar="DATA", help="Input .h5mu file.")],
    out: _Out,
    time: Annotated[list[float], typer.Option(metavar="T", help="Survival heads: also the survival probability at this time, with its interval (repeat).")] = [],  # noqa: B006
    key_added: _KeyAdded = "mdlprob_head",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
    seed: _Seed = 0,
) -> None:
    """Predict class probabilities or risks, with intervals, for every observation of DATA.

    Columns: p_<class>, p_<class>_lower, p_<class>_upper and predicted (classifiers), or
    risk, risk_lower, risk_upper and survival_<t>[_lower|_upper] (survival heads; higher
    risk = earlier event); observed lists the modalities each observation has.
    """
    import mdlprob
    from mdlprob import heads

    _check_table(out)
    _check_out(out, [data], overwrite)
    meta = heads.read_head_metadata(head_dir)
    mdata = _read(data)
    model = _load_model(model_dir, mdata)
    if meta.get("model_digest") != _model_digest(model_dir):
        msg = f"{head_dir} was fitted on another model than {model_dir}; give the model folder it was fitted on."
        raise typer.BadParameter(msg)
    if time and meta["kind"] == "classifier":
        msg = "--time is for survival heads; this head is a classifier."
        raise typer.BadParameter(msg)
    est = heads.load_head(head_dir, model)
    mdlprob.settings.seed = seed
    table = _head_table(est, mdata, meta["kind"], time)
    table["observed"] = _observed(model, mdata)
    _write_table(table, out, mdata, key_added)
    typer.echo(f"Predicted {', '.join(meta['target'])} for {mdata.n_obs} observations with {meta['class']}. Wrote {out}")


def _head_table(est, mdata, kind: str, times: list[float]):
    import pandas as pd

    cols = {}
    if kind == "classifier":
        proba, lower, upper = est.predict_proba(mdata, return_interval=True)
        classes = est.head_.classes_
        for k, c in enumerate(classes):
            cols[f"p_{c}"], cols[f"p_{c}_lower"], cols[f"p_{c}_upper"] = proba[:, k], lower[:, k], upper[:, k]
        cols["predicted"] = classes[proba.argmax(1)]
    else:
        cols["risk"], cols["risk_lower"], cols["risk_upper"] = est.predict_risk(mdata, return_interval=True)
        if times:
            surv, lower, upper = est.predict_survival_function(mdata, times, return_interval=True)
            for j, t in enumerate(times):
                cols[f"survival_{t:g}"], cols[f"survival_{t:g}_lower"] = surv[:, j], lower[:, j]
                cols[f"survival_{t:g}_upper"] = upper[:, j]
    return pd.DataFrame(cols, index=mdata.obs_names)


def _observed(model, mdata) -> list[str]:
    presence = model.tensors(mdata).presence.cpu().numpy()
    return [",".join(m for m, p in zip(model.modalities, row, strict=True) if p) for row in presence]


@app.command("predict-outcome")
@_one_line_errors
def predict_outcome(
    model_dir: Annotated[Path, typer.Argument(metavar="MODEL_DIR", help="Folder written by `mdlprob fit --outcome ...`.")],
    data: Annotated[Path, typer.Argument(metavar="DATA", help="Input .h5mu file.")],
    out: _Out,
    given: Annotated[list[str], typer.Option(metavar="MODALITY", help="Condition on these modalities only (repeat).")] = [],  # noqa: B006
    n_samples: Annotated[int, typer.Option(help="Latent posterior draws.")] = 100,
    level: Annotated[float, typer.Option(help="Coverage of the intervals.")] = 0.9,
    key_added: _KeyAdded = "mdlprob_outcome",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
    seed: _Seed = 0,
) -> None:
    """Predict the outcome a model was trained with (fit --outcome), with intervals.

    Columns: one probability per class with <class>_lower/<class>_upper, predicted and
    entropy (label), or risk, risk_lower and risk_upper (survival); observed lists the
    modalities each observation has.
    """
    import mdlprob

    _check_table(out)
    _check_out(out, [data], overwrite)
    mdata = _read(data)
    model = _load_model(model_dir, mdata)
    mdlprob.settings.seed = seed
    table = model.predict_outcome(mdata, given=given or None, n_samples=n_samples, level=level)
    table["observed"] = _observed(model, mdata)
    _write_table(table, out, mdata, key_added)
    typer.echo(f"Predicted the outcome for {mdata.n_obs} observations. Wrote {out}")
