"""Reference mapping: ``load_query_data`` adds a query's new batches to a trained model and fine-tunes them only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mdlprob
from mdlprob.data import hide_modality, setup_mudata
from mdlprob.models import FactorModel, GraphPoEVAE, MoPoEVAE, PoEVAE

LIKELIHOODS = {"rna": "nb", "protein": "nb", "clinical": "mixed"}


def _split(n_obs: int = 150):
    full = mdlprob.datasets.synthetic(n_obs, n_vars={"rna": 30, "protein": 8}, batches=3, missing={"protein": 0.2})
    is_query = (full.obs["batch"] == "batch2").to_numpy()
    ref = full[~is_query].copy()
    ref.obs["batch"] = ref.obs["batch"].cat.remove_unused_categories()
    setup_mudata(ref, likelihoods=LIKELIHOODS, batch_key="batch")
    return ref, full[is_query].copy()


def _kwargs(cls) -> dict:
    return {"n_latent": 3} if cls is FactorModel else {"n_latent": 3, "n_hidden": 16}


@pytest.fixture(scope="module")
def reference():
    ref, query = _split()
    mdlprob.settings.seed = 0
    model = PoEVAE(ref, n_latent=3, n_hidden=16)
    model.train(max_epochs=3, progress_bar=False)
    return model, ref, query


@pytest.mark.parametrize("cls", [PoEVAE, MoPoEVAE, FactorModel], ids=lambda c: c.__name__)
def test_query_training_leaves_the_reference_weights_untouched(cls):
    ref, query = _split()
    mdlprob.settings.seed = 0
    reference = cls(ref, **_kwargs(cls))
    reference.train(max_epochs=2, progress_bar=False)
    before = {k: v.clone() for k, v in reference.module.state_dict().items()}
    mapped = cls.load_query_data(query, reference)
    assert mapped.registry_["covariates"]["categories"]["batch"] == ["batch0", "batch1", "batch2"]
    start = {k: v.clone() for k, v in mapped.module.state_dict().items()}
    mapped.train(max_epochs=3, progress_bar=False)
    after = mapped.module.state_dict()
    for name, value in reference.module.state_dict().items():  # the reference object itself
        assert torch.equal(value, before[name]), name
    masks = mapped._query_masks  # true on the new batch's columns
    assert masks
    moved = False
    for name in after:
        if name in masks:  # the reference's columns are bitwise the same; the new batch's are learned
            mask = masks[name]
            assert torch.equal(after[name][~mask].reshape(before[name].shape), before[name]), name
            moved |= not torch.equal(after[name][mask], start[name][mask])
        elif after[name].shape == before[name].shape:
            assert torch.equal(after[name], before[name]), name
        else:  # the library regression: zero columns for the new batch, the reference's elsewhere
            assert torch.equal(after[name], start[name]), name
    assert moved, "fine-tuning did not move the new batch's columns"
    assert mapped.module.n_covariates == reference.module.n_covariates + 1


def test_unfine_tuned_query_model_maps_reference_batches_as_the_reference(reference):
    model, ref, query = reference
    mapped = PoEVAE.load_query_data(query, model)
    np.testing.assert_allclose(mapped.get_latent(ref), model.get_latent(ref), rtol=1e-5, atol=1e-6)
    assert np.isfinite(mapped.get_latent(query)).all()


def test_query_lacking_a_modality_is_imputed_with_intervals(reference, tmp_path):
    model, _, query = reference
    lacking = hide_modality(query, "protein", np.ones(query.n_obs, dtype=bool))
    mapped = PoEVAE.load_query_data(lacking, model)
    mapped.train(max_epochs=2, progress_bar=False)
    with pytest.warns(mdlprob.exceptions.DataWarning, match=r"\['batch2'\] had modality 'protein'"):
        imputed = mapped.impute(lacking, "protein", n_samples=10)  # the query never had protein
    assert mapped.batch_support_["protein"] == ["batch0", "batch1"]
    assert mapped.batch_support_["rna"] == ["batch0", "batch1", "batch2"]
    assert (imputed.layers["q05"] <= imputed.layers["q95"]).all()
    assert not imputed.obs["observed"].any()
    mapped.save(tmp_path / "q")
    back = PoEVAE.load(tmp_path / "q", lacking)
    np.testing.assert_array_equal(back.get_latent(lacking), mapped.get_latent(lacking))


def test_query_mapping_rejects_what_it_cannot_do(reference, tmp_path):
    model, ref, query = reference
    with pytest.raises(ValueError, match="nothing to map"):
        PoEVAE.load_query_data(ref, model)
    with pytest.raises(TypeError, match="MoPoEVAE.load_query_data|PoEVAE"):
        MoPoEVAE.load_query_data(query, model)
    mapped = PoEVAE.load_query_data(query, model)
    with pytest.raises(ValueError, match="weight_decay=0"):
        mapped.train(max_epochs=1, weight_decay=1e-3, progress_bar=False)
    no_batch = query.copy()
    del no_batch.obs["batch"]
    with pytest.raises(KeyError, match="'batch'"):
        PoEVAE.load_query_data(no_batch, model)
    blind_data = ref.copy()
    setup_mudata(blind_data, likelihoods=LIKELIHOODS)
    blind = PoEVAE(blind_data, n_latent=2, n_hidden=8)
    blind.train(max_epochs=1, progress_bar=False)
    with pytest.raises(ValueError, match="batch_key"):
        PoEVAE.load_query_data(query, blind)
    model.save(tmp_path / "ref")
    from_path = PoEVAE.load_query_data(query, tmp_path / "ref")
    assert from_path.module.n_covariates == model.module.n_covariates + 1


def test_train_first_layers_moves_the_encoders_first_layers_only(reference):
    model, _, query = reference
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    mapped = PoEVAE.load_query_data(query, model, train_first_layers=True)
    start = {k: v.clone() for k, v in mapped.module.state_dict().items()}
    mapped.train(max_epochs=2, progress_bar=False)
    after = mapped.module.state_dict()
    first = {f"encoders.{m}.body.0.{a}" for m in ("rna", "protein", "clinical") for a in ("weight", "bias")}
    assert first <= set(mapped._query_masks)
    assert all(not torch.equal(after[k], start[k]) for k in first)
    for name, value in after.items():
        if name.startswith("decoders.") or name.startswith("likelihoods.") or ".out." in name:
            mask = mapped._query_masks.get(name)
            kept = value if mask is None else value[~mask].reshape(before[name].shape)
            assert torch.equal(kept, before[name]), name
    assert all(torch.equal(v, before[k]) for k, v in model.module.state_dict().items())  # the reference itself
    with pytest.raises(TypeError, match="train_first_layers"):
        PoEVAE.load_query_data(query, model, train_first_layers="yes")


def test_graph_model_query_mapping_is_refused():
    ref, query = _split(90)
    model = GraphPoEVAE(ref, n_latent=2, n_hidden=8)
    model.train(max_epochs=1, progress_bar=False)
    with pytest.raises(TypeError, match="GraphGaussianEncoder"):
        GraphPoEVAE.load_query_data(query, model)


def test_image_experts_are_mapped_too():
    import anndata as ad

    from mdlprob.data import make_mudata

    rng = np.random.default_rng(0)
    n, side = 40, 16
    names = [f"s{i}" for i in range(n)]
    img = ad.AnnData(rng.random((n, side * side)).astype(np.float32))
    img.obs_names, img.var_names = names, [f"p{j}" for j in range(side * side)]
    img.uns["image_shape"] = [1, side, side]
    vec = ad.AnnData(rng.normal(size=(n, 3)).astype(np.float32))
    vec.obs_names, vec.var_names = names, ["a", "b", "c"]
    mdata = make_mudata({"scan": img, "clinical": vec}, obs_order=names)
    mdata.obs["scanner"] = np.where(np.arange(n) < 25, "A", "B")
    ref = mdata[:25].copy()
    setup_mudata(ref, likelihoods={"scan": "gaussian", "clinical": "gaussian"}, batch_key="scanner")
    reference = PoEVAE(ref, n_latent=2, n_hidden=8)
    reference.train(max_epochs=1, progress_bar=False)
    before = {k: v.clone() for k, v in reference.module.state_dict().items()}
    mapped = PoEVAE.load_query_data(mdata[25:].copy(), reference)
    assert {"encoders.scan.out.weight", "decoders.scan.inp.weight"} <= set(mapped._query_masks)
    mapped.train(max_epochs=2, progress_bar=False)
    after = mapped.module.state_dict()
    for name, mask in mapped._query_masks.items():
        assert torch.equal(after[name][~mask].reshape(before[name].shape), before[name]), name
