r"""Poincaré-ball layers for Hyperbolic Image Embeddings (Khrulkov et al., CVPR 2020).

Everything here lives on the Poincaré ball of curvature :math:`-c` (``c > 0``)

.. math::

    \mathbb{D}^n_c = \{x \in \mathbb{R}^n : c\|x\|^2 < 1\}, \qquad
    \lambda^c_x = \frac{2}{1 - c\|x\|^2}.

The geometry comes from geoopt's κ-stereographic functions. **geoopt's functions take the
sectional curvature** ``k = -c``; passing ``c`` itself gives the *sphere*. Every function in this
module therefore takes the positive ``c`` of the paper and converts it once, in :func:`_k`.

Deviations from "call geoopt and nothing else", each covered by a test (``benchmarks/hyperbolic_heads.py``
prints the speed of the heads):

* :class:`HyperbolicMLR` does not use ``geoopt.dist2plane``: its ``arsinh`` is
  ``log(x + sqrt(1 + x²))``, which cancels catastrophically for negative arguments, and
  ``1 - c‖-p ⊕ x‖²`` cancels near the boundary; in float32 near the boundary (c = 1) its logits
  are off by up to 3× their value. Broadcasting Möbius addition over classes also costs
  :math:`O(BKD)` memory and time (much slower at B = 256, D = 512, K = 100). The logits are
  evaluated in an equivalent closed form with two matrix products and ``torch.asinh``.
* :func:`poincare_mean` forms the Klein midpoint exactly as geoopt's ``weighted_midpoint`` does
  but maps it back algebraically: geoopt's :math:`\tfrac12\otimes_c m` clamps ``artanh`` at
  1 - 1e-7 and, in float64, moves a lone point near the boundary by up to :math:`3.8/\sqrt{c}`.
* :func:`pairwise_dist` uses the equivalent ``asinh`` form of the distance so that memory is
  :math:`O(NM)`; broadcasting ``geoopt.dist`` would hold several :math:`N \times M \times D`
  tensors for the backward pass (hundreds of MB for 450 × 30 × 1600).
* Every function and module forward here that calls geoopt runs geoopt's TorchScript functions
  unoptimised (:func:`_unspecialised`: ``torch.jit.optimized_execution(False)``, scoped to the call
  and thread-local), so that they give the same bits on the first call and the thousandth.
  TorchScript's profiling executor profiles a scripted function's first call, then switches it to
  an optimised graph (on CPU, symbolic autodiff whose float32 gradients differ in the last bits; on
  CUDA also fused kernels). What a training step computed then depended on how many calls the
  *process* had made, so a hyperbolic ProtoNet resumed from its checkpoint in a new process drifted
  from the uninterrupted run (``tests/test_resume_hyperbolic.py``). Unoptimised, geoopt's functions
  run op by op with eager PyTorch's numbers (those of ``PYTORCH_JIT=0``). Cost on CPU (one thread):
  none measurable, the CPU time of a forward and backward pass of ``ToPoincare`` + ``HyperbolicMLR``
  (256 × 512, 10 classes) or of ProtoNet's prototype logits (75 queries, 5-way, 1600-d) stays
  within ±5%; not measured on CUDA, where the optimised graph would also fuse element-wise kernels.
  TorchScript keeps an optimised graph once it has one, so calling geoopt's scripted functions
  directly, outside this module, more than once in a process can specialise them for this
  module's calls too.

``c`` may be a Python number or a one-element floating tensor (e.g. a learnable ``ToPoincare.c``,
which carries gradients); a tensor is checked with ``.item()``, one device sync per call on CUDA
(geoopt's own functions already sync several times per call).

Inputs at or beyond the boundary are first projected into the ball (geoopt's ``project``:
:math:`\sqrt{c}\|x\| \le 1 - \epsilon`, ε = 4e-3 in float32 and 1e-5 in float64), so that every
function here is finite for every finite input.

Precision: every function and module forward here is wrapped in :func:`at_least_float32`. Under
``torch.autocast`` (CPU bfloat16, CUDA bfloat16/float16) they compute in float32, with 16-bit
inputs cast up, and return float32; float64 stays float64. 16 bits are not enough for the ball:
bfloat16 resolves :math:`1 - c\|x\|^2` only to 2⁻⁸ near the boundary, geoopt's projection margin
for 16-bit dtypes is float64's 1e-5 (so projected points land on the boundary), and autocast would
run the distance matrix products in bfloat16.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable
from contextlib import ExitStack
from typing import TypeVar

import torch
from geoopt.manifolds.stereographic import math as gmath
from torch import nn
from torch.nn import functional as F

__all__ = [
    "HyperbolicMLR",
    "ToPoincare",
    "at_least_float32",
    "attention_midpoint",
    "clip_features",
    "dist0",
    "expmap0",
    "logmap0",
    "mobius_add",
    "pairwise_dist",
    "poincare_mean",
]

CurvatureLike = float | torch.Tensor

# Smallest value a learnable c may take (keeps 1/sqrt(c) finite in float32).
_C_MIN = 1e-15

_HALF_DTYPES = (torch.float16, torch.bfloat16)
_AUTOCAST_DEVICES = ("cpu", "cuda")
_Function = TypeVar("_Function", bound=Callable)


# --------------------------------------------------------------------------------------------
# precision
# --------------------------------------------------------------------------------------------
def at_least_float32(function: _Function) -> _Function:
    """Decorator: run ``function`` with autocast off and its 16-bit floating tensor arguments cast to float32.

    float32 and float64 arguments (and non-tensors) pass unchanged, so outside autocast a float32 or
    float64 call is exactly the undecorated one. The cast is differentiable: gradients reach a
    bfloat16 backbone in its own dtype. Used by every function of this module and by
    :class:`protolab.fewshot.protonet.ProtoNet`'s head; decorate a method (``self`` is passed through) or a
    function.
    """

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        args = tuple(_float32_if_half(arg) for arg in args)
        kwargs = {name: _float32_if_half(value) for name, value in kwargs.items()}
        with ExitStack() as stack:
            for device_type in _AUTOCAST_DEVICES:
                if torch.is_autocast_enabled(device_type):
                    stack.enter_context(torch.autocast(device_type, enabled=False))
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _float32_if_half(value):
    if isinstance(value, torch.Tensor) and value.dtype in _HALF_DTYPES:
        return value.float()
    return value


# --------------------------------------------------------------------------------------------
# the same numbers on every call
# --------------------------------------------------------------------------------------------
def _unspecialised(function: _Function) -> _Function:
    """Decorator: run ``function`` with TorchScript's executor optimisations off (geoopt's scripted functions).

    Inside ``function``, every TorchScript function called for the first time in this process gets
    its unoptimised plan and keeps it: it runs op by op, with eager PyTorch's numbers, on every call
    (module docstring, "Deviations"). The setting is thread-local and restored on return; a function
    already optimised earlier in the process keeps its optimised plan. Tensors, shapes and dtypes
    pass through unchanged. Used by every function and module forward of this module that calls
    geoopt.
    """

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with torch.jit.optimized_execution(False):
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# validation and conversion
# --------------------------------------------------------------------------------------------
def _check_c(c: CurvatureLike, name: str = "c") -> CurvatureLike:
    """Return ``c`` if it is a positive finite number (or one-element floating tensor), else raise."""
    hint = (f"{name} is the ball's negative curvature (curvature = -{name}); "
            "it must be a positive finite number")
    if isinstance(c, torch.Tensor):
        if c.numel() != 1 or not torch.is_floating_point(c):
            raise ValueError(f"{hint}; got a tensor of shape {tuple(c.shape)} and dtype {c.dtype}")
        value = float(c.detach().reshape(()).item())
    elif isinstance(c, numbers.Real) and not isinstance(c, bool):
        value = float(c)
    else:
        raise ValueError(f"{hint}; got {c!r} of type {type(c).__name__}")
    if not math.isfinite(value) or value <= 0.0:
        raise ValueError(f"{hint}; got {value!r}")
    return c


def _check_positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0.0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return value


def _check_positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _c_like(c: CurvatureLike, x: torch.Tensor) -> torch.Tensor:
    """``c`` as a 0-dim tensor with ``x``'s dtype and device (keeps autograd for tensor ``c``)."""
    if isinstance(c, torch.Tensor):
        return c.reshape(()).to(dtype=x.dtype, device=x.device)
    return x.new_full((), float(c))


