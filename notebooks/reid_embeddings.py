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
# # Person re-identification with hyperbolic embeddings (Khrulkov et al., CVPR 2020, Sec. 6.3)
#
# **Question.** The same network embeds person images into $\mathbb{R}^d$ (linear softmax head over the
# training identities, retrieval by Euclidean distance) or into the Poincaré ball (ToPoincare →
# hyperbolic MLR, retrieval by Poincaré distance). Does the hyperbolic embedding retrieve better
# (Rank-1, mAP under the Market-1501 protocol), and is its gain larger at small $d$? The paper reports
# both on Market-1501 and DukeMTMC-reID, with two training schedules.
#
# **Data used here by default:** `reid-glyphs`, an embedded stand-in built offline — identity = a
# character, camera = one of six rendering domains (a DejaVu font family and weight with its own
# distortion: noise, elastic warp, clutter strokes, occlusion); disjoint training and test identities,
# one query per identity and camera, a gallery with distractors. It is synthetic and **not a person
# re-ID benchmark**: its numbers are not comparable to the paper's. Its difficulty was calibrated on a
# validation split of the *training* identities with the Euclidean model only
# (`scripts/calibrate_reid.py`; table: `protolab.data.calibration_table("reid_glyphs")`). The `full` profile is the
# real protocol: `dataset=market1501` (or `-p dataset=dukemtmc`), ResNet-50, 256×128 inputs, flip +
# pad-crop + random erasing, evaluation on the full query/gallery split.

# %% tags=["parameters"]
from typing import Literal

dataset: Literal["reid-glyphs", "market1501", "dukemtmc", "folder"] = "reid-glyphs"  # reid-glyphs (embedded),
    # market1501 or dukemtmc (real, at data_root), or folder: your own bounding_box_train/, bounding_box_test/ and
    # query/ of Market-1501-named images <id>_c<camera>…, in data_root or up to two levels below it (check it:
    # `protolab data check reid DIR`)
data_root: str = ""  # folder holding Market-1501-v15.09.15/, DukeMTMC-reID/ or your re-ID folder (real data only)
image_size: list[int] = [24, 24]  # [len = 2, ≥ 16] (H, W) of the network's input (the real protocol:
    # [256, 128]); conv4 halves both four times, so 16 is the least it takes
backbone: Literal["conv4", "small_cnn", "resnet18", "resnet50"] = "conv4"  # conv4 (small CNN, 64-d features),
    # small_cnn, resnet18 or resnet50 (the paper's, full profile)
pretrained_weights: str = ""  # local ResNet-50 ImageNet state dict (.pth), never downloaded; empty: random init
dims: list[int] = [8, 32, 128]  # [non-empty, ≥ 1] embedding sizes d, one table row each
schedules: list[Literal["sch1", "sch2"]] = ["sch1"]  # [non-empty] sch1: lr ×0.1 after 2/3 of the epochs; sch2: linear
    # warm-up (10% of epochs), then cosine to 0
c: float = 0.1  # [> 0] curvature of the Poincaré ball (our choice: the paper gives none for re-ID)
clip_r: float | None = 2.3  # [> 0] clip feature norms to this radius before ToPoincare (None: no clipping)
val_identities: int = 20  # [≥ 1] training identities held out to validate every epoch (Rank-1 of their first image
    # per camera against their other images); the models are trained on the other identities
epochs: int = 40  # [≥ 1] at most this many training epochs, the same for both geometries (the schedules span them);
    # patience may stop earlier
patience: int = 5  # [≥ 1] training stops after this many epochs in a row without a better validation Rank-1
batch_size: int = 64  # [≥ 1] training batch size
lr: float = 1e-3  # [> 0] Adam base learning rate
weight_decay: float = 5e-4  # [≥ 0] Adam weight decay
flip: bool = False  # random horizontal flip (True on real data; a mirrored character is another identity)
pad: int = 3  # [≥ 0] zero-pad by this many pixels, then random crop back (real 256×128: 10)
erasing: float = 0.5  # [≥ 0, ≤ 1] probability of random erasing per training image
n_seeds: int = 10  # [≥ 1] models trained per setting with seeds seed, seed+1, ...; mean ± std over them
strip_queries: int = 4  # [≥ 1] queries shown with their top-5 gallery images
num_workers: int = 0  # [≥ 0] batches prepared ahead (worker processes for image files, a thread for decoded data;
    # 0: when needed)
