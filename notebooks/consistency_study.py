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
# # What does IPN's consistency loss do?
#
# **Question.** IPN (Liu et al., ICLR 2021) ties its two propagations together with a consistency loss:
# the KL divergence between the visual and the semantic space's attention over classes. The paper's
# explanation is that this aligns the *similarity structure* of the two spaces without forcing their
# *features* to be equal — unlike one attention module shared by both spaces. We compare the IPN with its
# loss (λ tuned on validation) against the same IPN without it and against a shared attention module, each
# arm tuned on validation with the same budget, and measure, over training and at its end, how alike the two
# spaces' class similarities are (KL) and how alike their features are (linear CKA). A sweep of λ at the
# base's learning rate shows the trade-off.
#
# **Data used here by default:** the embedded synthetic `glyph-zsl` set (letters with diacritics
# rendered from matplotlib's fonts, attributes from Unicode names, features from a small CNN trained on
# seen classes only). It is *not* AWA2/CUB/aPY. Set `dataset` and `data_root` for xlsa17 features.
#
# Finished (variant, seed) cells are stored on disk, in the cache the three IPN notebooks share (the base and
# no-loss cells are those of `ipn_ablations`); a re-run computes only the missing ones. Cells are
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
weights: list[float] = [0.01, 0.1, 1.0, 10.0]  # [≥ 0] consistency-loss weights λ of the sweep, at the base's
    # tuned learning rate (official: 1)
steps: int = 2  # [≥ 0] propagation steps K (official code: 2)
threshold: float | None = None  # [≥ -1, ≤ 1] cosine below which no graph edge is drawn (official: cos 40° =
    # 0.766); None: chosen on validation among threshold_grid with the base IPN, as in ipn_ablations (shared cells)
threshold_grid: list[float] = [0.0, 0.5, 0.766, 0.9]  # [non-empty, ≥ -1, ≤ 1] graph thresholds the base tries
temperature: float = 10.0  # [> 0] multiplier of the cosine similarities inside the attention softmax (official: 10)
logit_scale: float = 1.0  # [> 0] cross-entropy on logits / logit_scale (official: 100, suited to its 2048-d widths)
n_way: int = 30  # [≥ 2] seen classes per training episode (official: 30)
episode_unseen: int = 5  # [≥ 0, < n_way] of the n_way classes, held out per episode with copied prototypes
    # (official: 0)
episodes_per_epoch: int | None = None  # [≥ 1] episodes per epoch; None = by episodes_rule
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
tuning_seed: int = 100  # [≥ 0] seed of the tuning runs (not one of the seeds that decide the claims)
plot_classes: int = 16  # [≥ 1] classes shown in the similarity heatmaps
n_seeds: int = 10  # [≥ 1] every variant is trained with seeds seed, seed+1, ...; tables give mean ± std
sweep_seeds: int = 5  # [≥ 1] the λ sweep's variants (weights but 0 and the tuned λ) use the first
    # min(sweep_seeds, n_seeds) of those seeds: they draw a curve, no claim compares them
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
import torch
from IPython.display import Markdown, display

from protolab import figures, resolve_device, seed_everything
from protolab.claims import (POINTS, SIMILARITY, claims_lines, claims_table, compare, paired_effect,
                             paired_seed_differences)
from protolab.data import load_zsl
from protolab.zsl.fit import search_space_means, semantic_input
from protolab.training.convergence import converged_arms, grid_curves, grid_models
from protolab.zsl.grid import (BASE, NO_CONSISTENCY, SHARED_ATTENTION, base_configs, cell_model, collapse_rates,
                               run_ipn_grid, runs_table, seed_table, tuned_arms)
from protolab.zsl.tuning import TuningGrid, describe_chosen, tuning_caption
from protolab.plots import against_weight, class_label, matrix_heatmaps, name_spread, phase_curves, seed_bars

session = figures.start("consistency_study", globals())
device = resolve_device(device)
seed_everything(seed)
data = load_zsl(dataset, data_root, seed=seed)
ipn_data = semantic_input(data, attributes)  # the attributes IPN reads (its cells switch them themselves)
figures.describe_data(data.description)
display(Markdown(f"**Data:** {data.description}. {data.n_classes} classes ({len(data.seen_classes)} seen, "
                 f"{len(data.unseen_classes)} unseen), {data.attributes.shape[1]} attributes, "
                 f"{data.feature_dim}-d features."))
grid_options = dict(dataset=dataset, data_root=data_root, seed=seed, device=device, reuse=reuse_cache,
                    workers=workers, executor=executor)

