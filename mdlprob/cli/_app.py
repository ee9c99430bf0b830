"""Thin typer commands over the public API; files are read, never modified, and written atomically."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from ..exceptions import NotTrainedError, TrainingInterrupted

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="mdlprob: multimodal probabilistic models that impute missing modalities with uncertainty.")
F = TypeVar("F", bound=Callable)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"mdlprob {__version__}")
        raise typer.Exit


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or log lines, only results and errors.")] = False,
    threads: Annotated[int | None, typer.Option(metavar="N", help="CPU threads for torch (default: torch's choice).")] = None,
) -> None:
    """mdlprob: multimodal probabilistic models that impute missing modalities with uncertainty."""
    import warnings

    # mudata announces a future change of .update() on every read; it is not the user's concern here
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"mudata(\.|$)")
    if quiet:
        import mdlprob

        mdlprob.settings.verbosity = "warning"  # hides progress bars and INFO lines
    if threads is not None:
        import mdlprob

        if threads < 1:
            msg = f"Expected --threads to be at least 1, got {threads}."
            raise typer.BadParameter(msg)
        mdlprob.settings.n_threads = threads
#: Exceptions that mean "the command was asked something it cannot do": exit status 2.
_USAGE_ERRORS = (typer.BadParameter, ValueError, TypeError, LookupError, FileNotFoundError, FileExistsError,
                 IsADirectoryError, NotADirectoryError, NotTrainedError)


def _one_line_errors(command: F) -> F:
    """Print a failure as one line on stderr: exit 2 for usage errors, 1 for runtime failures.

    ``MDLPROB_DEBUG=1`` shows the traceback instead. An interrupted ``fit`` exits with
    128 + the signal number after saying how to resume.
    """

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except typer.Exit:
            raise
        except Exception as err:
            if os.environ.get("MDLPROB_DEBUG"):
                raise
            code = 2 if isinstance(err, _USAGE_ERRORS) else 1
            message = err.format_message() if isinstance(err, typer.BadParameter) else str(err) or type(err).__name__
            typer.echo(f"mdlprob {command.__name__.replace('_', '-')}: error: {' '.join(message.split())}", err=True)
            sys.stderr.flush()
            raise typer.Exit(code) from None
        except TrainingInterrupted as err:
            typer.echo(f"mdlprob {command.__name__}: {err} Or rerun the same command with --resume.", err=True)
            raise typer.Exit(128 + err.signal) from None
        except KeyboardInterrupt:
            typer.echo(f"mdlprob {command.__name__}: interrupted.", err=True)
            raise typer.Exit(130) from None

    return wrapper

_Seed = Annotated[int, typer.Option(help="Seed for every random number generator.")]


def _setup_logging() -> None:
    """mdlprob's own INFO lines on stderr (other libraries' loggers keep their defaults)."""
    if not logging.root.handlers:  # mudata logs through the root logger, whose first use would add a second printer
        logging.root.addHandler(logging.NullHandler())
    log = logging.getLogger("mdlprob")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)


def _pairs(values: list[str], option: str) -> dict[str, str]:
    out = {}
    for v in values:
        key, sep, val = v.partition("=")
        if not sep or not key or not val:
            msg = f"Expected {option} as MODALITY=VALUE (e.g. rna=nb), got {v!r}."
            raise typer.BadParameter(msg)
        out[key] = val
    return out


def _columns(value: str, option: str) -> list[str]:
    """``LABEL`` or ``TIME,EVENT``: the obs columns of an outcome or a head's target."""
    names = [c.strip() for c in value.split(",")]
    if len(names) not in (1, 2) or not all(names):
        msg = f"Expected {option} as COLUMN (a label) or TIME,EVENT (survival), columns of the data's obs; got {value!r}."
        raise typer.BadParameter(msg)
    return names


def _labelled(mdata, names: list[str]):
    """Observations whose label, or survival time and event, are all given."""
    import pandas as pd

    absent = [c for c in names if c not in mdata.obs.columns]
    if absent:
        msg = f"{', '.join(absent)} is not a column of the data's obs; it has {', '.join(map(str, mdata.obs.columns[:20]))}."
        raise typer.BadParameter(msg)
    if len(names) == 1:
        return mdata.obs[names[0]].notna().to_numpy()
    values = [pd.to_numeric(mdata.obs[c].astype("object"), errors="coerce").to_numpy(dtype=float) for c in names]
    return (values[0] == values[0]) & (values[1] == values[1])


