"""Hyperbolic models give the same numbers on every call, so a run resumed in a new process equals the
uninterrupted one (protolab.hyperbolic's module docstring: geoopt's TorchScript functions run unoptimised)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import torch

from protolab.hyperbolic import (
    HyperbolicMLR,
    ToPoincare,
    dist0,
    expmap0,
    logmap0,
    mobius_add,
    pairwise_dist,
    poincare_mean,
)

C = 0.05

# One few-shot model (fewshot.protocol) trained in a fresh process: argv = checkpoint, output file, and a
# file to copy the checkpoint to when training episode 4 starts ("" for none). Episodes are 3 per epoch and
# the checkpoint is written after every epoch, so that copy is what a process killed in epoch 2 leaves.
TRAIN_SCRIPT = """
import shutil, sys
from pathlib import Path
import torch
from protolab.data import load_fewshot
from protolab.fewshot.protocol import ProtocolSettings, evaluate_protonet, train_protonet
from protolab.training import loops

checkpoint, output, snapshot = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
torch.set_num_threads(1)
train_step, episodes = loops._train_step, []

def counting_train_step(*args, **kwargs):
    episodes.append(None)
    if len(episodes) == 4 and snapshot:
        shutil.copyfile(checkpoint, snapshot)
    return train_step(*args, **kwargs)

loops._train_step = counting_train_step
settings = ProtocolSettings(backbone="conv4", dim=16, query=2, test_way=5, temperature=1.0, riemannian=True,
                            epochs=3, episodes=3, val_episodes=6, test_episodes=7, lr=1e-2, step_size=1, gamma=0.5)
splits = load_fewshot("glyphs", image_size=16, instances_per_class=6, hard=False)
cpu = torch.device("cpu")
model, history = train_protonet(settings, splits, geometry="hyperbolic", c=0.05, shot=1, train_way=5, seed=0,
                                device=cpu, checkpoint=checkpoint, progress=False)
accuracies = evaluate_protonet(model, settings, splits.test, shot=1, seed=0, device=cpu, progress=False)
torch.save({"history": history, "best_epoch": history.attrs["best_epoch"], "episodes": len(episodes),
            "model": model.state_dict(), "test_accuracies": accuracies}, output)
"""


def _train_in_new_process(checkpoint: Path, output: Path, snapshot: Path | None = None) -> None:
    """Run TRAIN_SCRIPT in a fresh interpreter (it inherits conftest's dataset cache)."""
    arguments = [str(checkpoint), str(output), "" if snapshot is None else str(snapshot)]
    done = subprocess.run([sys.executable, "-c", TRAIN_SCRIPT, *arguments], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr


def test_a_hyperbolic_run_resumed_in_a_new_process_equals_the_uninterrupted_run(tmp_path):
    interrupted = tmp_path / "interrupted.pt"
    _train_in_new_process(tmp_path / "uninterrupted.pt", tmp_path / "uninterrupted.out", snapshot=interrupted)
    assert torch.load(interrupted, weights_only=True)["step"] == 3  # after epoch 1
    _train_in_new_process(interrupted, tmp_path / "resumed.out")

    expected = torch.load(tmp_path / "uninterrupted.out", weights_only=False)
    result = torch.load(tmp_path / "resumed.out", weights_only=False)
    assert expected["episodes"] == 9 and result["episodes"] == 9 - 3, "epoch 1 must not be trained again"
    pd.testing.assert_frame_equal(result["history"], expected["history"], check_exact=True)
    assert result["best_epoch"] == expected["best_epoch"]
    assert torch.equal(result["test_accuracies"], expected["test_accuracies"])
    for name, value in expected["model"].items():
        assert torch.equal(result["model"][name], value), name


def _poincare_outputs_and_gradients() -> list[torch.Tensor]:
    """Every geoopt-backed function and module of protolab.hyperbolic on fixed float32 inputs, and the
    gradients of their outputs' squared sum with respect to those inputs, ``ToPoincare``'s learnable
    ``c`` and the MLR's parameters."""
    generator = torch.Generator().manual_seed(0)
    features = (torch.randn(12, 8, generator=generator) * 3).requires_grad_(True)  # (N, D)
    tangent = (torch.randn(3, 4, 8, generator=generator) * 0.5).requires_grad_(True)  # (K, n, D)
    torch.manual_seed(0)
    to_poincare = ToPoincare(C, clip_r=2.0, train_c=True, riemannian=True)
    mlr = HyperbolicMLR(8, 3, C)
    points = to_poincare(features)  # (N, D)
    prototypes = poincare_mean(expmap0(tangent, c=C), c=C, dim=1)  # (K, D)
    outputs = [points, prototypes, pairwise_dist(points, prototypes, c=to_poincare.c), logmap0(points, c=C),
               dist0(points, c=C), mobius_add(points[:3], prototypes, c=C), mlr(points)]
    loss = sum(output.pow(2).sum() for output in outputs)
    inputs = [features, tangent, to_poincare.raw_c, mlr.p_tangent, mlr.a_tangent]
    return [output.detach() for output in outputs] + list(torch.autograd.grad(loss, inputs))


def test_poincare_functions_give_the_same_bits_on_the_first_call_and_the_twentieth():
    """In a fresh process, TorchScript's optimised plan would take over from the second call on and
    change the float32 gradients' last bits."""
    first = _poincare_outputs_and_gradients()
    for call in range(2, 21):
        again = _poincare_outputs_and_gradients()
        for index, (expected, value) in enumerate(zip(first, again, strict=True)):
            assert torch.equal(value, expected), f"call {call}, output or gradient {index}"
