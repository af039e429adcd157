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
# category graph in each space, a consistency loss between the spaces, and episodic training. Starting
# from the same IPN as `ipn_gzsl`, we change one factor at a time and measure the GZSL U, S and H of each
# variant over several seeds: prototypes from the visual space only, the semantic space only, or both;
# with and without episodic training; propagation steps K ∈ {0, 1, 2, 3}; and the graph threshold.
#
# **Data used here by default:** the embedded synthetic `glyph-zsl` set (letters with diacritics
# rendered from matplotlib's fonts, attributes from Unicode names, features from a small CNN trained on
# seen classes only). It is *not* AWA2/CUB/aPY: what matters on it need not matter on the paper's data.
# Set `dataset` (AWA2, CUB, APY, SUN) and `data_root` to run the same grid on xlsa17 features.
#
# Every finished (variant, seed) cell is stored on disk as soon as it finishes; a re-run after an
# interruption computes only the missing cells (`reuse_cache = False` recomputes everything). Cells are
# trained `workers` at a time in worker processes with one thread each, so a cell's numbers do not depend
# on how many run at once (a run with several threads per model, as in `ipn_gzsl`, can give other
# numbers: training amplifies rounding differences, by about as much as changing the seed).
# With `executor = "slurm"` each missing cell is one SLURM job instead, storing its result in the same
# cache (on a shared file system); a cell whose job fails or is cancelled is computed by the next run.

# %% tags=["parameters"]
from typing import Literal
dataset: str = "glyph-zsl"  # [zsl dataset] glyph-zsl (embedded) or AWA2, CUB, APY, SUN (xlsa17
    # folders under data_root)
data_root: str = ""  # folder holding <dataset>/res101.mat and att_splits.mat (real data only)
steps: int = 2  # [≥ 0] propagation steps K of the base IPN (official code: 2)
threshold: float = 0.766  # [≥ -1, ≤ 1] graph threshold of the base IPN: cosine below which no edge is drawn
    # (official: cos 40°)
steps_grid: list[int] = [0, 1, 2, 3]  # [non-empty, ≥ 0] propagation steps compared (other factors at the base)
threshold_grid: list[float] = [0.0, 0.5, 0.766, 0.9]  # [non-empty, ≥ -1, ≤ 1] graph thresholds compared
    # (other factors at the base)
temperature: float = 10.0  # [> 0] multiplier of the cosine similarities inside the attention softmax (official: 10)
logit_scale: float = 1.0  # [> 0] cross-entropy on logits / logit_scale (official: 100, suited to its 2048-d widths)
lambda_consistency: float = 1.0  # [≥ 0] weight of the KL consistency loss (official: 1)
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
epochs: int = 45  # [≥ 1] at most this many training epochs in each model-selection run (official: 360)
patience: int = 5  # [≥ 1] a selection run stops after this many epochs without a better validation H
lr: float = 1e-3  # [> 0] Adam learning rate, ×0.1 after 2/3 of the epochs (official: 2e-5)
n_seeds: int = 5  # [≥ 1] every variant is trained with seeds seed, seed+1, ...; tables give mean ± std
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
from protolab.zsl.grid import ablation_cell, base_configs, run_ipn_grid, seed_table
from protolab.plots import metric_sweeps, name_spread, seed_bars

session = figures.start("ipn_ablations", globals())
device = resolve_device(device)
seed_everything(seed)
data = load_zsl(dataset, data_root, seed=seed)
figures.describe_data(data.description)
display(Markdown(f"**Data:** {data.description}. {data.n_classes} classes ({len(data.seen_classes)} seen, "
                 f"{len(data.unseen_classes)} unseen), {data.attributes.shape[1]} attributes, "
                 f"{data.feature_dim}-d features."))

# %% [markdown]
# ## The grid
# One factor at a time, all others at the base IPN (both spaces, episodic, K = `steps`, threshold
# `threshold`, consistency weight `lambda_consistency`). Each cell is one model-selection run on the
# validation classes plus a refit on all seen classes, then one test evaluation, exactly as in
# `ipn_gzsl` (see that notebook for where we differ from the paper and the official code). Whether
# this is the paper's own ablation layout could not be checked: the paper's tables could not be read
# here, so the "paper" column says so instead of holding numbers.

# %%
base_model, base_train = base_configs(
    data, steps=steps, threshold=threshold, temperature=temperature, logit_scale=logit_scale,
    prototype_dim=prototype_dim, graph_dim=graph_dim, hidden_dim=hidden_dim, epochs=epochs, lr=lr, n_way=n_way,
    episode_unseen=episode_unseen, episodes_per_epoch=episodes_per_epoch, consistency_weight=lambda_consistency,
    episodes_rule=episodes_rule, attributes=attributes, patience=patience)
