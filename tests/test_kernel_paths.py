"""The runner pins the CPU code path of training processes (protolab.runner.kernel_paths)."""

from __future__ import annotations

import os
import subprocess
import sys

from protolab.runner.kernel_paths import AVX2_PATHS, kernel_path_environment

PROBE = ("import torch; torch.set_num_threads(1); torch.manual_seed(0); "
         "x = torch.randn(257, 129); w = torch.randn(129, 65, requires_grad=True); "
         "y = (x @ w).tanh().sum(); y.backward(); "
         "print(torch.backends.cpu.get_cpu_capability(), float(y), float(w.grad.abs().sum()))")


def _probe(extra: dict[str, str]) -> list[str]:
    env = {key: value for key, value in os.environ.items() if key not in AVX2_PATHS}
    return subprocess.run([sys.executable, "-c", PROBE], env={**env, **extra}, capture_output=True, text=True,
                          check=True).stdout.split()


def test_users_own_values_are_kept_and_the_switch_turns_the_pin_off():
    assert kernel_path_environment({}) == AVX2_PATHS
    assert kernel_path_environment({"MKL_CBWR": "COMPATIBLE"}) == {
        "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    assert kernel_path_environment({"PROTOLAB_NATIVE_KERNELS": "1"}) == {}


def test_a_pinned_process_runs_the_avx2_kernels_and_repeats_its_numbers_exactly():
    pinned = _probe(kernel_path_environment({}))
    assert pinned[0] == "AVX2"
    assert _probe(kernel_path_environment({})) == pinned


def test_the_runner_gives_notebook_kernels_the_pinned_paths(tmp_path, monkeypatch):
    from protolab.runner.environment import runner_variables

    for key in (*AVX2_PATHS, "PROTOLAB_NATIVE_KERNELS"):
        monkeypatch.delenv(key, raising=False)
    variables = runner_variables(tmp_path, "run-1", 1, tmp_path, tmp_path)
    assert {key: variables[key] for key in AVX2_PATHS} == AVX2_PATHS


def test_grid_cells_computed_on_another_code_path_are_not_reused():
    script = "from protolab.runner.grid import cell_key; print(cell_key({'variant': 'base', 'seed': 0}, 'code'))"
    env = {key: value for key, value in os.environ.items() if key not in AVX2_PATHS}

    def key(extra: dict[str, str]) -> str:
        return subprocess.run([sys.executable, "-c", script], env={**env, **extra}, capture_output=True, text=True,
                              check=True).stdout.strip()

    assert key(AVX2_PATHS) == key(AVX2_PATHS) != key({"ATEN_CPU_CAPABILITY": "default"})
