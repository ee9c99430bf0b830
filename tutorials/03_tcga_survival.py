# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Survival with missing RNA: TCGA bladder cancer, end to end
#
# In real cohorts some patients lack a view: here half of the TCGA-BLCA patients have no
# RNA profile, only copy numbers (CNV) and their age and sex. This tutorial predicts overall
# survival for new patients **whatever views they have**, with an interval that says how
# sure the prediction is, and compares it with the strongest simple baseline, a Cox model
# on age and sex, on the same split:
#
# 1. load the cohort (`mdlprob.datasets.tcga_survival`) and hide RNA for half of it,
# 2. train a product-of-experts VAE on the training patients (RNA, CNV, clinical),
# 3. fit a Bayesian Cox head on their latent draws with `LatentHead` (covariates, presence,
#    modality dropout, a learned prior per feature group),
# 4. predict held-out risk with intervals; Harrell's C against the clinical Cox model,
# 5. draw Kaplan–Meier curves by predicted risk group and the predicted curves by RNA status.
#
# It needs the shared TCGA tables (`MDLPROB_DATA` or `../shared/data`, folder
# `tcga_mcat_sig`; see `mdlprob.datasets.tcga_survival`). `MDLPROB_TUTORIAL_FAST=1` runs a
# smoke test in seconds (3 epochs); `MDLPROB_TUTORIAL_OUT` names the figure folder. The full
# setting takes about half a minute on two CPU cores.

# %%
import os
import sys
import warnings
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules:  # a script writes figures to files; a notebook also shows them
    matplotlib.use("Agg")
import numpy as np
from matplotlib.figure import Figure
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.nonparametric import kaplan_meier_estimator
from sksurv.util import Surv

import mdlprob
from mdlprob.data import dense_values, hide_modality, subset
from mdlprob.heads import CoxPHHead, LatentHead

FAST = os.environ.get("MDLPROB_TUTORIAL_FAST", "0") == "1"
OUT = Path(os.environ.get("MDLPROB_TUTORIAL_OUT", "tutorial_output"))
OUT.mkdir(parents=True, exist_ok=True)
mdlprob.settings.seed = 0

# %% [markdown]
# ## 1. The cohort, with RNA hidden for half of the patients
#
# One row per patient: RNA z-scores of signature genes, CNV, and a clinical table (age,
# sex). `obs` holds overall survival (`time` in months, `event`) and the published 5-fold
# splits (`fold_0` ... `fold_4`). RNA z-scores have heavy tails; a signed log keeps them
# Gaussian-like. `hide_modality` removes RNA for the chosen patients: they are then absent
# from `mdata.mod["rna"]`, which is how mdlprob knows a view is missing.

