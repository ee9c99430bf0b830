"""MedMNIST-format image archives (``.npz`` with ``{train,val,test}_{images,labels}``)."""

from __future__ import annotations

import os
from pathlib import Path

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd

from ..data._mudata import make_mudata
from ._paths import dataset_file

NAME = "medmnist_pneumonia_balanced"
RELATIVE = "pneumoniamnist.npz"
SPLITS = ("train", "val", "test")


def medmnist_npz(
    path: str | os.PathLike | None = None, *, data_dir: str | os.PathLike | None = None
) -> md.MuData:
    """Load a MedMNIST ``.npz`` archive as a one-modality MuData, all splits concatenated.

    Parameters
    ----------
    path
        The archive. Default: the shared class-balanced PneumoniaMNIST copy
        ``medmnist_pneumonia_balanced/pneumoniamnist.npz`` (3,166 images, 28 x 28; not the
        official MedMNIST split, so official benchmark numbers do not apply).
    data_dir
        Folder holding the shared datasets, used only when ``path`` is None (default:
        ``$MDLPROB_DATA`` or ``../shared/data``).

    Returns
    -------
    MuData
        With observations = images (``obs_names`` ``"<split>_<index>"``) and one modality

        - ``image``: ``X`` dense float32 ``(n, C*H*W)``, intensities in [0, 1] (uint8 / 255),
          flattened channel-first; ``uns["image_shape"]`` the int64 array ``[C, H, W]`` (an
          array, not a tuple, so that the MuData can be written to ``.h5mu``; C = 1 for
          grayscale ``(N, H, W)`` arrays, C = 3 for ``(N, H, W, 3)`` RGB arrays). Recover the
          images with ``X.reshape(-1, *uns["image_shape"])``.

        Global ``obs`` columns: ``label`` (int; for multi-label archives such as ChestMNIST one
        0/1 column ``label_<k>`` per label instead) and ``split`` (categorical
        ``train`` / ``val`` / ``test``; splits missing from the archive are skipped).

    Raises
    ------
    FileNotFoundError
        The archive is absent.
    ValueError
        No ``<split>_images`` arrays, images without labels, mismatched shapes across
        splits, unsupported array shapes (e.g. 3-D volumes) or intensities outside [0, 255].
    """
    if path is None:
        file = dataset_file(NAME, RELATIVE, data_dir)
    else:
        if not isinstance(path, (str, os.PathLike)):
            msg = f"path must be a str or os.PathLike, got {type(path).__name__}."
            raise TypeError(msg)
        file = Path(path)
        if not file.exists():
            msg = f"MedMNIST archive not found: expected the file {file.resolve()}."
            raise FileNotFoundError(msg)

    images, labels, split_names = [], [], []
    shape = None
    with np.load(file, allow_pickle=False) as z:
        present = [s for s in SPLITS if f"{s}_images" in z.files]
        if not present:
            msg = f"{file} holds no '<split>_images' arrays for splits {SPLITS}; it has {z.files}."
            raise ValueError(msg)
        for split in present:
            if f"{split}_labels" not in z.files:
                msg = f"{file} has {split}_images but no {split}_labels."
                raise ValueError(msg)
            img = _channels_first(z[f"{split}_images"], f"{file}:{split}_images")
            lab = np.asarray(z[f"{split}_labels"])
            lab = lab.reshape(len(lab), -1)
            if len(lab) != len(img):
                msg = f"{file}: {len(img)} {split} images but {len(lab)} labels."
                raise ValueError(msg)
            if shape is not None and img.shape[1:] != shape:
                msg = f"{file}: {split} images have shape {img.shape[1:]}, other splits {shape}."
                raise ValueError(msg)
            shape = img.shape[1:]
            images.append(_to_unit(img, f"{file}:{split}_images").reshape(len(img), -1))
            labels.append(lab)
            split_names += [split] * len(img)

    X = np.concatenate(images, axis=0)
    Y = np.concatenate(labels, axis=0).astype(np.int64)
    counters = {s: 0 for s in SPLITS}
    names = []
    for s in split_names:
        names.append(f"{s}_{counters[s]}")
        counters[s] += 1
    index = pd.Index(names)
    image = ad.AnnData(
        X,
        obs=pd.DataFrame(index=index),
        var=pd.DataFrame(index=pd.Index([f"px{j}" for j in range(X.shape[1])])),
        uns={"image_shape": np.asarray(shape, dtype=np.int64)},
    )
    mdata = make_mudata({"image": image})
    if Y.shape[1] == 1:
        mdata.obs["label"] = (
            pd.Series(Y[:, 0], index=index).reindex(mdata.obs_names).to_numpy()
        )
    else:
        for k in range(Y.shape[1]):
            mdata.obs[f"label_{k}"] = (
                pd.Series(Y[:, k], index=index).reindex(mdata.obs_names).to_numpy()
            )
    mdata.obs["split"] = pd.Categorical(
        pd.Series(split_names, index=index).reindex(mdata.obs_names),
        categories=list(SPLITS),
    )
    mdata.uns["dataset"] = {"name": file.stem, "path": str(file)}
    return mdata


def _channels_first(img: np.ndarray, what: str) -> np.ndarray:
    if img.ndim == 3:
        return img[:, None]
    if img.ndim == 4 and img.shape[-1] in (1, 3):
        return np.moveaxis(img, -1, 1)
    msg = (
        f"{what} has shape {img.shape}; expected (N, H, W) grayscale or (N, H, W, 3) RGB images "
        "(3-D MedMNIST volumes are not supported)."
    )
    raise ValueError(msg)


def _to_unit(img: np.ndarray, what: str) -> np.ndarray:
    """uint8 (or integer 0..255) intensities to float32 in [0, 1]; floats already in [0, 1] kept."""
    if np.issubdtype(img.dtype, np.integer) or img.dtype == bool:
        if img.size and (img.min() < 0 or img.max() > 255):
            msg = f"{what} holds integers outside [0, 255] (range {img.min()}..{img.max()})."
            raise ValueError(msg)
        return img.astype(np.float32) / np.float32(255.0)
    out = img.astype(np.float32)
    if out.size and (not np.isfinite(out).all() or out.min() < 0 or out.max() > 1):
        msg = f"{what} holds float intensities outside [0, 1]; rescale them or store uint8."
        raise ValueError(msg)
    return out
