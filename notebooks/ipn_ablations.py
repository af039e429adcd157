# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # IPN ablations: which parts of the Isometric Propagation Network matter?
#
# **Question.** IPN (Liu et al., ICLR 2021) combines prototypes from two spaces, propagation over a
# category graph in each space, a consistency loss between the spaces, and episodic training. Which of them
# matter? Each arm below changes one factor of the base IPN; every arm's learning rate (and its consistency
# weight λ, when it has the loss) is chosen on validation with the same budget of selection runs
# (`protolab.zsl.tuning`), every arm trains with the same optimiser steps per epoch and the same early-stopping
# rule, and each claim compares two arms that differ in that one factor, over `n_seeds` training seeds.
#
# **An extension, not a claim of either paper:** the *hyperbolic IPN* arm (`protolab.zsl.hyperbolic_ipn`) puts
# IPN's prototypes, category graphs, propagation (attention-weighted Einstein midpoints) and distance scores in
# the Poincaré ball of Khrulkov et al. (CVPR 2020), with its curvature chosen on validation. Neither paper
# proposes or tests it; `tuning_curvatures = []` leaves it out.
#
# **Data used here by default:** the embedded synthetic `glyph-zsl` set (letters with diacritics
# rendered from matplotlib's fonts, attributes from Unicode names, features from a small CNN trained on
# seen classes only). It is *not* AWA2/CUB/aPY: what matters on it need not matter on the paper's data.
# Set `dataset` (AWA2, CUB, APY, SUN) and `data_root` to run the same grid on xlsa17 features.
#
# Every finished (variant, seed) cell is stored on disk as soon as it finishes, in the cache the three IPN
# notebooks share (`ipn_gzsl` and `consistency_study` read the same base cells); a re-run after an
# interruption computes only the missing cells (`reuse_cache = False` recomputes everything). Cells are
# trained `workers` at a time in worker processes with one thread each, so a cell's numbers do not depend
# on how many run at once (a run with several threads per model, as in `ipn_gzsl`, can give other
# numbers: training amplifies rounding differences, by about as much as changing the seed).
# With `executor = "slurm"` each missing cell is one SLURM job instead, storing its result in the same
# cache (on a shared file system); a cell whose job fails or is cancelled is computed by the next run.

# %% tags=["parameters"]
from typing import Literal
dataset: str = "glyph-zsl"  # [zsl dataset] glyph-zsl (embedded), AWA2, CUB, APY, SUN (xlsa17 folders under
    # data_root), or folder: your own data_root/{features.npy, labels.csv, attributes.csv, splits.json} (check it:
    # `protolab data check zsl DIR`)
data_root: str = ""  # folder holding <dataset>/res101.mat and att_splits.mat, or your folder (real data only)
steps: int = 2  # [≥ 0] propagation steps K of the base IPN (official code: 2)
threshold: float | None = None  # [≥ -1, ≤ 1] graph threshold of every arm: cosine below which no edge is
    # drawn (official: cos 40° = 0.766); None: chosen on validation among threshold_grid with the base IPN
steps_grid: list[int] = [0, 1, 2, 3]  # [non-empty, ≥ 0] propagation steps compared (K = 0: the no-graph arm;
    # the others at the base's tuned settings)
threshold_grid: list[float] = [0.0, 0.5, 0.766, 0.9]  # [non-empty, ≥ -1, ≤ 1] graph thresholds the base
    # tries on validation (when threshold is None) and compared on test (at the base's tuned settings)
temperature: float = 10.0  # [> 0] multiplier of the cosine similarities inside the attention softmax (official: 10)
logit_scale: float = 1.0  # [> 0] cross-entropy on logits / logit_scale (official: 100, suited to its 2048-d widths)
n_way: int = 30  # [≥ 2] seen classes per training episode (official: 30)
episode_unseen: int = 5  # [≥ 0, < n_way] of the n_way classes, held out per episode with copied prototypes
    # (official: 0)
