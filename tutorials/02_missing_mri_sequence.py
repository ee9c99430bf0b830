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
# # Imputing a missing MRI sequence
#
# Brain MRI studies often lack one sequence for part of the subjects: a FLAIR scan that was
# never acquired, or was corrupted by motion. This tutorial imputes the missing FLAIR from
# the T1 and T2 scans of the same subject, **with a per-pixel uncertainty map**, and checks
# both against the truth on synthetic phantoms:
#
# 1. make brain phantoms with three sequences, FLAIR absent for 30% of the subjects,
# 2. register the image modalities (`setup_mudata` reads `uns["image_shape"]`),
# 3. train a product-of-experts VAE, which gives image modalities convolutional experts,
# 4. impute FLAIR from T1 + T2 (`impute`): mean, sd and quantile images,
# 5. draw the scans, the imputation, its sd map and the error (`mdlprob.plotting.scan_panel`),
# 6. score PSNR and SSIM against the mean-image baseline, the coverage of the 90% intervals,
#    and whether the sd map points at the errors.
#
# Two environment variables control it:
#
# * `MDLPROB_TUTORIAL_FAST=1`: 48 subjects and 2 epochs (a smoke test that runs in seconds;
#   the imputation is then barely better than an average brain);
# * `MDLPROB_TUTORIAL_OUT`: folder for the figures (default `tutorial_output/`).
#
# Convolutional networks are slow on a CPU: the full setting (400 subjects of 32 x 32
# pixels, 40 epochs) needs roughly a quarter of an hour of one core (fast mode: about
# 15 s). On a GPU use `size=64` and pass `accelerator="cuda"` to `train`.

# %%
import os
import sys
import time
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules:  # a script writes figures to files; a notebook also shows them
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import mdlprob
from mdlprob import metrics
from mdlprob.models import PoEVAE

FAST = os.environ.get("MDLPROB_TUTORIAL_FAST", "0") == "1"
OUT = Path(os.environ.get("MDLPROB_TUTORIAL_OUT", "tutorial_output"))
OUT.mkdir(parents=True, exist_ok=True)

N_OBS = 48 if FAST else 400
SIZE = 32
MAX_EPOCHS = 2 if FAST else 40
N_SAMPLES = 10 if FAST else 100

mdlprob.settings.seed = 0
print(f"mdlprob {mdlprob.__version__}; fast mode: {FAST}; output folder: {OUT}")

# %% [markdown]
# ## 1. Data: phantoms with three sequences, FLAIR missing for some subjects
#
# `mdlprob.datasets.synthetic_scans` draws one anatomy per subject from a 7-dimensional
# latent variable (head size, shape, pose, ventricle size, lesion propensity) and images it
# with each sequence: T1 (bright white matter, dark lesions), T2 (bright CSF and lesions)
# and FLAIR (bright lesions, dark CSF). Each sequence is one modality: an AnnData with the
# flattened pixels in `X` (intensities in [0, 1]) and `uns["image_shape"] = (C, H, W)`.
# With `missing={"flair": 0.3}`, 30% of the subjects have no FLAIR at all (they are absent
# from `mdata.mod["flair"]`).

# %%
mdata = mdlprob.datasets.synthetic_scans(N_OBS, size=SIZE, missing={"flair": 0.3}, seed=0)
shape = tuple(int(v) for v in mdata["flair"].uns["image_shape"])
print(mdata)
for mod in mdata.mod:
    print(f"{mod:>6}: {mdata.mod[mod].n_obs} of {mdata.n_obs} subjects, image shape {shape}")
print("label counts:", mdata.obs["label"].value_counts().to_dict())

# %% [markdown]
# ## 2. Register the sequences
#
# An image modality is registered like any other, with a per-pixel likelihood: `gaussian`
# (used here), `laplace` (median-seeking, sharper edges), `beta` (intensities in (0, 1)) or
# `bernoulli` (binary masks). Because `uns["image_shape"]` is set, the models build
# convolutional residual experts (`mdlprob.nn.ConvEncoder`, `mdlprob.nn.ConvDecoder`) for
# these modalities instead of MLPs.

