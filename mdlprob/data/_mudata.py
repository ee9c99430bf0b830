"""Building MuData objects without mudata's transition warnings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import anndata as ad
import mudata as md


def make_mudata(mods: Mapping[str, ad.AnnData], *, obs_order: Sequence[str] | None = None) -> md.MuData:
    """An outer-join MuData of ``mods`` (a modality holds only the observations that have it).

    ``obs_order`` fixes the order of the global observations (MuData otherwise orders them
    by first appearance across modalities). Built with ``pull_on_update=False``, the
    behaviour mudata adopts in 0.4, so no ``FutureWarning`` is emitted.
    """
    with md.set_options(pull_on_update=False):
        mdata = md.MuData(dict(mods))
        if obs_order is not None and list(mdata.obs_names) != list(obs_order):
            mdata = mdata[list(obs_order)].copy()
    return mdata