episodes_per_epoch: int | None = None  # [≥ 1] episodes (or minibatches) per epoch; None = by episodes_rule
episodes_rule: Literal["ours", "official"] = "ours"  # ours: training images / (2 n_way);
    # official: ((N/30)//100 + 1)·100 (AWA2 800)
attributes: Literal["normalised", "original"] = "normalised"  # IPN's semantic input: normalised (xlsa17 att)
    # or original (original_att, official)
prototype_dim: int = 256  # [≥ 1] width of each space's prototypes (official: 2048)
graph_dim: int = 64  # [≥ 1] width of the attention projection (official: 256)
hidden_dim: int = 256  # [≥ 1] hidden width of the scoring MLP (official: 2048)
epochs: int = 90  # [≥ 1] at most this many training epochs in each model-selection run (official: 360)
lr_step: int | None = 30  # [≥ 1] epochs at the full learning rate before its ×0.1 drop (None: 2/3 of epochs;
    # official: 240 of 360)
patience: int = 5  # [≥ 1] a selection run stops after this many epochs without a better validation H
tuning_lrs: list[float] = [5e-4, 1e-3, 2e-3, 4e-3]  # [non-empty, > 0] Adam learning rates an arm without
    # the consistency loss tries on validation (official: 2e-5)
tuning_consistency_lrs: list[float] = [1e-3, 2e-3]  # [non-empty, > 0] learning rates an arm with the loss tries,
    # each with every λ of tuning_weights (as many settings in all as tuning_lrs)
tuning_weights: list[float] = [0.03, 0.3]  # [non-empty, > 0] consistency weights λ tried (official: 1)
tuning_curvatures: list[float] = [0.1, 1.0]  # [> 0] curvatures c the hyperbolic IPN tries, each with every lr of
    # tuning_consistency_lrs at the base's λ (an extension of both papers; empty: no hyperbolic arm)
tuning_seed: int = 100  # [≥ 0] seed of the tuning runs (not one of the seeds that decide the claims)
n_seeds: int = 10  # [≥ 1] every variant is trained with seeds seed, seed+1, ...; tables give mean ± std
sweep_seeds: int = 5  # [≥ 1] the sweeps' variants (K ∉ {0, steps}, thresholds but the chosen one) use the first
    # min(sweep_seeds, n_seeds) of those seeds: they draw curves, no claim compares them
reuse_cache: bool = True  # reuse (variant, seed) cells finished by an earlier run of the same code
workers: int = 0  # [≥ 0] cells trained at once in worker processes, one thread each
    # (0 = this notebook's CPU threads; 1 on CUDA)
executor: Literal["local", "slurm"] = "local"  # local: cells computed here (workers);
    # slurm: one SLURM job per missing cell (cache on a shared file system)
profile: str = "default"  # smoke | quick | default | full
seed: int = 0  # [≥ 0] first random seed (the embedded data set is built with this seed)
device: str = "auto"  # [device] cpu, cuda or auto (CUDA when present)
out_dir: str = "figures"  # where figures and tables are written

# %%
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from protolab import figures, resolve_device, seed_everything
from protolab.claims import POINTS, claims_lines, claims_table, compare, paired_effect, paired_seed_differences
from protolab.data import load_zsl
from protolab.data.xlsa17 import PAPER_DATASETS
from protolab.training.convergence import converged_arms, grid_models
from protolab.zsl.grid import (BASE, HYPERBOLIC, NO_CONSISTENCY, NO_GRAPH, NON_EPISODIC, SEMANTIC_ONLY, VISUAL_ONLY,
                               base_configs, collapse_rates, run_ipn_grid, runs_table, seed_table, study_variants,
                               tuned_arms)
from protolab.zsl.tuning import TuningGrid, describe_chosen, tuning_caption
from protolab.plots import metric_sweeps, name_spread, seed_bars

