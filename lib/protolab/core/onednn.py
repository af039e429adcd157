"""Linear maps whose CPU float32 matrix products run on oneDNN instead of the BLAS behind ``F.linear``.

Why. On the CPU, ``F.linear`` and ``@`` call MKL's sgemm. On the AMD EPYC (Zen 4) machines this kit is
developed on, oneDNN (also inside every x86-64 torch wheel; its AVX-512 kernels run there) computes IPN's
products 1.7–2.5× faster: ``(30, 2048) × (2048, 2048)`` 0.86 ms vs 1.97 ms on 2 threads; a 300-episode IPN
epoch at official widths takes 9.0 s instead of 12.8 s (``benchmarks/ipn_epoch.py`` prints both). Why MKL is
slower on that CPU was not established; on Intel CPUs the gap may be smaller.

Precision: plain float32 products (no bf16 or TF32 inside); against a float64 reference the relative error
is of the order of 1e-6, within a small factor of MKL's (``tests/test_linear.py``). The order of the float32
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
"""Multiply-adds ``M·K·N`` from which :func:`linear` uses oneDNN. oneDNN costs ≈ 40 µs more per forward and
backward call; measured here (1 and 2 threads, forward + backward) it loses below ≈ 4 M multiply-adds
(``(30, 256) × (256, 256)``: 0.87–1.13× ATen's speed) and wins from 8 M on (``(256, 256) × (256, 256)``:
1.35–1.8×; IPN's official-width products, 16–250 M: 1.75–2.4×)."""


@functools.cache
def onednn_available() -> bool:
    """True on x86-64 when this torch build has oneDNN's dense linear kernel."""
    return (platform.machine().lower() in ("x86_64", "amd64") and torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.mkldnn, "_linear_pointwise"))


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