# %% [markdown]
# ## Variants and what we measure
# The IPN of `ipn_gzsl` (both spaces, episodic, K = `steps`) with its consistency loss, λ and learning rate
# tuned on validation; the same IPN **without the loss**; and a **shared attention**: the semantic space's
# attention propagates both spaces and there is no consistency loss (its KL is 0 by construction). Each arm tries
# the same number of settings on validation (`protolab.zsl.tuning`; the two arms without the loss try the
# learning rates of `tuning_lrs`), and the λ sweep of `weights` runs at the base's chosen learning rate on the first
# `sweep_seeds` seeds (a curve, not a claim). Each cell is one model-selection run on the validation classes plus a
# refit on all seen classes.
#
# After every epoch and at the end we compare the two spaces' *propagated* prototypes, class by class:
# - **similarity KL**: for each class, the softmax (temperature `temperature`) of its cosine similarity
#   to every class, in each space; KL(visual ‖ semantic) averaged over classes. Low = the spaces agree
#   on which classes are alike. It is measured the same way for every variant (unlike the training
#   loss's attention KL, which is 0 for shared attention by construction).
# - **feature CKA**: linear centred kernel alignment of the two spaces' prototype matrices; 1 = the
#   features of one space are those of the other up to rotation and scale.
#
# During training both are measured on the seen classes (trainval class means); at the end, on all
# classes of the test search space (unseen visual prototypes copied, as at test time).

# %%
thresholds = threshold_grid if threshold is None else [threshold]
base_model, base_train = base_configs(
    data, steps=steps, threshold=thresholds[0], temperature=temperature, logit_scale=logit_scale,
    prototype_dim=prototype_dim, graph_dim=graph_dim, hidden_dim=hidden_dim, epochs=epochs, n_way=n_way,
    episode_unseen=episode_unseen, episodes_per_epoch=episodes_per_epoch, episodes_rule=episodes_rule,
    attributes=attributes, patience=patience, lr_step=lr_step)
tuning_grid = TuningGrid(tuple(tuning_lrs), tuple(tuning_consistency_lrs), tuple(tuning_weights))
tuning, tuned = tuned_arms(data, [BASE, NO_CONSISTENCY, SHARED_ATTENTION], (base_model, base_train), tuning_grid,
                           tuning_seed=tuning_seed, thresholds=thresholds, **grid_options)
figures.save_table(tuning, "tuning", caption=tuning_caption(dataset, tuning_seed, tuning_grid.budget))
SHARED, REFERENCE, NONE = SHARED_ATTENTION, BASE, NO_CONSISTENCY
tuned_model, tuned_train = tuned[BASE]
variants = dict(tuned) | {f"λ = {w:g}": (tuned_model, replace(tuned_train, consistency_weight=w))
                          for w in weights if w not in (0.0, tuned_train.consistency_weight)}
sweep_n = min(sweep_seeds, n_seeds)
cells, grid = run_ipn_grid(data, variants, n_seeds=n_seeds, seed_counts={name: sweep_n for name in variants
                                                                         if name not in tuned}, **grid_options)
runs = runs_table(cells, grid).assign(weight=lambda t: t.weight.where(~t.shared_attention))
arms_, seeds = [cell["variant"] for cell in cells], [cell["train"]["seed"] for cell in cells]
curves = grid_curves(arms_, seeds, grid.results).rename(columns={"arm": "variant"})
figures.save_table(runs, "runs", caption=f"Every (variant, seed) cell on {dataset}: its settings (lr, λ = weight), "
                   "test U/S/H (fractions) and the two spaces' alignment at the end of training on the test search "
                   "space; `source` says whether the cell was computed in this run or reused from the shared cache.")
figures.save_table(curves, "training_curves", caption="Per-epoch history of every cell: losses, validation "
                   "U/S/H (selection phase) and the spaces' alignment on the seen classes.")
models = grid_models("consistency_study", arms_, seeds, grid.results)
figures.save_table(models, "models", caption="Every trained model: selection epochs run (`steps`), the best one, "
                   "whether patience stopped it (`converged`) or the epoch cap, its final and best validation H.")
display(Markdown(f"{grid.sources.count('computed')} cell(s) computed in this run, "
                 f"{grid.sources.count('cached')} reused from the cache."))

# %% [markdown]
# ## GZSL results and alignment at the end of training
# From `consistency_study__runs.csv`: percentages for U/S/H; KL and CKA on the test search space.

