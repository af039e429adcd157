"""Episodic sampler (episodes.py): shapes, order, labels, determinism, validation, image gathering."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor

from protolab.data import FewShotSplits, LabeledImages, load_fewshot
from protolab.training.episodes import Episode, EpisodeSampler, episode_images, gather_images


@pytest.fixture(scope="module")
def splits() -> FewShotSplits:
    return load_fewshot("glyphs", image_size=16, instances_per_class=6)


def _labels(n_classes: int = 10, per_class: int = 8) -> torch.Tensor:
    """Class ids interleaved (0, 1, 2, …, 0, 1, …) so that dataset order differs from class order."""
    return torch.arange(n_classes * per_class) % n_classes


@pytest.mark.parametrize(("n_way", "n_shot", "n_query"), [(5, 1, 3), (3, 5, 2), (10, 2, 0), (4, 0, 2)])
def test_shapes_labels_and_class_major_order(n_way, n_shot, n_query):
    labels = _labels()
    episode = EpisodeSampler(labels, n_way, n_shot, n_query, n_episodes=3, seed=1)[2]
    assert isinstance(episode, Episode)
    assert episode.classes.shape == (n_way,) and len(set(episode.classes.tolist())) == n_way
    assert episode.support.shape == (n_way * n_shot,) and episode.query.shape == (n_way * n_query,)
    local = torch.arange(n_way)
    assert torch.equal(episode.support_labels, local.repeat_interleave(n_shot))
    assert torch.equal(episode.query_labels, local.repeat_interleave(n_query))
    # global label of every index is the class its local label names: class-major, in episode order
    assert torch.equal(labels[episode.support], episode.classes[episode.support_labels])
    assert torch.equal(labels[episode.query], episode.classes[episode.query_labels])
    everything = torch.cat([episode.support, episode.query]).tolist()
    assert len(set(everything)) == len(everything), "support and query must not share or repeat samples"
    for tensor in (episode.classes, episode.support, episode.query, episode.support_labels, episode.query_labels):
        assert tensor.dtype == torch.int64


def test_same_seed_same_episodes_and_random_access_matches_iteration():
    first = list(EpisodeSampler(_labels(), 5, 2, 3, n_episodes=6, seed=7))
    second = EpisodeSampler(_labels(), 5, 2, 3, n_episodes=6, seed=7)
    assert len(second) == 6
    for k in reversed(range(6)):  # random access in any order gives the episode iteration gave
        assert torch.equal(first[k].support, second[k].support) and torch.equal(first[k].query, second[k].query)
        assert torch.equal(first[k].classes, second[k].classes)


def test_distinct_episodes_and_seeds_differ():
    sampler = EpisodeSampler(_labels(20, 8), 5, 1, 2, n_episodes=20, seed=0)
    draws = {tuple(episode.support.tolist() + episode.query.tolist()) for episode in sampler}
    assert len(draws) == 20
    other = EpisodeSampler(_labels(20, 8), 5, 1, 2, n_episodes=20, seed=1)
    assert not torch.equal(sampler[0].support, other[0].support)


def test_sampler_leaves_global_random_state_alone():
    state = torch.get_rng_state()
    list(EpisodeSampler(_labels(), 5, 1, 1, n_episodes=4, seed=3))
    assert torch.equal(state, torch.get_rng_state())


def test_restricted_classes_and_ineligible_classes_are_never_drawn():
    labels = torch.cat([_labels(6, 5), torch.full((2,), 6)])  # class 6 has only 2 samples
    sampler = EpisodeSampler(labels, 4, 1, 2, n_episodes=30, seed=0)
    assert 6 not in torch.cat([e.classes for e in sampler]).tolist()
    only = EpisodeSampler(labels, 2, 1, 1, n_episodes=30, seed=0, classes=[1, 4, 5])
    assert set(torch.cat([e.classes for e in only]).tolist()) <= {1, 4, 5}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_way": 11}, "only 10 of the 10"),
    ({"n_shot": 5, "n_query": 4}, "at least 9 samples"),
    ({"n_way": 0}, "n_way"),
    ({"n_shot": -1}, "n_shot"),
    ({"n_shot": 0, "n_query": 0}, "at least 1"),
    ({"n_episodes": 2.5}, "n_episodes"),
    ({"seed": -1}, "seed"),
    ({"classes": [0, 99]}, "no sample"),
    ({"classes": [0, 0, 1]}, "repeat"),
    ({"classes": [0, 1], "n_way": 3}, "only 2 of the 2"),
])
def test_invalid_arguments_raise_clear_errors(kwargs, message):
    arguments = {"n_way": 5, "n_shot": 1, "n_query": 1, "n_episodes": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        EpisodeSampler(_labels(), **arguments)


def test_bad_labels_and_indices():
    with pytest.raises(ValueError, match="1-D integer"):
        EpisodeSampler(torch.rand(10), 2, 1, 1, 1)
    sampler = EpisodeSampler(_labels(), 2, 1, 1, n_episodes=2)
    with pytest.raises(IndexError):
        sampler[2]
    with pytest.raises(IndexError):
        sampler[-1]


def test_fewshot_split_episodes_stay_within_their_split(splits):
    names = [set(split.class_names) for split in splits]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    for position, split in enumerate(splits):
        others = set().union(*(names[i] for i in range(3) if i != position))
        for episode in EpisodeSampler(split.labels, 5, 1, 5, n_episodes=5, seed=0):
            support, query = episode_images(split, episode)
            assert support.shape == (5, 1, 16, 16) and query.shape == (25, 1, 16, 16)
            assert torch.equal(support, split.images[episode.support])
            assert torch.equal(split.labels[episode.query], episode.classes[episode.query_labels])
            assert not {split.class_names[c] for c in episode.classes.tolist()} & others


def test_file_backed_gathering_matches_in_memory(tmp_path: Path):
    images = (torch.arange(6 * 4 * 4, dtype=torch.float32).reshape(6, 1, 4, 4) % 251) / 250
    paths = []
    for i, image in enumerate(images):
        path = tmp_path / f"{i}.png"
        Image.fromarray((image[0] * 255).round().byte().numpy(), mode="L").save(path)
        paths.append(path)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    common = {"labels": labels, "class_names": ["a", "b", "c"], "description": "tiny"}
    files = LabeledImages(**common, paths=paths, transform=lambda im: pil_to_tensor(im).float() / 255,
                          extra={"channels": 1})
    memory = LabeledImages(**common, images=torch.stack([files[i][0] for i in range(6)]))
    episode = EpisodeSampler(labels, 3, 1, 1, n_episodes=1)[0]
    for workers in (0, 2):
        support, query = episode_images(files, episode, workers=workers)
        expected = episode_images(memory, episode)
        assert torch.equal(support, expected[0]) and torch.equal(query, expected[1])
    assert torch.equal(gather_images(files, torch.tensor([5, 0]), workers=2), memory.images[[5, 0]])
