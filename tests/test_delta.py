"""Gromov δ-hyperbolicity (protolab.delta.gromov): exact values, brute force, bounds, chunking, validation."""

from __future__ import annotations

import doctest
import itertools
import math
import warnings

import numpy as np
import pytest
import torch
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import shortest_path

from protolab.delta import gromov as delta_mod
from protolab.delta.gromov import (
    delta_hyperbolicity,
    four_point_delta,
    gromov_products,
    maxmin_product,
    pairwise_distances,
    relative_delta,
)

SEEDS = [0, 1, 2]
DTYPES = [torch.float32, torch.float64]
# δ of an exact tree metric is 0 up to rounding of the Gromov products: a few ulps of the diameter.
TOL = {torch.float32: 1e-5, torch.float64: 1e-12}


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tree_metric(n: int, seed: int) -> np.ndarray:
    """Path metric of a random weighted tree: node i hangs from a random earlier node."""
    rng = np.random.default_rng(seed)
    parents = [int(rng.integers(0, i)) for i in range(1, n)]
    weights = rng.uniform(0.1, 2.0, size=n - 1)
    graph = csr_matrix((weights, (np.arange(1, n), parents)), shape=(n, n))
    return shortest_path(graph, directed=False)


def random_graph_metric(n: int, seed: int) -> np.ndarray:
    """Shortest-path metric of a connected random weighted graph (cycles, so usually δ > 0)."""
    rng = np.random.default_rng(seed)
    rows, cols = list(range(1, n)), [int(rng.integers(0, i)) for i in range(1, n)]
    for _ in range(n):
        a, b = rng.choice(n, size=2, replace=False)
        rows.append(int(a))
        cols.append(int(b))
    weights = rng.uniform(0.5, 3.0, size=len(rows))
    graph = csr_matrix((weights, (rows, cols)), shape=(n, n))
    return shortest_path(graph, directed=False)


def brute_force_delta(d: torch.Tensor) -> float:
    """Four-point condition over every quadruple: half of (largest - middle) of the three sums."""
    dist = d.tolist()
    n = len(dist)
    best = 0.0
    for x, y, z, w in itertools.product(range(n), repeat=4):
        sums = sorted((dist[x][y] + dist[z][w], dist[x][z] + dist[y][w], dist[x][w] + dist[y][z]))
        best = max(best, sums[2] - sums[1])
    return best / 2


