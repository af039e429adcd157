r"""Gromov δ-hyperbolicity of finite metric spaces (Khrulkov et al., CVPR 2020, Sec. 3).

For a metric space :math:`(X, d)` and a base point :math:`p`, the Gromov product is

.. math::

    (x|y)_p = \tfrac12\bigl(d(p, x) + d(p, y) - d(x, y)\bigr),

and :math:`X` is :math:`\delta`-hyperbolic when
:math:`(x|y)_p \ge \min\{(x|z)_p, (y|z)_p\} - \delta` for all :math:`x, y, z, p`. With the
Gromov matrix :math:`G^{(p)}_{xy} = (x|y)_p` and the max-min matrix product
:math:`(A \otimes B)_{ij} = \max_k \min(A_{ik}, B_{kj})`, the smallest such δ for one base point is

.. math::

    \delta_p = \max_{i,j}\bigl((G^{(p)} \otimes G^{(p)})_{ij} - G^{(p)}_{ij}\bigr),
    \qquad \delta = \max_p \delta_p .

The maximum over base points equals the four-point-condition δ: for every quadruple
:math:`x, y, z, w` the largest of :math:`d(x,y)+d(z,w)`, :math:`d(x,z)+d(y,w)`, :math:`d(x,w)+d(y,z)`
exceeds the middle one by at most :math:`2\delta` (expanding the Gromov products,
:math:`\min\{(x|z)_p, (y|z)_p\} - (x|y)_p` *is* half of "largest minus middle" when
:math:`d(x,y) + d(p,z)` is the largest sum). A single base point bounds it on both sides,
:math:`\delta_p \le \delta \le 2\delta_p` (Gromov; Ghys and de la Harpe, Prop. 2.2). The paper
reports the scale-free :math:`\delta_{rel} = 2\delta / \operatorname{diam}(X)`.

Complexity, for :math:`n` points: one base point is one max-min product, :math:`O(n^3)` time;
all base points are :math:`O(n^4)`. Both use the symmetry of :math:`G` (only :math:`i \le j`,
half the work). All base points also use the symmetries of the four-point quantity
:math:`\min\{(x|z)_p, (y|z)_p\} - (x|y)_p` (invariant under :math:`x \leftrightarrow y`,
:math:`p \leftrightarrow z` and :math:`(x, y) \leftrightarrow (p, z)`): only quadruples whose
base point has the smallest index are needed, i.e. base point :math:`p` on the trailing block
:math:`d[p{:}, p{:}]`: :math:`\sum_p (n-p)^3/2 \approx n^4/8` min/max operations, the work of
about :math:`n/4` single-base-point products. Memory is :math:`O(n^2)` plus a few
``max_chunk_bytes`` (the Gromov batch and the blocked intermediates).

Cost: one base point is :math:`O(n^3)` work, all base points :math:`O(n^4)`;
``benchmarks/delta_hyperbolicity.py`` prints the times for both on the machine it runs on (the README
quotes ours). CUDA uses 256 MiB blocks.

Differences from the official ``hyptorch/delta.py`` (repository ``hyperbolic-image-embeddings``):

* it uses one fixed base point, the first row of each sample (its issue #10); here
  ``base_points="all"`` gives the true four-point δ, and ``"one"`` reproduces the official choice
  (row 0 of a random sample, i.e. a random point);
* its ``batched_delta_hyp`` divided δ by the diameter without the factor 2 until 2022 (issue #12);
  here :math:`\delta_{rel} = 2\delta / \operatorname{diam}` always;
* it draws each batch's indices with replacement (NumPy's global RNG); here samples are drawn
  without replacement (duplicates are zero-distance pairs, which change neither δ nor the
  diameter, but waste part of the batch), seeded;
* it is NumPy and holds the :math:`n \times n \times n` array of ``np.minimum`` at once
  (27 GB in float64 at :math:`n = 1500`); here the product is blocked in torch and can run on
  CUDA (untested here).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "delta_hyperbolicity",
    "four_point_delta",
    "gromov_products",
    "maxmin_product",
    "pairwise_distances",
    "relative_delta",
]

METRICS = ("euclidean", "cosine", "poincare")

# Default budget for one blocked intermediate. On CPU small blocks that stay in cache are fastest
# (large blocks are fresh allocations every step); on CUDA large blocks keep the GPU busy (caching allocator).
_CPU_CHUNK_BYTES = 8 * 2**20
_CUDA_CHUNK_BYTES = 256 * 2**20
# Width of a k block (the reduced dimension): 16 on CPU (the best of 8-64 in the benchmark), 64 on CUDA.
_CPU_CHUNK_K = 16
_CUDA_CHUNK_K = 64


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------
def _as_float_tensor(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    if not torch.is_floating_point(x):
        x = x.to(torch.get_default_dtype())
    return x


def _check_distances(distances: Any) -> torch.Tensor:
    """Validate a ``(n, n)`` distance matrix; return it exactly symmetrised."""
    d = _as_float_tensor(distances, "distances")
    if d.dim() != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"distances must be a square (n, n) matrix, got shape {tuple(d.shape)}")
    if d.shape[0] == 0:
        raise ValueError("distances must describe at least one point, got shape (0, 0)")
    if not bool(torch.isfinite(d).all()):
        raise ValueError("distances must be finite (found NaN or inf)")
    scale = float(d.abs().max())
    tol = math.sqrt(torch.finfo(d.dtype).eps) * max(scale, 1.0)
    asym = float((d - d.T).abs().max())
    if asym > tol:
        raise ValueError(f"distances must be symmetric: max |d - d.T| = {asym:.3g} > tolerance {tol:.3g}")
    if float(d.min()) < -tol:
        raise ValueError(f"distances must be non-negative, found {float(d.min()):.3g}")
    diag = float(d.diagonal().abs().max())
    if diag > tol:
        raise ValueError(f"distances must have a zero diagonal, found |d(x, x)| = {diag:.3g}")
    # (a + a) / 2 == a exactly, so an exactly symmetric input is returned unchanged.
    return 0.5 * (d + d.T)


def _check_index(value: Any, n: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an int index or None, got {value!r}")
    if not 0 <= int(value) < n:
        raise ValueError(f"{name} must be in [0, {n}), got {value}")
    return int(value)


def _default_chunk_bytes(device: torch.device) -> int:
    return _CUDA_CHUNK_BYTES if device.type == "cuda" else _CPU_CHUNK_BYTES


def _default_chunk_k(device: torch.device) -> int:
    return _CUDA_CHUNK_K if device.type == "cuda" else _CPU_CHUNK_K


def _chunk_sizes(batch: int, n_rows: int, n_k: int, n_cols: int, itemsize: int, device: torch.device,
                 chunk_i: int | None, chunk_k: int | None, max_chunk_bytes: int | None) -> tuple[int, int]:
    """Row and k block sizes so that one ``(batch, ci, ck, n_cols)`` block fits the budget."""
    budget = _default_chunk_bytes(device) if max_chunk_bytes is None else max_chunk_bytes
    ck = min(n_k, chunk_k or _default_chunk_k(device))
    per_row = batch * ck * n_cols * itemsize
    if chunk_k is None and per_row > budget:  # shrink k before going below one row
        ck = max(1, budget // max(1, batch * n_cols * itemsize))
        per_row = batch * ck * n_cols * itemsize
    ci = min(n_rows, chunk_i or max(1, budget // max(1, per_row)))
    return max(1, ci), max(1, ck)


def _positive_int_or_none(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive int or None, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------------------------
# Gromov products and the max-min product
# --------------------------------------------------------------------------------------------
def gromov_products(distances: torch.Tensor, base_point: int | Sequence[int] | torch.Tensor) -> torch.Tensor:
    r"""Gromov products with respect to one base point (or a batch of them).

    .. math::

        G^{(p)}_{xy} = (x|y)_p = \tfrac12\bigl(d(p, x) + d(p, y) - d(x, y)\bigr).

    Parameters
    ----------
    distances : torch.Tensor
        Symmetric ``(n, n)`` distance matrix with a zero diagonal (NumPy arrays are accepted).
    base_point : int or sequence of int or 1-D integer tensor
        Index :math:`p` of the base point, or ``b`` indices.

    Returns
    -------
    torch.Tensor
        ``(n, n)`` for an int ``base_point``, ``(b, n, n)`` for ``b`` indices; symmetric, with
        :math:`G_{pp} = 0` and :math:`G_{xx} = d(p, x)`.
    """
    d = _check_distances(distances)
    n = d.shape[0]
    if isinstance(base_point, numbers.Integral) and not isinstance(base_point, bool):
        p = _check_index(base_point, n, "base_point")
        return _gromov(d, torch.tensor([p], device=d.device))[0]
    idx = torch.as_tensor(base_point, device=d.device)
    if idx.dim() != 1 or idx.dtype in (torch.bool,) or torch.is_floating_point(idx):
        raise ValueError(f"base_point must be an int or a 1-D sequence of ints, got {base_point!r}")
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n):
        raise ValueError(f"base_point indices must be in [0, {n}), got {idx.tolist()}")
    return _gromov(d, idx.long())


def _gromov(d: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    rows = d[idx]  # (b, n): d(p, .)
    return 0.5 * (rows[:, :, None] + rows[:, None, :] - d)


def _maxmin_rows(a_rows: torch.Tensor, b: torch.Tensor, chunk_k: int) -> torch.Tensor:
    """``max_k min(a_rows[..., i, k], b[..., k, j])`` for a block of rows, blocked over ``k``.

    ``a_rows`` is ``(..., ci, m)``, ``b`` is ``(..., m, p)``; each step holds one
    ``(..., ci, ck, p)`` intermediate.
    """
    m = a_rows.shape[-1]
    out = None
    for k0 in range(0, m, chunk_k):
        k1 = min(k0 + chunk_k, m)
        block = torch.minimum(a_rows[..., :, k0:k1, None], b[..., None, k0:k1, :]).amax(dim=-2)
        out = block if out is None else torch.maximum(out, block, out=out)
    return out


def maxmin_product(a: torch.Tensor, b: torch.Tensor, *, chunk_i: int | None = None, chunk_k: int | None = None,
                   max_chunk_bytes: int | None = None) -> torch.Tensor:
    r"""Max-min (tropical) matrix product, blocked over rows and the inner index.

    .. math::

        (A \otimes B)_{ij} = \max_k \min(A_{ik}, B_{kj}).

    Only comparisons, no arithmetic: the result is exact in any dtype. Time :math:`O(nmp)`,
    memory :math:`O(np)` plus one ``(..., chunk_i, chunk_k, p)`` block at a time.

    Parameters
    ----------
    a : torch.Tensor
        Shape ``(..., n, m)``.
    b : torch.Tensor
        Shape ``(..., m, p)``; leading dimensions broadcast against ``a``'s.
    chunk_i, chunk_k : int, optional
        Block sizes over the rows of ``a`` and over ``k``; by default chosen from ``max_chunk_bytes``.
    max_chunk_bytes : int, optional
        Budget of one block (default 8 MiB on CPU, where cache-sized blocks are fastest, and
        256 MiB on CUDA).

    Returns
    -------
    torch.Tensor
        Shape ``(..., n, p)``.
    """
    if a.dim() < 2 or b.dim() < 2 or a.shape[-1] != b.shape[-2]:
        raise ValueError(
            f"maxmin_product expects (..., n, m) and (..., m, p), got {tuple(a.shape)} and {tuple(b.shape)}")
    chunk_i = _positive_int_or_none(chunk_i, "chunk_i")
    chunk_k = _positive_int_or_none(chunk_k, "chunk_k")
    max_chunk_bytes = _positive_int_or_none(max_chunk_bytes, "max_chunk_bytes")
    a, b = _broadcast_batch(a, b)
    n, m, p = a.shape[-2], a.shape[-1], b.shape[-1]
    if n == 0 or m == 0:
        return a.new_full((*a.shape[:-1], p), -math.inf)
    batch = math.prod(a.shape[:-2])
    ci, ck = _chunk_sizes(batch, n, m, p, a.element_size(), a.device, chunk_i, chunk_k, max_chunk_bytes)
    return torch.cat([_maxmin_rows(a[..., i0:i0 + ci, :], b, ck) for i0 in range(0, n, ci)], dim=-2)


def _broadcast_batch(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    batch = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    return a.expand(*batch, *a.shape[-2:]), b.expand(*batch, *b.shape[-2:])


# --------------------------------------------------------------------------------------------
# δ
# --------------------------------------------------------------------------------------------
def _delta_of_batch(g: torch.Tensor, chunk_i: int, chunk_k: int) -> torch.Tensor:
    r"""``max over the batch, i <= j and k of min(G_ik, G_kj) - G_ij`` for a ``(b, n, n)`` G."""
    n = g.shape[-1]
    best = g.new_zeros(())  # i = j = k gives exactly 0, so δ >= 0
    for i0 in range(0, n, chunk_i):
        i1 = min(i0 + chunk_i, n)
        # rows i in [i0, i1), columns j >= i0 (G symmetric: (i, j) and (j, i) give the same value)
        prod = _maxmin_rows(g[:, i0:i1, :], g[:, :, i0:], chunk_k)
        best = torch.maximum(best, (prod - g[:, i0:i1, i0:]).amax())
    return best


def four_point_delta(distances: torch.Tensor, base_point: int | None = None, *,
                     max_chunk_bytes: int | None = None) -> float:
    r"""Gromov δ of the finite metric space given by a distance matrix.

    .. math::

        \delta_p = \max_{i,j}\bigl((G^{(p)} \otimes G^{(p)})_{ij} - G^{(p)}_{ij}\bigr), \qquad
        \delta = \max_p \delta_p
        = \tfrac12 \max_{x,y,z,w}\bigl(\text{largest} - \text{middle of }
        \{d_{xy} + d_{zw},\ d_{xz} + d_{yw},\ d_{xw} + d_{yz}\}\bigr).

    Parameters
    ----------
    distances : torch.Tensor
        Symmetric ``(n, n)`` distance matrix with a zero diagonal, on any device; the computation
        runs in its dtype and on its device (float64 recommended: the max-min product is exact,
        the Gromov products round).
    base_point : int or None
        ``p`` for :math:`\delta_p` (the official estimator uses 0, the first row: :math:`O(n^3)`), or
        ``None`` for the maximum over all base points, the true four-point δ (:math:`O(n^4)`,
        about ``n / 4`` single-base-point products).
    max_chunk_bytes : int, optional
        Budget of one blocked intermediate (default 8 MiB on CPU, 256 MiB on CUDA); with
        ``base_point=None`` it also bounds the batch of ``(b, n, n)`` Gromov matrices.

    Returns
    -------
    float
        δ ≥ 0 (0 for a tree metric or a line, 1 for the 4-cycle with unit edges).

    Raises
    ------
    ValueError
        For a non-square, asymmetric, negative, non-finite or non-zero-diagonal matrix, or a
        base point out of range.

    Examples
    --------
    >>> import torch
    >>> cycle = torch.tensor([[0., 1, 2, 1], [1, 0, 1, 2], [2, 1, 0, 1], [1, 2, 1, 0]])
    >>> four_point_delta(cycle), four_point_delta(cycle, base_point=0)
    (1.0, 1.0)
    """
    d = _check_distances(distances)
    max_chunk_bytes = _positive_int_or_none(max_chunk_bytes, "max_chunk_bytes")
    n = d.shape[0]
    itemsize = d.element_size()
    if base_point is not None:
        p = _check_index(base_point, n, "base_point")
        g = _gromov(d, torch.tensor([p], device=d.device))
        ci, ck = _chunk_sizes(1, n, n, n, itemsize, d.device, None, None, max_chunk_bytes)
        return float(_delta_of_batch(g, ci, ck))
    budget = _default_chunk_bytes(d.device) if max_chunk_bytes is None else max_chunk_bytes
    n_base = max(1, min(n, budget // (n * n * itemsize)))
    best = d.new_zeros(())
    for p0 in range(0, n, n_base):
        p1 = min(p0 + n_base, n)
        # The four-point quantity of (p; x, y, z) is invariant under x <-> y, p <-> z and
        # (x, y) <-> (p, z), so only quadruples whose base point is the smallest index are needed:
        # x, y, z >= p >= p0, i.e. the trailing block d[p0:, p0:].
        sub = d[p0:, p0:]
        g = _gromov(sub, torch.arange(p1 - p0, device=d.device))
        m = n - p0
        ci, ck = _chunk_sizes(p1 - p0, m, m, m, itemsize, d.device, None, None, max_chunk_bytes)
        best = torch.maximum(best, _delta_of_batch(g, ci, ck))
    return float(best)


def relative_delta(delta: float | torch.Tensor, distances: torch.Tensor) -> float:
    r"""Scale-free :math:`\delta_{rel} = 2\delta / \operatorname{diam}(X)`, in :math:`[0, 1]` for metrics.

    Parameters
    ----------
    delta : float or torch.Tensor
        δ of the space (from :func:`four_point_delta`).
    distances : torch.Tensor
        The ``(n, n)`` distance matrix; :math:`\operatorname{diam} = \max d`.

    Returns
    -------
    float
        0 when the diameter is 0 (a single point, or all points coincide), never NaN.
    """
    d = _as_float_tensor(distances, "distances")
    diam = float(d.max()) if d.numel() else 0.0
    delta = float(delta)
    if not math.isfinite(delta) or not math.isfinite(diam):
        raise ValueError(f"delta and the diameter must be finite, got {delta} and {diam}")
    return 0.0 if diam <= 0.0 else 2.0 * delta / diam


# --------------------------------------------------------------------------------------------
# distances and the sampled estimate
# --------------------------------------------------------------------------------------------
def pairwise_distances(points: torch.Tensor, metric: str = "euclidean", *, c: float = 1.0,
                       dtype: torch.dtype | None = torch.float64) -> torch.Tensor:
    r"""All pairwise distances of a point set, as a symmetric matrix with a zero diagonal.

    * ``"euclidean"``: :math:`\|x - y\|` (``torch.cdist``; its matrix-product form above 25
      rows, so coincident points get distances of about :math:`\sqrt{\epsilon}\,\|x\|` before the
      diagonal is zeroed: use float64).
    * ``"cosine"``: :math:`1 - \cos(x, y)`. **Not a metric** in general (it breaks the triangle
      inequality: at 0°, 45°, 90°, :math:`1 > 2(1 - \cos 45°)`), so its "δ" is the formula applied
      to a semimetric, not the hyperbolicity of a metric space; the chordal distance
      :math:`\sqrt{2(1 - \cos)}` (Euclidean on normalised vectors) is a metric.
    * ``"poincare"``: the geodesic distance of the Poincaré ball of curvature :math:`-c`,
      through :func:`protolab.hyperbolic.pairwise_dist`; points must lie strictly inside the
      ball, :math:`\sqrt{c}\|x\| < 1` (points within geoopt's margin of the boundary, ε = 1e-5 in
      float64, are projected by ``pairwise_dist``).

    Parameters
    ----------
    points : torch.Tensor
        Shape ``(n, D)`` (NumPy arrays are accepted).
    metric : {"euclidean", "cosine", "poincare"}
    c : float
        Positive curvature magnitude, used by ``"poincare"`` only.
    dtype : torch.dtype or None
        Computation dtype, float64 by default; ``None`` keeps the points' floating dtype.

    Returns
    -------
    torch.Tensor
        Shape ``(n, n)``, on ``points``' device.
    """
    x = _as_float_tensor(points, "points")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if x.dim() != 2:
        raise ValueError(f"points must have shape (n, D), got {tuple(x.shape)}")
    if dtype is not None:
        x = x.to(dtype)
    if not bool(torch.isfinite(x).all()):
        raise ValueError("points must be finite (found NaN or inf)")
    if metric == "euclidean":
        d = torch.cdist(x, x)
    elif metric == "cosine":
        norms = x.norm(dim=-1)
        if x.shape[0] and float(norms.min()) == 0.0:
            raise ValueError("cosine distance is undefined for zero vectors")
        u = x / norms[:, None]
        d = 1.0 - u @ u.T
    else:
        from protolab.hyperbolic import pairwise_dist  # geoopt only when needed

        if isinstance(c, bool) or not isinstance(c, numbers.Real) or not math.isfinite(c) or c <= 0:
            raise ValueError(f"c must be a positive finite number for the Poincaré metric, got {c!r}")
        radius = float((x.norm(dim=-1) * math.sqrt(c)).max()) if x.shape[0] else 0.0
        if radius >= 1.0:
            raise ValueError(f"poincare points must satisfy sqrt(c) * ||x|| < 1 (c = {c}); the largest is {radius:.6g}")
        d = pairwise_dist(x, x, c=c)
    d = 0.5 * (d + d.T)
    d = d.clamp_min(0.0)
    d.fill_diagonal_(0.0)
    return d


def delta_hyperbolicity(points: torch.Tensor, *, n_points: int = 1500, n_tries: int = 10, base_points: str = "one",
                        metric: str = "euclidean", c: float = 1.0, seed: int = 0, device: str = "cpu",
                        dtype: torch.dtype = torch.float64, max_chunk_bytes: int | None = None) -> dict[str, Any]:
    r"""Sampled :math:`\delta_{rel}` of a point cloud (the paper's Table 2 estimate), mean ± std over tries.

    Each try draws ``n_points`` points without replacement (seeded), computes their distances
    and :math:`\delta_{rel} = 2\delta / \operatorname{diam}` of the sample. With
    ``base_points="one"`` δ is the official single-base-point :math:`\delta_0` (row 0 of the
    random sample); with ``"all"`` it is the true four-point δ, and the official :math:`\delta_0`
    of the same samples is returned beside it. When ``points`` holds at most ``n_points`` points,
    all of them are used once (every try would be the same set), so ``n_tries`` is 1. The std is
    NumPy's default (``ddof=0``), as in the official ``batched_delta_hyp``.

    Parameters
    ----------
    points : torch.Tensor
        ``(N, D)`` features (NumPy arrays are accepted); for ``"poincare"``, points in the ball.
    n_points : int
        Sample size (official: 1,500).
    n_tries : int
        Number of samples (official: 10).
    base_points : {"one", "all"}
        Single base point (official, :math:`O(n^3)`) or all (true δ, :math:`O(n^4)`).
    metric : {"euclidean", "cosine", "poincare"}
        See :func:`pairwise_distances`.
    c : float
        Curvature magnitude for ``"poincare"``.
    seed : int
        Seed of the sampling (a private ``torch.Generator``; global RNG state is untouched).
    device : str
        ``"cpu"``, ``"cuda"`` or ``"auto"`` (:func:`protolab.core.reproducibility.resolve_device`).
    dtype : torch.dtype
        Dtype of the distances and the δ computation (float64 by default).
    max_chunk_bytes : int, optional
        Passed to :func:`four_point_delta`.

    Returns
    -------
    dict
        ``delta_rel_mean``, ``delta_rel_std``, ``delta_mean``, ``delta_std``, ``diameter_mean``,
        per-try lists ``delta_rel``, ``delta``, ``diameter``; for ``base_points="all"`` also
        ``delta_rel_single_mean``, ``delta_rel_single_std``, ``delta_rel_single`` and
        ``delta_single`` (official base point 0 of the same samples); and the settings
        ``n_points`` (the sample size used), ``n_tries`` (the number used), ``base_points``,
        ``metric``, ``c``, ``seed``, ``with_replacement`` (always False).
    """
    from protolab.core.reproducibility import resolve_device

    if base_points not in ("one", "all"):
        raise ValueError(f"base_points must be 'one' or 'all', got {base_points!r}")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    for name, value in (("n_points", n_points), ("n_tries", n_tries)):
        _positive_int_or_none(value, name)
        if value is None:
            raise ValueError(f"{name} must be a positive int, got None")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    x = _as_float_tensor(points, "points")
    if x.dim() != 2 or x.shape[0] < 1:
        raise ValueError(f"points must have shape (N, D) with N >= 1, got {tuple(x.shape)}")
    dev = resolve_device(device)
    total = x.shape[0]
    size = min(int(n_points), total)
    tries = int(n_tries) if total > n_points else 1
    generator = torch.Generator().manual_seed(int(seed))
    out: dict[str, list[float]] = {"delta": [], "delta_rel": [], "diameter": [], "delta_single": [],
                                   "delta_rel_single": []}
    for _ in range(tries):
        idx = torch.randperm(total, generator=generator)[:size]  # a random base point 0, as officially
        d = pairwise_distances(x[idx].to(dev), metric, c=c, dtype=dtype)
        diam = float(d.max())
        delta = four_point_delta(d, None if base_points == "all" else 0, max_chunk_bytes=max_chunk_bytes)
        out["delta"].append(delta)
        out["delta_rel"].append(relative_delta(delta, d))
        out["diameter"].append(diam)
        if base_points == "all":
            single = four_point_delta(d, 0, max_chunk_bytes=max_chunk_bytes)
            out["delta_single"].append(single)
            out["delta_rel_single"].append(relative_delta(single, d))
    result: dict[str, Any] = {
        "delta_rel_mean": float(np.mean(out["delta_rel"])),
        "delta_rel_std": float(np.std(out["delta_rel"])),
        "delta_mean": float(np.mean(out["delta"])),
        "delta_std": float(np.std(out["delta"])),
        "diameter_mean": float(np.mean(out["diameter"])),
        "delta_rel": out["delta_rel"],
        "delta": out["delta"],
        "diameter": out["diameter"],
    }
    if base_points == "all":
        result.update({
            "delta_rel_single_mean": float(np.mean(out["delta_rel_single"])),
            "delta_rel_single_std": float(np.std(out["delta_rel_single"])),
            "delta_rel_single": out["delta_rel_single"],
            "delta_single": out["delta_single"],
        })
    result.update({"n_points": size, "n_tries": tries, "base_points": base_points, "metric": metric,
                   "c": float(c), "seed": int(seed), "with_replacement": False})
    return result
