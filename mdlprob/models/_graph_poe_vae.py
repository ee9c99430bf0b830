"""Product-of-experts VAE whose experts pass messages over a graph of observations."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import mudata as md
import numpy as np
import torch
from torch import Tensor

from ..base import BaseModel
from ..base._validate import check_int, renamed
from ..data._graph import GRAPH_KEY, GraphTensors, MaskedEmbedding, attach, build_sample_graph, in_neighbours
from ..data._tensors import MultimodalTensors
from ..exceptions import ModelFileError, NotTrainedError
from ..nn import GraphGaussianEncoder, product_of_experts
from ..nn._graph import CONVS, available
from ._poe_vae import _PoEVAEModule
from ._registry import register_model

logger = logging.getLogger(__name__)
_GRAPH_FILE = "graph.npz"


class _GraphPoEVAEModule(_PoEVAEModule):
    """:class:`_PoEVAEModule` with :class:`~mdlprob.nn.GraphGaussianEncoder` experts.

    Batches carry ``batch["graph"]``: tensors of the batch's neighbourhood (the batch's
    observations first) and its ``edge_index``. An observation lacking a modality gets that
    modality's expert from its neighbours that have it (when any does); the joint term of
    the objective uses these experts, the single-modality terms use the observation's own.
    """

    def __init__(self, spec: Mapping[str, Mapping[str, Any]], *, conv: str = "gcn", n_conv_layers: int = 1,
                 **kwargs) -> None:
        super().__init__(spec, **kwargs)
        for mod in self.modalities:
            self.encoders[mod] = GraphGaussianEncoder(
                self.likelihoods[mod].in_features + self.n_covariates, kwargs["n_latent"], kwargs["n_hidden"],
                kwargs["n_layers"],
                conv=conv, n_conv_layers=n_conv_layers, dropout=kwargs["dropout"])
        self._pyro_name = f"mdlprob_graph_poe_vae_{uuid.uuid4().hex[:12]}"

    def encode_graph(self, batch: Mapping[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
        """Experts ``(n_modalities, batch, n_latent)`` and their availability ``(batch, n_modalities)``."""
        graph, n = batch["graph"], batch["presence"].shape[0]
        edge_index = graph["edge_index"]
        mus, logvars, avail = [], [], []
        for j, mod in enumerate(self.modalities):
            present = graph["presence"][:, j]
            h = self.likelihoods[mod].encode_input(graph["x"][mod], graph["observed"][mod])
            if self.n_covariates:  # every node's expert reads its own covariates
                h = torch.cat([h, self.covariates(graph, h.shape[:1])], dim=-1)
            mu, logvar = self.encoders[mod](h, edge_index, present, graph["degree"][:, j])
            mus.append(mu[:n])
            logvars.append(logvar[:n])
            avail.append(available(edge_index, present)[:n])
        return torch.stack(mus), torch.stack(logvars), torch.stack(avail, 1)

    def encode(self, batch: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        mu, logvar, _ = self.encode_graph(batch)
        return mu, logvar

    def posterior(self, batch: Mapping[str, Any], use: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar, avail = self.encode_graph(batch)
        return product_of_experts(mu, logvar, use & avail)

    def _term_posteriors(self, batch: Mapping[str, Any]):
        mu, logvar, avail = self.encode_graph(batch)
        presence = batch["presence"]
        for t, name in enumerate(self.terms):
            use = (avail if name == "joint" else presence) & self.term_masks[t]
            q_mean, q_var = product_of_experts(mu, logvar, use)
            yield name, use.any(-1), q_mean, q_var


@register_model(alias="graph", sample_graph=True)
class GraphPoEVAE(BaseModel):
    r"""Product-of-experts VAE whose per-modality experts are graph neural networks over observations.

    Generative model as :class:`PoEVAE`: :math:`z_i \sim \mathcal{N}(0, I_d)`,
    :math:`x_{im} \mid z_i \sim p_{\theta_m}(x_{im} \mid z_i)` for the modalities
    :math:`m \in M_i` that observation :math:`i` has. Inference network, over a graph of
    observations with neighbours :math:`N(i)`:

    .. math::
        q(z_i \mid x) \propto \mathcal{N}(0, I) \prod_{m \in A_i}
        \mathcal{N}\big(\mu_m(x_{\{i\} \cup N(i), m}), \operatorname{diag}\sigma^2_m(\cdot)\big),
        \qquad A_i = M_i \cup \{m : \exists j \in N(i),\ m \in M_j\},

    where expert :math:`m` of observation :math:`i` is a graph convolution
    (:class:`~mdlprob.nn.GraphGaussianEncoder`) over the neighbours that have modality
    :math:`m` (and :math:`i` itself when it has it): an observation lacking protein gets a
    protein expert from its neighbours' protein, and an absent modality's values never
    enter anywhere. With covariates (``setup_mudata(..., batch_key=...)``) each node's
    expert also reads the node's own covariates, and decoders are conditional as in
    :class:`PoEVAE`. Training maximises the PoEVAE objective; its joint term uses every
    available expert, so the neighbour experts learn to predict the observation's own data.

    The graph is ``mdata.obsp[graph_key]`` (e.g. spatial neighbours, or the kNN graph of
    :func:`mdlprob.data.build_sample_graph`, which is built with ``n_neighbors`` neighbours when the
    key is absent); ``A[i, j] != 0`` makes :math:`j` a neighbour of :math:`i`. At inference,
    data with the training observations (or with their own ``obsp[graph_key]``) use their
    graph; new observations are attached to their ``n_neighbors`` masked-nearest training observations
    and encoded without retraining.

    Parameters
    ----------
    mdata
        Data registered with :func:`mdlprob.data.setup_mudata`.
    graph_key
        ``mdata.obsp`` key of the observation graph.
    conv
        Graph convolution: ``gcn`` (GCNConv), ``gat`` (GATConv, 2 heads) or ``sage`` (SAGEConv).
    n_conv_layers
        Message-passing hops.
    n_neighbors
        Neighbours of the kNN graph built when ``graph_key`` is absent, and of new
        observations attached at inference (scanpy's name).
    k
        Deprecated name of ``n_neighbors`` (a ``FutureWarning``).
    n_latent, n_hidden, n_layers, dropout, cross_reconstruction
        As in :class:`PoEVAE`.

    Examples
    --------
    >>> import mdlprob
    >>> mdata = mdlprob.datasets.synthetic(150, missing={"protein": 0.5}, graph="grid")
    >>> mdlprob.data.setup_mudata(mdata, likelihoods={"rna": "nb", "protein": "nb", "clinical": "mixed"})
    >>> model = mdlprob.models.GraphPoEVAE(mdata, graph_key="graph_true", n_latent=4)
    >>> model.train(max_epochs=2, progress_bar=False)
    >>> model.impute(mdata, "protein", n_samples=10).shape
    (150, 30)

    References
    ----------
    Kipf, T. N. & Welling, M. (2017). Semi-supervised classification with graph convolutional
    networks. ICLR. Wu, M. & Goodman, N. (2018). Multimodal generative models for scalable
    weakly-supervised learning. NeurIPS.
    """

    _module_cls = _GraphPoEVAEModule

    def __init__(self, mdata: md.MuData, *, graph_key: str = GRAPH_KEY, conv: Literal["gcn", "gat", "sage"] = "gcn",
                 n_conv_layers: int = 1, n_neighbors: int | None = None, n_latent: int = 16, n_hidden: int = 128,
                 n_layers: int = 1, dropout: float = 0.0, decoder: Literal["mlp", "linear"] = "mlp",
                 cross_reconstruction: bool = False, k: int | None = None) -> None:
        n_neighbors = renamed("n_neighbors", n_neighbors, "k", k, owner="GraphPoEVAE")
        n_neighbors = 15 if n_neighbors is None else n_neighbors
        if conv not in CONVS:
            msg = f"Expected conv in {CONVS}, got {conv!r}."
            raise ValueError(msg)
        check_int("n_conv_layers", n_conv_layers, minimum=1)
        check_int("n_neighbors", n_neighbors, minimum=1)
        super().__init__(mdata, n_latent=n_latent, n_hidden=n_hidden, n_layers=n_layers, dropout=dropout, decoder=decoder,
                         cross_reconstruction=bool(cross_reconstruction), conv=conv, n_conv_layers=n_conv_layers)
        images = [m for m, s in self._spec.items() if s.get("image_shape")]
        if images:
            msg = f"GraphPoEVAE has no graph experts for image modalities {images}; use PoEVAE for them."
            raise ValueError(msg)
        if graph_key not in mdata.obsp:
            logger.info("mdata.obsp[%r] not found; building a %d-NN sample graph there.", graph_key, n_neighbors)
            build_sample_graph(mdata, k=n_neighbors, key=graph_key)
        self.graph_key, self.n_neighbors = graph_key, int(n_neighbors)
        self.obs_names_ = [str(o) for o in mdata.obs_names]
        plain = self._require_tensors()
        if not isinstance(plain, MultimodalTensors):
            msg = "GraphPoEVAE needs the data in memory; load the MuData without backed='r'."
            raise ValueError(msg)
        self._graph = in_neighbours(mdata.obsp[graph_key], mdata.n_obs)
        self.embedding_ = MaskedEmbedding.fit(plain, {m: e["likelihood"] for m, e in self.registry_["modalities"].items()})
        self._tensors = GraphTensors.build(plain, *self._graph, n_hops=n_conv_layers)
        self._reference: GraphTensors | None = self._tensors

    @property
    def _n_hops(self) -> int:
        return int(self._module_kwargs["n_conv_layers"])

    def train(self, *, max_epochs: int | None = None, batch_size: int | None = None, fanout: int = 10,
              **kwargs: Any) -> None:
        """Fit the model; other arguments as :meth:`PoEVAE.train`.

        Parameters
        ----------
        batch_size
            ``None`` (default): full batch, every observation and edge in each step. Else
            mini-batches of that many observations with their neighbourhoods sampled
            (``fanout`` random neighbours per node and hop, as torch-geometric's
            ``NeighborLoader``), for graphs too large for one step.
        fanout
            Neighbours sampled per node and hop in mini-batch training.
        """
        tensors = self._require_tensors()
        check_int("fanout", fanout, minimum=1)
        full = batch_size is None or batch_size >= tensors.n_obs
        self._tensors = dataclasses.replace(tensors, fanout=None if full else int(fanout))
        try:
            super().train(max_epochs=max_epochs, batch_size=tensors.n_obs if batch_size is None else batch_size,
                          **kwargs)
        finally:
            self._tensors = dataclasses.replace(self._tensors, fanout=None)

    def tensors(self, mdata: md.MuData) -> GraphTensors:
        """Validated tensors of ``mdata`` with the graph their experts use (see the class notes)."""
        plain = super().tensors(mdata)
        if self.graph_key in mdata.obsp:
            return GraphTensors.build(plain, *in_neighbours(mdata.obsp[self.graph_key], mdata.n_obs),
                                      n_hops=self._n_hops)
        if [str(o) for o in mdata.obs_names] == self.obs_names_:
            return GraphTensors.build(plain, *self._graph, n_hops=self._n_hops)
        if self._reference is None:
            msg = (f"These observations are not the training ones and mdata.obsp[{self.graph_key!r}] is absent, so "
                   f"they are attached to the training observations, which this loaded model lacks. Load it with "
                   f"{type(self).__name__}.load(path, training_mdata), or give mdata.obsp[{self.graph_key!r}].")
            raise NotTrainedError(msg)
        return attach(self._reference, plain, self.embedding_, k=self.n_neighbors, n_hops=self._n_hops)

    def _write(self, folder: Path) -> None:
        """As :meth:`PoEVAE.save`, plus ``graph.npz``: training graph, observation names, kNN embedding."""
        super()._write(folder)
        indptr, indices = self._graph
        arrays = {"obs_names": np.array(self.obs_names_), "indptr": indptr.numpy(), "indices": indices.numpy(),
                  "graph_key": np.array(self.graph_key), "k": np.array(self.n_neighbors), **self.embedding_.state()}
        with open(folder / _GRAPH_FILE, "wb") as fh:
            np.savez(fh, **arrays)

    @classmethod
    def load(cls, path: str | Path, mdata: md.MuData | None = None, *, accelerator: str = "auto",
             for_training: bool = False) -> GraphPoEVAE:
        """As :meth:`PoEVAE.load`; when ``mdata`` holds the training observations, new ones can be attached to them.

        ``for_training`` needs exactly the training observations (the saved graph is theirs).
        """
        self = super().load(path, None, accelerator=accelerator)
        try:
            with np.load(Path(path) / _GRAPH_FILE, allow_pickle=False) as z:
                state = {key: z[key] for key in z.files}
        except (OSError, ValueError) as err:
            msg = f"{Path(path) / _GRAPH_FILE} cannot be read ({type(err).__name__}: {err}); save the model again."
            raise ModelFileError(msg) from None
        self.obs_names_ = [str(o) for o in state["obs_names"]]
        self._graph = (torch.from_numpy(state["indptr"]), torch.from_numpy(state["indices"]))
        self.graph_key, self.n_neighbors = str(state["graph_key"]), int(state["k"])  # "k": the file's key
        self.embedding_ = MaskedEmbedding.from_state(state, self.modalities)
        self._reference = None
        if for_training and mdata is None:
            msg = "load(..., for_training=True) needs the training data: pass mdata."
            raise ValueError(msg)
        if mdata is not None:
            tensors = self.tensors(mdata)
            if [str(o) for o in mdata.obs_names] == self.obs_names_:
                self._reference = GraphTensors.build(_plain(tensors), *self._graph, n_hops=self._n_hops)
            if for_training:
                if self._reference is None:
                    msg = "load(..., for_training=True) needs the training observations, in their order (the saved graph is theirs)."
                    raise ValueError(msg)
                self._tensors = self._reference
        return self


def _plain(tensors: GraphTensors) -> MultimodalTensors:
    return MultimodalTensors(**{f.name: getattr(tensors, f.name) for f in dataclasses.fields(MultimodalTensors)})
