"""Allocator settings for the processes that train: the notebook kernels, their grid workers, benchmarks.

glibc's malloc hands every freed buffer larger than its mmap threshold straight back to the kernel, so a
training loop that allocates the same large tensors each step page-faults them in again every time: a
cold ``make figures`` spent a third of its CPU time in the kernel (676 million minor page faults). Raising
the thresholds keeps those buffers in the process: far fewer page faults and less system time, and the
numbers a step computes do not change (``benchmarks/allocator.py`` prints both runs and checks the losses agree).
The settings are plain environment variables read by glibc at process start; child processes (loky
workers, DataLoader workers) inherit them. A user's own values are kept.
"""

from __future__ import annotations

from collections.abc import Mapping

GLIBC_MALLOC = {
    "MALLOC_MMAP_THRESHOLD_": str(32 * 2**20),  # buffers up to 32 MiB come from the heap, not fresh mmaps
    "MALLOC_TRIM_THRESHOLD_": str(4 * 2**30),   # give memory back to the OS only past 4 GiB of free heap top
    "MALLOC_TOP_PAD_": str(512 * 2**20),        # grow the heap in 512 MiB steps
}


def allocator_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The allocator variables to add to ``environ`` for a training process: :data:`GLIBC_MALLOC`, except
    any the user already set (``PROTOLAB_DEFAULT_MALLOC=1`` in ``environ`` turns them all off)."""
    if environ.get("PROTOLAB_DEFAULT_MALLOC") == "1":
        return {}
    return {key: value for key, value in GLIBC_MALLOC.items() if key not in environ}
