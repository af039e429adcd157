"""Tests for protolab.hyperbolic: closed forms written out here in float64, geoopt cross-checks,
gradchecks, and hypothesis property tests for finiteness on extreme float32 inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from geoopt.manifolds.stereographic import math as gmath
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch.func import functional_call

from protolab.hyperbolic import (
    HyperbolicMLR,
    ToPoincare,
    clip_features,
    dist0,
    expmap0,
    logmap0,
    mobius_add,
    pairwise_dist,
    poincare_mean,
)

SEEDS = [0, 1, 2]
CURVATURES = [0.01, 0.5, 1.0, 2.0]
F64 = torch.float64


# --------------------------------------------------------------------------------------------
# closed forms, written out independently of the library (float64 references)
# --------------------------------------------------------------------------------------------
def ref_mobius_add(x, y, c):
    """Ganea et al. 2018, eq. 2, for the ball of curvature -c."""
    xy = (x * y).sum(-1, keepdim=True)
    x2 = (x * x).sum(-1, keepdim=True)
    y2 = (y * y).sum(-1, keepdim=True)
    num = (1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y
    den = 1 + 2 * c * xy + c**2 * x2 * y2
    return num / den


def ref_dist(x, y, c):
    """d_c(x, y) = (2/sqrt(c)) artanh(sqrt(c) ||-x (+)_c y||), all pairs: (N, D), (M, D) -> (N, M)."""
    diff = ref_mobius_add(-x[:, None, :], y[None, :, :], c)
    return 2 / math.sqrt(c) * torch.atanh(math.sqrt(c) * diff.norm(dim=-1))


def ref_expmap0(u, c):
    n = u.norm(dim=-1, keepdim=True)
    return torch.tanh(math.sqrt(c) * n) * u / (math.sqrt(c) * n)


def ref_logmap0(x, c):
    n = x.norm(dim=-1, keepdim=True)
    return torch.atanh(math.sqrt(c) * n) * x / (math.sqrt(c) * n)


def ref_dist0(x, c):
    return 2 / math.sqrt(c) * torch.atanh(math.sqrt(c) * x.norm(dim=-1))


def ref_mlr(x, p_tangent, a_tangent, c):
    """Ganea et al. 2018 eq. 25 with p_k = exp0(p~_k), a_k = a~_k (1 - c||p_k||^2); (B, D) -> (B, K)."""
    p = ref_expmap0(p_tangent, c)  # (K, D)
    a = a_tangent * (1 - c * (p * p).sum(-1, keepdim=True))  # (K, D)
    z = ref_mobius_add(-p[None], x[:, None], c)  # (B, K, D)
    lam_p = 2 / (1 - c * (p * p).sum(-1))  # (K,)
    a_norm = a.norm(dim=-1)
    arg = 2 * math.sqrt(c) * (z * a).sum(-1) / ((1 - c * (z * z).sum(-1)) * a_norm)
    return lam_p * a_norm / math.sqrt(c) * torch.asinh(arg)


def ref_klein_mean(x, weights, c):
    """Einstein midpoint via Klein (PAPERS.md): points along dim -2; (..., n, D) -> (..., D)."""
    xk = 2 * x / (1 + c * (x * x).sum(-1, keepdim=True))
    gamma = 1 / torch.sqrt(1 - c * (xk * xk).sum(-1, keepdim=True))
    w = torch.ones(x.shape[:-1], dtype=x.dtype) if weights is None else weights
    w = w.unsqueeze(-1)
    m = (w * gamma * xk).sum(-2) / (w * gamma).sum(-2)
    return m / (1 + torch.sqrt(1 - c * (m * m).sum(-1, keepdim=True)))


def ball_points(shape, c, gen, max_radius=0.9, dtype=F64):
    """Uniform directions, radii sqrt(c)||x|| uniform in [0, max_radius)."""
    v = torch.randn(*shape, generator=gen, dtype=F64)
    r = torch.rand(*shape[:-1], 1, generator=gen, dtype=F64) * max_radius
    return (v / v.norm(dim=-1, keepdim=True) * r / math.sqrt(c)).to(dtype)


def gen_for(seed):
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------------------------
# Möbius addition, exp/log maps, distances
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("c", CURVATURES)
def test_mobius_add_matches_closed_form_and_identities(seed, c):
    g = gen_for(seed)
    x, y = ball_points((2, 50, 7), c, g)
    torch.testing.assert_close(mobius_add(x, y, c=c), ref_mobius_add(x, y, c))
    zero = torch.zeros_like(x)
    torch.testing.assert_close(mobius_add(-x, x, c=c), zero, atol=1e-12, rtol=0)  # -x (+) x = 0
    torch.testing.assert_close(mobius_add(x, zero, c=c), x)  # x (+) 0 = x
    torch.testing.assert_close(mobius_add(zero, x, c=c), x)  # 0 (+) x = x
    torch.testing.assert_close(mobius_add(-x, mobius_add(x, y, c=c), c=c), y)  # left cancellation


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("c", CURVATURES)
def test_expmap0_logmap0_closed_form(seed, c):
    g = gen_for(seed)
    u = torch.randn(40, 6, generator=g, dtype=F64) / math.sqrt(c)  # sqrt(c)||u|| up to ~5
    torch.testing.assert_close(expmap0(u, c=c), ref_expmap0(u, c))
    x = ball_points((40, 6), c, g)
    torch.testing.assert_close(logmap0(x, c=c), ref_logmap0(x, c))
    small = u * 0.5  # sqrt(c)||u|| < ~3: exp then log is the identity to float64 precision
    torch.testing.assert_close(logmap0(expmap0(small, c=c), c=c), small, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("c", CURVATURES)
def test_dist0_closed_form(seed, c):
    g = gen_for(seed)
    x = ball_points((3, 30, 5), c, g, max_radius=0.999)
    d = dist0(x, c=c)
    assert d.shape == (3, 30)
    torch.testing.assert_close(d, ref_dist0(x, c))
    torch.testing.assert_close(dist0(x, c=c, keepdim=True), d[..., None])
    flat = x.reshape(-1, 5)
    torch.testing.assert_close(pairwise_dist(flat, torch.zeros(1, 5, dtype=F64), c=c)[:, 0], d.reshape(-1))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("c", CURVATURES)
def test_pairwise_dist_closed_form(seed, c):
    g = gen_for(seed)
    x = ball_points((17, 9), c, g, max_radius=0.99)
    y = ball_points((11, 9), c, g, max_radius=0.99)
    d = pairwise_dist(x, y, c=c)
    assert d.shape == (17, 11)
    torch.testing.assert_close(d, ref_dist(x, y, c), rtol=1e-9, atol=1e-9)
    # geoopt's own distance (note k = -c), broadcast over pairs
    geo = gmath.dist(x[:, None], y[None], k=torch.tensor(-c, dtype=F64))
    torch.testing.assert_close(d, geo, rtol=1e-9, atol=1e-9)
    dxx = pairwise_dist(x, x, c=c)
    torch.testing.assert_close(dxx, dxx.T)
    torch.testing.assert_close(dxx.diagonal(), torch.zeros(17, dtype=F64), atol=1e-12, rtol=0)
    # triangle inequality d(x_i, y_j) <= d(x_i, x_0) + d(x_0, y_j)
    assert (d <= dxx[:, :1] + d[:1, :] + 1e-9).all()


def test_pairwise_dist_batched_shape():
    g = gen_for(0)
    x = ball_points((4, 6, 3), 1.0, g)
    y = ball_points((4, 5, 3), 1.0, g)
    d = pairwise_dist(x, y, c=1.0)
    assert d.shape == (4, 6, 5)
    torch.testing.assert_close(d[2], pairwise_dist(x[2], y[2], c=1.0))


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("c", [0.01, 1.0])
def test_pairwise_dist_near_boundary(dtype, c):
    """Opposite points: the geodesic passes through 0, so d(x, -x) = 2 d(0, x), even near the boundary
    (geoopt's artanh form saturates at 2 artanh(1 - 1e-7)/sqrt(c) = 16.8/sqrt(c) there)."""
    g = gen_for(3)
    v = torch.randn(8, 16, generator=g, dtype=F64)
    radius = 1 - (4.1e-3 if dtype == torch.float32 else 2e-5)  # inside geoopt's projection
    x = (v / v.norm(dim=-1, keepdim=True) * radius / math.sqrt(c)).to(dtype)
    d = pairwise_dist(x, -x, c=c).diagonal()
    expected = 2 * ref_dist0(x.double(), c)
    tol = 1e-3 if dtype == torch.float32 else 1e-9
    torch.testing.assert_close(d.double(), expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("c", [0.01, 1.0])
def test_pairwise_dist_float32_matches_float64(c):
    g = gen_for(4)
    x = ToPoincare(c)(torch.randn(60, 32, generator=g) * 2 / math.sqrt(c))
    y = ToPoincare(c)(torch.randn(20, 32, generator=g) / math.sqrt(c))
    d32 = pairwise_dist(x, y, c=c).double()
    d64 = pairwise_dist(x.double(), y.double(), c=c)
    torch.testing.assert_close(d32, d64, rtol=1e-4, atol=1e-4)


def test_pairwise_dist_of_duplicates_near_the_boundary_is_zero_in_float32():
    """More than 25 rows: torch.cdist's default matrix-product form gave 0.49 here instead of 0."""
    g = gen_for(11)
    x = ToPoincare(0.05)(torch.randn(5, 64, generator=g) * 100)
    assert torch.equal(pairwise_dist(x.repeat(6, 1), x, c=0.05).diagonal(), torch.zeros(5))


@pytest.mark.parametrize("c", [0.05, 1.0])
def test_pairwise_dist_of_near_duplicates_matches_float64(c):
    g = gen_for(12)
    x = ToPoincare(c)(torch.randn(40, 64, generator=g) * 0.15 / math.sqrt(c))  # radius ≈ 0.8/√c
    near = x + 1e-4 / math.sqrt(c) * torch.randn(40, 64, generator=g)
    d32, d64 = pairwise_dist(near, x, c=c).diagonal().double(), pairwise_dist(near.double(), x.double(), c=c).diagonal()
    assert (d64 > 0).all()
    torch.testing.assert_close(d32, d64, rtol=1e-3, atol=0)


# --------------------------------------------------------------------------------------------
# ToPoincare and feature clipping
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("c", CURVATURES)
def test_to_poincare_is_projected_expmap0(dtype, c):
    g = gen_for(5)
    u = (torch.randn(4, 25, 8, generator=g, dtype=F64) * 3 / math.sqrt(c)).to(dtype)
    out = ToPoincare(c)(u)
    assert out.shape == u.shape and out.dtype == dtype
    eps = 4e-3 if dtype == torch.float32 else 1e-5  # geoopt's projection margin
    assert (math.sqrt(c) * out.double().norm(dim=-1) <= 1 - eps + 1e-6).all()
    expected = ref_expmap0(u.double(), c)
    expected_norm = expected.norm(dim=-1, keepdim=True)
    maxnorm = (1 - eps) / math.sqrt(c)
    expected = torch.where(expected_norm > maxnorm, expected / expected_norm * maxnorm, expected)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(out.double(), expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_to_poincare_zeros_and_huge_inputs(dtype):
    c = 1.0
    u = torch.zeros(3, 16, dtype=dtype)
    u[1] = 1e6
    u[2, 0] = -1e6
    u.requires_grad_(True)
    out = ToPoincare(c)(u)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(u.grad).all()
    assert (out[0] == 0).all()
    assert (out.norm(dim=-1) < 1 / math.sqrt(c)).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_clip_features(seed):
    g = gen_for(seed)
    r = 2.5
    x = torch.randn(200, 12, generator=g, dtype=F64) * torch.logspace(-3, 3, 200, dtype=F64)[:, None]
    clipped = clip_features(x, r)
    norms = x.norm(dim=-1)
    assert (clipped.norm(dim=-1) <= r * (1 + 1e-12)).all()
    small = norms <= r
    assert small.any() and (~small).any()
    torch.testing.assert_close(clipped[small], x[small], rtol=0, atol=0)  # identity below r
    cos = torch.nn.functional.cosine_similarity(clipped, x, dim=-1)
    torch.testing.assert_close(cos, torch.ones_like(cos))  # direction kept
    torch.testing.assert_close(clipped[~small].norm(dim=-1), torch.full(((~small).sum(),), r, dtype=F64))
    # ToPoincare(clip_r) = ToPoincare applied to the clipped features
    torch.testing.assert_close(ToPoincare(1.0, clip_r=r)(x), ToPoincare(1.0)(clipped))


@pytest.mark.parametrize("c", [0.01, 1.0])
def test_clip_r_keeps_points_off_the_boundary(c):
    """d(0, exp0(u)) = 2||u||, so clipping bounds the hyperbolic norm by 2 r (Guo et al. 2021):
    points no longer pile up at geoopt's projection radius, where float32 saturates."""
    r = 1.0 / math.sqrt(c)
    u = torch.randn(300, 16, generator=gen_for(0)) * torch.logspace(-3, 4, 300)[:, None]
    u.requires_grad_(True)
    h = ToPoincare(c, clip_r=r)(u)
    d = dist0(h, c=c)
    assert (d <= 2 * r * (1 + 1e-5)).all()
    below = u.detach().norm(dim=-1) < r
    torch.testing.assert_close(d[below], 2 * u.detach()[below].norm(dim=-1), rtol=1e-5, atol=1e-6)
    assert (math.sqrt(c) * h.detach().norm(dim=-1) < math.tanh(1.0) + 1e-6).all()
    d.sum().backward()
    assert torch.isfinite(u.grad).all()
    u0 = torch.zeros(2, 4, requires_grad=True)  # no 0/0 at the origin
    ToPoincare(c, clip_r=1.0)(u0).sum().backward()
    assert torch.isfinite(u0.grad).all()


def test_train_c_gets_gradient_and_stays_positive():
    tp = ToPoincare(0.05, train_c=True)
    assert math.isclose(tp.c.item(), 0.05, rel_tol=1e-6)
    assert [name for name, _ in tp.named_parameters()] == ["raw_c"]
    assert list(ToPoincare(0.05).parameters()) == []
    x = torch.randn(32, 8, generator=gen_for(0)) * 3
    dist0(tp(x), c=tp.c).mean().backward()
    assert tp.raw_c.grad is not None and tp.raw_c.grad.abs().item() > 0
    opt = torch.optim.SGD(tp.parameters(), lr=1e3)
    for _ in range(20):  # shove c towards 0 as hard as possible
        opt.zero_grad()
        (tp.c * 1e3).backward()
        opt.step()
    assert tp.c.item() > 0
    out = tp(x)
    assert torch.isfinite(out).all()
    tp_tiny = ToPoincare(1e-8, train_c=True)  # inverse softplus stays finite for tiny and large c
    assert math.isclose(tp_tiny.c.item(), 1e-8, rel_tol=1e-4)
    assert math.isclose(ToPoincare(50.0, train_c=True).c.item(), 50.0, rel_tol=1e-6)


def test_modules_follow_dtype():
    tp = ToPoincare(0.1, train_c=True).double()
    mlr = HyperbolicMLR(4, 3, 0.1).double()
    x = torch.randn(5, 4, dtype=F64)
    out = mlr(tp(x), c=tp.c)
    assert out.dtype == F64 and out.shape == (5, 3)
    assert "train_c=True" in repr(tp) and "n_classes=3" in repr(mlr)


# --------------------------------------------------------------------------------------------
# Hyperbolic MLR
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("c", CURVATURES)
def test_mlr_closed_form_and_geoopt_dist2plane(seed, c):
    torch.manual_seed(seed)
    mlr = HyperbolicMLR(6, 5, c).double()
    x = ball_points((13, 6), c, gen_for(seed), max_radius=0.95)
    logits = mlr(x)
    assert logits.shape == (13, 5)
    expected = ref_mlr(x, mlr.p_tangent.detach(), mlr.a_tangent.detach(), c)
    torch.testing.assert_close(logits, expected, rtol=1e-9, atol=1e-9)
    # identity: logit_k = lambda_{p_k} * dist2plane(x, p_k, a_k, signed, scaled) (geoopt, k = -c)
    k = torch.tensor(-c, dtype=F64)
    p = gmath.expmap0(mlr.p_tangent.detach(), k=k)
    a = mlr.a_tangent.detach() * (1 - c * (p * p).sum(-1, keepdim=True))
    geo = gmath.lambda_x(p, k=k) * gmath.dist2plane(x[:, None], p, a, k=k, signed=True, scaled=True)
    # geoopt's arsinh = log(x + sqrt(1 + x^2)) loses digits for negative arguments even in float64
    torch.testing.assert_close(logits, geo, rtol=1e-6, atol=1e-6)


def test_mlr_logit_vanishes_on_hyperplane_point_and_sign():
    torch.manual_seed(0)
    c = 0.7
    mlr = HyperbolicMLR(5, 4, c).double()
    p = ref_expmap0(mlr.p_tangent.detach(), c)
    logits = mlr(p)  # x = p_k lies on hyperplane k
    torch.testing.assert_close(logits.diagonal(), torch.zeros(4, dtype=F64), atol=1e-12, rtol=0)
    # moving from p_k along +a_k (a geodesic through p_k) makes logit k positive, along -a_k negative
    a = mlr.a_tangent.detach()
    step = 0.1 * a / a.norm(dim=-1, keepdim=True)
    plus = ref_mobius_add(p, ref_expmap0(step, c), c)
    minus = ref_mobius_add(p, ref_expmap0(-step, c), c)
    assert (mlr(plus).diagonal() > 0).all() and (mlr(minus).diagonal() < 0).all()


@pytest.mark.parametrize(("c", "tol"), [(0.01, 1e-3), (1.0, 1e-4)])
def test_mlr_float32_near_boundary_matches_float64(c, tol):
    """float32 logits of boundary points against the float64 closed form at the same float32
    p_k and x. geoopt's lambda_p * dist2plane is off by up to 300% here (c = 1), and using
    geoopt's lambda_x(-p (+) x) instead of the exact identity costs ~2e-3."""
    torch.manual_seed(1)
    mlr = HyperbolicMLR(16, 10, c)
    with torch.no_grad():
        mlr.p_tangent.mul_(8)  # offsets near the boundary too
    x = ToPoincare(c)(torch.randn(500, 16, generator=gen_for(1)) * 5 / math.sqrt(c))  # boundary
    p32 = ToPoincare(c)(mlr.p_tangent).detach().double()  # the p_k the module uses in float32
    a_t = mlr.a_tangent.detach().double()
    logits = mlr(x).detach().double()
    # closed form with p given: a_k = a~_k (1 - c||p_k||^2)
    a = a_t * (1 - c * (p32 * p32).sum(-1, keepdim=True))
    z = ref_mobius_add(-p32[None], x.double()[:, None], c)
    arg = 2 * math.sqrt(c) * (z * a).sum(-1) / ((1 - c * (z * z).sum(-1)) * a.norm(dim=-1))
    expected = 2 / (1 - c * (p32 * p32).sum(-1)) * a.norm(dim=-1) / math.sqrt(c) * torch.asinh(arg)
    assert ((logits - expected).abs() / expected.abs().clamp_min(1.0)).max() < tol


def test_mlr_c_override_and_input_shape():
    torch.manual_seed(0)
    mlr = HyperbolicMLR(3, 4, 1.0).double()
    other = HyperbolicMLR(3, 4, 0.3).double()
    other.load_state_dict(mlr.state_dict())
    x = ball_points((2, 7, 3), 0.3, gen_for(0))
    torch.testing.assert_close(mlr(x, c=0.3), other(x))
    assert mlr(x).shape == (2, 7, 4)  # leading dims kept
    with pytest.raises(ValueError, match="expected input"):
        mlr(torch.zeros(2, 5, dtype=F64))


# --------------------------------------------------------------------------------------------
# poincare_mean (HypAve)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("c", CURVATURES)
def test_poincare_mean_matches_klein_formula_and_geoopt(seed, c):
    g = gen_for(seed)
    x = ball_points((5, 4, 8), c, g, max_radius=0.95)  # (n_classes, n_shot, D)
    w = torch.rand(5, 4, generator=g, dtype=F64)
    mean = poincare_mean(x, c=c)
    assert mean.shape == (5, 8)
    torch.testing.assert_close(mean, ref_klein_mean(x, None, c))
    torch.testing.assert_close(poincare_mean(x, w, c=c), ref_klein_mean(x, w, c))
    # geoopt's gyromidpoint is the same point; reducedim must name the shot dim only
    k = torch.tensor(-c, dtype=F64)
    geo = gmath.weighted_midpoint(x, k=k, reducedim=[1], dim=-1)
    torch.testing.assert_close(mean, geo, rtol=1e-7, atol=1e-9)
    assert gmath.weighted_midpoint(x, k=k).shape == (8,)  # the default reduces over classes too
    torch.testing.assert_close(poincare_mean(x, c=c, keepdim=True), mean[:, None])
    torch.testing.assert_close(poincare_mean(x.transpose(0, 1), c=c, dim=0), mean)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("c", [0.01, 1.0])
def test_poincare_mean_special_cases(dtype, c):
    g = gen_for(7)
    tol = {"rtol": 2e-5, "atol": 2e-5} if dtype == torch.float32 else {"rtol": 1e-9, "atol": 1e-10}
    x = ball_points((6, 1, 10), c, g, max_radius=0.99, dtype=dtype)
    torch.testing.assert_close(poincare_mean(x, c=c), x[:, 0], **tol)  # one point
    torch.testing.assert_close(poincare_mean(x.expand(6, 3, 10), c=c), x[:, 0], **tol)  # identical points
    sym = torch.cat([x, -x], dim=1)
    torch.testing.assert_close(poincare_mean(sym, c=c), torch.zeros(6, 10, dtype=dtype), **tol)  # +-x -> 0
    pts = ball_points((6, 5, 10), c, g, dtype=dtype)
    mean = poincare_mean(pts, c=c)
    torch.testing.assert_close(poincare_mean(pts, torch.full((6, 5), 0.3, dtype=dtype), c=c), mean, **tol)
    w = torch.rand(6, 5, generator=g, dtype=F64).to(dtype)
    torch.testing.assert_close(poincare_mean(pts, 7 * w, c=c), poincare_mean(pts, w, c=c), **tol)
    w[:, -1] = 0  # a zero weight drops the point
    torch.testing.assert_close(poincare_mean(pts, w, c=c), poincare_mean(pts[:, :-1], w[:, :-1], c=c), **tol)


def test_poincare_mean_single_point_at_boundary_float64():
    """geoopt's weighted_midpoint clamps artanh at 1 - 1e-7 and moves such a point by ~3.8/sqrt(c)."""
    c = 1.0
    v = torch.randn(4, 1, 6, generator=gen_for(8), dtype=F64)
    x = v / v.norm(dim=-1, keepdim=True) * (1 - 2e-5)
    mean = poincare_mean(x, c=c)
    assert pairwise_dist(mean, x[:, 0], c=c).diagonal().max() < 1e-6


# --------------------------------------------------------------------------------------------
# gradients
# --------------------------------------------------------------------------------------------
def test_gradcheck_to_poincare():
    g = gen_for(10)
    u = torch.randn(3, 4, generator=g, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(ToPoincare(0.5), (u,))
    assert torch.autograd.gradcheck(ToPoincare(0.5, clip_r=1.0), (u * 2,))
    tp = ToPoincare(0.5, train_c=True).double()
    raw = tp.raw_c.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda uu, rr: functional_call(tp, {"raw_c": rr}, (uu,)), (u, raw))


def test_gradcheck_mlr():
    torch.manual_seed(11)
    mlr = HyperbolicMLR(4, 3, 0.8).double()
    x = ball_points((5, 4), 0.8, gen_for(11)).requires_grad_(True)
    p = mlr.p_tangent.detach().clone().requires_grad_(True)
    a = mlr.a_tangent.detach().clone().requires_grad_(True)
    fn = lambda xx, pp, aa: functional_call(mlr, {"p_tangent": pp, "a_tangent": aa}, (xx,))  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, p, a))
    ct = torch.tensor(0.8, dtype=F64, requires_grad=True)  # c shared with a learnable ToPoincare
    assert torch.autograd.gradcheck(lambda cc: mlr(x.detach(), c=cc), (ct,))


def test_gradcheck_poincare_mean_pairwise_dist_dist0():
    g = gen_for(12)
    c = 0.6
    x = ball_points((2, 3, 4), c, g).requires_grad_(True)
    w = (torch.rand(2, 3, generator=g, dtype=F64) + 0.1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda xx, ww: poincare_mean(xx, ww, c=c), (x, w))
    assert torch.autograd.gradcheck(lambda xx: poincare_mean(xx, c=c), (x,))
    a = ball_points((5, 4), c, g).requires_grad_(True)
    b = ball_points((3, 4), c, g).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda aa, bb: pairwise_dist(aa, bb, c=c), (a, b))
    assert torch.autograd.gradcheck(lambda aa: dist0(aa, c=c), (a,))
    ct = torch.tensor(c, dtype=F64, requires_grad=True)  # gradient w.r.t. a tensor c
    assert torch.autograd.gradcheck(lambda cc: pairwise_dist(a.detach(), b.detach(), c=cc), (ct,))