# %%
full = mdlprob.datasets.tcga_survival("blca", source="mcat")
full.mod["rna"].X = (np.sign(full.mod["rna"].X) * np.log1p(np.abs(full.mod["rna"].X))).astype(np.float32)
hide = np.zeros(full.n_obs, dtype=bool)
hide[np.random.default_rng(0).permutation(full.n_obs)[: full.n_obs // 2]] = True
mdata = hide_modality(full, "rna", hide)
with warnings.catch_warnings(record=True) as caught:  # setup_mudata flags constant features: show, keep going
    warnings.simplefilter("always")
    mdlprob.data.setup_mudata(mdata, likelihoods={"rna": "gaussian", "cnv": "gaussian", "clinical": "mixed"})
for w in caught:
    print("note:", w.message)
y = Surv.from_arrays(mdata.obs["event"].to_numpy() == 1, mdata.obs["time"].to_numpy())
train = (mdata.obs["fold_0"] == "train").to_numpy()
test = (mdata.obs["fold_0"] == "val").to_numpy()
print(mdata)
print(f"{train.sum()} training and {test.sum()} held-out patients; RNA missing for {hide.sum()} of {mdata.n_obs}.")

# %% [markdown]
# ## 2. A latent space learned from whatever views each training patient has
#
# The model is fitted on the training patients only (inductive): new patients are embedded
# later with the views they have, without retraining. `train()` without `max_epochs` stops
# early on a validation split.

# %%
train_data, test_data = subset(mdata, train), subset(mdata, test)
model = mdlprob.PoEVAE(train_data, n_latent=16, n_hidden=64)
model.train(max_epochs=3 if FAST else 100, batch_size=128, lr=2e-3, progress_bar=False)
print(model)

# %% [markdown]
# ## 3. A Bayesian Cox head on latent draws
#
# `LatentHead` builds the head's inputs from 20 posterior draws per patient: the latent,
# age and sex standardised (covariates reach the head directly, not only through the
# latent), and which views the posterior saw. During `fit` each draw drops one of the
# patient's views with probability 0.5, so the head also learns from posteriors like those
# of patients without RNA. `prior_scale="auto"` learns one prior scale per feature group.

# %%
est = LatentHead(model, CoxPHHead(prior_scale="auto", max_epochs=20 if FAST else 500, random_state=0),
                 covariates=["age", "is_female"], n_samples=3 if FAST else 20, random_state=0)
est.fit(train_data, y[train])
print(dict(zip(["latent", "covariate", "presence"], np.round(est.head_.prior_scale_, 3), strict=False)))

# %% [markdown]
# ## 4. Held-out risk with intervals, against the clinical Cox model
#
# The strongest simple baseline on this cohort is a Cox model on age and sex: compare on
# the same held-out patients. A point prediction uses the posterior-mean latent; the 90%
# interval integrates over latent draws and the head's weights, so it reflects what the
# patient's views leave unknown.

# %%
risk, lower, upper = est.predict_risk(test_data, return_interval=True)
clin = np.column_stack([dense_values(mdata, "clinical")[:, list(mdata["clinical"].var_names).index(c)]
                        for c in ("age", "is_female")])
cox = CoxPHSurvivalAnalysis().fit(clin[train], y[train])
c_mdlprob = mdlprob.metrics.harrell_c(y[test]["event"], y[test]["time"], risk)
c_clinical = mdlprob.metrics.harrell_c(y[test]["event"], y[test]["time"], cox.predict(clin[test]))
has_rna = ~hide[test]
width = upper - lower
print(f"Harrell's C on {test.sum()} held-out patients: mdlprob {c_mdlprob:.3f}, Cox on age + sex {c_clinical:.3f}")
print(f"mean 90% risk-interval width: {width[has_rna].mean():.3f} with RNA, {width[~has_rna].mean():.3f} without")

# %% [markdown]
# One fold of ~80 patients is noisy (a C-index's standard error is about 0.03 here):
# `benchmarks/real.py` repeats this over the five published folds and four missing rates
# against Coxnet, the fusion networks and the clinical model, with paired intervals
# (`benchmarks/results/real.md`).
#
# ## 5. Figures: risk groups and predicted curves by RNA status

# %%
times = np.linspace(0, y["time"].max(), 80)
surv, s_lo, s_hi = est.predict_survival_function(test_data, times, return_interval=True)
fig = Figure(figsize=(11, 4.2), layout="constrained")
ax_km, ax_pred = fig.subplots(1, 2)
high = risk > np.median(risk)
for name, rows, colour in (("low predicted risk", ~high, "tab:blue"), ("high predicted risk", high, "tab:red")):
    t_km, s_km = kaplan_meier_estimator(y[test]["event"][rows], y[test]["time"][rows])
    ax_km.step(t_km, s_km, where="post", color=colour, label=f"{name} (n={rows.sum()})")
ax_km.set(xlabel="months", ylabel="overall survival (Kaplan–Meier)", ylim=(0, 1.02),
          title=f"Held-out patients by predicted risk (C = {c_mdlprob:.2f})")
ax_km.legend(fontsize=8, loc="lower left")
groups = np.where(has_rna, "RNA measured", "RNA missing")
mdlprob.pl.survival(times, surv, s_lo, s_hi, groups=groups, observed=(y[test]["time"], y[test]["event"]),
                    xlabel="months", ax=ax_pred)
fig.savefig(OUT / "tcga_survival.png", dpi=110)
print(f"wrote {OUT / 'tcga_survival.png'}")
fig  # a notebook shows the figure here
