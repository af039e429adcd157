"""The runner pins the CPU code path of training processes (protolab.runner.kernel_paths)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch

from protolab.core.reproducibility import resolve_amp
from protolab.runner.kernel_paths import AVX2_PATHS, kernel_path_environment
from protolab.runner.parameters import ParameterError, discover
from protolab.runner.project import notebooks_dir

PROBE = ("import torch; torch.set_num_threads(1); torch.manual_seed(0); "
         "x = torch.randn(257, 129); w = torch.randn(129, 65, requires_grad=True); "
         "y = (x @ w).tanh().sum(); y.backward(); "
         "print(torch.backends.cpu.get_cpu_capability(), float(y), float(w.grad.abs().sum()))")


def _probe(extra: dict[str, str], script: str = PROBE) -> list[str]:
    """What ``script`` prints, word by word, run in a fresh process with ``extra`` on a pin-free environment."""
    env = {key: value for key, value in os.environ.items() if key not in AVX2_PATHS}
    return subprocess.run([sys.executable, "-c", script], env={**env, **extra}, capture_output=True, text=True,
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


def test_a_notebook_declaring_native_kernels_gets_no_pin(tmp_path, monkeypatch):
    from protolab.runner.environment import runner_variables

    for key in (*AVX2_PATHS, "PROTOLAB_NATIVE_KERNELS"):
        monkeypatch.delenv(key, raising=False)
    variables = runner_variables(tmp_path, "run-1", 1, tmp_path, tmp_path, native_kernels=True)
    assert variables["PROTOLAB_NATIVE_KERNELS"] == "1" and not set(AVX2_PATHS) & set(variables)


def test_profiles_yaml_runner_keys_are_read_and_checked(tmp_path):
    shutil.copy(notebooks_dir() / "ipn_gzsl.ipynb", tmp_path)
    (tmp_path / "profiles.yaml").write_text("ipn_gzsl:\n  kernels: native\n  cores: all\n")
    assert (discover(tmp_path)["ipn_gzsl"].kernels, discover(tmp_path)["ipn_gzsl"].cores) == ("native", "all")
    (tmp_path / "profiles.yaml").write_text("ipn_gzsl: {}\n")
    assert (discover(tmp_path)["ipn_gzsl"].kernels, discover(tmp_path)["ipn_gzsl"].cores) == ("pinned", "shared")
    (tmp_path / "profiles.yaml").write_text("ipn_gzsl:\n  kernels: fast\n")
    with pytest.raises(ParameterError, match="kernels must be one of pinned, native, got 'fast'"):
        discover(tmp_path)
    (tmp_path / "profiles.yaml").write_text("ipn_gzsl:\n  cores: 3\n")
    with pytest.raises(ParameterError, match="cores must be one of shared, all, got 3"):
        discover(tmp_path)


def test_each_notebook_gets_its_kernel_path_and_threads_from_its_runner_keys(tmp_path, monkeypatch):
    from dataclasses import replace

    from protolab.runner.execute import _Context
    from protolab.runner.local import LocalProcesses

    for key in (*AVX2_PATHS, "PROTOLAB_NATIVE_KERNELS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(LocalProcesses, "threads", lambda self, jobs: 8 // jobs)  # an 8-core machine
    context = _Context(tmp_path, tmp_path, "run-1", tmp_path, [], 60.0, LocalProcesses().threads(4), print)
    plain = discover()["ipn_gzsl"]
    shared = context.variables(tmp_path, tmp_path, tmp_path / "jobs", plain)
    alone = context.variables(tmp_path, tmp_path, tmp_path / "jobs", replace(plain, kernels="native", cores="all"))
    assert shared["OMP_NUM_THREADS"] == "2" and shared["ATEN_CPU_CAPABILITY"] == "avx2"
    assert alone["OMP_NUM_THREADS"] == "8" and alone["PROTOLAB_NATIVE_KERNELS"] == "1"
    assert not set(AVX2_PATHS) & set(alone)


AMP_PROBE = ("import torch; from protolab.core.reproducibility import native_bfloat16, resolve_amp; "
             "cpu = torch.device('cpu'); "
             "print(native_bfloat16(cpu), resolve_amp('auto', cpu), resolve_amp('on', cpu), resolve_amp('off', cpu), "
             "torch.cpu._is_avx512_bf16_supported())")


def test_automatic_bfloat16_only_where_the_cpu_computes_it_on_its_own_path():
    pinned = _probe(kernel_path_environment({}), AMP_PROBE)
    assert pinned[:4] == ["False", "False", "True", "False"]  # emulated on the pinned AVX2 path: float32
    native = _probe({"PROTOLAB_NATIVE_KERNELS": "1"}, AMP_PROBE)
    has_bf16 = native[4]  # the CPU's avx512_bf16 flag
    assert native[:4] == [has_bf16, has_bf16, "True", "False"]


def test_amp_settings_are_checked():
    with pytest.raises(ValueError, match="amp must be one of auto, on, off"):
        resolve_amp("yes", torch.device("cpu"))