# --------------------------------------------------------------------------------------------
# property tests: no NaN/inf on extreme float32 inputs, forward and backward
# --------------------------------------------------------------------------------------------
EXTREME = st.one_of(
    st.sampled_from([0.0, -0.0, 1e-30, -1e-30, 1.0, -1.0, 1e6, -1e6]),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=32),
)
PROPERTY = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _features(n, d):
    return hnp.arrays(np.float32, (n, d), elements=EXTREME)


def _all_finite(*tensors):
    return all(bool(torch.isfinite(t).all()) for t in tensors)


@PROPERTY
@given(feats=_features(6, 5), c=st.sampled_from([0.01, 1.0, 4.0]), clip=st.sampled_from([None, 1.0]))
def test_property_head_finite(feats, c, clip):
    torch.manual_seed(0)
    u = torch.from_numpy(feats).requires_grad_(True)
    tp = ToPoincare(c, clip_r=clip, train_c=True)
    mlr = HyperbolicMLR(5, 3, c)
    h = tp(u)
    assert (math.sqrt(c) * h.detach().double().norm(dim=-1) < 1).all()
    logits = mlr(h, c=tp.c)
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 0, 1, 2])) + dist0(h, c=tp.c).sum()
    loss.backward()
    assert _all_finite(h, logits, u.grad, tp.raw_c.grad, mlr.p_tangent.grad, mlr.a_tangent.grad)