# %%
runs, curves = (pd.read_csv(session.out_dir / f"consistency_study__{name}.csv") for name in ("runs", "training_curves"))
summary = seed_table(runs, "variant", {"U": 100, "S": 100, "H": 100, "final_similarity_kl": 1,
                                       "final_attention_kl": 1, "final_feature_cka": 1}, order=list(variants))
summary.insert(1, "dataset", dataset)
summary.insert(2, "weight", runs.groupby("variant").weight.first().loc[summary.variant].to_numpy())
summary.insert(3, "lr", runs.groupby("variant").lr.first().loc[summary.variant].to_numpy())
summary["collapsed"] = collapse_rates(runs, "variant", 2 / data.n_classes, order=summary.variant)
figures.save_table(summary[["variant", "dataset", "weight", "lr", "seeds", "U", "S", "H", "similarity_kl",
                            "attention_kl", "feature_cka", "collapsed"]], "summary",
                   caption=f"Consistency loss weight λ vs shared attention on {dataset}: GZSL "
                   f"U/S/H (%) and, at the end of training on all classes, the similarity KL and feature CKA between "
                   f"the spaces' propagated prototypes; mean ± std over {n_seeds} seed(s) ({sweep_n} for the λ "
                   "sweep); collapsed: seeds with H below twice chance.")
summary[["variant", "weight", "lr", "U", "S", "H", "similarity_kl", "attention_kl", "feature_cka", "collapsed"]]

# %% [markdown]
# ## H against the consistency weight

# %%
weighted = summary[summary.variant != SHARED].sort_values("weight")
shared = summary.set_index("variant").loc[SHARED]
fig = against_weight(weighted.weight.tolist(), weighted.H_mean, weighted.H_std, (shared.H_mean, shared.H_std),
                     labels=("consistency loss, weight λ", "shared attention (no consistency loss)"),
                     xlabel="consistency weight λ (log scale, linear below the smallest λ > 0)", ylabel="H (%)",
                     title=f"H vs consistency weight on {dataset}, mean ± std over seeds")
name_spread(fig.axes, f"whiskers and band: ± 1 std over {n_seeds} seed(s) ({sweep_n} for the λ sweep's points)",
            kind="whiskers")
figures.save_figure(fig, "h_vs_weight", caption="Harmonic mean H against the consistency-loss weight λ (0 = no "
                    "consistency loss, at its own tuned learning rate; the tuned λ and the sweep at the base's), with "
                    "the shared-attention variant as a band (mean ± std over seeds).")

# %% [markdown]
# ## The two spaces during training
# Mean over seeds per epoch; solid: model-selection run, dashed: refit on all seen classes.

# %%
fig = phase_curves(curves, [("similarity_kl", "similarity KL (visual ‖ semantic)"),
                            ("attention_kl", "attention KL (training loss term)"), ("feature_cka", "feature CKA")],
                   group="variant", log_first=True)
figures.save_figure(fig, "alignment_during_training", caption="Similarity KL, attention KL (the consistency "
                    "term) and feature CKA between the two spaces on the seen classes after every epoch, mean "
                    "over seeds; solid: model-selection run, dashed: refit.")

# %% [markdown]
# ## Class similarities in each space at the end of training
# Cosine similarity of the propagated prototypes on a few unseen classes and their nearest seen classes
# (first seed; unseen labels in red). If the consistency loss works as the paper says, the two panels
# of a row look alike when λ > 0 even though the features differ.

# %%
subset, matrices = torch.tensor(data.classes_near_unseen(plot_classes, seed)), {}
for variant in (NONE, REFERENCE, SHARED):
    model = cell_model(ipn_data, *next((cell, result) for cell, result in zip(cells, grid.results)
                                       if cell["variant"] == variant and cell["train"]["seed"] == seed))
    with torch.no_grad():
        spaces, _ = model.propagated(search_space_means(model, ipn_data)[subset], ipn_data.attributes[subset])
    unit = {space: torch.nn.functional.normalize(spaces[space], dim=1) for space in ("visual", "semantic")}
    matrices |= {f"{variant}: {space}": (u @ u.T).numpy() for space, u in unit.items()}
fig = matrix_heatmaps(matrices, [class_label(data.class_names[c]) for c in subset], columns=2, vmin=None,
                      highlight=np.isin(subset.numpy(), data.unseen_classes.numpy()),
                      suptitle=f"cosine similarity of propagated prototypes, seed {seed}")
figures.save_figure(fig, "similarity_heatmaps", caption="Cosine similarity matrices of the visual and semantic "
                    "propagated prototypes at the end of training (rows: no consistency loss, the tuned λ, "
                    "shared attention), on a subset of classes, first seed.")