def _k(c: torch.Tensor) -> torch.Tensor:
    """geoopt's sectional curvature ``k`` for the ball of curvature ``-c``."""
    return -c


def _project(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Project onto the closed ball of radius (1 - eps)/sqrt(c) (geoopt's dtype-dependent eps)."""
    return gmath.project(x, k=_k(c), dim=-1)


# --------------------------------------------------------------------------------------------
# thin, sign-safe wrappers around geoopt
# --------------------------------------------------------------------------------------------
@at_least_float32
@_unspecialised
def mobius_add(x: torch.Tensor, y: torch.Tensor, *, c: CurvatureLike) -> torch.Tensor:
    r"""Möbius addition on the ball of curvature :math:`-c` (Ganea et al. 2018, eq. 2).

    .. math::

        x \oplus_c y = \frac{(1 + 2c\langle x, y\rangle + c\|y\|^2)\,x + (1 - c\|x\|^2)\,y}
                            {1 + 2c\langle x, y\rangle + c^2\|x\|^2\|y\|^2}

    Parameters
    ----------
    x, y : torch.Tensor
        Points of shape ``(..., D)`` (broadcastable).
    c : float or torch.Tensor
        Positive curvature magnitude.

    Returns
    -------
    torch.Tensor
        Shape ``broadcast(x, y)``.
    """
    _check_c(c)
    ct = _c_like(c, x)
    return gmath.mobius_add(x, y, k=_k(ct), dim=-1)


@at_least_float32
@_unspecialised
def expmap0(u: torch.Tensor, *, c: CurvatureLike) -> torch.Tensor:
    r"""Exponential map at the origin, :math:`T_0\mathbb{D}_c \to \mathbb{D}_c`.

    .. math::

        \exp^c_0(u) = \tanh(\sqrt{c}\|u\|)\,\frac{u}{\sqrt{c}\|u\|}

    (geoopt's docstring writes :math:`\tan_\kappa(\|u\|/2)`; its code, and this formula, use
    :math:`\lambda^c_0 = 2`.) The ``tanh`` argument is clamped to ±15 by geoopt, so the result
    can reach the boundary; :class:`ToPoincare` projects it back inside.

    Parameters
    ----------
    u : torch.Tensor
        Tangent vectors, shape ``(..., D)``.
    c : float or torch.Tensor
        Positive curvature magnitude.

    Returns
    -------
    torch.Tensor
        Shape ``(..., D)``.
    """
    _check_c(c)
    return gmath.expmap0(u, k=_k(_c_like(c, u)), dim=-1)


@at_least_float32
@_unspecialised
def logmap0(x: torch.Tensor, *, c: CurvatureLike) -> torch.Tensor:
    r"""Logarithmic map at the origin, the inverse of :func:`expmap0`.

    .. math::

        \log^c_0(x) = \operatorname{artanh}(\sqrt{c}\|x\|)\,\frac{x}{\sqrt{c}\|x\|}

    Parameters
    ----------
    x : torch.Tensor
        Points of shape ``(..., D)``; projected into the ball first.
    c : float or torch.Tensor
        Positive curvature magnitude.

    Returns
    -------
    torch.Tensor
        Shape ``(..., D)``.
    """
    _check_c(c)
    ct = _c_like(c, x)
    return gmath.logmap0(_project(x, ct), k=_k(ct), dim=-1)


# --------------------------------------------------------------------------------------------
# distances and means
# --------------------------------------------------------------------------------------------
@at_least_float32
@_unspecialised
def dist0(x: torch.Tensor, *, c: CurvatureLike, keepdim: bool = False) -> torch.Tensor:
    r"""Geodesic distance to the origin (the paper's uncertainty measure, Sec. 4).

    .. math::

        d_c(0, x) = \frac{2}{\sqrt{c}} \operatorname{artanh}(\sqrt{c}\|x\|)

    Parameters
    ----------
    x : torch.Tensor
        Points of shape ``(..., D)``; projected into the ball first, so in float32 the result is
        at most about :math:`6.2/\sqrt{c}`.
    c : float or torch.Tensor
        Positive curvature magnitude.
    keepdim : bool
        Keep the reduced last dimension.

    Returns
    -------
    torch.Tensor
        Shape ``(...,)`` (``(..., 1)`` with ``keepdim``).
    """
    _check_c(c)
    ct = _c_like(c, x)
    return gmath.dist0(_project(x, ct), k=_k(ct), keepdim=keepdim, dim=-1)


@at_least_float32
@_unspecialised
def pairwise_dist(x: torch.Tensor, y: torch.Tensor, *, c: CurvatureLike) -> torch.Tensor:
    r"""All geodesic distances between two sets of points (hyperbolic ProtoNet logits are ``-d/T``).

    Equal to the paper's :math:`d_c(x, y) = \frac{2}{\sqrt{c}}\operatorname{artanh}
    (\sqrt{c}\|{-x} \oplus_c y\|)`, computed in the equivalent form

    .. math::

        d_c(x, y) = \frac{2}{\sqrt{c}} \operatorname{arsinh}\left(
            \frac{\sqrt{c}\,\|x - y\|}{\sqrt{(1 - c\|x\|^2)(1 - c\|y\|^2)}} \right)
        = \frac{2}{\sqrt{c}} \operatorname{arsinh}\left(
            \frac{\sqrt{c}}{2}\sqrt{\lambda^c_x \lambda^c_y}\,\|x - y\| \right),

    which needs only ``torch.cdist`` (memory :math:`O(NM + (N + M)D)`, no :math:`N\times M\times D`
    intermediate, which broadcasting would need) and avoids ``artanh`` near 1, so
    distances between points near the boundary do not saturate at :math:`16.8/\sqrt{c}` as
    ``geoopt.dist`` does. ``torch.cdist`` is asked for the exact difference form
    (``compute_mode="donot_use_mm_for_euclid_dist"``): its default switches to the matrix-product
    expansion above 25 rows, which in float32 gives coincident points near the boundary a distance of
    about 0.5 instead of 0. The gradient at exactly coincident points is 0.

    Parameters
    ----------
    x : torch.Tensor
        Shape ``(N, D)`` or batched ``(..., N, D)``; projected into the ball first.
    y : torch.Tensor
        Shape ``(M, D)`` or batched ``(..., M, D)``; projected into the ball first.
    c : float or torch.Tensor
        Positive curvature magnitude.

    Returns
    -------
    torch.Tensor
        Shape ``(N, M)`` (or ``(..., N, M)``).
    """
    _check_c(c)
    if x.dim() < 2 or y.dim() < 2:
        raise ValueError(
            f"pairwise_dist expects x (..., N, D) and y (..., M, D), got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(f"x and y must have the same last dimension, got {x.shape[-1]} and {y.shape[-1]}")
    ct = _c_like(c, x)
    k = _k(ct)
    x = _project(x, ct)
    y = _project(y, ct)
    lam_x = gmath.lambda_x(x, k=k, keepdim=True, dim=-1)  # (..., N, 1)
    lam_y = gmath.lambda_x(y, k=k, keepdim=False, dim=-1).unsqueeze(-2)  # (..., 1, M)
    euclid = torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist")  # (..., N, M); subgradient 0 at x == y
    sqrt_c = ct.sqrt()
    return 2.0 / sqrt_c * torch.asinh(0.5 * sqrt_c * torch.sqrt(lam_x * lam_y) * euclid)


@at_least_float32
@_unspecialised
def poincare_mean(
    x: torch.Tensor,
    weights: torch.Tensor | None = None,
    *,
    c: CurvatureLike,
    dim: int = -2,
    keepdim: bool = False,
) -> torch.Tensor:
    r"""HypAve: the (weighted) Einstein midpoint, computed through the Klein model (paper eq. 4).

    .. math::

        x^K_i = \frac{2 x_i}{1 + c\|x_i\|^2}, \quad
        \gamma_i = \frac{1}{\sqrt{1 - c\|x^K_i\|^2}}, \quad
        m = \frac{\sum_i w_i \gamma_i x^K_i}{\sum_i w_i \gamma_i}, \quad
        \mathrm{HypAve} = \frac{m}{1 + \sqrt{1 - c\|m\|^2}}.

    With :math:`\gamma_i = \lambda^c_{x_i} - 1` and :math:`\gamma_i x^K_i = \lambda^c_{x_i} x_i`
    (geoopt's ``lambda_x``), :math:`m` is exactly the "two-mean" of geoopt's
    ``weighted_midpoint`` (Möbius gyromidpoint), so both give the same point. geoopt then maps back
    with :math:`\tfrac12 \otimes_c m`, whose ``artanh`` clamps its argument at 1 - 1e-7: in
    float64, a single point within ~4.5e-4 of the boundary comes back up to :math:`3.8/\sqrt{c}`
    (hyperbolic distance) from itself, which breaks 1-shot prototypes. The algebraic back-map above
    has no clamp, so it is used instead.

    Parameters
    ----------
    x : torch.Tensor
        Points, shape ``(..., n, D)`` with the points along ``dim`` (e.g. ``(n_classes, n_shot, D)``);
        projected into the ball first. The last dimension is the manifold dimension.
    weights : torch.Tensor, optional
        Non-negative weights of shape ``x.shape[:-1]`` (e.g. ``(n_classes, n_shot)``); only their
        ratios matter; all-zero weights give the origin. ``None`` means equal weights.
    c : float or torch.Tensor
        Positive curvature magnitude (keyword only).
    dim : int
        Dimension of ``x`` holding the points to average; not the last one.
    keepdim : bool
        Keep the reduced dimension with size 1.

    Returns
    -------
    torch.Tensor
        ``x`` without dimension ``dim``, e.g. ``(n_classes, D)``.
    """
    _check_c(c)
    if x.dim() < 2:
        raise ValueError(f"poincare_mean expects x of shape (..., n, D), got {tuple(x.shape)}")
    if not -x.dim() <= dim < x.dim() or dim % x.dim() == x.dim() - 1:
        raise ValueError(f"dim={dim} must index a non-manifold dimension of x with shape {tuple(x.shape)}")
    point_dim = dim % x.dim()
    if weights is not None and weights.shape != x.shape[:-1]:
        raise ValueError(
            f"weights must have shape x.shape[:-1] = {tuple(x.shape[:-1])}, got {tuple(weights.shape)}"
        )
    ct = _c_like(c, x)
    x = _project(x, ct)
    lam = gmath.lambda_x(x, k=_k(ct), keepdim=True, dim=-1)  # (..., n, 1)
    gamma = lam - 1  # Lorentz factor of the Klein point
    if weights is not None:
        w = weights.to(dtype=x.dtype).unsqueeze(-1)
        gamma = gamma * w
        lam = lam * w
    num = (lam * x).sum(point_dim, keepdim=True)  # sum_i w_i gamma_i x_i^K
    den = gamma.sum(point_dim, keepdim=True)
    mean = _klein_midpoint_to_ball(num, den, ct)
    return mean if keepdim else mean.squeeze(point_dim)


def _klein_midpoint_to_ball(num: torch.Tensor, den: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """The Poincaré point of the Klein midpoint ``num / den`` (:func:`poincare_mean`'s algebraic back-map, no
    ``artanh`` clamp); ``num`` ``(..., D)``, ``den`` ``(..., 1)``."""
    m = num / den.clamp_min(1e-15)  # Einstein midpoint in the Klein model
    one_minus = (1 - c * m.pow(2).sum(-1, keepdim=True)).clamp_min(1e-15)
    return _project(m / (1 + one_minus.sqrt()), c)  # projection: a no-op for valid weights


@at_least_float32
def attention_midpoint(points: torch.Tensor, attention: torch.Tensor, *, c: CurvatureLike) -> torch.Tensor:
    r"""One attention-weighted Einstein midpoint per row of ``attention``: the hyperbolic propagation step
    :math:`p^{(t+1)}_i = \mathrm{HypAve}_c(\{p^{(t)}_j\}, \{a_{ij}\})` of the hyperbolic IPN
    (:mod:`protolab.zsl.hyperbolic_ipn`).

    Row ``i`` equals :func:`poincare_mean` of all ``points`` with weights ``attention[i]`` (and geoopt's
    ``weighted_midpoint``), but the sums over points are two matrix products, so memory is :math:`O(RC + CD)`
    instead of the :math:`O(RCD)` of broadcasting ``points`` to every row. As ``c → 0`` it tends to the
    Euclidean propagation ``attention @ points``.

    Parameters
    ----------
    points : ``(C, D)``, projected into the ball first.
    attention : ``(R, C)``, non-negative; only each row's ratios matter (an all-zero row gives the origin).
    c : positive curvature magnitude.

    Returns
    -------
    ``(R, D)``.
    """
    _check_c(c)
    if points.dim() != 2 or attention.dim() != 2 or attention.shape[1] != points.shape[0]:
        raise ValueError(f"attention_midpoint expects points (C, D) and attention (R, C), got "
                         f"{tuple(points.shape)} and {tuple(attention.shape)}")
    ct = _c_like(c, points)
    points = _project(points, ct)
    lam = gmath.lambda_x(points, k=_k(ct), keepdim=True, dim=-1)  # (C, 1)
    weights = attention.to(points.dtype)
    return _klein_midpoint_to_ball(weights @ (lam * points), weights @ (lam - 1), ct)


@at_least_float32
def clip_features(x: torch.Tensor, r: float) -> torch.Tensor:
    r"""Feature clipping of Guo et al. 2021 (arXiv 2107.11472), applied before :func:`expmap0`.

    .. math::

        x \leftarrow \min\left(1, \frac{r}{\|x\|}\right) x

    Parameters
    ----------
    x : torch.Tensor
        Euclidean features, shape ``(..., D)``.
    r : float
        Maximal Euclidean norm.

    Returns
    -------
    torch.Tensor
        Shape ``(..., D)``; identical to ``x`` where ``‖x‖ ≤ r``.
    """
    r = _check_positive(r, "clip_r")
    norm = x.norm(dim=-1, keepdim=True)
    # r / max(‖x‖, r): exactly 1 below r, with no 0/0 or inf in the backward pass at x = 0.
    return x * (r / torch.clamp_min(norm, r))


# --------------------------------------------------------------------------------------------
# modules
# --------------------------------------------------------------------------------------------
class _RiemannianGradient(torch.autograd.Function):
    r"""Identity forward; backward scales the gradient at point ``x`` ``(..., D)`` by
    :math:`(1 - c\|x\|^2)^2 / 4`, the inverse squared conformal factor (no gradient reaches ``c``)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, c)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        x, c = ctx.saved_tensors
        return grad * (1 - c * x.pow(2).sum(-1, keepdim=True)).pow(2) / 4, None


class ToPoincare(nn.Module):
    r"""Map Euclidean features onto the Poincaré ball: clip (optional), :math:`\exp^c_0`, project.

    .. math::

        x \mapsto \operatorname{proj}\left(\exp^c_0\left(\min\left(1, \tfrac{r}{\|x\|}\right) x\right)\right),
        \qquad \exp^c_0(u) = \tanh(\sqrt{c}\|u\|)\frac{u}{\sqrt{c}\|u\|}

    The projection keeps :math:`\sqrt{c}\|x\| \le 1 - \epsilon` (geoopt: ε = 4e-3 in float32,
    1e-5 in float64; the official code uses 1e-3). Without clipping, features with
    :math:`\sqrt{c}\|u\| > \operatorname{artanh}(1 - \epsilon)` (3.1 in float32, 6.1 in float64)
    all land on that projection radius, where the radial gradient is zero and float32 resolves
    distances poorly. With ``clip_r`` (Guo et al.), :math:`d_c(0, x) = 2\min(\|u\|, r)` stays
    below :math:`2r` and points stay off the boundary.
    With ``riemannian=True`` the backward pass rescales the gradient reaching the output point by
    :math:`(1 - c\|x\|^2)^2 / 4 = 1 / \lambda_x^2` (the forward pass is unchanged), as the official
    code does in every released few-shot run: its ProtoNet builds ``ToPoincare`` without
    ``riemannian=False`` and the configs' ``--not-riemannian`` flag is never read. Our default is plain
    autograd (``riemannian=False``); the few-shot ``full`` profile switches it on.

    Parameters
    ----------
    c : float
        Positive curvature magnitude (initial value if ``train_c``).
    clip_r : float, optional
        Clip Euclidean feature norms to at most ``clip_r`` before the exponential map.
    train_c : bool
        Learn ``c``, parametrised as ``softplus(raw)`` (clamped at 1e-15) so it stays positive.
    riemannian : bool
        Rescale the output's gradient by :math:`1/\lambda_x^2` in the backward pass (official code).

    Shape
    -----
    input ``(..., D)`` → output ``(..., D)``.
    """

    def __init__(self, c: float, clip_r: float | None = None, train_c: bool = False,
                 riemannian: bool = False) -> None:
        super().__init__()
        self.riemannian = bool(riemannian)
        if isinstance(c, torch.Tensor):
            _check_c(c)
            c = float(c.item())
        c = float(_check_c(c))
        self.clip_r = None if clip_r is None else _check_positive(clip_r, "clip_r")
        self.train_c = bool(train_c)
        if self.train_c:
            # inverse softplus, stable for tiny and large c: c + log(1 - exp(-c))
            raw = c + math.log(-math.expm1(-c))
            self.raw_c = nn.Parameter(torch.tensor(raw, dtype=torch.get_default_dtype()))
            self._c = None
        else:
            self.register_parameter("raw_c", None)
            self._c = c

    @property
    def c(self) -> CurvatureLike:
        """Curvature magnitude: a float, or a 0-dim tensor with gradient when ``train_c``."""
        if self.raw_c is None:
            return self._c
        return F.softplus(self.raw_c).clamp_min(_C_MIN)

    @at_least_float32
    @_unspecialised
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ct = _c_like(self.c, x)
        if self.clip_r is not None:
            x = clip_features(x, self.clip_r)
        point = _project(gmath.expmap0(x, k=_k(ct), dim=-1), ct)
        return _RiemannianGradient.apply(point, ct.detach()) if self.riemannian else point

    def extra_repr(self) -> str:
        c = f"{float(torch.as_tensor(self.c).detach()):.4g}"
        return f"c={c}, clip_r={self.clip_r}, train_c={self.train_c}, riemannian={self.riemannian}"


class HyperbolicMLR(nn.Module):
    r"""Hyperbolic multinomial logistic regression (Ganea et al. 2018, eq. 25; paper Sec. 3).

    Parameters :math:`\tilde p_k, \tilde a_k \in T_0\mathbb{D}_c` for each class;
    :math:`p_k = \exp^c_0(\tilde p_k)` and :math:`a_k = \tilde a_k (1 - c\|p_k\|^2)` (parallel
    transport :math:`0 \to p_k` is the conformal factor :math:`\lambda^c_0/\lambda^c_{p_k}`).

    .. math::

        \operatorname{logit}_k(x) = \frac{\lambda^c_{p_k}\|a_k\|}{\sqrt{c}}
        \operatorname{arsinh}\left(
            \frac{2\sqrt{c}\,\langle -p_k \oplus_c x,\, a_k\rangle}
                 {(1 - c\|{-p_k} \oplus_c x\|^2)\,\|a_k\|}\right)
        = \lambda^c_{p_k}\, d^{\pm}_c(x, \tilde H_{a_k, p_k})\, \|a_k\|,

    i.e. :math:`\lambda_{p_k}` times geoopt's ``dist2plane(x, p_k, a_k, signed=True, scaled=True)``.

    It is evaluated without forming :math:`z_k = -p_k \oplus_c x` (a ``B × K × D`` tensor; that
    way costs :math:`O(BKD)` time and memory instead of two matrix products). Writing
    :math:`z_k = (\beta_k x - \alpha_k p_k)/\delta_k` with :math:`\alpha_k = 1 - 2c\langle p_k, x\rangle
    + c\|x\|^2`, :math:`\beta_k = 1 - c\|p_k\|^2` (Möbius addition, eq. 2), and using
    :math:`1 - c\|z_k\|^2 = \beta_k (1 - c\|x\|^2)/\delta_k` and
    :math:`\lambda_{p_k}\|a_k\| = 2\|\tilde a_k\|`,
    the :math:`\delta_k` cancel:

    .. math::

        \operatorname{logit}_k(x) = \frac{2\|\tilde a_k\|}{\sqrt{c}} \operatorname{arsinh}\left(
            \sqrt{c}\,\lambda^c_x\, \frac{\langle x, \tilde a_k\rangle
            - \alpha_k \langle p_k, \tilde a_k\rangle / \beta_k}{\|\tilde a_k\|}\right),

    two matrix products and element-wise work: :math:`O(BK)` memory. It is also accurate in
    float32 near the boundary, where geoopt's ``dist2plane`` is not (module docstring). The tests
    check it against the written-out formula and against geoopt in float64.
    :math:`\tilde a_k = 0` is a degenerate hyperplane: its logit and gradient are 0.

    Parameters
    ----------
    dim : int
        Ball dimension ``D``.
    n_classes : int
        Number of classes ``K``.
    c : float
        Positive curvature magnitude; ``forward(x, c=...)`` may override it (e.g. with a learnable
        ``ToPoincare.c``).

    Shape
    -----
    input ``(..., D)`` (points of the ball; projected first) → logits ``(..., K)``.
    """

    def __init__(self, dim: int, n_classes: int, c: float) -> None:
        super().__init__()
        self.dim = _check_positive_int(dim, "dim")
        self.n_classes = _check_positive_int(n_classes, "n_classes")
        if isinstance(c, torch.Tensor):
            _check_c(c)
            c = float(c.item())
        self.c = float(_check_c(c))
        self.p_tangent = nn.Parameter(torch.empty(self.n_classes, self.dim))
        self.a_tangent = nn.Parameter(torch.empty(self.n_classes, self.dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform(-1/sqrt(D), 1/sqrt(D)) for both, as in the official code."""
        bound = 1.0 / math.sqrt(self.dim)
        nn.init.uniform_(self.p_tangent, -bound, bound)
        nn.init.uniform_(self.a_tangent, -bound, bound)

    @at_least_float32
    @_unspecialised
    def forward(self, x: torch.Tensor, c: CurvatureLike | None = None) -> torch.Tensor:
        if c is None:
            c = self.c
        else:
            _check_c(c)
        if x.shape[-1] != self.dim:
            raise ValueError(f"expected input (..., {self.dim}), got {tuple(x.shape)}")
        ct = _c_like(c, x)
        k = _k(ct)
        sqrt_c = ct.sqrt()
        x = _project(x, ct)
        p = _project(gmath.expmap0(self.p_tangent.to(x.dtype), k=k, dim=-1), ct)  # (K, D)
        a_t = self.a_tangent.to(x.dtype)  # (K, D)
        a_norm = a_t.norm(dim=-1)  # (K,)
        lam_x = gmath.lambda_x(x, k=k, keepdim=True, dim=-1)  # (..., 1)
        x2 = x.pow(2).sum(-1, keepdim=True)  # (..., 1)
        alpha = 1 - 2 * ct * (x @ p.transpose(0, 1)) + ct * x2  # (..., K)
        beta = 1 - ct * p.pow(2).sum(-1)  # (K,)
        pa = (p * a_t).sum(-1)  # (K,)
        xa = x @ a_t.transpose(0, 1)  # (..., K)
        # sqrt(c) lambda_z <z, a~> / ||a~||  with  z = -p (+) x  (see the class docstring)
        arg = sqrt_c * lam_x * (xa - alpha / beta * pa) / a_norm.clamp_min(1e-15)
        return 2.0 * a_norm / sqrt_c * torch.asinh(arg)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, n_classes={self.n_classes}, c={self.c:.4g}"