@PROPERTY
@given(a=_features(6, 5), b=_features(4, 5), c=st.sampled_from([0.01, 1.0]))
def test_property_functions_finite_on_raw_inputs(a, b, c):
    """Points at or beyond the boundary (the raw features themselves) are projected, not NaN."""
    x = torch.from_numpy(a).requires_grad_(True)
    y = torch.from_numpy(b).requires_grad_(True)
    w = torch.rand(2, 3, generator=gen_for(0))
    d = pairwise_dist(x, y, c=c)
    m = poincare_mean(x.reshape(2, 3, 5), w, c=c)
    m0 = poincare_mean(x.reshape(2, 3, 5), c=c)
    d0 = dist0(x, c=c)
    mlr = HyperbolicMLR(5, 3, c)
    logits = mlr(x)
    (d.sum() + m.sum() + m0.sum() + d0.sum() + logits.sum() + pairwise_dist(m, m0, c=c).sum()).backward()
    assert _all_finite(d, m, m0, d0, logits, x.grad, y.grad, mlr.a_tangent.grad)


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------
BAD_C = [0, 0.0, -1.0, float("nan"), float("inf"), -float("inf"), None, "1.0", True,
         torch.tensor([1.0, 2.0]), torch.tensor(-1.0), torch.tensor(0)]


