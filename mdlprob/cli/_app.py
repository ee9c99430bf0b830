"""Thin typer commands over the public API; files are read, never modified, and written atomically."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="mdlprob: multimodal probabilistic models that impute missing modalities with uncertainty.")

_Seed = Annotated[int, typer.Option(help="Seed for every random number generator.")]
_MODELS = {"poe": "PoEVAE", "mopoe": "MoPoEVAE", "moe": "MoEVAE", "factor": "FactorModel"}


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")


def _pairs(values: list[str], option: str) -> dict[str, str]:
    out = {}
    for v in values:
        key, sep, val = v.partition("=")
        if not sep or not key or not val:
            msg = f"Expected {option} as MODALITY=VALUE (e.g. rna=nb), got {v!r}."
            raise typer.BadParameter(msg)
        out[key] = val
    return out


def _read(path: Path):
    import mudata as md

    if not path.exists():
        msg = f"Input file {path} does not exist."
        raise typer.BadParameter(msg)
    if path.suffix != ".h5mu":
        msg = f"Expected a .h5mu file (MuData), got {path.name}. Convert AnnData objects with mudata.MuData({{'rna': adata}}).write('data.h5mu')."
        raise typer.BadParameter(msg)
    return md.read_h5mu(path)


def _check_out(out: Path, inputs: list[Path], overwrite: bool) -> None:
    if any(out.resolve() == p.resolve() for p in inputs):
        msg = f"--out {out} is an input file; mdlprob never overwrites its inputs. Choose another path."
        raise typer.BadParameter(msg)
    if out.exists() and not overwrite:
        msg = f"{out} already exists; pass --overwrite to replace it."
        raise typer.BadParameter(msg)


def _load_model(model_dir: Path, mdata):
    import json

    from .. import models

    config = model_dir / "config.json"
    if not config.exists():
        msg = f"{model_dir} holds no saved mdlprob model (no config.json)."
        raise typer.BadParameter(msg)
    cls = getattr(models, json.loads(config.read_text())["model_class"])
    return cls.load(model_dir, mdata)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the figure, metrics and model.")] = Path("demo_output"),
    max_epochs: Annotated[int, typer.Option(help="Training epochs.")] = 400,
    hide: Annotated[float, typer.Option(help="Fraction of patients whose expression is hidden.")] = 0.4,
    seed: _Seed = 0,
) -> None:
    """Hide expression for some breast-cancer patients, train a PoEVAE, score the imputation."""
    from ._demo import run_demo

    _setup_logging()
    run_demo(out, max_epochs=max_epochs, hide=hide, seed=seed)


@app.command()
def fit(
    data: Annotated[Path, typer.Argument(help="Input .h5mu file.")],
    likelihood: Annotated[list[str], typer.Option(help="MODALITY=LIKELIHOOD, repeat per modality (nb, zinb, poisson, gaussian, bernoulli, mixed).")],
    out: Annotated[Path, typer.Option(help="Folder to write the trained model to.")],
    layer: Annotated[list[str], typer.Option(help="MODALITY=LAYER when values are not in X.")] = [],  # noqa: B006
    mask_key: Annotated[str, typer.Option(help="obsm key of an explicit presence mask.")] = "",
    model: Annotated[str, typer.Option(help="poe (PoEVAE), mopoe (MoPoEVAE), moe (MoEVAE) or factor (FactorModel).")] = "poe",
    n_latent: Annotated[int, typer.Option(help="Latent dimension (number of factors for --model factor).")] = 16,
    n_hidden: Annotated[int, typer.Option(help="Hidden layer width.")] = 128,
    max_epochs: Annotated[int, typer.Option(help="Training epochs (0 = automatic).")] = 0,
    batch_size: Annotated[int, typer.Option(help="Observations per step.")] = 256,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 1e-3,
    early_stopping: Annotated[bool, typer.Option(help="Hold out 10% and stop when it stops improving.")] = False,
    accelerator: Annotated[str, typer.Option(help="auto, cpu or gpu.")] = "auto",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing model folder.")] = False,
    seed: _Seed = 0,
) -> None:
    """Train a model on DATA and save it to OUT."""
    import mdlprob

    _setup_logging()
    if model not in _MODELS:
        msg = f"Expected --model to be one of {sorted(_MODELS)}, got {model!r}."
        raise typer.BadParameter(msg)
    _check_out(out, [data], overwrite)
    mdata = _read(data)
    mdlprob.settings.seed = seed
    mdlprob.data.setup_mudata(mdata, likelihoods=_pairs(likelihood, "--likelihood"), layer=_pairs(layer, "--layer"),
                              mask_key=mask_key or None)
    size = {"n_factors" if model == "factor" else "n_latent": n_latent}
    fitted = getattr(mdlprob.models, _MODELS[model])(mdata, n_hidden=n_hidden, **size)
    fitted.train(max_epochs=max_epochs or None, batch_size=batch_size, lr=lr, early_stopping=early_stopping,
                 accelerator=accelerator)
    fitted.save(out, overwrite=overwrite)
    typer.echo(f"Trained {fitted}; final loss {fitted.history_['train_loss'][-1]:.4g}. Saved to {out}")


@app.command()
def impute(
    model_dir: Annotated[Path, typer.Argument(help="Folder written by `mdlprob fit`.")],
    data: Annotated[Path, typer.Argument(help="Input .h5mu file.")],
    modality: Annotated[str, typer.Option(help="Modality to impute.")],
    out: Annotated[Path, typer.Option(help="Output .h5ad with layers mean, std and quantiles.")],
    given: Annotated[list[str], typer.Option(help="Condition on these modalities only (repeat).")] = [],  # noqa: B006
    n_samples: Annotated[int, typer.Option(help="Posterior predictive samples.")] = 100,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
    seed: _Seed = 0,
) -> None:
    """Impute MODALITY for every observation of DATA, with posterior predictive uncertainty."""
    import mdlprob

    from .._utils import atomic_path

    _check_out(out, [data], overwrite)
    mdata = _read(data)
    model = _load_model(model_dir, mdata)
    mdlprob.settings.seed = seed
    result = model.impute(mdata, modality, given=given or None, n_samples=n_samples)
    with atomic_path(out, suffix=".h5ad") as tmp:
        result.write_h5ad(tmp)
    typer.echo(f"Imputed {modality} for {result.n_obs} observations ({int((~result.obs['observed']).sum())} without it). Wrote {out}")


@app.command()
def latent(
    model_dir: Annotated[Path, typer.Argument(help="Folder written by `mdlprob fit`.")],
    data: Annotated[Path, typer.Argument(help="Input .h5mu file.")],
    out: Annotated[Path, typer.Option(help="Output .h5mu: the input plus obsm X_mdlprob and X_mdlprob_std.")],
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
) -> None:
    """Write the posterior latent mean and sd of every observation of DATA to OUT."""
    from .._utils import atomic_path

    _check_out(out, [data], overwrite)
    mdata = _read(data)
    model = _load_model(model_dir, mdata)
    model.get_latent(mdata)
    with atomic_path(out, suffix=".h5mu") as tmp:
        mdata.write(tmp)
    typer.echo(f"Wrote obsm['X_mdlprob'] ({mdata.n_obs} x {mdata.obsm['X_mdlprob'].shape[1]}) to {out}")


@app.command()
def bench(
    suite: Annotated[str, typer.Option(help="quick, full (benchmarks/suites/<name>.yaml) or the path of a suite YAML.")] = "quick",
    out: Annotated[Path, typer.Option(help="Output folder; an existing results.csv there is resumed.")] = Path("benchmarks/results/quick"),
    data_dir: Annotated[str, typer.Option(help="Folder of the shared datasets (default: $MDLPROB_DATA or ../shared/data).")] = "",
    device: Annotated[str, typer.Option(help="cpu, cuda or auto, passed to model training.")] = "cpu",
    cells_per_process: Annotated[int, typer.Option(help="Cells per isolated worker process; 0 = in-process; -1 = as the suite says.")] = -1,
) -> None:
    """Run a benchmark suite (datasets x scenarios x methods x seeds) into OUT/results.csv."""
    import time

    from ..benchmark import load_suite, run_suite

    _setup_logging()
    if device not in ("cpu", "cuda", "gpu", "auto"):
        msg = f"Expected --device to be cpu, cuda, gpu or auto, got {device!r}."
        raise typer.BadParameter(msg)
    if cells_per_process < -1:
        msg = f"Expected --cells-per-process >= -1, got {cells_per_process}."
        raise typer.BadParameter(msg)
    try:
        parsed = load_suite(suite)
    except (FileNotFoundError, ValueError) as err:
        raise typer.BadParameter(str(err)) from err
    start = time.perf_counter()
    table = run_suite(parsed, out=out, data_dir=data_dir or None, device=device,
                      cells_per_process=None if cells_per_process == -1 else cells_per_process)
    status = table.drop_duplicates("cell")["status"].value_counts().to_dict()
    typer.echo(f"Suite {parsed.name}: {sum(status.values())} cells ({status}) in {time.perf_counter() - start:.1f} s. "
               f"Wrote {out / 'results.csv'}")


@app.command("bench-report")
def bench_report(
    out: Annotated[Path, typer.Argument(help="Folder written by `mdlprob bench`.")],
) -> None:
    """Write report.md (mean ± sd over seeds) and PNG figures from OUT/results.csv."""
    from ..benchmark import write_report

    try:
        paths = write_report(out)
    except FileNotFoundError as err:
        raise typer.BadParameter(str(err)) from err
    typer.echo("Wrote " + ", ".join(str(p) for p in paths))
