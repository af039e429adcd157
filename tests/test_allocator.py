"""Allocator settings given to training processes (runner/allocator.py)."""

from __future__ import annotations

import os
import subprocess
import sys

from protolab.runner.allocator import GLIBC_MALLOC, allocator_environment


def test_defaults_are_added_and_user_values_kept():
    assert allocator_environment({}) == GLIBC_MALLOC
    chosen = allocator_environment({"MALLOC_TOP_PAD_": "0"})
    assert "MALLOC_TOP_PAD_" not in chosen and chosen["MALLOC_MMAP_THRESHOLD_"] == str(32 * 2**20)
    assert allocator_environment({"PROTOLAB_DEFAULT_MALLOC": "1"}) == {}


def test_a_process_started_with_them_computes_the_same_numbers():
    script = ("import torch; torch.manual_seed(0); x = torch.randn(512, 4096);"
              "print(repr(float((x @ x.T).relu().sum())))")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    plain = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    tuned = subprocess.run([sys.executable, "-c", script], env={**env, **allocator_environment(env)},
                           capture_output=True, text=True, check=True)
    assert plain.stdout == tuned.stdout and plain.stdout.strip()