BASE = "IPN (base)"
variants = {BASE: ("base", base_model, base_train),
            "visual space only": ("spaces", replace(base_model, spaces="visual"), base_train),
            "semantic space only": ("spaces", replace(base_model, spaces="semantic"), base_train),
            "non-episodic": ("episodic", base_model, replace(base_train, episodic=False))}
variants |= {f"K = {k}": ("steps", replace(base_model, steps=k), base_train) for k in steps_grid if k != steps}
variants |= {f"threshold {t:g}": ("threshold", replace(base_model, threshold=t), base_train)
             for t in threshold_grid if t != threshold}
cells, grid = run_ipn_grid("ipn_ablations", data, {name: v[1:] for name, v in variants.items()}, ablation_cell,
                           dataset=dataset, data_root=data_root, seed=seed, n_seeds=n_seeds, device=device,
                           reuse=reuse_cache, workers=workers, executor=executor)
runs = pd.DataFrame([{"variant": cell["variant"], "factor": variants[cell["variant"]][0],
                      "seed": cell["train"]["seed"], "steps": cell["model"]["steps"],
                      "threshold": cell["model"]["threshold"], "spaces": cell["model"]["spaces"],
                      "episodic": cell["train"]["episodic"], "source": source,
                      **{key: value for key, value in result.items() if key not in ("convergence", "wall_seconds")}}
                     for cell, result, source in zip(cells, grid.results, grid.sources)])
figures.save_table(runs, "runs", caption=f"Every (variant, seed) cell of the ablation grid on {dataset}: test U/S/H "
                   "(fractions), selected epoch, mean graph neighbours per class; `source` says whether the cell "
                   "was computed in this run or reused from the cache.")
models = grid_models("ipn_ablations", runs.variant, runs.seed, grid.results)
figures.save_table(models, "models", caption="Every trained model: selection epochs run (`steps`), the best one, "
                   "whether patience stopped it (`converged`) or the epoch cap, its final and best validation H.")
display(Markdown(f"{grid.sources.count('computed')} cell(s) computed in this run, "
                 f"{grid.sources.count('cached')} reused from the cache."))

# %% [markdown]
# ## Ablation table
# Percentages, mean ± std over seeds (the table is built from `ipn_ablations__runs.csv`, written above).

# %%
runs = pd.read_csv(session.out_dir / "ipn_ablations__runs.csv")
summary = seed_table(runs, "variant", {"U": 100, "S": 100, "H": 100}, order=list(variants))
summary.insert(1, "dataset", dataset)
summary.insert(2, "factor", [variants[v][0] for v in summary.variant])
neighbours = runs.groupby("variant")[["neighbours_semantic", "neighbours_visual"]].mean().round(1)
summary = summary.join(neighbours, on="variant").assign(
    paper="not available here" if dataset.upper() in PAPER_DATASETS else "—")
collapses = (runs.H < 2 / data.n_classes).groupby(runs.variant).agg(["sum", "size"])  # H below twice chance
summary["collapsed"] = [f"{collapses.loc[v, 'sum']}/{collapses.loc[v, 'size']}" for v in summary.variant]
figures.save_table(summary, "ablations", caption=f"IPN ablations on {dataset}: GZSL U/S/H (%), mean ± std over "
                   f"{n_seeds} seed(s), one factor changed at a time from the base IPN; neighbours = mean number of "
                   "other classes each class attends to in the first propagation step (test search space); collapsed: "
                   "seeds with H below twice chance.")
summary[["variant", "factor", "U", "S", "H", "collapsed", "neighbours_semantic", "neighbours_visual", "paper"]]

# %% [markdown]
# ## H per variant

# %%
fig, ax = plt.subplots(figsize=(9, 4))
colours = {factor: f"C{i}" for i, factor in enumerate(summary.factor.unique())}
seed_bars(ax, {v: 100 * part.H for v, part in runs.groupby("variant", sort=False)},
          [colours[f] for f in summary.factor])
ax.set(ylabel="H (%)", title=f"IPN ablations on {dataset}: H, mean ± std over {n_seeds} seed(s) (dots: seeds)")
name_spread([ax], f"whiskers: ± 1 std over {n_seeds} seed(s); dots: single seeds", kind="whiskers")
figures.save_figure(fig, "h_per_variant", caption="Harmonic mean H of each ablation variant (bars: mean, "
                    "whiskers: std over seeds, dots: single seeds); colours group the factor varied.")

# %% [markdown]
# ## H against the propagation steps and the graph threshold

