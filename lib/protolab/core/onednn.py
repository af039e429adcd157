"""Linear maps whose CPU float32 matrix products run on oneDNN instead of the BLAS behind ``F.linear``.

Why. On the CPU, ``F.linear`` and ``@`` call MKL's sgemm. On some CPUs oneDNN (also inside every x86-64 torch
wheel) computes IPN's skinny products (few rows, wide layers) markedly faster; ``benchmarks/ipn_epoch.py`` prints
an IPN epoch at official widths on both kernels, and the README gives the numbers measured on our machines.

Precision: plain float32 products (no bf16 or TF32 inside); against a float64 reference the relative error
is of the order of 1e-6, within a small factor of MKL's (``tests/test_onednn.py``). The order of the float32
sums differs, so results differ from ``F.linear`` in the last bits. Deterministic run to run.

Where. 2-D float32 inputs on an x86-64 CPU, outside autocast, when torch has oneDNN and the product is large
enough to pay oneDNN's fixed cost per call (:data:`MIN_WORK`); everything else (small products, CUDA, other
dtypes, batched inputs, autocast, other CPUs) is ``F.linear`` itself. :func:`use_onednn`
turns the fast path off, e.g. to compare with ``F.linear`` bit for bit.
"""

from __future__ import annotations

import contextlib
import functools
import platform
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn import functional as F

_enabled = True

MIN_WORK = 2**23
"""Multiply-adds ``M·K·N`` from which :func:`linear` uses oneDNN: below it, oneDNN's fixed cost per call outweighs
its faster product (``benchmarks/ipn_epoch.py`` sweeps product sizes on both kernels)."""


@functools.cache
def onednn_available() -> bool:
    """True on x86-64 when this torch build has oneDNN's dense linear kernel and it computes a tiny product
    correctly (probed once per process). The kernel is a private torch op: any error or a wrong result in the
    probe (a changed signature in another torch version, say) turns the fast path off instead of failing later."""
    if platform.machine().lower() not in ("x86_64", "amd64") or not torch.backends.mkldnn.is_available():
        return False
    try:
        x, weight, bias = torch.ones(2, 3), torch.arange(12.0).reshape(4, 3), torch.ones(4)
        return bool(torch.equal(_times_transposed(x, weight, bias), F.linear(x, weight, bias)))
    except Exception:  # noqa: BLE001 - a private op may fail in any way on another build
        return False


@contextlib.contextmanager
def use_onednn(enabled: bool) -> Iterator[None]:
    """Within the block, :func:`linear` uses oneDNN (``True``, the default outside) or ``F.linear`` (``False``)."""
    global _enabled
    previous, _enabled = _enabled, enabled
    try:
        yield
    finally:
        _enabled = previous


def _times_transposed(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``x @ weight.T + bias`` on oneDNN: ``x`` ``(M, K)``, ``weight`` ``(N, K)`` (any strides), bias ``(N,)`` → ``(M, N)``."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


class _OneDNNLinear(torch.autograd.Function):
    """``x W^T + b`` with forward and backward products on oneDNN."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _times_transposed(x, weight, bias)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        wants_x, wants_weight, wants_bias = ctx.needs_input_grad
        grad_x = _times_transposed(grad, weight.t()) if wants_x else None
        grad_weight = _times_transposed(grad.t().contiguous(), x.t().contiguous()) if wants_weight else None
        grad_bias = grad.sum(0) if ctx.has_bias and wants_bias else None
        return grad_x, grad_weight, grad_bias


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)``: ``x`` ``(..., K)``, ``weight`` ``(N, K)``, ``bias`` ``(N,)`` → ``(..., N)``;
    on oneDNN where the module docstring says."""
    fast = (_enabled and x.dim() == 2 and x.shape[0] * weight.numel() >= MIN_WORK and x.device.type == "cpu"
            and x.dtype == weight.dtype == torch.float32 and (bias is None or bias.dtype == torch.float32)
            and not torch.is_autocast_enabled("cpu") and onednn_available())
    return _OneDNNLinear.apply(x, weight, bias) if fast else F.linear(x, weight, bias)


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters, initialisation and state-dict keys) computed by :func:`linear`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)