amp: bool = False  # bfloat16 autocast for the backbone (the Poincaré head stays float32); on the CPU only with
    # PROTOLAB_NATIVE_KERNELS=1 (on the runner's pinned AVX2 path bfloat16 is emulated: 6–8× slower, README)
reuse_cache: bool = True  # reuse the models an earlier run of the same code trained on the same data
workers: int = 0  # [≥ 0] models trained at once in worker processes, one thread each
    # (0 = this notebook's CPU threads; 1 on CUDA)
profile: Literal["smoke", "quick", "default", "full"] = "default"  # smoke | quick | default | full
seed: int = 0  # [≥ 0] first random seed (the stand-in is built with this seed)
device: str = "auto"  # [device] cpu, cuda or auto (CUDA when present)
out_dir: str = "figures"  # where figures and tables are written

# %%
import pandas as pd
import torch
from IPython.display import Markdown, display

from protolab import figures, resolve_device, seed_everything
from protolab.claims import POINTS, claims_lines, claims_table, decide
from protolab.data import load_reid
from protolab.plots import cmc_curves, image_grid, learning_curves, metric_vs_dim, retrieval_strips
from protolab.reid.cells import ReidData, cell_model, reid_cell, validation_identities
from protolab.reid.fit import SCHEDULES, evaluate_retrieval
from protolab.reid.model import GEOMETRIES, OUR_CHOICES
from protolab.reid.tables import paired_gains, paper_layout, summarise
from protolab.runner.model_grid import data_fingerprint, run_model_grid
from protolab.training.convergence import converged_arms, grid_curves, grid_models

session = figures.start("reid_embeddings", globals())
device = resolve_device(device)
seed_everything(seed)
splits = load_reid(dataset, data_root, image_size=tuple(image_size), seed=seed)
reid_data = ReidData(*validation_identities(splits.train, n_ids=val_identities, seed=seed), splits.query,
                     splits.gallery)
figures.describe_data(f"{splits.query.description}; {splits.train.n_classes} training identities, "
                      f"{len(splits.train)} train / {len(splits.query)} query / {len(splits.gallery)} gallery images")
display(Markdown(f"**Data:** {splits.train.description}.\n\n" + "\n".join(
    f"- {name}: {len(part)} images, {len(set(part.person_ids.tolist()))} person ids, "
    f"cameras {sorted(set(part.domains.tolist()))}"
    for name, part in zip(("train (used)", "validation query", "validation gallery", "query", "gallery"), reid_data))))
display(Markdown("**Our choices (the paper is silent; no official code exists):**\n\n"
                 + "\n".join(f"- {line}" for line in OUR_CHOICES)
                 + "\n" + "\n".join(f"- `{name}`: {text}" for name, text in SCHEDULES.items())))

# %%
shown = torch.arange(min(24, len(splits.train)))
fig = image_grid(torch.stack([splits.train[i][0] for i in shown]),
                 [f"id {int(splits.train.person_ids[i])} cam {int(splits.train.domains[i])}" for i in shown.tolist()],
                 columns=12, suptitle=f"{dataset}: training images (person id, camera)")
figures.save_figure(fig, "train_samples", caption="The first training images with their identity and camera.")

# %% [markdown]
# ## Training and retrieval
# For every schedule, dimension and seed, both geometries start from the same seed and see the same
# batches and augmentation. `val_identities` training identities are held out for validation: unseen identities
# cannot be classified, so after every epoch the model retrieves them — Rank-1 of each one's first image per
# camera against its other images, under the same protocol as the test. Training stops after `patience` epochs
# without a better validation Rank-1 (a *converged* model) or at `epochs`, and the weights of the best epoch are
# kept. Each model is then evaluated on the whole query / gallery split (same-camera matches of a query's identity
# and junk images removed, distractors kept).
#
# Every model is one cell of a grid stored on disk the moment it is trained; a rerun of the same code on the same
# data trains only the missing models (`reuse_cache = False` retrains all). Models are trained `workers` at a
# time, one thread each, so a model's numbers do not depend on how many train at once.