def _outcome_spec(outcome: str, kind: str, weight: float, bins: int) -> dict | None:
    """``setup_mudata``'s ``outcome`` dict from ``fit``'s --outcome options (None without --outcome)."""
    if not outcome:
        if kind:
            msg = "--outcome-type needs --outcome COLUMN or --outcome TIME,EVENT."
            raise typer.BadParameter(msg)
        return None
    names = _columns(outcome, "--outcome")
    kind = kind or ("categorical" if len(names) == 1 else "coxph")
    expected = {"categorical": 1, "coxph": 2, "logistic_hazard": 2}
    if kind not in expected:
        msg = f"Expected --outcome-type to be one of {', '.join(expected)}, got {kind!r}."
        raise typer.BadParameter(msg)
    if len(names) != expected[kind]:
        msg = (f"--outcome-type {kind} needs --outcome {'COLUMN' if expected[kind] == 1 else 'TIME,EVENT'}, "
               f"got --outcome {outcome!r}.")
        raise typer.BadParameter(msg)
    spec = {"key": names[0]} if kind == "categorical" else {"time_key": names[0], "event_key": names[1]}
    spec.update(type=kind, weight=weight)
    if kind == "logistic_hazard":
        spec["n_bins"] = bins
    return spec


def _read(path: Path):
    import mudata as md

    if not path.exists():
        msg = f"Input file {path} does not exist."
        raise typer.BadParameter(msg)
    if path.is_dir():
        msg = f"Input {path} is a folder; expected a .h5mu file (MuData)."
        raise typer.BadParameter(msg)
    if path.suffix != ".h5mu":
        msg = f"Expected a .h5mu file (MuData), got {path.name}. Convert AnnData objects with mudata.MuData({{'rna': adata}}).write('data.h5mu')."
        raise typer.BadParameter(msg)
    try:
        return md.read_h5mu(path)
    except Exception as err:  # h5py/mudata say "Unable to open", KeyError 'mod', ...: name the file instead
        msg = (f"{path} could not be read as a MuData .h5mu file ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}). "
               "Is it an AnnData .h5ad renamed? Wrap it: mudata.MuData({'rna': anndata.read_h5ad(path)}).write('data.h5mu').")
        raise typer.BadParameter(msg) from None


def _check_out(out: Path, inputs: list[Path], overwrite: bool, *, folder: bool = False) -> None:
    """Refuse an output onto an input, onto an existing path (without --overwrite) or of the wrong kind."""
    if any(out.resolve() == p.resolve() for p in inputs):
        msg = f"--out {out} is an input file; mdlprob never overwrites its inputs. Choose another path."
        raise typer.BadParameter(msg)
    if out.exists() and not overwrite:
        msg = f"{out} already exists; pass --overwrite to replace it."
        raise typer.BadParameter(msg)
    if not folder and out.is_dir():
        msg = f"--out {out} is a folder; give the path of the file to write (e.g. {out / 'result.h5ad'})."
        raise typer.BadParameter(msg)
    parent = next((p for p in out.absolute().parents if p.exists()), None)
    if parent is not None and not os.access(parent, os.W_OK):
        msg = f"--out {out}: {parent} is not writable; choose another place."
        raise typer.BadParameter(msg)


def _summary(history: dict) -> str:
    """Epochs run and, with a validation split, the best epoch and its loss (the weights kept)."""
    epochs = len(history["train_loss"])
    if history.get("best_epoch"):
        best = history["best_epoch"][-1]
        return (f"{epochs} epochs, early stopping kept epoch {best} "
                f"(validation loss {history['val_loss'][len(history['val_loss']) - epochs + best - 1]:.4g})")
    if history.get("val_loss"):
        return f"{epochs} epochs, last validation loss {history['val_loss'][-1]:.4g}"
    return f"{epochs} epochs, last training loss {history['train_loss'][-1]:.4g}"


def _load_model(model_dir: Path, mdata):
    import json

    from .. import models

    config = model_dir / "config.json"
    if not config.exists():
        msg = f"{model_dir} holds no saved mdlprob model (no config.json)."
        raise typer.BadParameter(msg)
    return models.get_model(json.loads(config.read_text())["model_class"]).cls.load(model_dir, mdata)


