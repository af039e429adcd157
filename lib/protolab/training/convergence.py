"""One early-stopping rule for every training loop, and the ``models`` table row each trained model writes.

A loop validates every ``eval_every`` of its steps (an epoch, an episode, a batch: the loop says which) and
hands the score to :meth:`EarlyStopping.update`. The best-scoring weights are the ones to keep (the earliest on
ties). Training stops after ``patience`` evaluations in a row that did not beat the *reference* — the score of
the last evaluation that improved on its predecessor reference by more than ``min_delta`` (the validation
noise) — or at ``max_steps``. A model stopped by patience is *converged*; one stopped by ``max_steps`` is not,
and a verdict drawn from it is inconclusive (:func:`protolab.claims.decide`). ``patience=None`` never stops
early: the loop runs ``max_steps`` steps and keeps the best weights (model selection without early stopping).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

MODEL_COLUMNS = ("notebook", "arm", "seed", "steps", "best_step", "stopped_by", "converged", "final_score",
                 "best_score", "wall_seconds")
"""Columns of a notebook's ``models`` table: one row per trained model (:func:`model_row`)."""


@dataclass(frozen=True)
class StoppingRule:
    """When to validate and when to stop.

    eval_every : loop steps between two validations (≥ 1).
    patience : evaluations in a row without a real improvement before training stops (≥ 1); None: never before
        ``max_steps`` (validation only selects the weights to keep).
    max_steps : loop steps at most; a model that reaches it was stopped by ``max_steps`` (not converged).
    min_delta : the smallest validation improvement that counts (≥ 0), e.g. the noise of the validation score.
    """

    eval_every: int = 1
    patience: int | None = 5
    max_steps: int = 100
    min_delta: float = 0.0

    def __post_init__(self) -> None:
        for name in ("eval_every", "patience", "max_steps"):
            value = getattr(self, name)
            if name == "patience" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"StoppingRule.{name} must be an integer >= 1, got {value!r}")
        if not self.min_delta >= 0:
            raise ValueError(f"StoppingRule.min_delta must be >= 0, got {self.min_delta!r}")


@dataclass
class EarlyStopping:
    """The state of :class:`StoppingRule` over one training run (plain values: it can be checkpointed).

    Call :meth:`update` after each validation at loop step ``step``; it returns True when this score is the best
    so far (keep these weights). :attr:`stop` tells the loop to end; :meth:`finish` records how it ended.
    """

    rule: StoppingRule
    best_score: float = -math.inf
    best_step: int = 0
    reference: float = -math.inf
    waited: int = 0
    last_step: int = 0
    final_score: float = math.nan
    scores: list[tuple[int, float]] = field(default_factory=list)

    def due(self, step: int) -> bool:
        """Whether the loop validates after step ``step`` (1-based): every ``eval_every`` steps and at the last."""
        return step % self.rule.eval_every == 0 or step >= self.rule.max_steps

    def update(self, step: int, score: float) -> bool:
        """Record validation ``score`` (higher is better) after loop step ``step``; True when it is the best yet."""
        self.last_step, self.final_score = step, float(score)
        self.scores.append((step, float(score)))
        if score > self.reference + self.rule.min_delta:
            self.reference, self.waited = float(score), 0
        else:
            self.waited += 1
        if score > self.best_score:
            self.best_score, self.best_step = float(score), step
            return True
        return False

    @property
    def patience_spent(self) -> bool:
        """Whether ``patience`` evaluations in a row brought no real improvement (never with ``patience=None``)."""
        return self.rule.patience is not None and self.waited >= self.rule.patience

    def stop(self, step: int) -> bool:
        """Whether training ends after step ``step``: patience spent or ``max_steps`` reached."""
        return self.patience_spent or step >= self.rule.max_steps

    def record(self) -> dict[str, Any]:
        """``steps``, ``best_step``, ``stopped_by`` (``"patience"`` | ``"max_steps"``), ``converged``,
        ``final_score`` and ``best_score`` of the run so far."""
        stopped_by = "patience" if self.patience_spent else "max_steps"
        return {"steps": self.last_step, "best_step": self.best_step, "stopped_by": stopped_by,
                "converged": stopped_by == "patience", "final_score": self.final_score,
                "best_score": self.best_score if self.scores else math.nan}

    def state(self) -> dict[str, Any]:
        """Plain values to checkpoint (:meth:`from_state` restores them)."""
        return {key: value for key, value in asdict(self).items() if key != "rule"}

    @classmethod
    def from_state(cls, rule: StoppingRule, state: dict[str, Any]) -> EarlyStopping:
        return cls(rule, **{**state, "scores": [tuple(pair) for pair in state["scores"]]})


def model_row(notebook: str, arm: str, seed: int, record: dict[str, Any], wall_seconds: float) -> dict[str, Any]:
    """One row of the ``models`` table (:data:`MODEL_COLUMNS`) from :meth:`EarlyStopping.record`."""
    return {"notebook": notebook, "arm": arm, "seed": seed, **{key: record[key] for key in MODEL_COLUMNS[3:-1]},
            "wall_seconds": float(wall_seconds)}


def models_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The rows of :func:`model_row` as a DataFrame with the columns of :data:`MODEL_COLUMNS`, in order."""
    return pd.DataFrame(rows, columns=list(MODEL_COLUMNS))


def grid_models(notebook: str, arms: Sequence[str], seeds: Sequence[int],
                results: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The ``models`` table of models trained one per grid cell: one row per (arm, seed, result), each result
    holding the ``convergence`` record and the ``wall_seconds`` its cell stored."""
    return models_table([model_row(notebook, arm, seed, result["convergence"], result["wall_seconds"])
                         for arm, seed, result in zip(arms, seeds, results, strict=True)])


def grid_curves(arms: Sequence[str], seeds: Sequence[int], results: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Every model's learning curve in one table: the ``history`` records each result stored (one per evaluation
    step), with columns ``arm`` and ``seed`` added."""
    return pd.concat([pd.DataFrame(result["history"]).assign(arm=arm, seed=seed)
                      for arm, seed, result in zip(arms, seeds, results, strict=True)], ignore_index=True)


def converged_arms(models: pd.DataFrame, *arms: str) -> bool:
    """True when every model of ``arms`` in a ``models`` table stopped by patience (and there is one)."""
    rows = models[models.arm.isin(arms)]
    return bool(len(rows)) and bool(rows.converged.all())


def convergence_summary(models: pd.DataFrame) -> str:
    """One sentence on a ``models`` table: the share of models stopped by patience and, by name, those the cap
    stopped, e.g. ``"Models stopped by patience (converged): 95% of 20; by the epoch cap: euclidean, 1-shot (seed
    3)."``"""
    capped = models[~models.converged.astype(bool)]
    names = "; ".join(f"{row.arm} (seed {row.seed})" for row in capped.itertuples())
    return (f"Models stopped by patience (converged): {models.converged.mean():.0%} of {len(models)}"
            + (f"; by the epoch cap: {names}" if names else "") + ".")
