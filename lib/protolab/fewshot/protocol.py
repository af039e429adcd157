r"""The few-shot train-and-test protocol (Khrulkov et al., CVPR 2020, Sec. 6.2), written once.

One model is a :class:`~protolab.fewshot.protonet.ProtoNet` of one geometry, trained for one shot and
one training way from one seed, then tested:

1. **initialisation**: :func:`~protolab.core.reproducibility.seed_everything` ``(seed)``, then the
   backbone and the head are built, so the initial weights depend only on ``seed``;
2. **training** (:func:`~protolab.training.loops.train_episodic`): ``train_way``-way episodes of
   ``shot`` support and ``query`` query images per class (seed ``seed``), Adam with StepLR, after each
   epoch ``val_episodes`` ``test_way``-way validation episodes (seed ``seed + 1``); the weights with
   the best validation accuracy are kept; with ``patience``, training stops early by the shared rule
   (:mod:`protolab.training.convergence`, ``epochs`` the cap);
3. **test** (:func:`~protolab.training.loops.evaluate_episodic`): ``test_episodes`` ``test_way``-way
   episodes of the novel classes (seed ``seed + 2``), the same episodes for every geometry, so that
   two geometries' per-episode accuracies can be compared in pairs.

``notebooks/fewshot_tables`` and ``scripts/calibrate_fewshot.py`` call it. Every function is a pure
"settings + data + seed → result" call: nothing is read from globals and nothing is printed besides
optional progress bars (it does reseed the global generators, as step 1 says).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

import pandas as pd
import torch

from protolab.backbones import build_backbone
from protolab.core.reproducibility import seed_everything
from protolab.data.fewshot_sets import FewShotSplits
from protolab.data.images import LabeledImages
from protolab.fewshot.protonet import ProtoNet
from protolab.training.convergence import StoppingRule
from protolab.training.loops import evaluate_episodic, train_episodic

__all__ = ["FewShotResult", "ProtocolSettings", "evaluate_protonet", "paired_differences", "train_and_test",
           "train_protonet"]


@dataclass(frozen=True)
class ProtocolSettings:
    """What every model of one few-shot experiment shares (a model adds geometry, c, shot, train_way, seed)."""

    backbone: str  # protolab.backbones.build_backbone name: conv4, resnet12 or resnet18
    dim: int  # conv4's embedding dimension (ResNets are always 512-d)
    query: int  # query images per class in every episode
    test_way: int  # classes per validation and test episode
    temperature: float  # logits = −distance / temperature
    riemannian: bool  # hyperbolic models: rescale the embedding's gradient by 1/λ_x² (ignored for Euclidean ones)
    epochs: int  # training epochs at most, validation and best-weights selection after each
    episodes: int  # training episodes per epoch
    val_episodes: int  # validation episodes after each epoch
    test_episodes: int  # test episodes on the novel classes
    lr: float  # Adam learning rate
    step_size: int  # StepLR: epochs between learning-rate decays
    gamma: float  # StepLR: factor of each decay
    patience: int | None = None  # early stopping: validations without an improvement > min_delta (None: never)
    min_delta: float = 0.005  # early stopping: the smallest validation-accuracy gain that counts (half a point; the
    # validation episodes are the same every epoch, so successive scores are paired, their changes far below the
    # ≈ 1.6-point standard error of 50 5-way 1-shot episodes)

    def stopping(self) -> StoppingRule:
        """The early-stopping rule of training (:class:`~protolab.training.convergence.StoppingRule`): validation
        after every epoch, ``patience`` and ``min_delta`` as above, ``epochs`` the cap."""
        return StoppingRule(eval_every=1, patience=self.patience, max_steps=self.epochs, min_delta=self.min_delta)


class FewShotResult(NamedTuple):
    """One trained-and-tested model.

    Attributes
    ----------
    history : pandas.DataFrame
        One row per epoch, as :func:`~protolab.training.loops.train_episodic` returns it (``epoch``,
        ``episodes``, ``lr``, ``train_loss``, ``train_accuracy``, ``val_accuracy``, ``val_ci95``);
        ``attrs["best_epoch"]`` is the epoch whose weights were tested, ``attrs["convergence"]`` how training
        stopped (:meth:`~protolab.training.convergence.EarlyStopping.record`).
    test_accuracies : torch.Tensor
        ``(test_episodes,)`` float64 accuracy of each test episode, in [0, 1]; episode ``k`` depends
        only on ``(seed + 2, k)``, whatever the geometry.
    """

    history: pd.DataFrame
    test_accuracies: torch.Tensor


def train_protonet(settings: ProtocolSettings, splits: FewShotSplits, *, geometry: str, c: float, shot: int,
                   train_way: int, seed: int, device: torch.device, checkpoint: Path | None = None,
                   progress: bool = True, num_workers: int = 0, amp: bool = False) -> tuple[ProtoNet, pd.DataFrame]:
    """Steps 1 and 2 of the protocol: a ProtoNet built from ``seed`` and trained on ``splits.train``.

    Parameters
    ----------
    settings : ProtocolSettings
        The experiment's protocol.
    splits : FewShotSplits
        Training and validation classes (``splits.test`` is not read).
    geometry, c : str, float
        ``"euclidean"`` or ``"hyperbolic"``; the ball's curvature (hyperbolic only).
    shot, train_way : int
        Support images per class in every episode; classes per training episode.
    seed : int
        Initialisation and training episodes (validation episodes: ``seed + 1``).
    device : torch.device
        Where the model trains.
    checkpoint : Path, optional
        File of the resumable training state (:func:`~protolab.training.loops.train_episodic`), keyed by the
        whole ``settings``, the geometry, c, shot, way, seed, the architecture and the data: a file written for
        another configuration is not resumed.
    progress, num_workers, amp
        Progress bars; episodes prepared ahead; bfloat16 autocast of the backbone (as in
        :mod:`protolab.training.loops`).

    Returns
    -------
    model : ProtoNet
        The weights of the best validation epoch, in eval mode, on ``device``.
    history : pandas.DataFrame
        One row per epoch trained (``settings.epochs`` rows unless stopped early by ``settings.patience``),
        ``attrs["best_epoch"]`` the epoch kept, ``attrs["convergence"]`` how training stopped.
    """
    seed_everything(seed)
    backbone = build_backbone(settings.backbone, splits.train[0][0].shape[0], settings.dim)
    model = ProtoNet(backbone, geometry, c=c, temperature=settings.temperature,
                     riemannian=settings.riemannian and geometry == "hyperbolic")
    history = train_episodic(model, splits.train, splits.val, n_way=train_way, n_shot=shot, n_query=settings.query,
                             episodes_per_epoch=settings.episodes, stopping=settings.stopping(),
                             val_episodes=settings.val_episodes, lr=settings.lr, step_size=settings.step_size,
                             gamma=settings.gamma, device=device, seed=seed, val_way=settings.test_way,
                             checkpoint=checkpoint, identity={"protocol": asdict(settings), "geometry": geometry,
                                                              "c": c, "shot": shot, "train_way": train_way},
                             progress=progress, num_workers=num_workers, amp=amp)
    return model, history


def evaluate_protonet(model: ProtoNet, settings: ProtocolSettings, test_data: LabeledImages, *, shot: int,
                      seed: int, device: torch.device, progress: bool = True, num_workers: int = 0,
                      amp: bool = False) -> torch.Tensor:
    """Step 3 of the protocol: accuracies ``(settings.test_episodes,)`` float64 of ``model`` on ``test_data``.

    ``settings.test_way``-way ``shot``-shot episodes with ``settings.query`` queries per class, seeded
    ``seed + 2`` (``seed`` being the model's training seed); other arguments as in :func:`train_protonet`.
    """
    _, _, accuracies = evaluate_episodic(model, test_data, n_way=settings.test_way, n_shot=shot,
                                         n_query=settings.query, n_episodes=settings.test_episodes, device=device,
                                         seed=seed + 2, progress=progress, num_workers=num_workers, amp=amp)
    return accuracies


def train_and_test(settings: ProtocolSettings, splits: FewShotSplits, *, geometry: str, c: float, shot: int,
                   train_way: int, seed: int, device: torch.device, checkpoint: Path | None = None,
                   progress: bool = True, num_workers: int = 0, amp: bool = False) -> FewShotResult:
    """The whole protocol for one (geometry, c, shot, train_way, seed): :func:`train_protonet`, then
    :func:`evaluate_protonet` on ``splits.test``; arguments as in :func:`train_protonet`.

    Returns
    -------
    FewShotResult
        ``history`` (as :func:`train_protonet` returns it) and ``test_accuracies``
        ``(settings.test_episodes,)`` float64; their mean and 95% half-width are
        :func:`protolab.metrics.mean_ci95` ``(test_accuracies)``.
    """
    speed = {"progress": progress, "num_workers": num_workers, "amp": amp}
    model, history = train_protonet(settings, splits, geometry=geometry, c=c, shot=shot, train_way=train_way,
                                    seed=seed, device=device, checkpoint=checkpoint, **speed)
    accuracies = evaluate_protonet(model, settings, splits.test, shot=shot, seed=seed, device=device, **speed)
    return FewShotResult(history, accuracies)


def paired_differences(euclidean: dict[int, torch.Tensor], hyperbolic: dict[int, torch.Tensor],
                       seeds: Sequence[int]) -> pd.DataFrame:
    """Per shot and training seed, both geometries' test accuracy and their difference on the same episodes.

    ``euclidean[shot]`` and ``hyperbolic[shot]``: ``(len(seeds), test_episodes)`` per-episode accuracies of the
    models of each seed (in the order of ``seeds``), every model tested on the same episodes (step 3). Returns
    one row per (shot, seed): ``shot, seed, euclidean_%, hyperbolic_%`` (mean accuracy, %) and
    ``difference_points`` (hyperbolic − Euclidean, points of %, unrounded: the claims' input).
    """
    rows = [{"shot": shot, "seed": seed, "euclidean_%": round(100 * float(euclidean[shot][k].mean()), 2),
             "hyperbolic_%": round(100 * float(hyperbolic[shot][k].mean()), 2),
             "difference_points": 100 * float((hyperbolic[shot][k] - euclidean[shot][k]).mean())}
            for shot in euclidean for k, seed in enumerate(seeds)]
    return pd.DataFrame(rows, columns=["shot", "seed", "euclidean_%", "hyperbolic_%", "difference_points"])
