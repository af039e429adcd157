"""The eight official few-shot configs of the hyperbolic paper (Khrulkov et al., CVPR 2020), as data.

Each :class:`FewShotConfig` is one script of the official code (``examples/fewshot/configs/*.sh``,
all hyperbolic ProtoNets); :data:`PROTOCOL` is what they share. The reported accuracy is not stored
here: it stays in :data:`protolab.paper_results.FEWSHOT_ACCURACY`, and :attr:`FewShotConfig.reported`
reads it. Provenance of every number: the official scripts (hyperparameters in their command lines, the
reported accuracy in their header comment).

Each config is also a runner profile ``full-<name>`` of the ``fewshot_tables`` notebook in
``notebooks/profiles.yaml``; :func:`profile_overrides` gives its parameters and ``python -m
protolab.fewshot.configs`` prints the YAML lines to paste (a test checks the file against them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from protolab.paper_results import FEWSHOT_ACCURACY

__all__ = ["CONFIGS", "PROTOCOL", "FewShotConfig", "FewShotProtocol", "differences", "find_config", "paper_columns",
           "profile_name", "profile_overrides", "profiles_yaml"]


@dataclass(frozen=True)
class FewShotProtocol:
    """What every official config shares: training length, episode sizes, evaluation."""

    epochs: int = 200  # training epochs, validation and best-checkpoint selection after each
    episodes: int = 100  # training episodes per epoch
    val_episodes: int = 500  # 5-way validation episodes per epoch
    test_episodes: int = 10_000  # 5-way test episodes on the novel classes; CI: metrics.mean_ci95
    query: int = 15  # query images per class in every episode
    test_way: int = 5  # classes per validation and test episode
    temperature: float = 1.0  # logits = −d_c(q, p) / temperature
    image_size: int = 84  # side of the images
    riemannian: bool = True  # every released run rescaled the feature gradient by 1/λ_x² (PAPERS.md)


PROTOCOL = FewShotProtocol()


@dataclass(frozen=True)
class FewShotConfig:
    """One official config: a dataset, a shot, a backbone and its hyper-parameters.

    Attributes
    ----------
    name : ``<dataset>-<backbone>-<shot>shot``, e.g. ``"mini-conv4-1shot"``.
    dataset : protolab's dataset name (``"miniimagenet"``, ``"cub"``).
    shot, backbone : support images per class; :func:`protolab.backbones.build_backbone` name.
    train_way : classes per training episode.
    lr, step_size, gamma : Adam learning rate; StepLR period (epochs) and factor.
    c : curvature magnitude of the Poincaré ball.
    dim : embedding dimension (Conv4: channels of its last block; ResNets: always 512).
    script : the official script the numbers come from.
    note : where the official code disagrees with itself about this config.
    """

    name: str
    dataset: str
    shot: int
    backbone: str
    train_way: int
    lr: float
    step_size: int
    gamma: float
    c: float
    dim: int
    script: str
    note: str = ""

    @property
    def reported(self) -> str:
        """The 5-way test accuracy (%) ± 95% CI that the script's header reports, as ``"<mean> ± <ci>"``."""
        return FEWSHOT_ACCURACY[(self.dataset, self.backbone, "hyperbolic", self.shot)]

    @property
    def source(self) -> str:
        return f"header comment of examples/fewshot/{self.script} in the official hyperbolic code"


_CUB_DIM = ("configs/birds/conv4_{shot}s.sh passes --dim 1024; reproduce_{shot}s.sh, which the official "
            "README points to, passes --dim 1600 (used here)")

#: The eight configs, in PAPERS.md's order.
CONFIGS: tuple[FewShotConfig, ...] = (
    FewShotConfig("cub-conv4-1shot", "cub", 1, "conv4", 5, 1e-3, 50, 0.8, 0.05, 1600, "reproduce_1s.sh",
                  _CUB_DIM.format(shot=1)),
    FewShotConfig("cub-conv4-5shot", "cub", 5, "conv4", 5, 1e-3, 40, 0.8, 0.01, 1600, "reproduce_5s.sh",
                  _CUB_DIM.format(shot=5)),
    FewShotConfig("mini-conv4-1shot", "miniimagenet", 1, "conv4", 30, 5e-3, 80, 0.5, 0.01, 1600,
                  "configs/mini/conv4_1s.sh"),
    FewShotConfig("mini-conv4-5shot", "miniimagenet", 5, "conv4", 20, 5e-3, 60, 0.8, 0.005, 1600,
                  "configs/mini/conv4_5s.sh"),
    FewShotConfig("mini-resnet18-1shot", "miniimagenet", 1, "resnet18", 30, 1e-3, 80, 0.5, 0.01, 512,
                  "configs/mini/res18_1s.sh"),
    FewShotConfig("mini-resnet18-5shot", "miniimagenet", 5, "resnet18", 20, 1e-3, 40, 0.5, 0.005, 512,
                  "configs/mini/res18_5s.sh"),
    FewShotConfig("mini-resnet12-1shot", "miniimagenet", 1, "resnet12", 30, 1e-3, 40, 0.8, 0.01, 512,
                  "configs/mini/res12_1s.sh"),
    FewShotConfig("mini-resnet12-5shot", "miniimagenet", 5, "resnet12", 20, 5e-3, 50, 0.8, 0.005, 512,
                  "configs/mini/res12_5s.sh"),
)


