"""protolab.training.loading and the loops' ``num_workers`` / ``amp``: identical results for 0 and 2 workers (worker
processes for file-backed data, a thread for decoded data), bfloat16 on the CPU, channels-last correctness,
optimiser state across memory formats, and the pinned non-blocking path (CUDA only)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from torch import nn

from benchmarks.paper_size_data import write_market1501, write_mini_imagenet
from protolab.training import loading, loops as train
from protolab.backbones import Conv4
from protolab.data import FewShotSplits, ReidSplits
from protolab.data.fewshot_sets import load_mini_imagenet
from protolab.data.reid import load_market1501
from protolab.training.episodes import EpisodeSampler, episode_images, gather_images
from protolab.training.loading import batches, device_images, episode_batches, prepare_model
from protolab.fewshot.protonet import ProtoNet
from protolab.reid.fit import evaluate_retrieval, reid_training
from protolab.reid.model import build_reid_model
from protolab.training.loops import adam, apply_batched, evaluate_episodic, fit_classifier, train_episodic

CPU = torch.device("cpu")
EPISODE = {"n_way": 3, "n_shot": 1, "n_query": 2}


@pytest.fixture(scope="module")
def mini_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MiniImageNet's CSV layout: 6 / 4 / 4 classes × 6 JPEGs of 84×84."""
    return write_mini_imagenet(tmp_path_factory.mktemp("mini"), classes=(6, 4, 4), images_per_class=6)


@pytest.fixture(scope="module")
def mini(mini_root: Path) -> FewShotSplits:
    """The splits decoded (uint8, memory-mapped), read at 20×20."""
    return load_mini_imagenet(mini_root, image_size=20)


@pytest.fixture(scope="module", params=["decoded", "file-backed"])
def splits(request: pytest.FixtureRequest, mini: FewShotSplits, mini_root: Path) -> FewShotSplits:
    """The decoded splits (prepared ahead by a thread) and the file-backed ones (by worker processes)."""
    return mini if request.param == "decoded" else load_mini_imagenet(mini_root, image_size=20, decoded=False)


