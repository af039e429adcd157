"""Seeding and device selection: the one place that decides randomness and hardware."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA) and return a torch generator seeded alike.

    Same parameters and seed give the same numbers on the same machine (CPU). TF32 is left off
    so that a GPU run is not silently less precise than the CPU one.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return torch.Generator().manual_seed(seed)


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA when present, else CPU; any other string is passed to ``torch.device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} was requested but CUDA is not available; use 'auto' or 'cpu'")
    return resolved


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with one torch thread, restoring the previous count afterwards.

    Small models train faster this way on a loaded CPU, and their numbers do not depend on the core count.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


AMP_SETTINGS = ("auto", "on", "off")


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 convolutions and matrix products in hardware on the code path this process
    took: a CUDA device with bfloat16 support, or a CPU with ``avx512_bf16`` whose oneDNN and ATen kernels are not
    pinned below AVX-512 (:mod:`protolab.runner.kernel_paths`; on the pinned AVX2 path bfloat16 is emulated, 6–8×
    slower than float32: ``benchmarks/fewshot_default.py``)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    onednn_isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    return (device.type == "cpu" and torch.cpu._is_avx512_bf16_supported()
            and torch.backends.cpu.get_cpu_capability().startswith("AVX512")
            and (onednn_isa == "ALL" or "BF16" in onednn_isa or "AMX" in onednn_isa))


def resolve_amp(amp: str, device: torch.device) -> bool:
    """Whether to train and evaluate under bfloat16 autocast: ``"on"``, ``"off"``, or ``"auto"``: where
    :func:`native_bfloat16` holds (so that a machine without it keeps float32 instead of running 6–8× slower)."""
    if amp not in AMP_SETTINGS:
        raise ValueError(f"amp must be one of {', '.join(AMP_SETTINGS)}, got {amp!r}")
    return amp == "on" or (amp == "auto" and native_bfloat16(device))


def describe_arithmetic(amp: bool, device: torch.device) -> str:
    """How a run computed, for its report: e.g. ``"bfloat16 autocast on cpu (AVX512 kernels)"``."""
    kernels = f" ({torch.backends.cpu.get_cpu_capability()} kernels)" if device.type == "cpu" else ""
    return f"{'bfloat16 autocast' if amp else 'float32'} on {device.type}{kernels}"
