"""protolab.core.onednn: oneDNN products for 2-D float32 CPU inputs, as precise as ``F.linear`` against a float64
reference, with the same gradients; ``F.linear`` itself everywhere else."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from protolab.core import onednn as linear_module
from protolab.zsl.ipn import IPN, IPNConfig
from protolab.core.onednn import MIN_WORK, Linear, linear, onednn_available, use_onednn

ONEDNN = pytest.mark.skipif(not onednn_available(), reason="this torch build or CPU has no oneDNN linear kernel")
SEEDS = [0, 1, 2]
#: (M, K, N): IPN's products at official widths, the semantic encoder's, a tiny one
SHAPES = [(30, 2048, 2048), (30, 4096, 2048), (30, 312, 2048), (7, 5, 3)]


@pytest.fixture
def every_size(monkeypatch):
    """oneDNN for products of any size (the tests' small shapes included)."""
    monkeypatch.setattr(linear_module, "MIN_WORK", 0)


def _relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    return ((value.double() - reference).abs().max() / reference.abs().max()).item()


def _inputs(seed: int, m: int, k: int, n: int, transposed_weight: bool) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(m, k, generator=generator)
    weight = torch.randn(k, n, generator=generator).T if transposed_weight else torch.randn(n, k, generator=generator)
    return x, weight, torch.randn(n, generator=generator), torch.randn(m, n, generator=generator)


@ONEDNN
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("transposed_weight", [False, True], ids=["weight", "weight-view"])
def test_products_and_gradients_match_float64(every_size, seed, shape, transposed_weight):
    """Output and all three gradients within float32 rounding of the float64 computation, like ``F.linear``."""
    x, weight, bias, upstream = _inputs(seed, *shape, transposed_weight)
    results = {}
    for name, function in [("onednn", linear), ("aten", F.linear), ("float64", F.linear)]:
        dtype = torch.float64 if name == "float64" else torch.float32
        leaves = [t.detach().to(dtype).requires_grad_() for t in (x, weight, bias)]
        out = function(*leaves)
        out.backward(upstream.to(dtype))
        results[name] = [out.detach(), *(leaf.grad for leaf in leaves)]
    for ours, aten, reference in zip(results["onednn"], results["aten"], results["float64"], strict=True):
        assert ours.dtype == torch.float32 and ours.shape == reference.shape
        assert _relative_error(ours, reference) < max(8 * _relative_error(aten, reference), 1e-6)


@ONEDNN
def test_fast_path_taken_for_2d_float32_cpu_only(every_size):
    """The oneDNN function is in the graph for 2-D float32 CPU inputs; batched, float64, autocast and
    ``use_onednn(False)`` calls are ``F.linear`` itself, bit for bit."""
    x, weight, bias, _ = _inputs(0, 6, 8, 4, False)
    weight.requires_grad_()
    assert type(linear(x, weight, bias).grad_fn).__name__ == "_OneDNNLinearBackward"
    with use_onednn(False):
        assert torch.equal(linear(x, weight, bias), F.linear(x, weight, bias))
    assert type(linear(x, weight, bias).grad_fn).__name__ == "_OneDNNLinearBackward"
    batched = x.reshape(2, 3, 8)
    assert torch.equal(linear(batched, weight, bias), F.linear(batched, weight, bias))
    assert torch.equal(linear(x.double(), weight.double(), bias.double()),
                       F.linear(x.double(), weight.double(), bias.double()))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = linear(x, weight, bias)
        assert out.dtype == torch.bfloat16 and torch.equal(out, F.linear(x, weight, bias))


@ONEDNN
def test_small_products_stay_on_aten_and_large_ones_go_to_onednn():
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(256, 256, generator=generator, requires_grad=True)
    rows = MIN_WORK // weight.numel()
    small, large = torch.randn(rows - 1, 256, generator=generator), torch.randn(rows, 256, generator=generator)
    assert torch.equal(linear(small, weight), F.linear(small, weight))
    assert type(linear(small, weight).grad_fn).__name__ != "_OneDNNLinearBackward"
    assert type(linear(large, weight).grad_fn).__name__ == "_OneDNNLinearBackward"


def test_linear_module_is_nn_linear():
    """Same parameters, initialisation (same random draws) and state-dict keys as ``nn.Linear``."""
    torch.manual_seed(3)
    ours = Linear(5, 4)
    torch.manual_seed(3)
    theirs = torch.nn.Linear(5, 4)
    assert isinstance(ours, torch.nn.Linear)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), theirs.state_dict().values()))
    x = torch.randn(3, 5)
    torch.testing.assert_close(ours(x), theirs(x))


@ONEDNN
def test_ipn_training_step_same_with_either_kernel():
    """One IPN forward/backward at official widths: logits and every gradient agree across the two kernels
    to float32 precision (the kernel changes rounding, not the model). The relation bias's gradient is 0 in
    exact arithmetic (cross-entropy gradients sum to zero per query): an absolute floor of 1e-6 covers it.
    Two torch threads, whatever the test process was given: the thread count splits the float32 sums, and with
    one thread a few near-zero entries of the graph layers' gradients differ by up to 1.2e-6."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        _compare_ipn_step_on_both_kernels()
    finally:
        torch.set_num_threads(threads)


def _compare_ipn_step_on_both_kernels() -> None:
    torch.manual_seed(0)
    attributes, means, queries = torch.rand(30, 312), torch.randn(30, 2048).relu(), torch.randn(30, 2048).relu()
    model = IPN(2048, attributes[:3], IPNConfig(prototype_dim=2048, graph_dim=256, hidden_dim=2048))
    outputs = {}
    for enabled in (True, False):
        model.zero_grad(set_to_none=True)
        with use_onednn(enabled):
            logits, kl = model(queries, means, attributes)
            F.cross_entropy(logits, torch.arange(30)).add(kl).backward()
        outputs[enabled] = [logits.detach(), *(p.grad.clone() for p in model.parameters())]
    for fast, reference in zip(outputs[True], outputs[False], strict=True):
        torch.testing.assert_close(fast, reference, rtol=1e-4, atol=max(1e-5 * reference.abs().max().item(), 1e-6))


@pytest.mark.parametrize("probe", ["raises", "wrong result"])
def test_a_broken_private_op_turns_the_fast_path_off(monkeypatch, probe) -> None:
    """onednn_available() calls the private op once on a tiny product: an error or a wrong result (another torch
    build, a changed signature) means F.linear everywhere, never a failure later."""
    def broken(x, weight, bias=None):
        if probe == "raises":
            raise RuntimeError("_linear_pointwise() got an unexpected argument")
        return F.linear(x, weight, bias) + 1

    monkeypatch.setattr(linear_module, "_times_transposed", broken)
    monkeypatch.setattr(linear_module, "MIN_WORK", 0)
    onednn_available.cache_clear()
    try:
        assert not onednn_available()
        x, weight = torch.randn(4, 3), torch.randn(2, 3)
        assert torch.equal(linear(x, weight), F.linear(x, weight))
    finally:
        onednn_available.cache_clear()
