"""Peers run through their own public APIs: MOFA+ (mofapy2), totalVI (scvi-tools), multivae.

They are optional (``pip install mdlprob[peers]``); a peer that is not installed or fails
becomes an error row of the suite, never a silently dropped method. Inputs are the same
standardised tables the scikit-learn imputers see (log1p for counts).
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from collections.abc import Callable

import numpy as np
from scipy.stats import norm

from ._frame import dense_values, presence
from ._methods import LEVELS, CellContext, Prediction, feature_table_stats, loc_scale, register_method


def _standardised_views(ctx: CellContext) -> dict[str, np.ndarray]:
    """Each modality standardised (log1p first for counts), NaN rows where absent.

    The statistics are those of :func:`feature_table_stats`, so ``_to_data_scale`` inverts the target.
    """
    views = {}
    for mod in ctx.mdata.mod:
        X = dense_values(ctx.mdata, mod)
        X = np.log1p(X) if ctx.data.is_count(mod) else X
        loc, scale = loc_scale(X)
        views[mod] = (X - loc) / scale
    return views


def _to_data_scale(ctx: CellContext, z: np.ndarray) -> np.ndarray:
    loc, scale = feature_table_stats(ctx)
    x = z * scale + loc
    return np.expm1(x) if ctx.data.is_count(ctx.truth.modality) else x


def _mofa(ctx: CellContext) -> Prediction:
    from mofapy2.run.entry_point import entry_point

    views = _standardised_views(ctx)
    names = list(views)
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        ent = entry_point()
        ent.set_data_options(scale_views=False, center_groups=False)
        ent.set_data_matrix([[views[m]] for m in names], likelihoods=["gaussian"] * len(names), views_names=names,
                            samples_names=[list(ctx.mdata.obs_names)])
        ent.set_model_options(factors=ctx.train["n_latent"])
        ent.set_train_options(iter=max(ctx.train["max_epochs"], 50), convergence_mode="fast", seed=ctx.seed,
                              quiet=True, verbose=False)
        ent.build()
        ent.run()
        ent.impute(uncertainty=True, mask_outliers=False)
    fit_s = time.perf_counter() - start
    j = names.index(ctx.truth.modality)
    mean = np.asarray(ent.imputed_data["mean"][j], dtype=np.float64)
    sd = np.sqrt(np.maximum(np.asarray(ent.imputed_data["variance"][j], dtype=np.float64), 0.0))
    quantiles = {q: _to_data_scale(ctx, mean + norm.ppf(q) * sd) for q in LEVELS}
    latent = np.asarray(ent.model.nodes["Z"].getExpectation(), dtype=np.float64)
    return Prediction(mean=_to_data_scale(ctx, mean), quantiles=quantiles, latent=latent,
                      n_processed=ctx.mdata.n_obs * ctx.train["max_epochs"], fit_s=fit_s)


def _totalvi(ctx: CellContext) -> Prediction:
    import anndata as ad
    import pandas as pd
    import scvi

    target = ctx.truth.modality
    others = [m for m in ctx.mdata.mod if m != target]
    if len(others) != 1 or not ctx.data.is_count(target) or not ctx.data.is_count(others[0]):
        msg = f"totalvi needs one RNA and one protein count modality; dataset {ctx.data.name!r} has {ctx.data.likelihoods}."
        raise ValueError(msg)
    rna = np.nan_to_num(dense_values(ctx.mdata, others[0]))
    protein = np.nan_to_num(dense_values(ctx.mdata, target))
    observed = presence(ctx.mdata, target)
    obs = pd.DataFrame({"panel": np.where(observed, "measured", "absent")}, index=ctx.mdata.obs_names.copy())
    adata = ad.AnnData(rna.astype(np.float32), obs=obs)
    adata.obsm["protein"] = pd.DataFrame(protein.astype(np.float32), index=obs.index,
                                         columns=ctx.mdata.mod[target].var_names.astype(str))
    scvi.settings.seed = ctx.seed
    scvi.model.TOTALVI.setup_anndata(adata, protein_expression_obsm_key="protein", panel_key="panel")
    model = scvi.model.TOTALVI(adata, n_latent=ctx.train["n_latent"])
    start = time.perf_counter()
    model.train(max_epochs=ctx.train["max_epochs"], batch_size=ctx.train["batch_size"], accelerator=ctx.device,
                early_stopping=False)
    fit_s = time.perf_counter() - start
    _, prot = model.get_normalized_expression(n_samples=25, include_protein_background=True,
                                              sample_protein_mixing=False, return_mean=True, return_numpy=True)
    return Prediction(mean=np.asarray(prot, dtype=np.float64), latent=model.get_latent_representation(),
                      n_processed=ctx.mdata.n_obs * ctx.train["max_epochs"], fit_s=fit_s)


def _multivae(kind: str) -> Callable[[CellContext], Prediction]:
    def fit_predict(ctx: CellContext) -> Prediction:
        import torch
        from multivae.data.datasets import IncompleteDataset
        from multivae.models import MMVAE, MMVAEConfig, MoPoE, MoPoEConfig
        from multivae.trainers import BaseTrainer, BaseTrainerConfig

        model_cls, config_cls = {"mopoe": (MoPoE, MoPoEConfig), "mmvae": (MMVAE, MMVAEConfig)}[kind]
        views = _standardised_views(ctx)
        target = ctx.truth.modality
        data = {m: torch.tensor(np.nan_to_num(v), dtype=torch.float32) for m, v in views.items()}
        masks = {m: torch.tensor(presence(ctx.mdata, m)) for m in views}
        dataset = IncompleteDataset(data=data, masks=masks)
        config = config_cls(n_modalities=len(views), latent_dim=ctx.train["n_latent"],
                            input_dims={m: (v.shape[1],) for m, v in views.items()})
        model = model_cls(config)
        with tempfile.TemporaryDirectory() as tmp:
            trainer_config = BaseTrainerConfig(output_dir=tmp, num_epochs=ctx.train["max_epochs"],
                                               learning_rate=ctx.train["lr"], seed=ctx.seed,
                                               per_device_train_batch_size=ctx.train["batch_size"],
                                               no_cuda=ctx.device == "cpu")
            start = time.perf_counter()
            BaseTrainer(model=model, train_dataset=dataset, training_config=trainer_config).train()
            fit_s = time.perf_counter() - start
        given = [m for m in views if m != target]
        with torch.no_grad():
            out = model.predict(dataset, cond_mod=given, gen_mod=target, N=1, ignore_incomplete=True)
            latent = model.encode(dataset, cond_mod=given, return_mean=True, ignore_incomplete=True).z
        mean = out[target].reshape(ctx.mdata.n_obs, -1).cpu().numpy().astype(np.float64)
        return Prediction(mean=_to_data_scale(ctx, mean), latent=latent.cpu().numpy(),
                          n_processed=ctx.mdata.n_obs * ctx.train["max_epochs"], fit_s=fit_s)

    return fit_predict


def register_peers() -> None:
    """Register the peers (imports happen when a cell runs, so absent packages fail only their cells)."""
    register_method("mofa", _mofa, requires=("mofapy2",), overwrite=True,
                    description="MOFA+ (mofapy2), Gaussian views; imputation with its predictive variance")
    register_method("totalvi", _totalvi, requires=("scvi",), overwrite=True,
                    description="scvi-tools TOTALVI (RNA + protein counts), hidden proteins as an unmeasured panel")
    register_method("multivae_mopoe", _multivae("mopoe"), requires=("multivae",), overwrite=True,
                    description="multivae MoPoE on standardised views (IncompleteDataset)")
    register_method("multivae_mmvae", _multivae("mmvae"), requires=("multivae",), overwrite=True,
                    description="multivae MMVAE on standardised views (IncompleteDataset)")