# %%
sweeps = [(label, runs[runs.factor.isin(["base", factor]) & runs[factor].isin(values)]
           .groupby(factor)[["U", "S", "H"]].agg(["mean", "std"]).mul(100).sort_index())
          for factor, values, label in (("steps", steps_grid, "propagation steps K"),
                                        ("threshold", threshold_grid, "graph threshold"))]
fig = metric_sweeps(sweeps)
fig.axes[0].set_xticks(sorted(steps_grid))
name_spread(fig.axes, f"error bars: ± 1 std over {n_seeds} seed(s)", kind="whiskers")
figures.save_figure(fig, "h_vs_steps_and_threshold", caption="U, S and H (mean ± std over seeds) against the number "
                    "of propagation steps K and against the graph threshold, other factors at the base IPN.")

# %% [markdown]
# ## Claims
# Each claim about a component of IPN is decided by the shared rule (`protolab.claims.decide`) on the per-seed
# paired change of H: a Student-t 95% interval over seeds, the smallest effect of interest `POINTS`, inconclusive
# below 5 seeds or when a compared model did not converge. A run *collapsed* when its H is below twice chance
# (2 / number of classes); declared beforehand: collapsed seeds stay in (a collapse is the method's outcome) and
# are counted in `collapsed`. The paper's ablation numbers could not be read.

# %%
CLAIMS = {"both spaces > semantic space only (H)": (BASE, "semantic space only"),
          "semantic space only > visual space only (H)": ("semantic space only", "visual space only"),
          "episodic training helps (H)": (BASE, "non-episodic"),
          f"propagation (K = {steps} > 0) helps (H)": (BASE, "K = 0")}
claims = claims_table([compare(text, "not available offline", dataset, runs, a, b, "H", scale=100, sesoi=POINTS,
                               converged=converged_arms(models, a, b), collapse_below=2 / data.n_classes)
                       for text, (a, b) in CLAIMS.items() if a in variants and b in variants])
figures.save_table(claims, "claims", caption=f"IPN's component claims on {dataset}: per-seed paired change of H "
                   f"(points), verdict by the shared rule (SESOI {POINTS.value:g} {POINTS.unit}: {POINTS.reason}).")
claims

# %% [markdown]
# ## What we observed
# A change against the base is called clear when its paired 95% interval over seeds excludes 0; with fewer than
# two seeds there is no interval.

# %%
rows, best = summary.set_index("variant"), summary.set_index("variant").H_mean.idxmax()
change = {v: paired_effect(paired_seed_differences(runs, v, BASE, "H", scale=100)) for v in variants if v != BASE}
stopped = models.groupby("arm", sort=False).converged.mean().mul(100)
lines = [f"Data: {dataset} "
         f"({'embedded synthetic stand-in, not a paper dataset' if dataset == 'glyph-zsl' else 'xlsa17 files'}), "
         f"profile `{profile}`, {n_seeds} seed(s) per variant, at most {epochs} selection epoch(s), patience "
         f"{patience}; {grid.sources.count('computed')} of {len(cells)} cells computed in this run.",
         f"Base IPN: U {rows.loc[BASE, 'U']}, S {rows.loc[BASE, 'S']}, H {rows.loc[BASE, 'H']}. "
         f"Best variant: {best} (H {rows.loc[best, 'H']}).",
         f"Models stopped by patience (converged): {models.converged.mean():.0%} of {len(models)}; "
         + ", ".join(f"{arm} {share:.0f}%" for arm, share in stopped.items() if share < 100) + ".",
         "Changes of H against the base, paired over seeds (mean, t 95% interval, points):"]
lines += [f"- {v}: H {rows.loc[v, 'H']} ({e['estimate']:+.1f} [{e['ci_low']:+.1f}, {e['ci_high']:+.1f}] vs base; "
          + ("no interval" if np.isnan(e["ci_low"]) else "interval excludes 0" if e["ci_low"] > 0 or e["ci_high"] < 0
             else "within the seed noise") + ")"
          for v, e in change.items()]
lines += ["Claims (H, paired over seeds; verdict and Holm's verdict over this notebook's claims):",
          *claims_lines(claims)]
if not np.isnan(rows.loc[BASE, "neighbours_semantic"]):
    lines.append(f"The base model's learned graphs keep {rows.loc[BASE, 'neighbours_semantic']:.1f} (semantic) and "
                 f"{rows.loc[BASE, 'neighbours_visual']:.1f} (visual) neighbours per class on average at the test "
                 f"search space of {data.n_classes} classes.")
lines.append("The paper's ablation numbers could not be read here, so none are compared; "
             + ("these numbers are on synthetic data and say nothing directly about AWA2/CUB/aPY."
                if dataset == "glyph-zsl" else "compare with the paper by hand."))
observations = "\n".join(lines)
figures.save_text(observations, "observations")
display(Markdown(observations))
