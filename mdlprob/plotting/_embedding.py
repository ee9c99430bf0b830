"""The latent space through scanpy: a UMAP (or the first two latent axes) coloured by obs columns."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import anndata as ad
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..data import presence_pattern
from ..data._setup import PRESENCE_KEY
from ._common import save

LATENT_KEY = "X_mdlprob"
UMAP_KEY = "X_mdlprob_umap"


@contextlib.contextmanager
def _quiet():
    """Silence deprecation notices raised inside scanpy and its plotting stack (nothing a caller can act on)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _scanpy():
    try:
        import scanpy as sc
    except ImportError as err:
        msg = ("mdlprob.pl.embedding draws through scanpy, which is not installed; install the extra with "
               "pip install 'mdlprob[scanpy]' (or pip install scanpy).")
        raise ImportError(msg) from err
    return sc


def embedding(mdata, *, color: str | Sequence[str] | None = None, basis: Literal["umap", "latent"] = "umap",
              n_neighbors: int = 15, random_state: int = 0, ax: Axes | None = None,
              path: str | os.PathLike | None = None, **kwargs: Any) -> Figure:
    """The latent space ``mdata.obsm["X_mdlprob"]`` (from ``model.get_latent``) drawn by scanpy.

    Parameters
    ----------
    mdata
        A MuData (or AnnData) whose ``obsm["X_mdlprob"]`` holds the latent.
    color
        ``obs`` columns to colour by (one panel each), e.g. the batch, a label, and
        ``"mdlprob_presence"``: each observation's presence pattern, computed with
        :func:`mdlprob.data.presence_pattern` (and written to ``obs``) when absent.
    basis
        ``umap``: the UMAP of the latent, read from ``obsm["X_mdlprob_umap"]`` when present
        (with as many rows), otherwise computed with scanpy (``pp.neighbors`` on the latent,
        ``tl.umap`` with ``random_state``) and stored there; delete that key after
        recomputing the latent. ``latent``: the first two latent axes.
    n_neighbors, random_state
        For the UMAP.
    ax, path
        Draw into this Axes (one colour only); write a PNG there.
    kwargs
        Passed to ``scanpy.pl.embedding`` (e.g. ``palette``, ``size``, ``legend_loc``).

    Raises
    ------
    ImportError
        scanpy is not installed (the ``scanpy`` extra).
    """
    sc = _scanpy()
    if LATENT_KEY not in mdata.obsm:
        msg = (f"mdata.obsm has no {LATENT_KEY!r}; compute the latent first with model.get_latent(mdata), "
               f"which writes it (available keys: {list(mdata.obsm)}).")
        raise KeyError(msg)
    if basis not in ("umap", "latent"):
        msg = f"Expected basis in ('umap', 'latent'), got {basis!r}."
        raise ValueError(msg)
    colors = [color] if isinstance(color, str) else list(color or [])
    if PRESENCE_KEY in colors and PRESENCE_KEY not in mdata.obs and hasattr(mdata, "mod"):
        presence_pattern(mdata)
    missing = [c for c in colors if c not in mdata.obs.columns]
    if missing:
        msg = f"Expected color to name obs columns; {missing} are not among {list(mdata.obs.columns)}."
        raise KeyError(msg)
    if ax is not None and len(colors) > 1:
        msg = f"An ax holds one panel; got {len(colors)} colours. Pass one colour per ax, or no ax."
        raise ValueError(msg)
    latent = np.asarray(mdata.obsm[LATENT_KEY], dtype=np.float32)
    adata = ad.AnnData(obs=mdata.obs[colors].copy(), obsm={LATENT_KEY: latent})
    if basis == "latent":
        if latent.shape[1] < 2:
            msg = f"basis='latent' draws two latent axes; the latent has {latent.shape[1]}. Use basis='umap'."
            raise ValueError(msg)
        adata.obsm["X_latent"] = latent[:, :2]
    else:
        umap = mdata.obsm.get(UMAP_KEY)
        if umap is None or len(umap) != mdata.n_obs:
            with _quiet():
                sc.pp.neighbors(adata, use_rep=LATENT_KEY, n_neighbors=n_neighbors, random_state=random_state)
                sc.tl.umap(adata, random_state=random_state)
            umap = adata.obsm["X_umap"]
            mdata.obsm[UMAP_KEY] = umap
        adata.obsm["X_umap"] = np.asarray(umap)
    with _quiet():
        fig = sc.pl.embedding(adata, basis="X_latent" if basis == "latent" else "X_umap", color=colors or None, ax=ax,
                              show=False, return_fig=ax is None, **kwargs)
    if ax is None:  # scanpy draws through pyplot: release the figure from pyplot's registry, as the other figures
        import matplotlib.pyplot as plt

        plt.close(fig)
    fig = ax.figure if ax is not None else fig
    save(fig, path)
    return fig
