"""One CPU code path for every training process, so that a run gives the same numbers on every x86-64 machine.

PyTorch's own kernels (ATen), oneDNN and MKL each pick the widest vector instructions the CPU has (AVX-512 here)
when the process starts. Kernels for different widths add in different orders, so their float32 results differ
in the last bits, and training amplifies those bits into different models: on this machine one IPN cell gives
H 0.0942 on the AVX-512 path and 0.1286 on the AVX2 path, same seed (the likely cause of "seed 1 changed on
another machine of our kind"). Pinning the three libraries to their AVX2 paths makes the numbers those of any x86-64 CPU
with AVX2 (Intel since 2013, AMD since 2015: MKL's AVX2 branch is documented for Intel CPUs; on others it may
take another branch). ``benchmarks/kernel_paths.py`` measures what the pin costs per training step.

The variables are read when the libraries load, so the runner sets them in the kernels' environment; child
processes (grid workers, SLURM jobs started from a kernel) inherit them. A user's own values are kept;
``PROTOLAB_NATIVE_KERNELS=1`` (set by the user, or by the runner for a notebook declaring ``kernels: native`` in
profiles.yaml) leaves every library on its native path.
"""

from __future__ import annotations

from collections.abc import Mapping

from protolab.core.cpu_paths import AVX2_PATHS

NATIVE_KERNELS = "PROTOLAB_NATIVE_KERNELS"  # "1": every library on its native path


def kernel_path_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of :data:`AVX2_PATHS` to add to ``environ`` for a training process, except any the user
    already set (``PROTOLAB_NATIVE_KERNELS=1`` in ``environ`` turns them all off)."""
    if environ.get(NATIVE_KERNELS) == "1":
        return {}
    return {key: value for key, value in AVX2_PATHS.items() if key not in environ}
