"""Episodic sampling for few-shot and zero-shot training: ``n_way`` classes, ``n_shot`` + ``n_query`` each.

An episode draws ``n_way`` distinct classes and, within each, ``n_shot + n_query`` distinct samples
without replacement; the first ``n_shot`` are the support set and the rest the query set. Indices
are class-major (all of class 0's samples first) and labels are episode-local ``0..n_way-1`` in the
order of :attr:`Episode.classes`.

Episode ``k`` of an :class:`EpisodeSampler` is a pure function of ``(seed, k)`` (its own generator,
seeded from both through NumPy's ``SeedSequence``), so an interrupted run resumes at episode ``k``
without replaying the earlier ones, and samplers never touch the global random state.
"""

from __future__ import annotations

import numbers
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

from protolab.data.images import LabeledImages, float_images

__all__ = ["Episode", "EpisodeSampler", "episode_images", "gather_images"]


@dataclass(frozen=True)
class Episode:
    """One episode: dataset indices and episode-local labels, class-major.

    Attributes
    ----------
    classes : torch.Tensor
        ``(n_way,)`` int64 global class ids, in episode order (episode label ``i`` is ``classes[i]``).
    support : torch.Tensor
        ``(n_way * n_shot,)`` int64 dataset indices; class 0's shots first.
    query : torch.Tensor
        ``(n_way * n_query,)`` int64 dataset indices, class-major.
    support_labels : torch.Tensor
        ``(n_way * n_shot,)`` int64 episode-local labels ``0..n_way-1``.
    query_labels : torch.Tensor
        ``(n_way * n_query,)`` int64 episode-local labels.
    """

    classes: torch.Tensor
    support: torch.Tensor
    query: torch.Tensor
    support_labels: torch.Tensor
    query_labels: torch.Tensor