@pytest.fixture(scope="module", params=["decoded", "file-backed"])
def market(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> ReidSplits:
    root = write_market1501(tmp_path_factory.mktemp("market"), train_ids=4, train_images=24, test_ids=3,
                            query_images=6, gallery_images=12, distractors=2, junk=2)
    return load_market1501(root, image_size=(32, 16), decoded=request.param == "decoded")


def _protonet(seed: int = 0) -> ProtoNet:
    torch.manual_seed(seed)
    return ProtoNet(Conv4(in_channels=3, width=8), geometry="euclidean")


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_episode_batches_are_the_sampler_episodes(splits: FewShotSplits, num_workers: int) -> None:
    data = splits.train
    sampler = EpisodeSampler(data.labels, **EPISODE, n_episodes=6, seed=4)
    got = list(episode_batches(data, sampler, device=CPU, num_workers=num_workers, start=2))
    assert len(got) == 4
    for k, batch in enumerate(got, start=2):
        support, query = episode_images(data, sampler[k])
        assert batch.support.dtype == torch.float32 and torch.equal(batch.support, support)
        assert torch.equal(batch.query, query)
        assert torch.equal(batch.support_labels, sampler[k].support_labels)
        assert torch.equal(batch.query_labels, sampler[k].query_labels)


def test_decoded_data_is_prepared_by_a_thread_files_by_worker_processes(splits: FewShotSplits,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[int] = []
    real = loading.DataLoader

    def recording(*args, **kwargs):
        started.append(kwargs["num_workers"])
        return real(*args, **kwargs)

    monkeypatch.setattr(loading, "DataLoader", recording)
    sampler = EpisodeSampler(splits.train.labels, **EPISODE, n_episodes=3, seed=0)
    assert len(list(episode_batches(splits.train, sampler, device=CPU, num_workers=2))) == 3
    assert started == ([] if splits.train.images is not None else [2])


@pytest.mark.parametrize("num_workers", [0, 2])
def test_batches_follow_the_order(mini: FewShotSplits, num_workers: int) -> None:
    data = mini.val
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    got = list(batches(data, order, batch_size=5, device=CPU, num_workers=num_workers))
    assert [len(labels) for _, labels in got] == [5, 5, 5, 5, 4]
    assert torch.equal(torch.cat([images for images, _ in got]), gather_images(data, order))
    assert torch.equal(torch.cat([labels for _, labels in got]), data.labels[order])
    dropped = list(batches(data, order, batch_size=5, device=CPU, num_workers=num_workers, drop_last=True))
    assert [len(labels) for _, labels in dropped] == [5, 5, 5, 5]
    with pytest.raises(ValueError, match="num_workers"):
        next(batches(data, order, batch_size=5, device=CPU, num_workers=-1))


def test_episodic_training_is_identical_for_0_and_2_workers(splits: FewShotSplits) -> None:
    runs = []
    for num_workers in (0, 2):
        model = _protonet()
        history = train_episodic(model, splits.train, splits.val, **EPISODE, episodes_per_epoch=4, epochs=2,
                                 val_episodes=3, lr=5e-3, step_size=1, gamma=0.5, device=CPU, seed=1,
                                 progress=False, num_workers=num_workers)
        _, _, accuracies = evaluate_episodic(model, splits.test, **EPISODE, n_episodes=5, device=CPU, seed=2,
                                             progress=False, num_workers=num_workers)
        runs.append((model, history, accuracies))
    (model_0, history_0, accuracies_0), (model_2, history_2, accuracies_2) = runs
    assert history_0.equals(history_2) and torch.equal(accuracies_0, accuracies_2)
    assert _same_weights(model_0, model_2)


def test_batch_training_and_retrieval_are_identical_for_0_and_2_workers(market: ReidSplits) -> None:
    runs = []
    for num_workers in (0, 2):
        torch.manual_seed(0)
        model = build_reid_model("euclidean", backbone="conv4", in_channels=3, dim=8, n_classes=4, c=1.0)
        history = fit_classifier(model, market.train, epochs=2, batch_size=8, lr=3e-3, device=CPU, seed=3,
                                 weight_decay=5e-4, progress=False, num_workers=num_workers,
                                 **reid_training("sch1", 2, flip=True, pad=4, erasing=0.5))  # augmentation on
        retrieval = evaluate_retrieval(model, market.query, market.gallery, device=CPU, batch_size=5,
                                       num_workers=num_workers)
        torch.manual_seed(0)
        classifier = nn.Sequential(Conv4(in_channels=3, width=8, dim=8), nn.Linear(8, 4))
        fitted = fit_classifier(classifier, market.train, epochs=2, batch_size=7, lr=3e-3, device=CPU, seed=3,
                                progress=False, num_workers=num_workers)
        logits = apply_batched(classifier, market.train, batch_size=5, device=CPU, num_workers=num_workers)
        runs.append((model, history, retrieval, classifier, fitted, logits))
    first, second = runs
    assert _same_weights(first[0], second[0]) and first[1].equals(second[1])
    assert torch.equal(first[2]["distances"], second[2]["distances"]) and first[2]["mAP"] == second[2]["mAP"]
    assert _same_weights(first[3], second[3]) and first[4].equals(second[4]) and torch.equal(first[5], second[5])


def test_amp_on_the_cpu_runs_in_bfloat16_with_finite_float32_losses(mini: FewShotSplits, market: ReidSplits) -> None:
    model = _protonet()
    seen: list[torch.dtype] = []
    model.backbone.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    history = train_episodic(model, mini.train, mini.val, **EPISODE, episodes_per_epoch=3, epochs=1, val_episodes=2,
                             lr=5e-3, step_size=1, gamma=0.5, device=CPU, seed=1, progress=False, amp=True)
    assert set(seen) == {torch.bfloat16}
    assert history[["train_loss", "train_accuracy", "val_accuracy"]].notna().all().all()
    assert torch.isfinite(torch.tensor(history["train_loss"].to_numpy())).all()
    reference = train_episodic(_protonet(), mini.train, mini.val, **EPISODE, episodes_per_epoch=3, epochs=1,
                               val_episodes=2, lr=5e-3, step_size=1, gamma=0.5, device=CPU, seed=1, progress=False)
    assert history["train_loss"].iloc[0] != reference["train_loss"].iloc[0]  # bfloat16 did change the numbers

    torch.manual_seed(0)
    reid_model = build_reid_model("hyperbolic", backbone="conv4", in_channels=3, dim=4, n_classes=4, c=0.5, clip_r=2.0)
    reid_history = fit_classifier(reid_model, market.train, epochs=1, batch_size=8, lr=3e-3, device=CPU, seed=0,
                                  weight_decay=5e-4, progress=False, amp=True,
                                  **reid_training("sch1", 1, flip=True, pad=4, erasing=0.5))
    assert torch.isfinite(torch.tensor(reid_history["loss"].to_numpy())).all()
    embeddings = apply_batched(reid_model.embedder(), market.query, batch_size=4, device=CPU, amp=True)
    assert embeddings.dtype == torch.float32 and embeddings.shape == (len(market.query), 4)
    assert torch.isfinite(embeddings).all()


def test_channels_last_gives_the_same_outputs_on_the_cpu(mini: FewShotSplits) -> None:
    raw = mini.train.images[:8]
    images = device_images(raw, CPU, channels_last=True)
    assert images.is_contiguous(memory_format=torch.channels_last) and not raw.is_floating_point()
    assert torch.equal(images, raw.float() / 255) and torch.equal(device_images(raw, CPU), images)
    torch.manual_seed(0)
    plain = Conv4(in_channels=3, width=8).eval()
    torch.manual_seed(0)
    last = prepare_model(Conv4(in_channels=3, width=8), CPU, channels_last=True).eval()
    assert last.blocks[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(last(images), plain(raw.float() / 255))


def test_optimizer_state_of_another_memory_format_is_laid_out_like_the_weights() -> None:
    """A checkpoint of a channels-last model (as on CUDA) resumed by a contiguous one (as on the CPU): the fused
    Adam kernel reads the moments as flat arrays, so they must take the weights' layout to pair the right elements."""
    torch.manual_seed(0)
    images = torch.rand(4, 3, 8, 8)
    saved = nn.Conv2d(3, 5, 3).to(memory_format=torch.channels_last)
    optimizer = adam(saved.parameters(), lr=0.1)
    saved(images).square().sum().backward()
    optimizer.step()
    resumed = nn.Conv2d(3, 5, 3)
    resumed.load_state_dict(saved.state_dict())
    resumed_optimizer = adam(resumed.parameters(), lr=0.1)
    checkpoint = io.BytesIO()
    torch.save(optimizer.state_dict(), checkpoint)
    checkpoint.seek(0)
    train._load_optimizer(resumed_optimizer, torch.load(checkpoint, weights_only=True))
    moments = resumed_optimizer.state[resumed.weight]
    assert moments["exp_avg"].stride() == resumed.weight.stride() == moments["exp_avg_sq"].stride()
    for model, model_optimizer in ((saved, optimizer), (resumed, resumed_optimizer)):
        model.zero_grad()
        (model(images) ** 3).sum().backward()
        model_optimizer.step()
    torch.testing.assert_close(resumed.weight, saved.weight, rtol=0, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="no CUDA device: the pinned, non-blocking, convert-on-device path needs one")
def test_cuda_episodes_are_pinned_copies_converted_on_the_device(mini: FewShotSplits) -> None:
    cuda = torch.device("cuda")
    sampler = EpisodeSampler(mini.train.labels, **EPISODE, n_episodes=4, seed=0)
    for k, batch in enumerate(episode_batches(mini.train, sampler, device=cuda, num_workers=2)):
        support, query = episode_images(mini.train, sampler[k])
        assert batch.support.is_cuda and batch.support.dtype == torch.float32
        assert batch.query.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(batch.support.cpu(), support) and torch.equal(batch.query.cpu(), query)
        assert torch.equal(batch.query_labels.cpu(), sampler[k].query_labels)
    model = _protonet()
    history = train_episodic(model, mini.train, mini.val, **EPISODE, episodes_per_epoch=3, epochs=1, val_episodes=2,
                             lr=5e-3, step_size=1, gamma=0.5, device=cuda, seed=1, progress=False, num_workers=2,
                             amp=True)
    assert torch.backends.cudnn.benchmark and next(model.parameters()).is_cuda
    assert torch.isfinite(torch.tensor(history["train_loss"].to_numpy())).all()
