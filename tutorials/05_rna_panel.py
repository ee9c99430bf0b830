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
# # Which patients should get an RNA panel?
#
# Half of the TCGA-BLCA patients here have no RNA profile, only copy numbers (CNV) and age
# and sex. An RNA panel costs money: for which patients would it most change the survival
# prediction? mdlprob answers before anyone runs the assay. For each patient without RNA,
# the model draws plausible RNA profiles from its posterior predictive given what the
# patient has, adds each as if measured, and re-runs the prediction: the expected narrowing
# of the risk interval and the probability that the patient would change risk group
# (above or below the median) are the value of the panel for that patient.
#
# 1. load the cohort and hide RNA for half of it; train a PoEVAE and a Bayesian Cox head,
# 2. value an RNA panel (and the cheaper CNV, where missing) for each held-out patient lacking it,
# 3. choose whom to test under a budget,
# 4. check the expected values against reality on held-out patients whose RNA we hide, then reveal,
# 5. what each view contributes to the C-index (Shapley values, cost curve).
#
# It needs the shared TCGA tables (`MDLPROB_DATA` or `../shared/data`, folder
# `tcga_mcat_sig`). `MDLPROB_TUTORIAL_FAST=1` runs a smoke test in seconds;
# `MDLPROB_TUTORIAL_OUT` names the figure folder.

# %%
import os
import sys
import warnings
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules:  # a script writes figures to files; a notebook also shows them
    matplotlib.use("Agg")
import numpy as np
from sksurv.util import Surv

import mdlprob
from mdlprob.data import hide_modality, subset
from mdlprob.heads import CoxPHHead, LatentHead
from mdlprob.interpret import (
    acquisition_order,
    expected_information_gain,
    gain_agreement,
    modality_contributions,
    realised_information_gain,
)

FAST = os.environ.get("MDLPROB_TUTORIAL_FAST", "0") == "1"
OUT = Path(os.environ.get("MDLPROB_TUTORIAL_OUT", "tutorial_output"))
OUT.mkdir(parents=True, exist_ok=True)
mdlprob.settings.seed = 0
N_DRAWS = 3 if FAST else 20

# %% [markdown]
# ## 1. The cohort, a latent model and a Cox head
#
# As in the survival tutorial: RNA z-scores on a signed log scale, RNA hidden for a random
# half of the patients (`hide_modality`: they are then absent from `mdata.mod["rna"]`,
# which is how mdlprob knows the view is missing), the published fold 0 as the split.

# %%
full = mdlprob.datasets.tcga_survival("blca", source="mcat")
full.mod["rna"].X = (np.sign(full.mod["rna"].X) * np.log1p(np.abs(full.mod["rna"].X))).astype(np.float32)
hide = np.zeros(full.n_obs, dtype=bool)
hide[np.random.default_rng(0).permutation(full.n_obs)[: full.n_obs // 2]] = True
mdata = hide_modality(full, "rna", hide)
with warnings.catch_warnings():  # setup_mudata flags constant features; they are kept
    warnings.simplefilter("ignore")
    mdlprob.data.setup_mudata(mdata, likelihoods={"rna": "gaussian", "cnv": "gaussian", "clinical": "mixed"})
y = Surv.from_arrays(mdata.obs["event"].to_numpy() == 1, mdata.obs["time"].to_numpy())
train = (mdata.obs["fold_0"] == "train").to_numpy()
test = (mdata.obs["fold_0"] == "val").to_numpy()
train_data, test_data = subset(mdata, train), subset(mdata, test)
model = mdlprob.PoEVAE(train_data, n_latent=16, n_hidden=64)
model.train(max_epochs=3 if FAST else 100, batch_size=128, lr=2e-3, progress_bar=False)
head = LatentHead(model, CoxPHHead(max_epochs=20 if FAST else 300, random_state=0), modality_latents=False,
                  n_samples=N_DRAWS, random_state=0).fit(train_data, y[train])
print(f"{test.sum()} held-out patients, {(hide & test).sum()} of them without RNA")

# %% [markdown]
# ## 2. The value of an RNA panel for each held-out patient without one
#
# `expected_information_gain` reads who lacks RNA from the presence masks. Columns: the
# expected reduction of the latent posterior's entropy (nats), of the width of the 90%
# risk interval, and the probability that the patient would change risk group.

# %%
gains = expected_information_gain(model, test_data, "rna", target=head, n_samples=N_DRAWS)
print(gains.sort_values("decision_change", ascending=False).head(10).round(3))
mdlprob.pl.acquisition_value(gains, top=20, path=OUT / "rna_panel_value.png")

# %% [markdown]
# ## 3. Whom to test under a budget
#
# With RNA the only missing view here, every candidate costs the same; the order is by
# the probability of a changed risk group. (`acquisition_table` stacks every missing
# view with its cost, e.g. `costs={"rna": 1.0, "cnv": 0.5}`, for cohorts missing several.)

# %%
table = gains.rename_axis("obs").reset_index().assign(modality="rna", cost=1.0)
plan = acquisition_order(table, budget=10)
print(plan[["obs", "decision_change", "interval_width_gain", "cumulative_cost"]].round(3))

# %% [markdown]
# ## 4. Do the expected values come true?
#
# On held-out patients who do have RNA, `realised_information_gain` hides it, values it,
# then reveals it: the realised change is what the measured RNA actually did.

# %%
check = realised_information_gain(model, test_data, "rna", target=head, n_samples=N_DRAWS)
print(gain_agreement(check).round(3))

# %% [markdown]
# ## 5. What each view contributes to the C-index
#
# The head's C-index on the held-out patients for every subset of views, Shapley values
# with 90% bootstrap intervals over patients, and the best subset of each size.

# %%
contrib = modality_contributions(model, test_data, target=head, y=y[test], n_samples=N_DRAWS,
                                 n_bootstrap=20 if FAST else 500)
print(contrib.shapley.round(3))
mdlprob.pl.shapley(contrib, path=OUT / "rna_panel_shapley.png")  # the last expression: a notebook shows it

# %%
print(contrib.cost_curve().round(3))
mdlprob.pl.cost_curve(contrib, path=OUT / "rna_panel_cost.png")