def _count(value: int, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int ≥ {minimum}, got {value!r}")
    return int(value)


class EpisodeSampler:
    """``n_episodes`` episodes of ``n_way`` classes × (``n_shot`` support + ``n_query`` query) samples.

    Parameters
    ----------
    labels : torch.Tensor
        ``(N,)`` integer class id of every sample of the dataset (e.g. ``LabeledImages.labels``).
    n_way : int
        Classes per episode.
    n_shot : int
        Support samples per class (0 allowed, e.g. zero-shot episodes).
    n_query : int
        Query samples per class (0 allowed, support-only episodes).
    n_episodes : int
        Length of the sampler.
    seed : int
        Episode ``k`` depends only on ``(seed, k)``.
    classes : sequence of int, optional
        Global class ids to draw from (default: every class present in ``labels``).

    Raises
    ------
    ValueError
        On malformed arguments, or when fewer than ``n_way`` candidate classes have at least
        ``n_shot + n_query`` samples (the others are never drawn).
    """

    def __init__(self, labels: torch.Tensor, n_way: int, n_shot: int, n_query: int, n_episodes: int,
                 seed: int = 0, classes: Sequence[int] | None = None) -> None:
        labels = torch.as_tensor(labels)
        if labels.dim() != 1 or labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
            raise ValueError(f"labels must be a 1-D integer tensor, got shape {tuple(labels.shape)} "
                             f"and dtype {labels.dtype}")
        labels = labels.long().cpu()
        self.n_way = _count(n_way, "n_way", 1)
        self.n_shot = _count(n_shot, "n_shot", 0)
        self.n_query = _count(n_query, "n_query", 0)
        if self.n_shot + self.n_query == 0:
            raise ValueError("n_shot + n_query must be at least 1")
        self.n_episodes = _count(n_episodes, "n_episodes", 0)
        self.seed = _count(seed, "seed", 0)
        present, counts = torch.unique(labels, return_counts=True)
        count_of = dict(zip(present.tolist(), counts.tolist()))
        if classes is None:
            candidates = present.tolist()
        else:
            candidates = [int(c) for c in classes]
            missing = sorted({c for c in candidates if c not in count_of})
            if missing:
                raise ValueError(f"classes {missing[:5]}{' …' if len(missing) > 5 else ''} have no sample in labels")
            if len(set(candidates)) != len(candidates):
                raise ValueError("classes must not repeat a class id")
        per_class = self.n_shot + self.n_query
        eligible = [c for c in candidates if count_of[c] >= per_class]
        if self.n_way > len(eligible):
            raise ValueError(
                f"{self.n_way}-way episodes with {self.n_shot} shot + {self.n_query} query need {self.n_way} classes "
                f"with at least {per_class} samples each, but only {len(eligible)} of the {len(candidates)} "
                "candidate classes have that many"
            )
        self.classes = torch.tensor(eligible, dtype=torch.long)
        order = torch.argsort(labels, stable=True)
        pools = dict(zip(present.tolist(), torch.split(order, counts.tolist())))
        self._pools = [pools[c] for c in eligible]

    def __len__(self) -> int:
        return self.n_episodes

    def generator(self, episode: int) -> torch.Generator:
        """The generator episode ``episode`` is drawn with, seeded from ``(seed, episode)``."""
        state = np.random.SeedSequence([self.seed, episode]).generate_state(1, np.uint64)[0]
        return torch.Generator().manual_seed(int(state))

    def __getitem__(self, episode: int) -> Episode:
        if isinstance(episode, bool) or not isinstance(episode, numbers.Integral):
            raise TypeError(f"episode index must be an int, got {episode!r}")
        if not 0 <= episode < self.n_episodes:
            raise IndexError(f"episode {episode} out of range for a sampler of {self.n_episodes} episodes")
        generator = self.generator(int(episode))
        chosen = torch.randperm(len(self._pools), generator=generator)[: self.n_way]
        per_class = self.n_shot + self.n_query
        drawn = torch.stack([pool[torch.randperm(len(pool), generator=generator)[:per_class]]
                             for pool in (self._pools[i] for i in chosen.tolist())])  # (n_way, shot + query)
        local = torch.arange(self.n_way)
        return Episode(
            classes=self.classes[chosen],
            support=drawn[:, : self.n_shot].reshape(-1),
            query=drawn[:, self.n_shot:].reshape(-1),
            support_labels=local.repeat_interleave(self.n_shot),
            query_labels=local.repeat_interleave(self.n_query),
        )

    def __iter__(self) -> Iterator[Episode]:
        return (self[k] for k in range(self.n_episodes))

    def __repr__(self) -> str:
        return (f"EpisodeSampler(n_way={self.n_way}, n_shot={self.n_shot}, n_query={self.n_query}, "
                f"n_episodes={self.n_episodes}, seed={self.seed}, eligible_classes={len(self.classes)})")


def gather_images(data: LabeledImages, indices: torch.Tensor, *, workers: int = 0,
                  as_float: bool = True) -> torch.Tensor:
    """The images of ``data`` at ``indices`` as one tensor ``(len(indices), C, H, W)``, float in ``[0, 1]``.

    In-memory (and decoded, memory-mapped) data is indexed in one operation, and uint8 pixels are converted
    to float once for the whole selection; with ``as_float=False`` they are returned as stored (uint8
    ``0..255``), for a conversion on the device (:mod:`protolab.training.loading`). File-backed data is decoded image
    by image, in ``workers`` threads when ``workers > 0`` (PIL releases the GIL while decoding).
    """
    indices = torch.as_tensor(indices, dtype=torch.long)
    if data.images is not None:
        images = data.images.index_select(0, indices)  # whole images copied at once, unlike data.images[indices]
        return float_images(images) if as_float else images
    if len(indices) == 0:
        raise ValueError("cannot infer the image shape of an empty selection of file-backed data")

    def load(index: int) -> torch.Tensor:
        return data[index][0]

    if workers > 0:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return torch.stack(list(pool.map(load, indices.tolist())))
    return torch.stack([load(i) for i in indices.tolist()])


def episode_images(data: LabeledImages, episode: Episode, *, workers: int = 0,
                   as_float: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``(support_images, query_images)`` of ``episode``: ``(n_way·n_shot, C, H, W)``, ``(n_way·n_query, C, H, W)``.

    Both are gathered in one call of :func:`gather_images` (one indexing for in-memory data, one
    thread pool for file-backed data; ``as_float`` as there) and keep the episode's class-major order.
    """
    images = gather_images(data, torch.cat([episode.support, episode.query]), workers=workers, as_float=as_float)
    return images[: len(episode.support)], images[len(episode.support):]