# %%
mdlprob.data.setup_mudata(mdata, likelihoods={"t1": "gaussian", "t2": "gaussian", "flair": "gaussian"})
print(mdlprob.data.get_registry(mdata)["modalities"]["flair"])

# %% [markdown]
# ## 3. Train a product-of-experts VAE
#
# Each sequence gets an encoder producing a Gaussian expert over the latent $z$; a subject's
# posterior is the product of the prior and the experts of the sequences it has, so the
# subjects without FLAIR still train the T1 and T2 encoders and decoders. Training also fits
# every single-sequence posterior on its own, which is what imputing from a subset needs.

# %%
model = PoEVAE(mdata, n_latent=16)
start = time.perf_counter()
model.train(max_epochs=MAX_EPOCHS, batch_size=32, lr=2e-3, progress_bar=False)
print(f"trained {MAX_EPOCHS} epochs in {time.perf_counter() - start:.1f} s on {model.device}; "
      f"loss {model.history_['train_loss'][0]:.0f} -> {model.history_['train_loss'][-1]:.0f}")

# %% [markdown]
# ## 4. Impute FLAIR from T1 and T2
#
# `impute(mdata, "flair", given=["t1", "t2"])` draws $z$ from the posterior given T1 and T2
# only, then FLAIR images from the decoder. The result is an AnnData with one row per
# subject: layers `mean`, `std`, `q05`, `q50`, `q95` (each a flattened image) and
# `uns["image_shape"]` to reshape them. We score the subjects whose FLAIR is missing;
# `mdlprob.datasets.hidden_truth` returns their true scans.

# %%
imputed = model.impute(mdata, "flair", given=["t1", "t2"], n_samples=N_SAMPLES)
print(imputed)
truth, hidden = mdlprob.datasets.hidden_truth(mdata, "flair")
missing = hidden.all(axis=1)  # subjects without FLAIR
print(f"{int(missing.sum())} subjects without FLAIR; sd image shape:",
      imputed.layers["std"][missing].reshape(-1, *imputed.uns["image_shape"]).shape)

# %% [markdown]
# ## 5. Look at the scans
#
# One row per subject without FLAIR: the observed T1 and T2, the imputed FLAIR (mean), its
# sd map, the true FLAIR and the absolute error of the mean. Intensity panels share one grey
# scale; sd and error share one colour scale.

# %%
rows = np.flatnonzero(missing)
observed = {s: mdata.uns["truth"][s]["values"][rows] for s in ("t1", "t2")}
fig = mdlprob.plotting.scan_panel(observed, imputed.layers["mean"][rows], imputed.layers["std"][rows], truth[rows],
                                  image_shape=shape, n_subjects=4, label="FLAIR", path=OUT / "missing_flair_panel.png")
print("figure written to", OUT / "missing_flair_panel.png")
fig  # noqa: B018  (shows the figure in a notebook)

# %% [markdown]
# ## 6. How good is the imputation?
#
# **Intensity.** PSNR (dB, higher is better) and SSIM (1 = identical structure) of the
# imputed mean against the true FLAIR, per subject, compared with the simplest baseline:
# the mean FLAIR image of the subjects that have one. An average brain already reaches a
# fair PSNR because most pixels are background or smooth tissue; what matters is whether
# the model places the ventricles, the cortex and the lesions of *this* subject.

# %%
true_missing = truth[missing]
mean_image = np.tile(np.asarray(mdata["flair"].X).mean(axis=0), (len(rows), 1))
pred = np.clip(imputed.layers["mean"][missing], 0.0, 1.0)
scores = {
    "PoEVAE": (metrics.psnr(true_missing, pred), metrics.ssim(true_missing, pred, image_shape=shape)),
    "mean image": (metrics.psnr(true_missing, mean_image), metrics.ssim(true_missing, mean_image, image_shape=shape)),
}
print(f"{'method':<12}{'PSNR dB':>9}{'SSIM':>8}")
for name, (p, s) in scores.items():
    print(f"{name:<12}{p.mean():>9.2f}{s.mean():>8.3f}")