def random_euclidean(n: int, dim: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    points = torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return pairwise_distances(points).to(dtype)


# ------------------------------------------------------------------------------------------
# δ = 0 on trees and lines; exact values on hand-made spaces
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", SEEDS)
def test_tree_metric_has_zero_delta(seed, dtype):
    d = torch.from_numpy(tree_metric(25, seed)).to(dtype)
    diam = float(d.max())
    assert four_point_delta(d) <= TOL[dtype] * diam
    assert four_point_delta(d, base_point=0) <= TOL[dtype] * diam
    assert four_point_delta(d, base_point=24) <= TOL[dtype] * diam


@pytest.mark.parametrize("seed", SEEDS)
def test_points_on_a_line_have_zero_delta(seed):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(30, generator=g, dtype=torch.float64) * 10
    direction = torch.randn(5, generator=g, dtype=torch.float64)
    d = pairwise_distances(t[:, None] * direction[None, :])
    assert four_point_delta(d) <= 1e-12 * float(d.max())


def test_four_cycle_with_unit_edges_has_delta_one():
    # C4 (0-1-2-3-0, unit edges): adjacent vertices at 1, opposite at 2. For the quadruple
    # (0, 1, 2, 3) the sums are d01 + d23 = 2, d02 + d13 = 4, d03 + d12 = 2, so
    # largest - middle = 2 = 2δ and δ = 1; every other quadruple has a repeated vertex and gives
    # 0. With base point 0: (1|3)_0 = (1 + 1 - 2)/2 = 0 while (1|2)_0 = (2|3)_0 = 1, so δ_0 = 1 too
    # (and every vertex is alike). diam = 2, so δ_rel = 2 · 1 / 2 = 1.
    d = torch.tensor([[0.0, 1, 2, 1], [1, 0, 1, 2], [2, 1, 0, 1], [1, 2, 1, 0]], dtype=torch.float64)
    assert four_point_delta(d) == 1.0
    for p in range(4):
        assert four_point_delta(d, base_point=p) == 1.0
    assert relative_delta(four_point_delta(d), d) == 1.0
    assert brute_force_delta(d) == 1.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_unit_square_corners(dtype):
    # Sides 1, diagonals sqrt(2): sums 2, 2, 2 sqrt(2), so δ = (2 sqrt(2) - 2) / 2 = sqrt(2) - 1 and
    # δ_rel = 2 (sqrt(2) - 1) / sqrt(2) = 2 - sqrt(2).
    corners = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    d = pairwise_distances(corners, dtype=dtype)
    rel = 1e-6 if dtype == torch.float32 else 1e-14
    assert four_point_delta(d) == pytest.approx(math.sqrt(2) - 1, rel=rel)
    assert four_point_delta(d, base_point=2) == pytest.approx(math.sqrt(2) - 1, rel=rel)
    assert relative_delta(four_point_delta(d), d) == pytest.approx(2 - math.sqrt(2), rel=rel)


def test_single_point_and_coincident_points():
    assert four_point_delta(torch.zeros(1, 1)) == 0.0
    d = torch.zeros(5, 5)
    assert four_point_delta(d) == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert relative_delta(0.0, d) == 0.0


# ------------------------------------------------------------------------------------------
# all base points: brute force, bounds, chunking
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind, n", [("euclidean2", 7), ("euclidean5", 9), ("graph", 8), ("cosine", 6)])
def test_all_base_points_equals_brute_force_four_point_condition(kind, n, seed):
    # The Gromov-product δ maximised over base points and the four-point-condition δ are the same
    # number: min{(x|z)_p, (y|z)_p} - (x|y)_p = (S1 - max(S2, S3)) / 2 with S1 = d(x,y) + d(p,z).
    if kind == "graph":
        d = torch.from_numpy(random_graph_metric(n, seed))
    elif kind == "cosine":  # not a metric: the identity holds for any symmetric matrix anyway
        d = pairwise_distances(torch.randn(n, 3, generator=torch.Generator().manual_seed(seed)), "cosine")
    else:
        d = random_euclidean(n, int(kind[-1]), seed)
    expected = brute_force_delta(d)
    assert four_point_delta(d) == pytest.approx(expected, abs=1e-12)
    assert max(four_point_delta(d, base_point=p) for p in range(n)) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_single_base_point_never_above_true_delta_and_within_factor_two(seed):
    d = random_euclidean(40, 3, seed)
    true = four_point_delta(d)
    singles = [four_point_delta(d, base_point=p) for p in range(40)]
    assert max(singles) == pytest.approx(true, abs=1e-12)  # δ = max_p δ_p
    for single in singles:
        assert single <= true + 1e-12
        assert true <= 2 * single + 1e-12  # δ-hyperbolic at one base point => 2δ at all


@pytest.mark.parametrize("base_point", [None, 0, 17])
def test_delta_independent_of_chunking(base_point):
    d = random_euclidean(45, 4, 3)
    values = [four_point_delta(d, base_point, max_chunk_bytes=b) for b in (1, 4096, 200_000, None, 2**30)]
    if base_point is None:  # the batch of base points decides which symmetric copy of a quadruple is
        assert max(values) - min(values) <= 1e-12  # evaluated; copies differ by rounding only
    else:  # the max-min product is exact and the same Gromov products are subtracted
        assert len(set(values)) == 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_single_base_point_equals_naive_product(dtype):
    d = random_euclidean(60, 6, 4, dtype)
    for p in (0, 31):
        g = gromov_products(d, p)
        naive = torch.minimum(g[:, :, None], g[None, :, :]).amax(dim=1)
        assert four_point_delta(d, base_point=p) == float((naive - g).max())


# ------------------------------------------------------------------------------------------
# building blocks
# ------------------------------------------------------------------------------------------
def test_gromov_products_formula_and_batch():
    d = random_euclidean(7, 2, 5)
    g = gromov_products(d, 3)
    assert g.shape == (7, 7)
    for x, y in itertools.product(range(7), repeat=2):
        assert float(g[x, y]) == pytest.approx(0.5 * float(d[3, x] + d[3, y] - d[x, y]), abs=1e-15)
    assert torch.equal(g, g.T)
    assert float(g[3].abs().max()) == 0.0  # (p|y)_p = 0
    assert torch.allclose(g.diagonal(), d[3])  # (x|x)_p = d(p, x)
    batch = gromov_products(d, [3, 0, 6])
    assert batch.shape == (3, 7, 7)
    assert torch.equal(batch[0], g)
    assert torch.equal(batch[2], gromov_products(d, 6))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("chunk_i, chunk_k", [(1, 1), (3, 5), (7, 2), (64, 64), (None, None)])
def test_blocked_maxmin_product_equals_naive(chunk_i, chunk_k, dtype):
    g = torch.Generator().manual_seed(6)
    a = torch.randn(2, 19, 13, generator=g).to(dtype)
    b = torch.randn(2, 13, 11, generator=g).to(dtype)
    naive = torch.minimum(a[..., :, :, None], b[..., None, :, :]).amax(dim=-2)
    assert torch.equal(maxmin_product(a, b, chunk_i=chunk_i, chunk_k=chunk_k), naive)
    assert torch.equal(maxmin_product(a[0], b[0], chunk_i=chunk_i, chunk_k=chunk_k), naive[0])
    assert torch.equal(maxmin_product(a, b[0], chunk_i=chunk_i, chunk_k=chunk_k),
                       torch.minimum(a[..., :, :, None], b[0][None, None]).amax(dim=-2))


def test_blocked_maxmin_product_respects_small_budget():
    g = torch.Generator().manual_seed(7)
    a, b = torch.rand(30, 40, generator=g), torch.rand(40, 20, generator=g)
    naive = torch.minimum(a[:, :, None], b[None]).amax(dim=1)
    assert torch.equal(maxmin_product(a, b, max_chunk_bytes=1), naive)
    with pytest.raises(ValueError, match="maxmin_product expects"):
        maxmin_product(a, b.T)
    with pytest.raises(ValueError, match="chunk_k"):
        maxmin_product(a, b, chunk_k=0)


@pytest.mark.parametrize("scale", [1e-3, 7.0, 1e3])
def test_relative_delta_is_scale_invariant(scale):
    d = random_euclidean(30, 3, 8)
    base = four_point_delta(d)
    scaled = d * scale
    assert four_point_delta(scaled) == pytest.approx(base * scale, rel=1e-12)
    assert relative_delta(four_point_delta(scaled), scaled) == pytest.approx(relative_delta(base, d), rel=1e-12)
    assert relative_delta(base, d) == pytest.approx(2 * base / float(d.max()), rel=1e-15)


# ------------------------------------------------------------------------------------------
# distances
# ------------------------------------------------------------------------------------------
def test_pairwise_distances_euclidean_and_cosine():
    x = torch.randn(12, 4, generator=torch.Generator().manual_seed(9))
    d = pairwise_distances(x)
    assert d.dtype == torch.float64
    expected = (x.double()[:, None] - x.double()[None]).norm(dim=-1)
    assert torch.allclose(d, expected, atol=1e-12)
    assert float(d.diagonal().abs().max()) == 0.0
    cos = pairwise_distances(x, "cosine")
    u = torch.nn.functional.normalize(x.double(), dim=-1)
    assert torch.allclose(cos, (1 - u @ u.T).fill_diagonal_(0), atol=1e-12)
    assert float(cos.min()) >= 0.0 and torch.equal(cos, cos.T)
    assert pairwise_distances(x, dtype=None).dtype == torch.float32
    with pytest.raises(ValueError, match="zero vectors"):
        pairwise_distances(torch.zeros(3, 2), "cosine")
    with pytest.raises(ValueError, match="metric must be one of"):
        pairwise_distances(x, "manhattan")
    with pytest.raises(ValueError, match=r"shape \(n, D\)"):
        pairwise_distances(x[0])


def test_pairwise_distances_poincare():
    from protolab.hyperbolic import pairwise_dist

    g = torch.Generator().manual_seed(10)
    x = torch.randn(15, 3, generator=g, dtype=torch.float64)
    x = 0.9 * x / (1 + x.norm(dim=-1, keepdim=True))  # norms < 0.9
    for c in (1.0, 0.5):
        d = pairwise_distances(x, "poincare", c=c)
        expected = pairwise_dist(x, x, c=c).fill_diagonal_(0)
        assert torch.allclose(d, 0.5 * (expected + expected.T), atol=1e-12)
    # a geodesic (a diameter of the ball) is isometric to a line: δ = 0
    t = torch.linspace(-0.95, 0.95, 25, dtype=torch.float64)
    line = t[:, None] * torch.tensor([[0.6, 0.8]], dtype=torch.float64)
    d_line = pairwise_distances(line, "poincare")
    assert four_point_delta(d_line) <= 1e-12 * float(d_line.max())


def test_poincare_input_is_validated():
    inside = torch.tensor([[0.1, 0.2], [0.3, -0.4]])
    with pytest.raises(ValueError, match=r"sqrt\(c\) \* \|\|x\|\| < 1"):
        pairwise_distances(torch.tensor([[0.0, 0.0], [1.0, 0.0]]), "poincare")
    with pytest.raises(ValueError, match=r"sqrt\(c\) \* \|\|x\|\| < 1"):
        pairwise_distances(inside, "poincare", c=4.0)  # radius 1/2 for c = 4; ||x|| = 0.5
    for bad_c in (0.0, -1.0, math.inf, True):
        with pytest.raises(ValueError, match="c must be a positive"):
            pairwise_distances(inside, "poincare", c=bad_c)
    with pytest.raises(ValueError, match="finite"):
        pairwise_distances(torch.tensor([[math.nan, 0.0]]), "poincare")


# ------------------------------------------------------------------------------------------
# validation
# ------------------------------------------------------------------------------------------
def test_invalid_distance_matrices_raise_clear_errors():
    d = random_euclidean(5, 2, 11)
    with pytest.raises(ValueError, match="square"):
        four_point_delta(d[:4])
    with pytest.raises(ValueError, match="square"):
        four_point_delta(d[0])
    asym = d.clone()
    asym[0, 1] += 0.5
    with pytest.raises(ValueError, match="symmetric"):
        four_point_delta(asym)
    with pytest.raises(ValueError, match="symmetric"):
        gromov_products(asym, 0)
    with pytest.raises(ValueError, match="non-negative"):
        four_point_delta(-d)
    with pytest.raises(ValueError, match="zero diagonal"):
        four_point_delta(d + 1)
    nan = d.clone()
    nan[1, 2] = nan[2, 1] = math.nan
    with pytest.raises(ValueError, match="finite"):
        four_point_delta(nan)
    for bad in (5, -1, 1.0, True):
        with pytest.raises(ValueError, match="base_point"):
            four_point_delta(d, base_point=bad)
    with pytest.raises(ValueError, match="base_point"):
        gromov_products(d, [0, 9])
    with pytest.raises(ValueError, match="torch.Tensor or numpy"):
        four_point_delta([[0.0]])
    # tiny asymmetry from rounding is accepted and symmetrised
    near = d.clone()
    near[0, 1] += 1e-14
    assert four_point_delta(near) == pytest.approx(four_point_delta(d), abs=1e-12)
    assert four_point_delta(d.numpy()) == four_point_delta(d)


# ------------------------------------------------------------------------------------------
# the sampled estimate
# ------------------------------------------------------------------------------------------
def test_delta_hyperbolicity_samples_without_replacement_and_is_seeded(monkeypatch):
    x = torch.randn(120, 5, generator=torch.Generator().manual_seed(12))
    seen = []
    original = delta_mod.pairwise_distances

    def spy(points, *args, **kwargs):
        seen.append(points.clone())
        return original(points, *args, **kwargs)

    monkeypatch.setattr(delta_mod, "pairwise_distances", spy)
    result = delta_hyperbolicity(x, n_points=30, n_tries=4, seed=1)
    assert len(seen) == 4 and all(s.shape == (30, 5) for s in seen)
    for sample in seen:
        assert torch.unique(sample, dim=0).shape[0] == 30  # no point drawn twice
    assert not torch.equal(seen[0], seen[1])
    for sample, delta, rel, diam in zip(seen, result["delta"], result["delta_rel"], result["diameter"]):
        d = original(sample)
        assert delta == four_point_delta(d, base_point=0)  # the official estimator: row 0
        assert diam == float(d.max())
        assert rel == pytest.approx(2 * delta / diam, rel=1e-15)  # the factor 2
    assert result["delta_rel_mean"] == pytest.approx(np.mean(result["delta_rel"]))
    assert result["delta_rel_std"] == pytest.approx(np.std(result["delta_rel"]))
    assert result["n_tries"] == 4 and result["n_points"] == 30 and result["with_replacement"] is False
    again = delta_hyperbolicity(x, n_points=30, n_tries=4, seed=1)
    assert again["delta_rel"] == result["delta_rel"]
    assert delta_hyperbolicity(x, n_points=30, n_tries=4, seed=2)["delta_rel"] != result["delta_rel"]


def test_delta_hyperbolicity_all_base_points_reports_both():
    x = torch.randn(80, 4, generator=torch.Generator().manual_seed(13))
    result = delta_hyperbolicity(x, n_points=25, n_tries=3, base_points="all", seed=0)
    one = delta_hyperbolicity(x, n_points=25, n_tries=3, base_points="one", seed=0)
    assert result["delta_rel_single"] == one["delta_rel"]  # same samples, official estimator
    assert result["delta_rel_single_mean"] == pytest.approx(one["delta_rel_mean"])
    for true, single in zip(result["delta"], result["delta_single"]):
        assert single <= true <= 2 * single
    assert result["delta_rel_mean"] >= result["delta_rel_single_mean"]
    assert "delta_rel_single" not in one


def test_delta_hyperbolicity_small_sets_metrics_and_validation():
    tree_points = torch.arange(10.0)[:, None]  # a line: δ = 0 in every try
    result = delta_hyperbolicity(tree_points, n_points=50, n_tries=5)
    assert result["n_tries"] == 1 and result["n_points"] == 10 and result["delta_rel"] == [0.0]
    ball = 0.5 * torch.rand(40, 3, generator=torch.Generator().manual_seed(14)) - 0.25
    for metric in ("poincare", "cosine"):
        out = delta_hyperbolicity(ball, n_points=20, n_tries=2, metric=metric, c=2.0)
        assert 0.0 <= out["delta_rel_mean"] and math.isfinite(out["delta_rel_std"])
    with pytest.raises(ValueError, match="base_points"):
        delta_hyperbolicity(ball, base_points="some")
    with pytest.raises(ValueError, match="n_points"):
        delta_hyperbolicity(ball, n_points=0)
    with pytest.raises(ValueError, match="metric"):
        delta_hyperbolicity(ball, metric="l1")
    with pytest.raises(ValueError, match="seed"):
        delta_hyperbolicity(ball, seed=-1)


def test_docstring_examples():
    failures, tried = doctest.testmod(delta_mod, verbose=False)
    assert tried > 0 and failures == 0
