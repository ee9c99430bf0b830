from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

import mdlprob
from mdlprob.data import build_sample_graph, make_mudata, setup_mudata
from mdlprob.data._graph import MaskedEmbedding, in_neighbours, masked_knn, sample_subgraph
from mdlprob.exceptions import RegistrationError

LIKELIHOODS = {"rna": "nb", "protein": "nb", "clinical": "mixed"}


def _data(n=120, seed=0, **kwargs):
    m = mdlprob.datasets.synthetic(n, missing={"protein": 0.5}, n_vars={"rna": 30, "protein": 10}, seed=seed, **kwargs)
    setup_mudata(m, likelihoods=LIKELIHOODS)
    return m


def test_graph_is_symmetric_without_self_loops_and_stored():
    m = _data()
    adj = build_sample_graph(m, k=6, key="g")
    assert m.obsp["g"] is adj or (m.obsp["g"] != adj).nnz == 0
    assert adj.shape == (m.n_obs, m.n_obs)
    assert (adj != adj.T).nnz == 0
    assert adj.diagonal().sum() == 0
    assert (np.asarray(adj.sum(1)).ravel() >= 6).all()


def test_neighbours_match_a_brute_force_masked_distance():
    m = _data(n=60)
    tensors = mdlprob.data.tensors_from_mudata(m, mdlprob.data.get_registry(m))
    emb = MaskedEmbedding.fit(tensors, LIKELIHOODS)
    coords, pres = emb.transform(tensors)
    rows, cols = masked_knn((coords, pres), (coords, pres), 4, exclude_self=True)
    c = [x.numpy().astype(np.float64) for x in coords]
    p = pres.numpy()
    for i in range(m.n_obs):
        d = np.full(m.n_obs, np.inf)
        for j in range(m.n_obs):
            shared = [mm for mm in range(len(c)) if p[i, mm] and p[j, mm]]
            if j != i and shared:
                d[j] = np.mean([((c[mm][i] - c[mm][j]) ** 2).sum() for mm in shared])
        expected = np.sort(d)[3]
        got = np.sort(d[cols[rows == i]])
        assert len(got) == 4
        assert got.max() <= expected * (1 + 1e-4) + 1e-5


def test_pairs_sharing_no_modality_are_never_linked():
    m = _data(n=80)
    rna_only, prot_only = m.obs_names[:40], m.obs_names[40:]
    split = make_mudata({"rna": m.mod["rna"][m.mod["rna"].obs_names.isin(rna_only)].copy(),
                         "protein": m.mod["protein"][m.mod["protein"].obs_names.isin(prot_only)].copy()})
    setup_mudata(split, likelihoods={"rna": "nb", "protein": "nb"})
    adj = build_sample_graph(split, k=5)
    has_rna = np.asarray(split.obsmap["rna"]) > 0
    i, j = adj.nonzero()
    assert len(i) > 0
    assert (has_rna[i] == has_rna[j]).all()


def test_hidden_modality_values_never_enter_the_graph():
    m = _data(n=100)
    hide = np.zeros(m.n_obs, dtype=bool)
    hide[::3] = True
    mask = pd.DataFrame(True, index=m.obs_names, columns=list(LIKELIHOODS))
    mask.loc[hide, "rna"] = False
    m.obsm["mask"] = mask
    setup_mudata(m, likelihoods=LIKELIHOODS, mask_key="mask")
    before = build_sample_graph(m, k=5).copy()
    rng = np.random.default_rng(0)
    rows = np.asarray(m.obsmap["rna"])[hide] - 1
    X = m.mod["rna"].X.copy()
    X[rows] = rng.poisson(50.0, size=X[rows].shape)
    m.mod["rna"].X = X
    after = build_sample_graph(m, k=5)
    assert (before != after).nnz == 0
    X[~np.isin(np.arange(X.shape[0]), rows)] += 7  # visible values do move it
    m.mod["rna"].X = X
    assert (build_sample_graph(m, k=5) != before).nnz > 0


def test_knn_graph_recovers_cluster_structure():
    m = _data(n=240, graph="clusters")
    adj = build_sample_graph(m, k=8)
    cluster = m.obs["cluster"].to_numpy()
    n_clusters = m.obs["cluster"].cat.categories.size
    i, j = adj.nonzero()
    same = (cluster[i] == cluster[j]).mean()
    assert same > 3 * (1.0 / n_clusters)


