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

dataset: Literal["reid-glyphs", "market1501", "dukemtmc"] = "reid-glyphs"  # reid-glyphs (embedded), market1501
    # or dukemtmc (real, at data_root)
data_root: str = ""  # folder holding Market-1501-v15.09.15/ or DukeMTMC-reID/ (real data only)
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
epochs: int = 15  # [≥ 1] training epochs, the same for both geometries
batch_size: int = 64  # [≥ 1] training batch size
lr: float = 1e-3  # [> 0] Adam base learning rate
weight_decay: float = 5e-4  # [≥ 0] Adam weight decay
flip: bool = False  # random horizontal flip (True on real data; a mirrored character is another identity)
pad: int = 3  # [≥ 0] zero-pad by this many pixels, then random crop back (real 256×128: 10)
erasing: float = 0.5  # [≥ 0, ≤ 1] probability of random erasing per training image
n_seeds: int = 3  # [≥ 1] models trained per setting with seeds seed, seed+1, ...; mean ± std over them
strip_queries: int = 4  # [≥ 1] queries shown with their top-5 gallery images
num_workers: int = 0  # [≥ 0] batches prepared ahead (worker processes for image files, a thread for decoded data;
    # 0: when needed)
amp: bool = False  # bfloat16 autocast for the backbone (the Poincaré head stays float32)
profile: Literal["smoke", "default", "full"] = "default"  # smoke | default | full
seed: int = 0  # [≥ 0] first random seed (the stand-in is built with this seed)
device: str = "auto"  # [device] cpu, cuda or auto (CUDA when present)
out_dir: str = "figures"  # where figures and tables are written

# %%
import pandas as pd
import torch
from IPython.display import Markdown, display

from protolab import figures, resolve_device, seed_everything
from protolab.core import dryrun
from protolab.claims import claim, claims_lines, claims_table
from protolab.data import load_reid
from protolab.metrics import mean_ci95
from protolab.plots import cmc_curves, image_grid, metric_vs_dim, retrieval_strips
from protolab.reid.fit import SCHEDULES, evaluate_retrieval, reid_training
from protolab.reid.model import GEOMETRIES, OUR_CHOICES, build_reid_model
from protolab.reid.tables import paired_gains, paper_layout, summarise
from protolab.training.loops import fit_classifier

session = figures.start("reid_embeddings", globals())
device = resolve_device(device)
seed_everything(seed)
splits = load_reid(dataset, data_root, image_size=tuple(image_size), seed=seed)
figures.describe_data(f"{splits.query.description}; {splits.train.n_classes} training identities, "
                      f"{len(splits.train)} train / {len(splits.query)} query / {len(splits.gallery)} gallery images")
display(Markdown(f"**Data:** {splits.train.description}.\n\n" + "\n".join(
    f"- {name}: {len(part)} images, {len(set(part.person_ids.tolist()))} person ids, "
    f"cameras {sorted(set(part.domains.tolist()))}" for name, part in zip(("train", "query", "gallery"), splits))))
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
# batches and augmentation; each is then evaluated on the whole query / gallery split (same-camera
# matches of a query's identity and junk images removed, distractors kept).

# %%
runs, cmcs, kept = [], {}, {}
in_channels = splits.train[0][0].shape[0]
for schedule in dryrun.alike(schedules):  # a dry run (protolab run --dry-run) times the first schedule and seed
    for dim in dims:
        for run_seed in dryrun.alike(range(seed, seed + n_seeds)):
            for geometry in GEOMETRIES:
                seed_everything(run_seed)
                model = build_reid_model(geometry, backbone=backbone, in_channels=in_channels, dim=dim,
                                         n_classes=splits.train.n_classes, c=c, clip_r=clip_r,
                                         pretrained_weights=pretrained_weights)
                history = fit_classifier(model, splits.train, epochs=epochs, batch_size=batch_size, lr=lr,
                                         device=device, seed=run_seed, weight_decay=weight_decay,
                                         **reid_training(schedule, epochs, flip=flip, pad=pad, erasing=erasing),
                                         description=f"{geometry} d={dim} {schedule} seed={run_seed}",
                                         num_workers=num_workers, amp=amp)
                result = evaluate_retrieval(model, splits.query, splits.gallery, device=device,
                                            num_workers=num_workers, amp=amp)
                runs.append({"dataset": dataset, "schedule": schedule, "dim": dim, "geometry": geometry,
                             "seed": run_seed, "rank1": result["rank1"], "rank5": result["rank5"],
                             "mAP": result["mAP"], "train_accuracy": history.accuracy.iloc[-1],
                             "valid_queries": result["n_valid_queries"]})
                if run_seed == seed:
                    cmcs[(schedule, dim, geometry)] = result["cmc"]
                if run_seed == seed and schedule == schedules[0] and dim == min(dims):  # for the retrieval strips
                    kept[geometry] = result["distances"].float()
runs = pd.DataFrame(runs)
figures.save_table(runs.round(4), "runs",
                   caption="Every trained model: Rank-1, Rank-5, mAP (fractions), last-epoch training accuracy.")
runs

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
first = schedules[0]
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
for geometry in GEOMETRIES:
    fig = retrieval_strips(splits.query, splits.gallery, kept[geometry], picks,
                           title=f"{geometry}, d={min(dims)}, {first}, seed {seed}")
    figures.save_figure(fig, f"retrieval_{geometry}",
                        caption=f"Queries and their top-5 gallery images, {geometry} model, d={min(dims)}.")

# %% [markdown]
# ## Claims
# Decided by the Student-t 95% interval over seeds of the hyperbolic − Euclidean difference, paired by seed.

# %%
gains, rows = paired_gains(runs), []
for schedule, part in gains.groupby("schedule", sort=False):
    data = f"{dataset}, {schedule}, {n_seeds} seed(s)"
    for dim, group in part.groupby("dim"):
        rows.append(claim(f"Hyperbolic Rank-1 ≥ Euclidean at d = {dim} (difference, points of %)",
                          "re-ID table (Market-1501, DukeMTMC)", data, *mean_ci95(torch.tensor(group.gain.values)),
                          interval="t 95%, paired by seed"))
    low, high = (part[part.dim == d].set_index("seed").gain for d in (min(dims), max(dims)))
    if len(dims) > 1:
        rows.append(claim(f"The hyperbolic gain is larger at d = {min(dims)} than at d = {max(dims)} (gain difference)",
                          "re-ID table: larger gains at small d", data,
                          *mean_ci95(torch.tensor((low - high).values)), interval="t 95%, paired by seed"))
claims = claims_table(rows)
figures.save_table(claims, "claims",
                   caption="The paper's re-ID claims on our data, decided by the paired 95% interval.")
claims

# %% [markdown]
# ## What we observed

# %%
kind = "embedded stand-in, not a re-ID benchmark" if dataset == "reid-glyphs" else "real files"
lines = [f"Data: {dataset} ({kind}), "
         f"profile `{profile}`, backbone {backbone}, {epochs} epoch(s), {n_seeds} seed(s), c = {c}, clip_r = {clip_r}."]
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
