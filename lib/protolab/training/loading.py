"""Feeding the device: episodes and mini-batches of a :class:`LabeledImages`, prepared ahead.

Each item is gathered whole, an episode's support and query images or a mini-batch, in one call of
:func:`~protolab.training.episodes.gather_images`: one ``index_select`` of in-memory or decoded (memory-mapped) data,
the files one by one for file-backed data. With ``num_workers > 0`` items are prepared ahead:

- file-backed data: by a ``torch.utils.data.DataLoader`` with ``num_workers`` worker processes (forked, the
  Linux default), which decode files in parallel;
- in-memory and decoded data: by one background thread of the main process, up to ``2·num_workers`` items
  ahead. The gather is a single memory copy that releases the GIL; handing its result over from a worker
  process costs 10–40 times more (a fresh shared-memory segment per item, page-faulted in by both
  processes; see ``benchmarks/loader_throughput.py``).

With ``num_workers=0`` each item is prepared in the main thread when it is needed. Images travel as
stored: uint8 (a quarter of the bytes of float) becomes float on the device, after the copy (for a CUDA
device, from pinned memory without blocking).

Determinism: an item depends only on its index (episode ``k`` on ``(sampler.seed, k)`` through
:class:`~protolab.training.episodes.EpisodeSampler`; a mini-batch on the indices it is given), never on the worker
or thread that builds it. Workers draw no random numbers, and the DataLoader's seed comes from a private
generator, so the global random state is left alone: results are identical for every ``num_workers``.
Randomness that depends on the batch (augmentation) is drawn by the caller, in the main process.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, NamedTuple, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from protolab.data.images import LabeledImages, float_images
from protolab.training.episodes import EpisodeSampler, episode_images, gather_images

__all__ = ["Batch", "EpisodeBatch", "batches", "device_images", "episode_batches", "prepare_model"]


class EpisodeBatch(NamedTuple):
    """One episode's tensors, class-major as in :class:`~protolab.training.episodes.Episode`.

    Attributes
    ----------
    support : ``(n_way·n_shot, C, H, W)`` images.
    query : ``(n_way·n_query, C, H, W)`` images.
    support_labels : ``(n_way·n_shot,)`` int64 episode-local labels ``0..n_way-1``.
    query_labels : ``(n_way·n_query,)`` int64 episode-local labels.
    """

    support: torch.Tensor
    query: torch.Tensor
    support_labels: torch.Tensor
    query_labels: torch.Tensor


class _Episodes(Dataset):
    """Item ``k``: the :class:`EpisodeBatch` of episode ``k`` of ``sampler``, images as stored."""

    def __init__(self, data: LabeledImages, sampler: EpisodeSampler) -> None:
        self.data, self.sampler = data, sampler

    def __getitem__(self, k: int) -> EpisodeBatch:
        episode = self.sampler[k]
        support, query = episode_images(self.data, episode, as_float=False)
        return EpisodeBatch(support, query, episode.support_labels, episode.query_labels)


class Batch(NamedTuple):
    """A mini-batch: ``images`` ``(B, C, H, W)`` and ``labels`` ``(B,)`` int64."""

    images: torch.Tensor
    labels: torch.Tensor


class _Batches(Dataset):
    """Item ``indices`` (a list of dataset indices): their :class:`Batch`, images as stored."""

    def __init__(self, data: LabeledImages) -> None:
        self.data = data

    def __getitem__(self, indices: list[int]) -> Batch:
        return Batch(gather_images(self.data, indices, as_float=False), self.data.labels[indices])


def _prepared(dataset: Dataset, index: object, pin: bool) -> NamedTuple:
    item = dataset[index]
    return type(item)(*(tensor.pin_memory() for tensor in item)) if pin else item


def _items(data: LabeledImages, dataset: Dataset, order: Sequence, *, device: torch.device,
           num_workers: int) -> Iterator[NamedTuple]:
    """``dataset[i]`` (a named tuple of tensors) for ``i`` in ``order``, pinned for CUDA, prepared as the module
    docstring says for ``data``."""
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers must be an int ≥ 0, got {num_workers!r}")
    pin = device.type == "cuda"
    if data.images is None or num_workers == 0:
        yield from DataLoader(dataset, batch_size=None, sampler=order, num_workers=num_workers, pin_memory=pin,
                              generator=torch.Generator().manual_seed(0))
        return
    thread, pending = ThreadPoolExecutor(max_workers=1), deque()
    try:
        for index in order:
            pending.append(thread.submit(_prepared, dataset, index, pin))
            if len(pending) > 2 * num_workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        thread.shutdown(cancel_futures=True)


def _channels_last(device: torch.device, channels_last: bool | None) -> bool:
    return device.type == "cuda" if channels_last is None else channels_last


def device_images(images: torch.Tensor, device: torch.device, *, channels_last: bool | None = None) -> torch.Tensor:
    """A batch ``(B, C, H, W)`` as stored (uint8 or float) → float in ``[0, 1]`` on ``device``.

    The copy does not block (it overlaps computation when the batch is pinned); uint8 is converted after
    the copy. ``channels_last`` (default: on CUDA) returns the channels-last memory format that convolutions
    with channels-last weights (:func:`prepare_model`) run fastest on; the values are the same either way.
    """
    images = float_images(images.to(device, non_blocking=True))
    if _channels_last(device, channels_last):
        return images.contiguous(memory_format=torch.channels_last)
    return images


def prepare_model(model: nn.Module, device: torch.device, *, channels_last: bool | None = None) -> nn.Module:
    """``model`` moved to ``device`` (in place, and returned); with ``channels_last`` (default: on CUDA) its
    4-d weights in the channels-last memory format. On CUDA, ``torch.backends.cudnn.benchmark`` is switched
    on: cuDNN times its convolution algorithms for each new input shape and keeps the fastest (episodes and
    batches have few shapes); the algorithm chosen may differ between runs, so CUDA results are reproducible
    to rounding only."""
    model.to(device)
    if _channels_last(device, channels_last):
        model.to(memory_format=torch.channels_last)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return model


def episode_batches(data: LabeledImages, sampler: EpisodeSampler, *, device: torch.device, num_workers: int = 0,
                    start: int = 0) -> Iterator[EpisodeBatch]:
    """Episodes ``start, …, len(sampler) - 1`` of ``sampler`` over ``data``, on ``device``.

    Images are float in ``[0, 1]`` (:func:`device_images`), labels int64; episode ``k`` is the same for every
    ``num_workers`` and every ``start``. With ``num_workers > 0`` episodes are prepared ahead (worker
    processes for file-backed data, a background thread otherwise; see the module docstring).
    """
    episodes = _Episodes(data, sampler)
    for batch in _items(data, episodes, range(start, len(sampler)), device=device, num_workers=num_workers):
        yield EpisodeBatch(device_images(batch.support, device), device_images(batch.query, device),
                           batch.support_labels.to(device, non_blocking=True),
                           batch.query_labels.to(device, non_blocking=True))


def batches(data: LabeledImages, order: torch.Tensor, *, batch_size: int, device: torch.device,
            num_workers: int = 0, drop_last: bool = False) -> Iterator[Batch]:
    """Mini-batches (:class:`Batch`: images ``(B, C, H, W)`` float, labels ``(B,)`` int64) on ``device``.

    ``data`` at ``order`` (``(M,)`` dataset indices: a permutation for shuffled training, ``arange(N)`` for
    inference) cut into consecutive batches of ``batch_size``, the last one shorter unless ``drop_last``;
    prepared ahead with ``num_workers > 0`` as :func:`episode_batches` does.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size!r}")
    chunks = [chunk.tolist() for chunk in torch.as_tensor(order, dtype=torch.long).split(batch_size)]
    if drop_last and chunks and len(chunks[-1]) < batch_size:
        chunks.pop()
    for images, labels in _items(data, _Batches(data), chunks, device=device, num_workers=num_workers):
        yield Batch(device_images(images, device), labels.to(device, non_blocking=True))
