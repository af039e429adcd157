"""Shared plots: class labels and the heatmap grid."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from protolab.plots import class_label, matrix_heatmaps


def test_class_label_shows_the_character_of_unicode_names_and_cuts_other_names():
    assert class_label("LATIN_SMALL_LETTER_A_WITH_GRAVE") == "à"
    assert class_label("latin capital letter c with cedilla") == "Ç"
    assert class_label("zebra") == "zebra"
    assert class_label("a_very_long_class_name") == "a_very_long_c…"


def test_matrix_heatmaps_wraps_panels_into_rows_and_shares_one_colour_scale():
    matrices = {f"m{i}": np.array([[1.0, -0.5], [-0.5, 1.0]]) * (i + 1) for i in range(3)}
    fig = matrix_heatmaps(matrices, ["a", "b"], columns=2, vmin=None)
    shown = [ax for ax in fig.axes if ax.get_visible() and ax.images]
    assert [ax.get_title() for ax in shown] == ["m0", "m1", "m2"]
    assert len({ax.get_subplotspec().rowspan.start for ax in shown}) == 2
    assert all(ax.images[0].get_clim() == (-1.5, 3.0) for ax in shown)
    default = matrix_heatmaps({"x": np.eye(2) - 0.5}, ["a", "b"])
    assert default.axes[0].images[0].get_clim() == (0.0, 0.5)
    plt.close("all")
