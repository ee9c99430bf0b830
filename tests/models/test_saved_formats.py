"""Saved models record their format version, and this code loads every older format.

``tests/fixtures/models/poe_vae_format<N>/`` holds a small PoEVAE saved by the code of format
``N`` with the latent means it gave on :func:`_data`; each later version must load it and give
the same latent. Write the folder of a new format with ``python tests/models/test_saved_formats.py``
(after raising ``FORMAT_VERSION``) and keep the old ones.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import anndata as ad
import numpy as np
import pytest

import mdlprob
from mdlprob.base._base_model import FORMAT_VERSION
from mdlprob.data import make_mudata, setup_mudata
from mdlprob.exceptions import ModelFileError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "models"


def _data():
    """20 observations of two count modalities (protein absent for 5), from a fixed numpy generator."""
    rng = np.random.default_rng(7)
    names = [f"c{i}" for i in range(20)]
    rna = ad.AnnData(rng.poisson(3.0, (20, 10)).astype(np.float32))
    rna.obs_names, rna.var_names = names, [f"g{j}" for j in range(10)]
    protein = ad.AnnData(rng.poisson(5.0, (15, 4)).astype(np.float32))
    protein.obs_names, protein.var_names = names[5:], [f"p{j}" for j in range(4)]
    mdata = make_mudata({"rna": rna, "protein": protein}, obs_order=names)
    setup_mudata(mdata, likelihoods={"rna": "nb", "protein": "nb"})
    return mdata


def _write_fixture(folder: Path) -> None:
    mdlprob.settings.seed = 0
    mdata = _data()
    model = mdlprob.PoEVAE(mdata, n_latent=2, n_hidden=8)
    model.train(max_epochs=3, progress_bar=False)
    model.save(folder, overwrite=True)
    (folder / "expected_latent.json").write_text(json.dumps(model.get_latent(mdata).tolist()))


@pytest.mark.parametrize("folder", sorted(FIXTURES.glob("poe_vae_format*")), ids=lambda p: p.name)
def test_models_saved_by_every_format_load_and_give_their_latent(folder):
    model = mdlprob.PoEVAE.load(folder, _data())
    mdata = _data()
    expected = np.array(json.loads((folder / "expected_latent.json").read_text()))
    np.testing.assert_allclose(model.get_latent(mdata), expected, rtol=1e-5, atol=1e-6)


def test_a_fixture_of_the_current_format_exists():
    assert (FIXTURES / f"poe_vae_format{FORMAT_VERSION}" / "config.json").is_file()


def test_saved_config_records_the_format_and_unversioned_files_still_load(tmp_path):
    source = FIXTURES / f"poe_vae_format{FORMAT_VERSION}"
    assert json.loads((source / "config.json").read_text())["format_version"] == FORMAT_VERSION
    legacy = tmp_path / "legacy"
    shutil.copytree(source, legacy)
    config = json.loads((legacy / "config.json").read_text())
    del config["format_version"]  # as saved before versions were recorded
    (legacy / "config.json").write_text(json.dumps(config))
    assert mdlprob.PoEVAE.load(legacy).is_trained_


def test_a_newer_format_is_refused_with_the_fix(tmp_path):
    newer = tmp_path / "newer"
    shutil.copytree(FIXTURES / f"poe_vae_format{FORMAT_VERSION}", newer)
    config = json.loads((newer / "config.json").read_text())
    config["format_version"] = FORMAT_VERSION + 1
    (newer / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match=rf"model format {FORMAT_VERSION + 1} .*reads formats up to {FORMAT_VERSION}. Upgrade"):
        mdlprob.PoEVAE.load(newer)
    config["format_version"] = "one"
    (newer / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="format_version 'one'"):
        mdlprob.PoEVAE.load(newer)


if __name__ == "__main__":
    _write_fixture(FIXTURES / f"poe_vae_format{FORMAT_VERSION}")