# %% [markdown]
# ## Features vs similarities across the spaces

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for ax, (column, label) in zip(axes, (("final_similarity_kl", "similarity KL (lower = similarities aligned)"),
                                      ("final_feature_cka", "feature CKA (1 = features equal up to rotation)"))):
    seed_bars(ax, {v: part[column] for v, part in runs.groupby("variant", sort=False)})
    ax.set(title=label)
figures.save_figure(fig, "features_vs_similarities", caption="At the end of training, on all classes: KL between "
                    "the two spaces' class-similarity distributions and linear CKA of their features, per "
                    "variant (bars: mean ± std over seeds; dots: seeds).")

# %% [markdown]
# ## Claims
# The paper's claim (the consistency loss beats one shared attention) and its explanation (the loss aligns
# the class similarities; shared attention forces the features alike), each decided by the shared rule
# (`protolab.claims.decide`) on the per-seed paired change: Student-t 95% interval over seeds, a smallest effect
# of interest per family (`POINTS` for H, `SIMILARITY` for KL and CKA), inconclusive below 5 seeds or when a
# compared model did not converge. H claims count a seed as collapsed when either arm's H is below twice chance
# (2 / number of classes); declared beforehand: collapsed seeds stay in and are counted. Paper numbers: not
# readable.

# %%
CLAIMS = [("consistency loss (tuned λ) > shared attention (H)", REFERENCE, SHARED, "H", 100, POINTS),
          ("consistency loss (tuned λ) > no consistency loss (H)", REFERENCE, NONE, "H", 100, POINTS),
          ("the loss aligns the class similarities (similarity KL, without − with the loss)", NONE, REFERENCE,
           "final_similarity_kl", 1, SIMILARITY),
          ("shared attention makes the features more alike than the loss (CKA, shared − loss)", SHARED,
           REFERENCE, "final_feature_cka", 1, SIMILARITY)]
claims = claims_table([compare(text, "not available offline", dataset, runs, a, b, column, scale=scale, sesoi=sesoi,
                               converged=converged_arms(models, a, b),
                               collapse_below=2 / data.n_classes if column == "H" else None)
                       for text, a, b, column, scale, sesoi in CLAIMS])
figures.save_table(claims, "claims", caption=f"Consistency-loss claims on {dataset}: per-seed paired changes over "
                   f"{n_seeds} seed(s), verdict by the shared rule.")
claims

# %% [markdown]
# ## What we observed

# %%
rows, best = summary.set_index("variant"), summary.set_index("variant").H_mean.idxmax()
attention = paired_effect(paired_seed_differences(runs, REFERENCE, NONE, "final_attention_kl"))
lines = [f"Data: {dataset} "
         f"({'embedded synthetic stand-in, not a paper dataset' if dataset == 'glyph-zsl' else 'xlsa17 files'}), "
         f"profile `{profile}`, {n_seeds} seed(s) ({sweep_n} for the λ sweep), at most {epochs} selection epoch(s), "
         f"patience {patience}, K = {steps}; {grid.sources.count('computed')} of {len(cells)} cells computed in this "
         f"run; {models.converged.mean():.0%} of {len(models)} models stopped by patience.",
         describe_chosen(tuning, tuning_grid.budget, tuning_seed),
         "- Collapsed runs (H below twice chance): " + "; ".join(f"{v} {rows.loc[v, 'collapsed']}" for v in variants)
         + ".",
         "- H: " + "; ".join(f"{v} {rows.loc[v, 'H']}" for v in variants) + f". Best: {best}.",
         f"- Attention KL (the loss term itself, on the learned graphs), {REFERENCE} vs {NONE}: "
         f"{rows.loc[REFERENCE, 'attention_kl']} vs {rows.loc[NONE, 'attention_kl']} (paired change "
         f"{attention['estimate']:+.3f}" + ("" if np.isnan(attention["ci_low"]) else
                                              f", 95% CI [{attention['ci_low']:+.3f}, {attention['ci_high']:+.3f}]")
         + ").",
         "Claims:", *claims_lines(claims)]
explanation = claims.verdict_holm.iloc[2:]
verdict = ("**supports** the paper's explanation (both of its claims hold after Holm's correction)."
           if (explanation == "holds").all() else
           ("does **not support**" if (explanation == "does not hold").any() else "does **not decide**")
           + " the paper's explanation: " + "; ".join(f"\"{row.claim}\" {row.verdict_holm} after Holm"
                                                      for row in claims.iloc[2:].itertuples()) + ".")
lines.append(f"Our run {verdict}")
observations = "\n".join(lines)
figures.save_text(observations, "observations")
display(Markdown(observations))
