"""Prototype heads (protonet.py): prototypes, logits in both geometries, shapes, gradients; and the
backbones they run on (backbones.py): ResNet-12, DropBlock, channels-last (loading.prepare_model)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from protolab.backbones import BACKBONES, Conv4, ResNet12, build_backbone, drop_block
from protolab.hyperbolic import ToPoincare, pairwise_dist, poincare_mean
from protolab.training.loading import prepare_model
from protolab.fewshot.protonet import ProtoNet, euclidean_prototypes, hyperbolic_prototypes

SEEDS = [0, 1, 2]
DTYPES = [torch.float32, torch.float64]


def _identity_net(geometry: str, **kwargs) -> ProtoNet:
    return ProtoNet(nn.Flatten(), geometry=geometry, **kwargs)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_euclidean_prototype_is_class_mean_in_any_label_order(seed, dtype):
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(12, 5, generator=generator, dtype=dtype)
    labels = torch.randperm(12, generator=generator) % 3
    prototypes = euclidean_prototypes(embeddings, labels, 3)
    expected = torch.stack([embeddings[labels == k].mean(0) for k in range(3)])
    torch.testing.assert_close(prototypes, expected)
    torch.testing.assert_close(_identity_net("euclidean").prototypes(embeddings, labels, 3), expected)


@pytest.mark.parametrize("c", [0.01, 1.0])
@pytest.mark.parametrize("dtype", DTYPES)
def test_hyperbolic_prototype_of_identical_points_is_that_point(c, dtype):
    point = ToPoincare(c)(torch.randn(2, 7, generator=torch.Generator().manual_seed(0), dtype=dtype))
    embeddings = point.repeat_interleave(4, dim=0)  # 4 copies of each point
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    torch.testing.assert_close(hyperbolic_prototypes(embeddings, labels, 2, c), point)


@pytest.mark.parametrize("seed", SEEDS)
def test_hyperbolic_prototype_is_the_einstein_midpoint_of_each_class(seed):
    generator = torch.Generator().manual_seed(seed)
    embeddings = ToPoincare(0.5)(torch.randn(9, 4, generator=generator, dtype=torch.float64))
    labels = torch.tensor([2, 0, 1, 1, 2, 0, 0, 2, 1])
    net = _identity_net("hyperbolic", c=0.5)
    expected = torch.stack([poincare_mean(embeddings[labels == k], c=0.5) for k in range(3)])
    torch.testing.assert_close(net.prototypes(embeddings, labels, 3), expected)


def test_unbalanced_or_out_of_range_labels_are_refused():
    with pytest.raises(ValueError, match="same non-zero number"):
        euclidean_prototypes(torch.zeros(3, 2), torch.tensor([0, 0, 1]), 2)
    with pytest.raises(ValueError, match="same non-zero number"):
        euclidean_prototypes(torch.zeros(2, 2), torch.tensor([0, 0]), 2)
    with pytest.raises(ValueError, match="0..1"):
        euclidean_prototypes(torch.zeros(2, 2), torch.tensor([0, 2]), 2)


@pytest.mark.parametrize("geometry", ["euclidean", "hyperbolic"])
@pytest.mark.parametrize("seed", SEEDS)
def test_logits_prefer_the_nearest_prototype_and_match_the_formula(geometry, seed):
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(4, 6, generator=generator, dtype=torch.float64) * 3
    support = centres.repeat_interleave(2, dim=0) + 0.01 * torch.randn(8, 6, generator=generator, dtype=torch.float64)
    labels = torch.arange(4).repeat_interleave(2)
    order = torch.randperm(4, generator=generator)
    query = centres[order] + 0.01 * torch.randn(4, 6, generator=generator, dtype=torch.float64)
    net = _identity_net(geometry, c=0.1, temperature=2.0)
    logits = net(support, labels, query, 4)
    assert logits.shape == (4, 4)
    assert torch.equal(logits.argmax(1), order)
    embedded_query, prototypes = net.embed(query), net.prototypes(net.embed(support), labels, 4)
    if geometry == "euclidean":
        expected = -((embedded_query[:, None] - prototypes[None]) ** 2).sum(-1) / 2.0
    else:
        expected = -pairwise_dist(embedded_query, prototypes, c=0.1) / 2.0
    torch.testing.assert_close(logits, expected)


@pytest.mark.parametrize("geometry", ["euclidean", "hyperbolic"])
def test_temperature_divides_logits(geometry):
    generator = torch.Generator().manual_seed(0)
    support, query = torch.randn(6, 5, generator=generator), torch.randn(9, 5, generator=generator)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    plain = _identity_net(geometry)(support, labels, query, 3)
    hot = _identity_net(geometry, temperature=4.0)(support, labels, query, 3)
    torch.testing.assert_close(hot, plain / 4.0)


@pytest.mark.parametrize("geometry", ["euclidean", "hyperbolic"])
def test_conv4_shapes_and_gradients_flow_to_backbone_and_curvature(geometry):
    torch.manual_seed(0)
    kwargs = {"train_c": True, "clip_r": 2.0} if geometry == "hyperbolic" else {}
    net = ProtoNet(Conv4(in_channels=1, width=8), geometry=geometry, c=0.05, **kwargs)
    support, query = torch.rand(3 * 2, 1, 16, 16), torch.rand(3 * 4, 1, 16, 16)
    labels = torch.arange(3).repeat_interleave(2)
    logits = net(support, labels, query, 3)
    assert logits.shape == (12, 3) and torch.isfinite(logits).all()
    nn.functional.cross_entropy(logits, torch.arange(3).repeat_interleave(4)).backward()
    for name, parameter in net.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
    assert net.backbone.blocks[0][0].weight.grad.abs().sum() > 0
    if geometry == "hyperbolic":
        assert net.to_poincare.raw_c.grad.abs() > 0


def test_invalid_configurations_are_refused():
    with pytest.raises(ValueError, match="geometry"):
        ProtoNet(nn.Flatten(), geometry="spherical")
    with pytest.raises(ValueError, match="temperature"):
        ProtoNet(nn.Flatten(), temperature=0.0)
    with pytest.raises(ValueError, match="hyperbolic"):
        ProtoNet(nn.Flatten(), clip_r=1.0)
    with pytest.raises(ValueError):
        ProtoNet(nn.Flatten(), geometry="hyperbolic", c=-1.0)
    assert ProtoNet(nn.Flatten()).c is None and ProtoNet(nn.Flatten(), "hyperbolic", c=0.2).c == 0.2


def test_resnet12_has_the_official_widths_and_gives_512d_features_at_84_pixels():
    torch.manual_seed(0)
    net = build_backbone("resnet12", 3).eval()
    assert [block.body[0].out_channels for block in net.blocks] == [64, 128, 256, 512]
    images = torch.randn(2, 3, 84, 84)
    with torch.no_grad():
        assert nn.Sequential(*net.blocks)(images).shape == (2, 512, 5, 5)  # 84 → 42 → 21 → 10 → 5
        features = net(images)
    assert features.shape == (2, 512) and torch.isfinite(features).all()
    assert torch.equal(features, net(images).detach()), "evaluation is deterministic (no dropout)"


@pytest.mark.parametrize("geometry", ["euclidean", "hyperbolic"])
def test_a_resnet12_protonet_trains_one_step(geometry):
    torch.manual_seed(0)
    net = ProtoNet(build_backbone("resnet12", 3), geometry, c=0.01, riemannian=geometry == "hyperbolic").train()
    support, query = torch.randn(3, 3, 32, 32), torch.randn(6, 3, 32, 32)
    before = {name: value.clone() for name, value in net.state_dict().items()}
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss = nn.functional.cross_entropy(net(support, torch.arange(3), query, 3), torch.arange(3).repeat(2))
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())
    assert not torch.equal(before["backbone.blocks.0.body.0.weight"], net.backbone.blocks[0].body[0].weight)
    assert net.backbone.steps == 1 and "backbone.steps" in net.state_dict()


def test_resnet12_counts_training_passes_only_for_its_dropblock_ramp():
    net = ResNet12(1, widths=(4, 4, 4, 4), drop_rate=0.5)
    images = torch.randn(2, 1, 32, 32)
    net.eval()
    net(images)
    assert net.steps == 0
    net.train()
    net(images), net(images), net(images)
    assert net.steps == 3
    assert ResNet12(1, drop_rate=0.0).train()(images).shape == (2, 512)


@pytest.mark.parametrize("seed", SEEDS)
def test_drop_block_zeroes_squares_and_keeps_the_mean(seed):
    torch.manual_seed(seed)
    x = torch.ones(4, 8, 10, 10)
    out = drop_block(x, 0.3, 5)
    kept = out != 0
    assert 0 < kept.float().mean() < 1
    torch.testing.assert_close(out.mean(), torch.tensor(1.0))  # rescaled by (all / kept)
    assert torch.unique(out[kept]).numel() == 1
    assert torch.equal(drop_block(x, 0.0, 5), x)
    small = drop_block(torch.ones(2, 3, 2, 2), torch.tensor(0.5), 5)  # block clipped to the map: all or nothing
    assert (small == small[..., :1, :1]).all()


@pytest.mark.parametrize("name", [name for name in BACKBONES if name != "small_cnn"])
def test_channels_last_gives_the_same_features(name):
    torch.manual_seed(0)
    plain = build_backbone(name, 3, 32).eval()
    fast = prepare_model(build_backbone(name, 3, 32), torch.device("cpu"), channels_last=True).eval()
    fast.load_state_dict(plain.state_dict())
    convs = [m.weight for m in fast.modules() if isinstance(m, nn.Conv2d)]
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fast(images), plain(images), rtol=1e-4, atol=1e-4)


def test_unknown_backbones_are_refused_naming_the_choices():
    with pytest.raises(ValueError, match="resnet12"):
        build_backbone("vgg", 3)