session = figures.start("ipn_ablations", globals())
device = resolve_device(device)
seed_everything(seed)
data = load_zsl(dataset, data_root, seed=seed)
figures.describe_data(data.description)
display(Markdown(f"**Data:** {data.description}. {data.n_classes} classes ({len(data.seen_classes)} seen, "
                 f"{len(data.unseen_classes)} unseen), {data.attributes.shape[1]} attributes, "
                 f"{data.feature_dim}-d features."))
grid_options = dict(dataset=dataset, data_root=data_root, seed=seed, device=device, reuse=reuse_cache,
                    workers=workers, executor=executor)

# %% [markdown]
# ## Tuning on validation, the same budget for every arm
# The base IPN has both spaces, episodic training, K = `steps` and the consistency loss. Its graph threshold is
# the study's: unless `threshold` is given, the base tries its settings at every threshold of `threshold_grid` and
# the threshold of its best validation run becomes every arm's (K = 0 has no graph).
# The tuned arms change one factor each: the loss off; one space only (no second attention, hence no loss);
# minibatches instead of episodes (as many minibatches per epoch as episodes: the same optimiser steps); K = 0
# (no graph: IPN's prototype scorer with both spaces and no propagation, hence no loss); and the hyperbolic IPN
# (geometry: the whole model in the Poincaré ball). An arm with the loss tries every (learning rate, λ) of
# `tuning_consistency_lrs` × `tuning_weights`, an arm without it every learning rate of `tuning_lrs`, the hyperbolic
# IPN every (learning rate, c) of `tuning_consistency_lrs` × `tuning_curvatures` at the λ the base chose — the same
# number of selection runs — from `tuning_seed`, on the validation split of the
# seen classes only; the setting with the best validation H is kept (rule in `protolab.zsl.tuning`). The sweeps
# of K and of the threshold then run at the base's chosen setting, on the first `sweep_seeds` seeds (curves, not
# claims).

# %%
thresholds = threshold_grid if threshold is None else [threshold]
base_model, base_train = base_configs(
    data, steps=steps, threshold=thresholds[0], temperature=temperature, logit_scale=logit_scale,
    prototype_dim=prototype_dim, graph_dim=graph_dim, hidden_dim=hidden_dim, epochs=epochs, n_way=n_way,
    episode_unseen=episode_unseen, episodes_per_epoch=episodes_per_epoch, episodes_rule=episodes_rule,
    attributes=attributes, patience=patience, lr_step=lr_step)
shown = ([BASE, NO_CONSISTENCY, SEMANTIC_ONLY, VISUAL_ONLY, NON_EPISODIC] + ([NO_GRAPH] if 0 in steps_grid else [])
         + ([HYPERBOLIC] if tuning_curvatures else []))
tuning_grid = TuningGrid(tuple(tuning_lrs), tuple(tuning_consistency_lrs), tuple(tuning_weights),
                         tuple(tuning_curvatures))
tuning, tuned = tuned_arms(data, shown, (base_model, base_train), tuning_grid, tuning_seed=tuning_seed,
                           thresholds=thresholds, **grid_options)
graph_threshold = tuned[BASE][0].threshold
figures.save_table(tuning, "tuning", caption=tuning_caption(dataset, tuning_seed, tuning_grid.budget))
tuning

# %% [markdown]
# ## The grid
# The tuned arms at their chosen settings, then the sweeps of K and of the graph threshold at the base's. Each
# cell is one model-selection run on the validation classes plus a refit on all seen classes, then one test
# evaluation, exactly as in `ipn_gzsl` (see that notebook for where we differ from the paper and the official
# code). Whether this is the paper's own ablation layout could not be checked: the paper's tables could not be read
# here, so the "paper" column says so instead of holding numbers.