def test_bad_arguments_raise():
    m = _data(n=40)
    with pytest.raises(ValueError, match="k to be an int >= 1"):
        build_sample_graph(m, k=0)
    with pytest.raises(ValueError, match="use to name registered modalities"):
        build_sample_graph(m, use=["nope"])
    with pytest.raises(ValueError, match="'available'"):
        build_sample_graph(m, use="all")
    with pytest.raises(RegistrationError):
        build_sample_graph(make_mudata({"rna": m.mod["rna"].copy()}))
    with pytest.raises(ValueError, match="graph of shape"):
        in_neighbours(sp.eye(5, format="csr"), 6)


def test_use_restricts_the_modalities():
    m = _data(n=80)
    rna_graph = build_sample_graph(m, k=5, use=["rna"])
    X = m.mod["protein"].X.copy()
    m.mod["protein"].X = X * 5 + 3
    assert (build_sample_graph(m, k=5, use=["rna"]) != rna_graph).nnz == 0


def _k_hop(adj: sp.csr_matrix, seeds: np.ndarray, hops: int) -> set[int]:
    nodes = set(seeds.tolist())
    frontier = set(nodes)
    for _ in range(hops):
        nxt = set(adj[sorted(frontier)].indices.tolist()) - nodes
        nodes |= nxt
        frontier = nxt
    return nodes


@pytest.mark.parametrize("hops", [1, 2])
def test_full_neighbourhood_matches_breadth_first_search(hops):
    adj = sp.random(50, 50, density=0.06, format="csr", random_state=0)
    indptr, indices = in_neighbours(adj, 50)
    seeds = torch.tensor([3, 17, 40])
    nodes, edge_index = sample_subgraph(indptr, indices, seeds, n_hops=hops)
    assert nodes[:3].tolist() == [3, 17, 40]
    assert set(nodes.tolist()) == _k_hop(in_neighbours_matrix(adj), seeds.numpy(), hops)
    clean = in_neighbours_matrix(adj)
    src, dst = nodes[edge_index[0]].numpy(), nodes[edge_index[1]].numpy()
    assert all(clean[d, s] for s, d in zip(src, dst, strict=True))  # edges j -> i where j is a neighbour of i
    sub = clean[nodes.numpy()][:, nodes.numpy()]
    assert sub.nnz == edge_index.shape[1]  # the induced subgraph, every edge


def in_neighbours_matrix(adj: sp.csr_matrix) -> sp.csr_matrix:
    out = adj.tocsr().copy()
    out.setdiag(0)
    out.eliminate_zeros()
    return out


def test_fanout_caps_sampled_neighbours():
    adj = sp.csr_matrix(np.ones((30, 30), dtype=np.float32))
    indptr, indices = in_neighbours(adj, 30)
    nodes, _ = sample_subgraph(indptr, indices, torch.tensor([0, 1]), n_hops=1, fanout=3)
    assert 2 < len(nodes) <= 2 + 2 * 3


def test_synthetic_graph_latent_is_smooth_and_shuffle_removes_it():
    m = mdlprob.datasets.synthetic(200, graph="grid", seed=2)
    z = m.obsm["z_true"]
    assert m.obsm["spatial"].shape == (200, 2)
    i, j = m.obsp["graph_true"].nonzero()
    assert np.corrcoef(z[i, 0], z[j, 0])[0, 1] > 0.6
    i, j = m.obsp["graph_shuffled"].nonzero()
    assert abs(np.corrcoef(z[i, 0], z[j, 0])[0, 1]) < 0.2
    assert m.obsp["graph_shuffled"].nnz == m.obsp["graph_true"].nnz
    np.testing.assert_allclose(z.std(0), 1.0, rtol=1e-4)


def test_synthetic_without_graph_has_no_graph_and_rejects_unknown_graphs():
    m = mdlprob.datasets.synthetic(50, seed=2)
    assert len(m.obsp) == 0
    with pytest.raises(ValueError, match="graph to be None or one of"):
        mdlprob.datasets.synthetic(50, graph="torus")
