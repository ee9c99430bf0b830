"""Distillation: ``model.distill(modalities)`` trains a student's subset encoders towards the full posterior."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mdlprob
from mdlprob.data import setup_mudata
from mdlprob.models import FactorModel, GraphPoEVAE, MoEVAE, MoPoEVAE, PoEVAE

LIKELIHOODS = {"rna": "nb", "protein": "nb", "clinical": "mixed"}
SUBSET = ["clinical", "protein"]


def _data(n_obs: int = 120, **kwargs):
    mdata = mdlprob.datasets.synthetic(n_obs, n_vars={"rna": 30, "protein": 8}, missing={"protein": 0.2}, **kwargs)
    setup_mudata(mdata, likelihoods=LIKELIHOODS)
    return mdata


def _kwargs(cls) -> dict:
    return {"n_latent": 3} if cls is FactorModel else {"n_latent": 3, "n_hidden": 16}


@pytest.fixture(scope="module")
def teacher():
    mdata = _data()
    mdlprob.settings.seed = 0
    model = PoEVAE(mdata, n_latent=3, n_hidden=16)
    model.train(max_epochs=3, progress_bar=False)
    return model, mdata


@pytest.mark.parametrize("cls", [PoEVAE, MoPoEVAE, MoEVAE, FactorModel], ids=lambda c: c.__name__)
def test_distill_trains_the_subset_encoders_only_and_leaves_the_teacher_untouched(cls):
    mdata = _data()
    mdlprob.settings.seed = 0
    model = cls(mdata, **_kwargs(cls))
    model.train(max_epochs=2, progress_bar=False)
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    student = model.distill(SUBSET, max_epochs=5, train_size=1.0, progress_bar=False)  # every epoch kept
    assert type(student) is cls and student is not model and student.module is not model.module
    for name, value in model.module.state_dict().items():  # the teacher, bit for bit
        assert torch.equal(value, before[name]), name
    changed = {k for k, v in student.module.state_dict().items() if not torch.equal(v, before[k])}
    assert changed  # the subset encoders moved ...
    assert all(k.startswith(("encoders.clinical.", "encoders.protein.")) for k in changed), changed  # ... nothing else
    info = student.distillation_
    assert info["modalities"] == SUBSET and (info["n_train"], info["n_heldout"]) == (mdata.n_obs, 0)
    assert len(info["history"]["train_kl"]) == 5 and info["best_epoch"] == 4 and np.isfinite(info["kl_student"])
    assert model.distillation_ is None
    latent = student.get_latent_representation(mdata, given=SUBSET)
    assert latent.shape == (mdata.n_obs, 3) and np.isfinite(latent).all()
    assert not np.allclose(latent, model.get_latent_representation(mdata, given=SUBSET))


def test_distilled_student_imputes_with_intervals_and_round_trips_through_save(teacher, tmp_path):
    model, mdata = teacher
    mdlprob.settings.seed = 1
    student = model.distill(SUBSET, max_epochs=4, progress_bar=False)
    imputed = student.impute(mdata, "rna", given=SUBSET, n_samples=10)
    assert imputed.shape == mdata["rna"].shape
    assert (imputed.layers["q05"] <= imputed.layers["q95"]).all()
    student.save(tmp_path / "student")
    loaded = PoEVAE.load(tmp_path / "student")
    assert loaded.distillation_ == student.distillation_
    np.testing.assert_array_equal(loaded.get_latent_representation(mdata, given=SUBSET),
                                  student.get_latent_representation(mdata, given=SUBSET))


def test_distill_keeps_the_epoch_with_the_lowest_heldout_kl(teacher):
    model, _ = teacher
    student = model.distill(["rna"], max_epochs=30, patience=3, progress_bar=False)
    info = student.distillation_
    val = info["history"]["val_kl"]
    assert info["n_heldout"] == 12 and info["n_train"] == 108
    assert len(val) <= info["best_epoch"] + 4  # stopped `patience` epochs after the best one (or at max_epochs)
    # the kept weights are the best epoch's, or the teacher's own encoders (epoch -1) when no epoch beats them
    assert info["kl_student"] <= info["kl_teacher_subset"] + 1e-6
    if info["best_epoch"] >= 0:
        assert info["best_epoch"] == int(np.argmin(val))
        assert info["kl_student"] == pytest.approx(min(val), rel=1e-5)
    else:
        assert min(val) >= info["kl_teacher_subset"] - 1e-6
        assert info["kl_student"] == pytest.approx(info["kl_teacher_subset"], rel=1e-6)


@pytest.mark.parametrize(("modalities", "match"), [
    (["rna", "protein", "clinical"], "proper subset"),
    (["imaging"], "registered modalities"),
    ([], "registered modalities"),
    (["rna", "rna"], "each modality once"),
])
def test_distill_rejects_bad_subsets(teacher, modalities, match):
    model, _ = teacher
    with pytest.raises(ValueError, match=match):
        model.distill(modalities, max_epochs=1, progress_bar=False)


def test_distill_needs_a_trained_model_and_refuses_graph_models():
    mdata = _data(60)
    with pytest.raises(mdlprob.exceptions.NotTrainedError):
        PoEVAE(mdata, n_latent=2, n_hidden=8).distill(SUBSET)
    gdata = _data(60, graph="grid")
    graph = GraphPoEVAE(gdata, graph_key="graph_true", n_latent=2, n_hidden=8)
    graph.train(max_epochs=1, progress_bar=False)
    with pytest.raises(TypeError, match="GraphPoEVAE"):
        graph.distill(SUBSET)


@pytest.mark.slow
def test_student_given_the_subset_comes_closer_to_the_full_posterior_than_the_teacher():
    """On held-out observations: latent agreement with the teacher's full posterior, and the true latent."""
    from sklearn.linear_model import LinearRegression

    mdlprob.settings.seed = 0
    full = mdlprob.datasets.synthetic(2000, n_vars={"rna": 100, "protein": 20})
    test = np.random.default_rng(0).random(full.n_obs) < 0.25
    train, held = full[~test].copy(), full[test].copy()
    setup_mudata(train, likelihoods=LIKELIHOODS)
    teacher = PoEVAE(train, n_latent=8)
    teacher.train(max_epochs=100, progress_bar=False)
    student = teacher.distill(SUBSET, progress_bar=False)
    z_full = teacher.get_latent_representation(held)
    z_teacher = teacher.get_latent_representation(held, given=SUBSET)
    z_student = student.get_latent_representation(held, given=SUBSET)
    assert ((z_student - z_full) ** 2).mean() < 0.95 * ((z_teacher - z_full) ** 2).mean()
    assert student.distillation_["kl_student"] < student.distillation_["kl_teacher_subset"]
    truth = held.obsm["z_true"]
    r2 = {name: LinearRegression().fit(z, truth).score(z, truth) for name, z in
          [("full", z_full), ("teacher", z_teacher), ("student", z_student)]}
    assert r2["student"] >= r2["teacher"] - 0.005 and r2["full"] > r2["student"]