# %%
tuned_model, tuned_train = tuned[BASE]
factors = {name: arm.factor for name, arm in study_variants(base_model, base_train).items() if name in tuned}
variants = dict(tuned)
variants |= {f"K = {k}": (replace(tuned_model, steps=k), tuned_train) for k in steps_grid if k not in (steps, 0)}
variants |= {f"threshold {t:g}": (replace(tuned_model, threshold=t), tuned_train) for t in threshold_grid
             if t != graph_threshold}
factors |= {name: "steps" if name.startswith("K =") else "threshold" for name in variants if name not in factors}
sweep_n = min(sweep_seeds, n_seeds)
sweep_counts = {name: sweep_n for name in variants if name not in tuned}
cells, grid = run_ipn_grid(data, variants, n_seeds=n_seeds, seed_counts=sweep_counts, **grid_options)
runs = runs_table(cells, grid).assign(factor=lambda t: t.variant.map(factors))
figures.save_table(runs, "runs", caption=f"Every (variant, seed) cell of the ablation grid on {dataset}: its "
                   "settings (lr, λ = weight), test U/S/H (fractions), selected epoch, first-step graph neighbours per "
                   "class on the test search space (`final_neighbours_*`); `source` says whether the cell was "
                   "computed in this run or reused from the shared cache.")
models = grid_models("ipn_ablations", runs.variant, runs.seed, grid.results)
figures.save_table(models, "models", caption="Every trained model: selection epochs run (`steps`), the best one, "
                   "whether patience stopped it (`converged`) or the epoch cap, its final and best validation H.")
display(Markdown(f"{grid.sources.count('computed')} cell(s) computed in this run, "
                 f"{grid.sources.count('cached')} reused from the cache."))

# %% [markdown]
# ## Ablation table
# Percentages, mean ± std over seeds (the table is built from `ipn_ablations__runs.csv`, written above). A run
# *collapsed* when its H is below twice chance (2 / number of classes); collapsed runs stay in the means and the
# claims and are counted per arm. "visual space only" is a sanity check, not a claim: an unseen class's visual
# prototype is a copy of a seen class's, so that arm cannot tell unseen classes apart by construction.

# %%
runs = pd.read_csv(session.out_dir / "ipn_ablations__runs.csv")
summary = seed_table(runs, "variant", {"U": 100, "S": 100, "H": 100}, order=list(variants))
summary.insert(1, "dataset", dataset)
summary.insert(2, "factor", [factors[v] for v in summary.variant])
settings = runs.assign(c=runs.curvature.where(runs.geometry == "hyperbolic")).groupby("variant")[
    ["lr", "weight", "c"]].first()
neighbours = runs.groupby("variant")[["final_neighbours_semantic", "final_neighbours_visual"]].mean().round(1)
summary = summary.join(settings, on="variant").join(neighbours, on="variant").assign(
    paper="not available here" if dataset.upper() in PAPER_DATASETS else "—")
summary["collapsed"] = collapse_rates(runs, "variant", 2 / data.n_classes, order=summary.variant)
figures.save_table(summary, "ablations", caption=f"IPN ablations on {dataset}: GZSL U/S/H (%), mean ± std over "
                   f"{n_seeds} seed(s) ({sweep_n} for the sweeps), one factor changed at a time from the base IPN, "
                   "each tuned arm at its chosen lr and λ (weight), the hyperbolic IPN (an extension of both papers) "
                   "at its chosen c; neighbours = mean number of other classes each class attends to in the first "
                   "propagation step (test search space); collapsed: seeds with H below twice chance.")
summary[["variant", "factor", "lr", "weight", "c", "U", "S", "H", "collapsed", "final_neighbours_semantic",
         "final_neighbours_visual", "paper"]]

# %% [markdown]
# ## H per variant

# %%
fig, ax = plt.subplots(figsize=(10, 4))
colours = {factor: f"C{i}" for i, factor in enumerate(summary.factor.unique())}
seed_bars(ax, {v: 100 * part.H for v, part in runs.groupby("variant", sort=False)},
          [colours[f] for f in summary.factor])