# %% [markdown]
# **Calibration.** A 90% interval `[q05, q95]` should contain the true pixel about 90% of
# the time. The background is exactly 0 and trivially covered, so we score the head pixels
# (noise-free FLAIR above 0.02) separately from all pixels;
# `mdlprob.metrics.pixel_interval_coverage` gives the same per scan.
#
# **The sd map.** `mdlprob.metrics.uncertainty_error_correlation` is the Spearman correlation
# between the predicted sd and the absolute error over head pixels: positive when the sd map
# ranks pixels by how wrong the mean is.

# %%
head = np.asarray(mdata.uns["truth"]["flair"]["mean"])[missing] > 0.02
lo, hi = imputed.layers["q05"][missing], imputed.layers["q95"][missing]
print(f"90% coverage, head pixels: {metrics.interval_coverage(true_missing, lo, hi, mask=head):.3f}")
print(f"90% coverage, all pixels:  {metrics.interval_coverage(true_missing, lo, hi):.3f}")
per_scan = metrics.pixel_interval_coverage(true_missing, lo, hi, mask=head)
print(f"per-scan head coverage: min {per_scan.min():.3f}, median {np.median(per_scan):.3f}, max {per_scan.max():.3f}")
per_image, pooled = metrics.uncertainty_error_correlation(true_missing, pred, imputed.layers["std"][missing], mask=head)
print(f"Spearman(sd, |error|) over head pixels: pooled {pooled:.3f}, median per scan {np.nanmedian(per_image):.3f}")

# %% [markdown]
# Reading the sd map: the predictive sd combines the decoder's per-pixel noise (constant
# for a pixel across subjects) with the spread of the decoded images over posterior draws
# of $z$. The second part is what is specific to a subject: it is high at tissue borders
# whose position T1 and T2 do not pin down and at lesions, whose FLAIR brightness the
# model is least sure of. When that correlation is positive, the sd map can flag the
# regions of an imputed scan that should not be trusted, e.g. before measuring lesion
# volume on it. Intervals that cover much less than 90% of head pixels mean that the model
# is overconfident (typical when undertrained); much more means they are too wide to be
# informative.
#
# The last figure bins the head pixels by predicted sd and shows the mean absolute error
# per bin: a rising curve is what a useful uncertainty map looks like.

# %%
sd = imputed.layers["std"][missing][head]
err = np.abs(true_missing - pred)[head]
edges = np.quantile(sd, np.linspace(0, 1, 11))
which = np.clip(np.searchsorted(edges, sd, side="right") - 1, 0, 9)
centres = np.array([sd[which == k].mean() for k in range(10) if (which == k).any()])
mean_err = np.array([err[which == k].mean() for k in range(10) if (which == k).any()])
fig2, ax = plt.subplots(figsize=(4.5, 3.5))
ax.plot(centres, mean_err, "o-", color="tab:blue", label="mean |error| per sd decile")
ax.plot(centres, np.sqrt(2 / np.pi) * centres, "k--", lw=1, label="expected if calibrated Gaussian")
ax.set_xlabel("predicted sd (head pixels)")
ax.set_ylabel("absolute error of the mean")
ax.legend(fontsize=8)
fig2.tight_layout()
fig2.savefig(OUT / "missing_flair_sd_vs_error.png", dpi=120)
if "ipykernel" not in sys.modules:  # a notebook shows the figure below the cell
    plt.close(fig2)
print("figure written to", OUT / "missing_flair_sd_vs_error.png")

# %% [markdown]
# ## Where next
#
# * `benchmarks/scans.py` compares PoEVAE, MoPoEVAE and MoEVAE with a mean image, a nearest
#   neighbour in T1 + T2 and supervised image-to-image networks, at 30% and 60% missing
#   FLAIR (results in `benchmarks/results/scans.md`).
# * `benchmarks/classify_scans.py` predicts the lesion-load class from scans, a clinical
#   table and omics with views missing at random, against the `mdlprob.fusion` baselines.