@app.command()
@_one_line_errors
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
@_one_line_errors
def fit(
    data: Annotated[Path, typer.Argument(metavar="DATA", help="Input .h5mu file.")],
    out: Annotated[Path, typer.Option(help="Folder to write the trained model to.")],
    likelihood: Annotated[list[str], typer.Option(metavar="MODALITY=LIKELIHOOD", help="Repeat per modality: nb, zinb, poisson, gaussian, gaussian_global, laplace, beta, bernoulli or mixed. Default: the registration saved in DATA (setup_mudata before writing it).")] = [],  # noqa: B006
    layer: Annotated[list[str], typer.Option(metavar="MODALITY=LAYER", help="Where values are when not in X.")] = [],  # noqa: B006
    mask_key: Annotated[str, typer.Option(help="obsm key of an explicit presence mask.")] = "",
    batch_key: Annotated[str, typer.Option(help="obs column of each observation's batch; every encoder and decoder is conditioned on it (with --likelihood).")] = "",
    model: Annotated[str, typer.Option(help="A registered model, by alias or class name: poe (PoEVAE), mopoe, moe, factor, graph, ... (an unknown name lists them all).")] = "poe",
    n_latent: Annotated[int, typer.Option(help="Latent dimension (the number of factors of --model factor).")] = 16,
    n_hidden: Annotated[int, typer.Option(help="Hidden layer width.")] = 128,
    max_epochs: Annotated[int, typer.Option(help="Training epochs (0 = automatic: min(400, 8e6 / n_obs), with early stopping).")] = 0,
    batch_size: Annotated[int, typer.Option(help="Observations per step.")] = 256,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 1e-3,
    early_stopping: Annotated[bool | None, typer.Option("--early-stopping/--no-early-stopping", help="Stop when the validation loss stops improving (default: on when --max-epochs is automatic).")] = None,
    patience: Annotated[int, typer.Option(help="Epochs without improvement before early stopping.")] = 30,
    train_size: Annotated[float, typer.Option(help="Fraction of observations to train on; the rest validate (early stopping alone holds out 10%).")] = 1.0,
    refit_noise_steps: Annotated[int, typer.Option(help="Noise refit steps after training (-1 = the model's default: 300 for mopoe/moe, else 0).")] = -1,
    devices: Annotated[int, typer.Option(help="Data-parallel processes (GPUs, or CPU processes); checkpoints need 1.")] = 1,
    accelerator: Annotated[str, typer.Option(help="auto, cpu, gpu, cuda, cuda:N or mps.")] = "auto",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing model folder.")] = False,
    resume: Annotated[bool, typer.Option(help="Continue the interrupted run whose checkpoint is in OUT/checkpoint.")] = False,
    checkpoint_every: Annotated[int, typer.Option(help="Epochs between checkpoints in OUT/checkpoint.")] = 1,
    outcome: Annotated[str, typer.Option(metavar="COLUMN|TIME,EVENT", help="Train jointly with an outcome in obs: a label column, or a survival time and event (0/1) column. Observations without it (NaN) are unlabelled; `mdlprob predict-outcome` predicts it.")] = "",
    outcome_type: Annotated[str, typer.Option(help="categorical (default for a label), coxph (default for TIME,EVENT) or logistic_hazard.")] = "",
    outcome_weight: Annotated[float, typer.Option(help="Multiplier of the outcome's log-likelihood against the modalities'.")] = 1.0,
    outcome_bins: Annotated[int, typer.Option(help="Time intervals of a logistic_hazard outcome.")] = 10,
    seed: _Seed = 0,
) -> None:
    """Train a model on DATA and save it to OUT.

    Training writes a checkpoint to OUT/checkpoint every --checkpoint-every epochs and on
    Ctrl-C or SIGTERM (after the current step); rerun with --resume to continue it. The
    finished model replaces the folder. With --outcome the latent space is learned together
    with a label or survival time that some observations have (docs/joint_training.md).
    """
    import mdlprob

    _setup_logging()
    try:
        model_cls = mdlprob.models.get_model(model).cls
    except ValueError as err:
        raise typer.BadParameter(str(err).replace("Expected a registered", "Expected --model to be a registered")) from None
    checkpoint = out / "checkpoint"
    interrupted = out.is_dir() and not (out / "config.json").exists() and (checkpoint / "checkpoint.pt").exists()
    if resume and not interrupted:
        msg = (f"--resume: {out} holds no interrupted run (no {checkpoint / 'checkpoint.pt'}"
               f"{' and it holds a finished model' if (out / 'config.json').exists() else ''}).")
        raise typer.BadParameter(msg)
    if interrupted and not (resume or overwrite):
        msg = f"{out} holds the checkpoint of an interrupted run; pass --resume to continue it or --overwrite to start over."
        raise typer.BadParameter(msg)
    _check_out(out, [data], overwrite or resume, folder=True)
    spec = _outcome_spec(outcome, outcome_type, outcome_weight, outcome_bins)
    mdata = _read(data)
    mdlprob.settings.seed = seed
    likelihoods = _pairs(likelihood, "--likelihood")
    log = logging.getLogger("mdlprob")
    if batch_key and not likelihoods:
        msg = ("--batch-key registers the data anew and needs --likelihood for each modality (or register the batch "
               "with mdlprob.data.setup_mudata(..., batch_key=...) before writing the file).")
        raise typer.BadParameter(msg)
    if likelihoods:
        mdlprob.data.setup_mudata(mdata, likelihoods=likelihoods, layer=_pairs(layer, "--layer"), mask_key=mask_key or None,
                                  outcome=spec, batch_key=batch_key or None)
        unused = [m for m in mdata.mod if m not in likelihoods]
        if unused:
            log.warning("Not modelled (no --likelihood): %s.", ", ".join(unused))
    elif "mdlprob" in mdata.uns:
        registered = mdlprob.data.get_registry(mdata)["modalities"]
        log.info("Using the registration saved in %s: %s.", data.name,
                 ", ".join(f"{m}={e['likelihood']}" for m, e in registered.items()))
    else:
        msg = (f"Give --likelihood MODALITY=LIKELIHOOD for each modality to model (the file has {', '.join(mdata.mod)}), "
               "or register them with mdlprob.data.setup_mudata before writing the file.")
        raise typer.BadParameter(msg)
    if spec is not None and not likelihoods:
        mdlprob.data.register_outcome(mdata, spec)
    if spec is not None:
        n_labelled = int(_labelled(mdata, _columns(outcome, "--outcome")).sum())
        log.info("Outcome %s (%s): %d of %d observations labelled.", outcome, spec["type"], n_labelled, mdata.n_obs)
    fitted = model_cls(mdata, n_latent=n_latent, n_hidden=n_hidden)
    created = not out.exists()
    try:
        fitted.train(max_epochs=max_epochs or None, batch_size=batch_size, lr=lr,
                     early_stopping="auto" if early_stopping is None else early_stopping, patience=patience,
                     train_size=train_size, refit_noise_steps=None if refit_noise_steps == -1 else refit_noise_steps,
                     accelerator=accelerator, devices=devices, checkpoint_dir=None if devices > 1 else checkpoint,
                     checkpoint_every=checkpoint_every, resume=resume)
    except Exception:
        if created and not (checkpoint / "checkpoint.pt").exists():  # nothing worth keeping: leave no empty folders
            for folder in (checkpoint, out):
                with contextlib.suppress(OSError):
                    folder.rmdir()
        raise
    fitted.save(out, overwrite=True)  # replaces the folder that held the checkpoint
    typer.echo(f"Trained {fitted}: {_summary(fitted.history_)}. Saved to {out}")