# %%
first = schedules[0]
settings = {"dataset": dataset, "data": data_fingerprint(*reid_data), "backbone": backbone,
            "pretrained_weights": pretrained_weights, "c": c, "clip_r": clip_r, "epochs": epochs, "patience": patience,
            "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay, "flip": flip, "pad": pad,
            "erasing": erasing, "amp": amp, "device": device.type}
cells = [{**settings, "schedule": schedule, "dim": dim, "seed": run_seed, "geometry": geometry,
          "keep_state": run_seed == seed and schedule == first and dim == min(dims)}  # for the retrieval strips
         for schedule in schedules for dim in dims for run_seed in range(seed, seed + n_seeds)
         for geometry in GEOMETRIES]
grid = run_model_grid("reid_embeddings", cells, reid_cell, reid_data, device=device, reuse=reuse_cache,
                      workers=workers, num_workers=num_workers)
arms = [f"{cell['geometry']}, d={cell['dim']}, {cell['schedule']}" for cell in cells]
measures = ("rank1", "rank5", "mAP", "train_accuracy", "valid_queries")
runs = pd.DataFrame([{"dataset": dataset, "schedule": cell["schedule"], "dim": cell["dim"],
                      "geometry": cell["geometry"], "seed": cell["seed"], **{key: result[key] for key in measures},
                      "source": source}
                     for cell, result, source in zip(cells, grid.results, grid.sources)])
figures.save_table(runs.round(4), "runs", caption="Every trained model: Rank-1, Rank-5, mAP (fractions), training "
                   "accuracy in the kept epoch; `source` says whether it was trained in this run or reused from the "
                   "cache.")
seeds = [cell["seed"] for cell in cells]
models = grid_models("reid_embeddings", arms, seeds, grid.results)
figures.save_table(models, "models", caption="Every trained model: epochs run (`steps`), the best one (its weights are "
                   "kept), whether patience stopped it (`converged`) or the epoch cap, its final and best validation "
                   "Rank-1, training seconds.")
curves = grid_curves(arms, seeds, grid.results)
figures.save_table(curves, "curves", caption="Per-epoch training loss and accuracy and validation Rank-1 "
                   "(`val_score`) of every trained model.")
cmcs = {(cell["schedule"], cell["dim"], cell["geometry"]): result["cmc"]
        for cell, result in zip(cells, grid.results) if cell["seed"] == seed}
display(Markdown(f"{grid.sources.count('computed')} model(s) trained in this run, "
                 f"{grid.sources.count('cached')} reused from the cache."))
runs

# %%
fig = learning_curves(curves, "arm", [("loss", "training loss"), ("accuracy", "training accuracy"),
                                      ("val_score", "validation Rank-1")], unit="seed")
figures.save_figure(fig, "training_curves", caption="Training loss and accuracy and validation Rank-1 per epoch of "
                    "every model (one thin line per seed).")

# %% [markdown]
# ## Rank-1 and mAP (%), mean ± std over seeds, in the paper's layout

# %%
table = summarise(runs)
figures.save_table(table, "results", caption="Rank-1 and mAP (%) per schedule, dimension and geometry, "
                   f"mean and std over {n_seeds} seed(s).")
layout = paper_layout(table)
figures.save_table(layout, "paper_table",
                   caption="The paper's layout: one row per dataset × schedule × dim, mean ± std over seeds (%).")
layout

# %%
fig = metric_vs_dim(table, title=f"{dataset}: retrieval vs embedding size ({n_seeds} seed(s))")
figures.save_figure(fig, "metrics_vs_dim", caption="Rank-1 and mAP against the embedding dimension, both "
                    "geometries; error bars: std over seeds.")
fig = cmc_curves({f"{g}, d={d}": cmcs[(first, d, g)] for d in dims for g in GEOMETRIES},
                 title=f"CMC, {dataset}, {first}, seed {seed}")
figures.save_figure(fig, "cmc", caption="Cumulative matching characteristic of every dimension and geometry "
                    f"({first}, first seed).")

# %% [markdown]
# ## Query → top-5 gallery images (smallest dimension, first seed)
# Green: same identity (a correct match); red: another identity or a distractor.