def find_config(dataset: str, backbone: str, shot: int) -> FewShotConfig | None:
    """The official config for this dataset, backbone and shot, or ``None``."""
    return next((config for config in CONFIGS
                 if (config.dataset, config.backbone, config.shot) == (dataset, backbone, shot)), None)


def profile_name(config: FewShotConfig) -> str:
    """``full-<config name>``: the config's runner profile of the ``fewshot_tables`` notebook."""
    return f"full-{config.name}"


def profile_overrides(config: FewShotConfig) -> dict[str, Any]:
    """The ``fewshot_tables`` parameters of ``config`` run with :data:`PROTOCOL` (one shot, the config's learning
    rate and curvature: no tuning grid)."""
    protocol = PROTOCOL
    return {"dataset": config.dataset, "image_size": protocol.image_size, "backbone": config.backbone,
            "dim": config.dim, "shots": [config.shot], "train_way": [config.train_way], "test_way": protocol.test_way,
            "query": protocol.query, "temperature": protocol.temperature,
            "riemannian": protocol.riemannian, "step_size": config.step_size, "gamma": config.gamma,
            "epochs": protocol.epochs, "episodes": protocol.episodes, "val_episodes": protocol.val_episodes,
            "test_episodes": protocol.test_episodes, "euclidean_lrs": [config.lr], "hyperbolic_lrs": [config.lr],
            "curvatures": [config.c], "patience": None}  # the paper's protocol: every epoch, the best on validation kept


def profiles_yaml(width: int = 118) -> str:
    """The profiles of :data:`CONFIGS` as lines of ``notebooks/profiles.yaml`` (indented under ``fewshot_tables:``),
    at most ``width`` characters each."""
    lines = []
    for config in CONFIGS:
        items = [f"{key}: {_yaml_value(value)}" for key, value in profile_overrides(config).items()]
        line, indent = f"  {profile_name(config)}: {{", "    "
        for position, item in enumerate(items):
            piece = item + ("}" if position == len(items) - 1 else ",")
            if len(line) + 1 + len(piece) > width and not line.endswith("{"):
                lines.append(line)
                line = indent + piece
            else:
                line += ("" if line.endswith("{") else " ") + piece
        lines.append(line)
    return "\n".join(lines)


def _yaml_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(map(_yaml_value, value)) + "]"
    return str(value)  # plain scalars: our names, ints, and floats whose repr YAML reads back as floats


def differences(config: FewShotConfig, run: Mapping[str, Any]) -> list[str]:
    """Parameters in which ``run`` differs from ``config``'s profile, e.g. ``["lr", "epochs"]``.

    ``run`` maps the notebook's parameter names to one table row's values, with ``shot``, ``train_way``, ``lr`` and
    ``c`` as numbers (the row's, not lists); a parameter missing from ``run`` counts as different.
    """
    expected = {**profile_overrides(config), "shot": config.shot, "train_way": config.train_way, "lr": config.lr,
                "c": config.c}
    ignored = {"shots", "euclidean_lrs", "hyperbolic_lrs", "curvatures"} | ({"dim"} if config.backbone != "conv4" else set())  # dim only shapes Conv4
    return [key for key, value in expected.items() if key not in ignored and run.get(key) != value]


def paper_columns(run: Mapping[str, Any]) -> dict[str, str]:
    """The paper's number beside one row of our results, and the official config it corresponds to.

    ``run`` holds the row's ``dataset``, ``backbone``, ``geometry``, ``shot`` and parameters (as for
    :func:`differences`). ``paper`` is the official config's reported accuracy for a hyperbolic row whose
    dataset, backbone and shot match one of :data:`CONFIGS` (the Euclidean number of
    :data:`~protolab.paper_results.FEWSHOT_ACCURACY` for a Euclidean row), else "—"; ``official_config``
    names that config and, when any, the parameters in which this run differs from it.
    """
    config = find_config(run["dataset"], run["backbone"], run["shot"])
    if run["geometry"] != "hyperbolic":
        return {"paper": FEWSHOT_ACCURACY.get((run["dataset"], run["backbone"], run["geometry"], run["shot"]), "—"),
                "official_config": "—"}
    if config is None:
        return {"paper": "—", "official_config": "—"}
    changed = differences(config, run)
    return {"paper": config.reported,
            "official_config": config.name + (f" (differs: {', '.join(changed)})" if changed else "")}


if __name__ == "__main__":
    print(profiles_yaml())