@app.command()
@_one_line_errors
def impute(
    model_dir: Annotated[Path, typer.Argument(metavar="MODEL_DIR", help="Folder written by `mdlprob fit`.")],
    data: Annotated[Path, typer.Argument(metavar="DATA", help="Input .h5mu file.")],
    modality: Annotated[str, typer.Option(help="Modality to impute.")],
    out: Annotated[Path, typer.Option(help="Output .h5ad with layers mean, std and quantiles.")],
    given: Annotated[list[str], typer.Option(metavar="MODALITY", help="Condition on these modalities only (repeat).")] = [],  # noqa: B006
    n_samples: Annotated[int, typer.Option(help="Posterior predictive samples.")] = 100,
    transform_batch: Annotated[str, typer.Option(help="Predict as if measured in this training batch (models with a batch).")] = "",
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
    result = model.impute(mdata, modality, given=given or None, n_samples=n_samples,
                          transform_batch=transform_batch or None)
    with atomic_path(out, suffix=".h5ad") as tmp:
        result.write_h5ad(tmp)
    typer.echo(f"Imputed {modality} for {result.n_obs} observations ({int((~result.obs['observed']).sum())} without it). Wrote {out}")


@app.command()
@_one_line_errors
def latent(
    model_dir: Annotated[Path, typer.Argument(metavar="MODEL_DIR", help="Folder written by `mdlprob fit`.")],
    data: Annotated[Path, typer.Argument(metavar="DATA", help="Input .h5mu file.")],
    out: Annotated[Path, typer.Option(help="Output .h5mu: the input plus obsm X_mdlprob and X_mdlprob_std.")],
    given: Annotated[list[str], typer.Option(metavar="MODALITY", help="Condition on these modalities only (repeat).")] = [],  # noqa: B006
    n_samples: Annotated[int, typer.Option(help="Also write this many posterior draws per observation to obsm X_mdlprob_samples (n_obs x n_samples x n_latent).")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
    seed: _Seed = 0,
) -> None:
    """Write the posterior latent mean and sd of every observation of DATA to OUT."""
    import mdlprob

    from .._utils import atomic_path

    _check_out(out, [data], overwrite)
    mdata = _read(data)
    model = _load_model(model_dir, mdata)
    mdlprob.settings.seed = seed
    draws = model.get_latent(mdata, given=given or None, n_samples=n_samples)
    if n_samples:
        mdata.obsm["X_mdlprob_samples"] = draws.transpose(1, 0, 2)
    with atomic_path(out, suffix=".h5mu") as tmp:
        mdata.write(tmp)
    typer.echo(f"Wrote obsm['X_mdlprob'] ({mdata.n_obs} x {mdata.obsm['X_mdlprob'].shape[1]}) to {out}")


@app.command()
@_one_line_errors
def bench(
    suite: Annotated[str, typer.Option(help="quick, full (benchmarks/suites/<name>.yaml) or the path of a suite YAML.")] = "quick",
    out: Annotated[Path | None, typer.Option(help="Output folder (default: a new bench_output/<suite>-<UTC date and time>); one holding results needs --resume.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run whose results.csv is in --out (finished cells are skipped).")] = False,
    data_dir: Annotated[str, typer.Option(help="Folder of the shared datasets (default: $MDLPROB_DATA or ../shared/data).")] = "",
    device: Annotated[str, typer.Option(help="cpu, cuda or auto, passed to model training.")] = "cpu",
    cells_per_process: Annotated[int, typer.Option(help="Cells per isolated worker process; 0 = in-process; -1 = as the suite says.")] = -1,
) -> None:
    """Run a benchmark suite (datasets x scenarios x methods x seeds) into OUT/results.csv."""
    import shlex
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
    if out is None:
        if resume:
            msg = "--resume continues the run in --out; give --out."
            raise typer.BadParameter(msg)
        out = Path("bench_output") / f"{parsed.name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    elif (out / "results.csv").exists() and not resume:
        msg = f"{out} already holds results (results.csv); pass --resume to continue that run, or choose another --out."
        raise typer.BadParameter(msg)
    elif resume and not (out / "results.csv").exists():
        msg = f"--resume: {out} holds no results.csv to continue."
        raise typer.BadParameter(msg)
    start = time.perf_counter()
    table = run_suite(parsed, out=out, data_dir=data_dir or None, device=device, resume=resume,
                      cells_per_process=None if cells_per_process == -1 else cells_per_process,
                      command=shlex.join(["mdlprob", *sys.argv[1:]]))
    status = table.drop_duplicates("cell")["status"].value_counts().to_dict()
    typer.echo(f"Suite {parsed.name}: {sum(status.values())} cells ({status}) in {time.perf_counter() - start:.1f} s. "
               f"Wrote {out / 'results.csv'}")


@app.command("bench-report")
@_one_line_errors
def bench_report(
    out: Annotated[Path, typer.Argument(metavar="OUT", help="Folder written by `mdlprob bench`.")],
) -> None:
    """Write report.md (mean ± sd over seeds) and PNG figures from OUT/results.csv."""
    from ..benchmark import write_report

    try:
        paths = write_report(out)
    except FileNotFoundError as err:
        raise typer.BadParameter(str(err)) from err
    typer.echo("Wrote " + ", ".join(str(p) for p in paths))