# %%
valid = [i for i in range(len(splits.query)) if int(splits.query.person_ids[i]) > 0]
picks = [valid[k * len(valid) // strip_queries] for k in range(min(strip_queries, len(valid)))]
for cell, result in zip(cells, grid.results):
    if not cell["keep_state"]:
        continue
    geometry = cell["geometry"]
    distances = evaluate_retrieval(cell_model(reid_data, cell, result), splits.query, splits.gallery, device=device,
                                   num_workers=num_workers, amp=amp)["distances"].float()
    fig = retrieval_strips(splits.query, splits.gallery, distances, picks,
                           title=f"{geometry}, d={min(dims)}, {first}, seed {seed}")
    figures.save_figure(fig, f"retrieval_{geometry}",
                        caption=f"Queries and their top-5 gallery images, {geometry} model, d={min(dims)}.")

# %% [markdown]
# ## Claims
# Decided by the shared rule (`protolab.claims.decide`) on the per-seed hyperbolic − Euclidean difference (both
# geometries trained with the same seed, batches and augmentation, tested on the same query/gallery split):
# Student-t 95% interval over seeds, smallest effect of interest `POINTS`, inconclusive below 5 seeds or when a
# compared model did not converge. Rank-1 and mAP are both primary, one claim each (Holm's correction across the
# scorecard handles the multiplicity), so that neither metric is chosen after seeing the results. The paper's
# table shows the hyperbolic numbers at least as high as the Euclidean ones; we test superiority, "> 0" by more
# than the smallest effect of interest, not non-inferiority.

# %%
METRICS = {"rank1": "Rank-1", "mAP": "mAP"}
rows = []
for metric, name in METRICS.items():
    gains = paired_gains(runs, metric)
    for schedule, part in gains.groupby("schedule", sort=False):
        data = f"{dataset}, {schedule}"
        for dim, group in part.groupby("dim"):
            converged = converged_arms(models, *(f"{g}, d={dim}, {schedule}" for g in GEOMETRIES))
            rows.append(decide(f"Hyperbolic {name} > Euclidean at d = {dim} (difference > 0, points of %)",
                               "re-ID table (Market-1501, DukeMTMC)", data, group.gain.tolist(), sesoi=POINTS,
                               converged=converged))
        low, high = (part[part.dim == d].set_index("seed").gain for d in (min(dims), max(dims)))
        if len(dims) > 1:
            converged = converged_arms(models, *(f"{g}, d={d}, {schedule}" for g in GEOMETRIES
                                                 for d in (min(dims), max(dims))))
            rows.append(decide(f"The hyperbolic {name} gain is larger at d = {min(dims)} than at d = {max(dims)} "
                               "(gain difference)", "re-ID table: larger gains at small d", data,
                               (low - high).dropna().tolist(), sesoi=POINTS, converged=converged))
claims = claims_table(rows)
figures.save_table(claims, "claims", caption="The paper's re-ID claims on our data, decided by the shared rule over "
                   "training seeds.")
claims

# %% [markdown]
# ## What we observed

# %%
kind = "embedded stand-in, not a re-ID benchmark" if dataset == "reid-glyphs" else "real files"
lines = [f"Data: {dataset} ({kind}), profile `{profile}`, backbone {backbone}, at most {epochs} epoch(s) with patience "
         f"{patience} on {val_identities} held-out training identities, {n_seeds} seed(s), c = {c}, clip_r = {clip_r}.",
         f"{models.converged.mean():.0%} of the {len(models)} models stopped by patience (converged) before the cap "
         f"of {epochs} epoch(s); {grid.sources.count('computed')} trained in this run, {grid.sources.count('cached')} "
         "reused from the cache."]
for row in table.itertuples():
    spread = "" if pd.isna(row.rank1_std) else f" (std {row.rank1_std:.1f})"
    lines.append(f"- {row.schedule}, d = {row.dim}, {row.geometry}: Rank-1 {row.rank1_mean:.1f}%{spread}, "
                 f"mAP {row.mAP_mean:.1f}%.")
best = table.loc[table.rank1_mean.idxmax()]
lines.append(f"Best Rank-1: {best.rank1_mean:.1f}% ({best.geometry}, d = {best['dim']}, {best.schedule}); "
             f"the Euclidean Rank-1 ranges over {table[table.geometry == 'euclidean'].rank1_mean.min():.1f}–"
             f"{table[table.geometry == 'euclidean'].rank1_mean.max():.1f}%.")
lines += claims_lines(claims)
observations = "\n".join(lines)
figures.save_text(observations, "observations")
display(Markdown(observations))