@pytest.mark.parametrize("bad", BAD_C, ids=repr)
def test_invalid_c_raises(bad):
    x = torch.zeros(2, 3, 4)
    mlr = HyperbolicMLR(4, 2, 1.0)
    calls = [
        lambda: ToPoincare(bad),
        lambda: ToPoincare(bad, train_c=True),
        lambda: HyperbolicMLR(4, 2, bad),
        lambda: mlr(x[..., :4], c=bad) if bad is not None else mlr(x, c=float("nan")),  # None = default c
        lambda: dist0(x, c=bad),
        lambda: pairwise_dist(x[0], x[1], c=bad),
        lambda: poincare_mean(x, c=bad),
        lambda: expmap0(x, c=bad),
        lambda: logmap0(x, c=bad),
        lambda: mobius_add(x, x, c=bad),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="positive finite"):
            call()


def test_other_argument_validation():
    for bad in (0, -1.0, float("nan"), "2"):
        with pytest.raises(ValueError, match="clip_r"):
            ToPoincare(1.0, clip_r=bad)
    with pytest.raises(ValueError, match="dim"):
        HyperbolicMLR(0, 3, 1.0)
    with pytest.raises(ValueError, match="n_classes"):
        HyperbolicMLR(3, 2.5, 1.0)
    x = torch.zeros(2, 3, 4)
    with pytest.raises(ValueError, match="dim"):
        poincare_mean(x, c=1.0, dim=-1)
    with pytest.raises(ValueError, match="weights"):
        poincare_mean(x, torch.ones(2, 4), c=1.0)
    with pytest.raises(ValueError, match="last dimension"):
        pairwise_dist(x[0], torch.zeros(3, 5), c=1.0)


@pytest.mark.parametrize("c", [0.01, 1.0])
def test_riemannian_option_rescales_only_the_gradient(c):
    """Official hyptorch: forward unchanged, the gradient at the output point x times (1 − c‖x‖²)²/4."""
    g = gen_for(13)
    u = torch.randn(6, 5, generator=g, dtype=F64) / math.sqrt(c)
    upstream = torch.randn(6, 5, generator=g, dtype=F64)
    plain_u, riemannian_u = u.clone().requires_grad_(), u.clone().requires_grad_()
    plain, riemannian = ToPoincare(c)(plain_u), ToPoincare(c, riemannian=True)(riemannian_u)
    assert torch.equal(plain, riemannian)
    (plain * upstream).sum().backward()
    (riemannian * upstream).sum().backward()
    scale = (1 - c * plain.detach().pow(2).sum(-1, keepdim=True)).pow(2) / 4
    torch.testing.assert_close(riemannian_u.grad, plain_u.grad * scale)
    assert (scale < 0.25).all() and (scale > 0).all()