ax.set(ylabel="H (%)", title=f"IPN ablations on {dataset}: H, mean ± std over seeds (dots: seeds)")
name_spread([ax], f"whiskers: ± 1 std over {n_seeds} seed(s), {sweep_n} for the sweeps; dots: "
            "single seeds", kind="whiskers")
figures.save_figure(fig, "h_per_variant", caption="Harmonic mean H of each ablation variant (bars: mean, "
                    "whiskers: std over seeds, dots: single seeds); colours group the factor varied.")

# %% [markdown]
# ## H against the propagation steps and the graph threshold
# K ∈ {1, 3} and every threshold run at the base's chosen setting; K = 0 is the no-graph arm (tuned, no loss).
# A threshold where most seeds collapse is shaded: there every class attends to (nearly) every other and the
# prototypes are averaged into one (over-smoothing). The validation H of the sweep's models (never the test
# data) says whether the evaluation seeds agree with the threshold the tuning seed chose.

# %%
sweeps = [(label, runs[runs.factor.isin(["base", key])].groupby(key)[["U", "S", "H"]].agg(["mean", "std"])
           .mul(100).sort_index())
          for key, label in (("steps", "propagation steps K"), ("threshold", "graph threshold"))]
fig = metric_sweeps(sweeps)
fig.axes[0].set_xticks(sorted(steps_grid))
threshold_runs = runs[runs.factor.isin(["base", "threshold"])]
collapse_share = (threshold_runs.H < 2 / data.n_classes).groupby(threshold_runs.threshold).mean()
for t in collapse_share[collapse_share > 0.5].index:
    fig.axes[1].axvspan(t - 0.03, t + 0.03, color="red", alpha=0.15, lw=0)
if (collapse_share > 0.5).any():
    fig.axes[1].text(0.02, 0.95, "shaded: most seeds collapse\n(over-smoothing)", transform=fig.axes[1].transAxes,
                     va="top", fontsize=8, color="darkred")
val_threshold = models.assign(threshold=runs.threshold)[runs.factor.isin(["base", "threshold"])].groupby(
    "threshold").best_score.mean()  # validation H of the sweep's selection runs
name_spread(fig.axes, f"error bars: ± 1 std over {sweep_n} seed(s) ({n_seeds} at the base's K "
            "and threshold)", kind="whiskers")
figures.save_figure(fig, "h_vs_steps_and_threshold", caption="U, S and H (mean ± std over seeds) against the number "
                    "of propagation steps K and against the graph threshold at the base's tuned setting (K = 0: the "
                    "no-graph arm); shaded thresholds: most seeds collapse (H below twice chance).")

# %% [markdown]
# ## Claims
# Each claim compares two arms that differ in one factor, both tuned alike and trained with the same steps, and is
# decided by the shared rule (`protolab.claims.decide`) on the per-seed paired change of H: a Student-t 95%
# interval over seeds, the smallest effect of interest `POINTS`, inconclusive below 5 seeds or when a compared
# model did not converge. Both-spaces and propagation are compared *without* the consistency loss on either side
# (semantic-only and K = 0 cannot have it), so the loss's own effect (`consistency_study`) is not counted twice.
# The hyperbolic claim is this kit's extension, decided by the same rule; it changes the geometry of the whole model
# (prototypes, graph, propagation and a distance scorer in place of the relation MLP), not one component.
# Declared beforehand: collapsed seeds stay in (a collapse is the method's outcome) and are counted.

# %%
CLAIMS = {"both spaces > semantic space only (H; neither with the consistency loss)": (NO_CONSISTENCY, SEMANTIC_ONLY),
          f"propagation (K = {steps}) > no graph (K = 0) (H; neither with the consistency loss)":
              (NO_CONSISTENCY, NO_GRAPH),
          "episodic training > non-episodic (H; same optimiser steps)": (BASE, NON_EPISODIC),
          "extension: hyperbolic IPN > IPN (H; c chosen on validation)": (HYPERBOLIC, BASE)}
