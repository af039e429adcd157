"""The Poincaré-ball maths and the ProtoNet head compute in float32 under ``torch.autocast``
(hyperbolic.at_least_float32): float32 outputs, finite, equal to the float32 computation outside
autocast, gradients reaching 16-bit inputs; float64 untouched."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from protolab.backbones import Conv4
from protolab.hyperbolic import (
    HyperbolicMLR,
    ToPoincare,
    at_least_float32,
    clip_features,
    dist0,
    expmap0,
    logmap0,
    mobius_add,
    pairwise_dist,
    poincare_mean,
)
from protolab.fewshot.protonet import ProtoNet

SEEDS = [0, 1, 2]
C = 0.5
DIM = 16
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the CUDA autocast variant needs one")

#: name → function of one or two point sets (6, DIM)
OPERATIONS = {
    "mobius_add": lambda x, y: mobius_add(x, y, c=C),
    "expmap0": lambda x: expmap0(x, c=C),
    "logmap0": lambda x: logmap0(x, c=C),
    "dist0": lambda x: dist0(x, c=C),
    "pairwise_dist": lambda x, y: pairwise_dist(x, y, c=C),
    "poincare_mean": lambda x, y: poincare_mean(torch.stack([x, y], 1), c=C, dim=1),
    "clip_features": lambda x: clip_features(x, 0.5),
}


def _points(name: str, seed: int, dtype: torch.dtype, device: str = "cpu") -> tuple[torch.Tensor, ...]:
    """The inputs of operation ``name``: one or two sets of 6 ball points (radius ~0.9 of the ball's), in ``dtype``."""
    generator = torch.Generator().manual_seed(seed)
    u = torch.randn(2, 6, DIM, generator=generator) / DIM ** 0.5
    points = expmap0(u * 2.0, c=C)  # float32 reference points, well inside the ball
    return tuple(points.to(device=device, dtype=dtype)[:OPERATIONS[name].__code__.co_argcount])


def _modules(seed: int) -> dict[str, nn.Module]:
    torch.manual_seed(seed)
    return {"to_poincare": ToPoincare(C, clip_r=2.0, riemannian=True),
            "to_poincare_learnt_c": ToPoincare(C, train_c=True),
            "mlr": HyperbolicMLR(DIM, 5, C)}


def _check_autocast(run, inputs: tuple[torch.Tensor, ...], device_type: str, low: torch.dtype) -> None:
    """``run(*inputs)`` under autocast equals ``run`` on the float32 inputs outside it; gradients flow."""
    reference = run(*(t.float() for t in inputs))
    leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
    with torch.autocast(device_type, dtype=low):
        out = run(*leaves)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, reference.to(out.device), rtol=1e-5, atol=1e-5)
    out.sum().backward()
    for leaf in leaves:
        assert leaf.grad is not None and leaf.grad.dtype == leaf.dtype and torch.isfinite(leaf.grad.float()).all()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("input_dtype", [torch.float32, torch.bfloat16], ids=["float32-in", "bfloat16-in"])
@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_functions_compute_in_float32_under_cpu_autocast(name, input_dtype, seed):
    _check_autocast(OPERATIONS[name], _points(name, seed, input_dtype), "cpu", torch.bfloat16)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("input_dtype", [torch.float32, torch.bfloat16], ids=["float32-in", "bfloat16-in"])
@pytest.mark.parametrize("name", ["to_poincare", "to_poincare_learnt_c", "mlr"])
def test_modules_compute_in_float32_under_cpu_autocast(name, input_dtype, seed):
    module = _modules(seed)[name]
    x = torch.randn(6, DIM, generator=torch.Generator().manual_seed(seed)).to(input_dtype)
    _check_autocast(module, (x,), "cpu", torch.bfloat16)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in module.parameters())


def test_float64_stays_float64_and_float32_is_unchanged_outside_autocast():
    x, y = _points("pairwise_dist", 0, torch.float64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert pairwise_dist(x, y, c=C).dtype == torch.float64
        assert ToPoincare(C).double()(x).dtype == torch.float64
    f32 = _points("pairwise_dist", 0, torch.float32)
    undecorated = pairwise_dist.__wrapped__(*f32, c=C)
    assert torch.equal(pairwise_dist(*f32, c=C), undecorated)


def test_the_decorator_turns_autocast_off_only_inside():
    seen = []
    probe = at_least_float32(lambda x: seen.append((x.dtype, torch.is_autocast_enabled("cpu"))) or x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        probe(torch.ones(2, dtype=torch.bfloat16))
        assert torch.is_autocast_enabled("cpu")
    assert seen == [(torch.float32, False)]


def _protonet(geometry: str, seed: int) -> ProtoNet:
    torch.manual_seed(seed)
    return ProtoNet(Conv4(in_channels=1, width=8, dim=DIM), geometry, c=0.1, riemannian=geometry == "hyperbolic")


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("geometry", ["euclidean", "hyperbolic"])
def test_protonet_logits_are_float32_under_cpu_autocast_and_train(geometry, seed):
    model = _protonet(geometry, seed).train()
    generator = torch.Generator().manual_seed(seed)
    support, query = torch.randn(6, 1, 16, 16, generator=generator), torch.randn(9, 1, 16, 16, generator=generator)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        embedded = model.embed(support)
        logits = model(support, labels, query, 3)
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
    assert embedded.dtype == (torch.float32 if geometry == "hyperbolic" else torch.bfloat16)
    nn.functional.cross_entropy(logits, torch.arange(3).repeat(3)).backward()
    grads = [p.grad for p in model.backbone.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("geometry", ["euclidean", "hyperbolic"])
def test_protonet_head_under_autocast_equals_float32_head_on_the_same_features(geometry):
    model = _protonet(geometry, 0)
    features = torch.randn(15, DIM, generator=torch.Generator().manual_seed(0)).bfloat16()
    labels = torch.arange(3).repeat(2)

    def head(features: torch.Tensor) -> torch.Tensor:
        embedded = features if model.to_poincare is None else model.to_poincare(features)
        return model.logits(embedded[6:], model.prototypes(embedded[:6], labels, 3))

    _check_autocast(head, (features,), "cpu", torch.bfloat16)


@CUDA
@pytest.mark.parametrize("low", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_functions_compute_in_float32_under_cuda_autocast(name, low):
    _check_autocast(OPERATIONS[name], _points(name, 0, low, "cuda"), "cuda", low)


@CUDA
@pytest.mark.parametrize("low", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("geometry", ["euclidean", "hyperbolic"])
def test_protonet_logits_are_float32_under_cuda_autocast(geometry, low):
    model = _protonet(geometry, 0).cuda()
    images = torch.randn(15, 1, 16, 16, device="cuda")
    with torch.autocast("cuda", dtype=low):
        logits = model(images[:6], torch.arange(3).repeat(2).cuda(), images[6:], 3)
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