claims = claims_table([compare(text, "neither paper (this kit's extension)" if a == HYPERBOLIC else "not available "
                               "offline", dataset, runs, a, b, "H", scale=100, sesoi=POINTS,
                               converged=converged_arms(models, a, b), collapse_below=2 / data.n_classes)
                       for text, (a, b) in CLAIMS.items() if a in variants and b in variants])
figures.save_table(claims, "claims", caption=f"IPN's component claims on {dataset}: per-seed paired change of H "
                   f"(points), verdict by the shared rule (SESOI {POINTS.value:g} {POINTS.unit}: {POINTS.reason}).")
claims

# %% [markdown]
# ## What we observed

# %%
rows, best = summary.set_index("variant"), summary.set_index("variant").H_mean.idxmax()
change = {v: paired_effect(paired_seed_differences(runs, v, BASE, "H", scale=100)) for v in variants if v != BASE}
stopped = models.groupby("arm", sort=False).converged.mean().mul(100)
lines = [f"Data: {dataset} "
         f"({'embedded synthetic stand-in, not a paper dataset' if dataset == 'glyph-zsl' else 'xlsa17 files'}), "
         f"profile `{profile}`, {n_seeds} seed(s) per variant ({sweep_n} per sweep variant), at most {epochs} "
         f"selection epoch(s), patience {patience}; {grid.sources.count('computed')} of {len(cells)} cells computed "
         "in this run.",
         describe_chosen(tuning, tuning_grid.budget, tuning_seed),
         f"Base IPN: U {rows.loc[BASE, 'U']}, S {rows.loc[BASE, 'S']}, H {rows.loc[BASE, 'H']}. "
         f"Best variant: {best} (H {rows.loc[best, 'H']}).",
         f"Models stopped by patience (converged): {models.converged.mean():.0%} of {len(models)}"
         + "".join(f"; {arm} {share:.0f}%" for arm, share in stopped.items() if share < 100) + ".",
         "Collapsed runs (H below twice chance): " + ", ".join(f"{v} {rows.loc[v, 'collapsed']}" for v in variants
                                                             if not rows.loc[v, "collapsed"].startswith("0/")) + "."
         if any(not c.startswith("0/") for c in rows.collapsed) else "No run collapsed.",
         "Validation H by graph threshold (sweep models, mean): " + ", ".join(
             f"{t:g}: {100 * h:.1f}" for t, h in val_threshold.items())
         + f"; they favour {val_threshold.idxmax():g}, the tuning seed chose {graph_threshold:g} for every arm.",
         "Changes of H against the base, paired over seeds (mean, t 95% interval, points):"]
lines += [f"- {v}: H {rows.loc[v, 'H']} ({e['estimate']:+.1f} [{e['ci_low']:+.1f}, {e['ci_high']:+.1f}] vs base; "
          + ("no interval" if np.isnan(e["ci_low"]) else "interval excludes 0" if e["ci_low"] > 0 or e["ci_high"] < 0
             else "within the seed noise") + ")"
          for v, e in change.items()]
lines += ["Claims (H, paired over seeds; verdict and Holm's verdict over this notebook's claims):",
          *claims_lines(claims)]
if not np.isnan(rows.loc[BASE, "final_neighbours_semantic"]):
    lines.append(f"The base model's learned graphs keep {rows.loc[BASE, 'final_neighbours_semantic']:.1f} (semantic) "
                 f"and {rows.loc[BASE, 'final_neighbours_visual']:.1f} (visual) neighbours per class on average at the "
                 f"test search space of {data.n_classes} classes.")
lines.append("The paper's ablation numbers could not be read here, so none are compared; "
             + ("these numbers are on synthetic data and say nothing directly about AWA2/CUB/aPY."
                if dataset == "glyph-zsl" else "compare with the paper by hand."))
observations = "\n".join(lines)
figures.save_text(observations, "observations")
display(Markdown(observations))
