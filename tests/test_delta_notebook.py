"""The δ-hyperbolicity notebook: smoke profile on the embedded spaces, full profile on xlsa17 files."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from protolab.claims import POINTS, VERDICTS, claims_table, decide
from protolab.runner.execute import run_notebooks
from tests.layouts import write_awa2_like


def _write_claims(out_dir, notebook: str, rows: list[tuple[str, float, float]]) -> None:
    """A claims table whose rows have the given mean over five seeds (mean ± spread)."""
    table = claims_table([decide(statement, "—", "test data", [change - spread, change, change + spread, change, change],
                                 sesoi=POINTS) for statement, change, spread in rows])
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / f"{notebook}__claims.csv", index=False)


@pytest.mark.notebook
def test_smoke_profile_measures_every_space_and_pairs_other_notebooks_claims(tmp_path):
    figures = tmp_path / "figures"
    _write_claims(figures, "fewshot_tables", [("hyperbolic beats Euclidean at 1-shot", 2.0, 1.0),
                                              ("hyperbolic beats Euclidean at 5-shot", 1.0, 0.5),
                                              ("the hyperbolic gain is larger at 1-shot than at 5-shot", 1.0, 1.1)])
    _write_claims(figures, "poincare_uncertainty", [
        ("OOD images lie nearer the origin than test images (AUROC of d(x, 0) − 0.5)", 0.3, 0.1),
        ("geometry: d(x, 0) of the hyperbolic model separates OOD better than ‖x‖ of the Euclidean model (AUROC "
         "difference)", 0.05, 0.02),
        ("score: in the hyperbolic model, d(x, 0) separates OOD better than p_max (AUROC difference)", 0.5, 0.02)])
    _write_claims(figures, "ipn_ablations", [("episodic training > non-episodic (H; same optimiser steps)", 9.0, 1.0),
                                             ("extension: hyperbolic IPN > IPN (H; c chosen on validation)", 3.0, 1.0)])
    result = run_notebooks(["delta_hyperbolicity"], profile="smoke", out_dir=figures, runs_dir=tmp_path / "runs",
                           timeout=300)[0]
    assert result.status == "ok", f"{result.failing_cell} {result.error}"
    table = pd.read_csv(figures / "delta_hyperbolicity__delta_rel.csv")
    assert table.space.tolist() == ["mnist-5k", "glyphs", "glyphs-conv4", "mnist-5k-cnn", "glyph-zsl attributes"]
    for column in ("delta_rel_mean", "single_mean", "ball_mean", "all_small_mean", "single_small_mean"):
        assert table[column].between(0, 1).all(), column
    assert (table.delta_rel_mean == table.single_mean).all()  # base_points="one" is the official estimate
    assert (table.all_small_mean >= table.single_small_mean - 1e-9).all()  # δ = max over base points ≥ δ_0
    assert (table.n_points == 150).all() and (table.compare_points == 50).all()
    points = pd.read_csv(figures / "delta_hyperbolicity__gain_vs_delta.csv")
    # AUROC difference × 100; the trend row ignored; the hyperbolic IPN's gain beside its measured class space
    assert sorted(points.gain.round(6)) == [1.0, 2.0, 3.0, 5.0]
    assert set(points.space) == {"glyphs-conv4", "mnist-5k", "glyph-zsl attributes"}
    assert points.set_index("space").delta_rel["glyph-zsl attributes"] == pytest.approx(
        table.set_index("space").delta_rel_mean["glyph-zsl attributes"], abs=1e-4)  # the table is saved rounded
    claims = pd.read_csv(figures / "delta_hyperbolicity__claims.csv")
    assert len(claims) == 2 and set(claims.verdict) <= set(VERDICTS)
    # this run's spaces: too few independent points in the smoke profile, so described; the cross-notebook
    # relation is always described
    assert (claims.verdict == "inconclusive").all() and claims.note.str.contains("not scored").all()
    assert "not scored: 2 independent point(s) < 8" in claims.note.iloc[0]
    gains = pd.read_csv(figures / "delta_hyperbolicity__gain_runs.csv")
    assert set(gains.geometry) == {"euclidean", "hyperbolic"} and set(gains.seed) == {0, 1}
    by_space = pd.read_csv(figures / "delta_hyperbolicity__gain_by_space.csv").set_index("space")
    paired = gains.pivot_table(index=["space", "seed"], columns="geometry", values="accuracy")
    assert by_space.gain.to_dict() == pytest.approx((paired.hyperbolic - paired.euclidean).groupby("space").mean()
                                                    .to_dict(), abs=1e-3)
    # glyphs at 2 instances per class cannot be split into train, validation and test: said, not dropped silently
    assert "glyphs" not in by_space.index and "glyphs: no classification task" in \
        (figures / "delta_hyperbolicity__observations.md").read_text()
    observations = (figures / "delta_hyperbolicity__observations.md").read_text()
    assert "reid_embeddings skipped" in observations and "glyphs-conv4" in observations
    assert (figures / "delta_hyperbolicity__delta_rel.png").exists()
    assert (figures / "fewshot_tables__claims.csv").exists()  # the other notebooks' outputs are left alone


@pytest.mark.notebook
def test_full_profile_measures_xlsa17_features_and_skips_absent_datasets(tmp_path):
    root = write_awa2_like(tmp_path / "data", per_class=12)
    result = run_notebooks(["delta_hyperbolicity"], profile="full", overrides={
        "data_root": str(root), "n_points": "60", "n_tries": "3", "compare_points": "20"},
        out_dir=tmp_path / "figures", runs_dir=tmp_path / "runs", timeout=300)[0]
    assert result.status == "ok", f"{result.failing_cell} {result.error}"
    figures = tmp_path / "figures"
    table = pd.read_csv(figures / "delta_hyperbolicity__delta_rel.csv")
    assert table.space.tolist() == ["AWA2", "AWA2 attributes", "AWA2 class means"]
    assert table.n_points.iloc[0] == 60 and table.n_tries.iloc[0] == 3
    assert 0 < table.delta_rel_mean.iloc[0] < 1 and 0 < table.ball_mean.iloc[0] < 1
    sidecar = json.loads((figures / "delta_hyperbolicity__delta_rel.json").read_text())
    assert sidecar["profile"] == "full" and sidecar["dataset"]["name"] == "xlsa17"
    assert "AWA2" in sidecar["dataset"]["description"]
    observations = (figures / "delta_hyperbolicity__observations.md").read_text()
    assert all(f"{name} skipped" in observations for name in ("CUB", "APY", "SUN"))
    # 4 xlsa17 spaces at most: both relations described, not scored
    assert pd.read_csv(figures / "delta_hyperbolicity__claims.csv").verdict.tolist() == ["inconclusive"] * 2


@pytest.mark.parametrize("c", [0.5, 1.0, 2.0])
def test_poincare_features_centre_and_scale_before_expmap0(c):
    import torch

    from protolab.delta.features import poincare_features
    from protolab.hyperbolic import dist0

    features = 5.0 + 3.0 * torch.randn(200, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    points = poincare_features(features, c=c, mean_norm=1.0)
    assert points.dtype == torch.float64 and float((points.norm(dim=-1) * c ** 0.5).max()) < 1
    # d_c(0, exp_0(u)) = 2 ||u||: the mean distance to the origin is 2 * mean_norm / sqrt(c)
    assert float(dist0(points, c=c).mean()) == pytest.approx(2.0 / c ** 0.5, rel=1e-6)
    with pytest.raises(ValueError):
        poincare_features(torch.ones(5, 3), c=c)


def test_penultimate_features_are_the_500_d_hidden_layer_of_the_uncertainty_network():
    import torch

    from protolab.data import LabeledImages
    from protolab.delta.features import concat_images, penultimate_features, pixel_features
    from protolab.uncertainty import build_classifier

    images = LabeledImages(labels=torch.arange(6) % 2, class_names=["a", "b"], description="toy",
                           images=torch.rand(6, 1, 12, 12, generator=torch.Generator().manual_seed(0)))
    both = concat_images(images, images)
    assert pixel_features(both).shape == (12, 144)
    model = build_classifier("euclidean", in_channels=1, dim=2, n_classes=2, c=1.0)
    hidden = penultimate_features(model, images, device=torch.device("cpu"))
    assert hidden.shape == (6, 500) and bool((hidden >= 0).all())  # after the ReLU
    expected = model[0].head[:-1](model[0].features(images.images))
    assert torch.allclose(hidden, expected.detach(), atol=1e-6)


def test_pixel_features_of_decoded_uint8_images_are_on_the_unit_scale_of_float_ones():
    import torch

    from protolab.data import LabeledImages
    from protolab.delta.features import pixel_features

    pixels = torch.randint(0, 256, (4, 1, 5, 5), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    stored, as_float = (LabeledImages(labels=torch.arange(4) % 2, class_names=["a", "b"], description="toy",
                                      images=images) for images in (pixels, pixels.float() / 255))
    assert torch.allclose(pixel_features(stored), pixel_features(as_float))
    assert float(pixel_features(stored).max()) <= 1.0


def test_zsl_spaces_are_every_image_or_one_row_per_class():
    import torch

    from protolab.data import load_zsl
    from protolab.delta.features import zsl_space

    data = load_zsl("glyph-zsl")
    features, labels, text = zsl_space(data)
    assert len(features) == len(labels) == len(data.trainval) + len(data.test_seen) + len(data.test_unseen)
    attributes, classes, _ = zsl_space(data, "attributes")
    assert torch.equal(attributes, data.attributes.float()) and torch.equal(classes, torch.arange(data.n_classes))
    means = zsl_space(data, "class means")[0]
    assert means.shape == (data.n_classes, data.feature_dim)
    for c in (0, data.n_classes - 1):
        torch.testing.assert_close(means[c], features[labels == c].float().mean(0))
    with pytest.raises(ValueError, match="unknown zero-shot space"):
        zsl_space(data, "pixels")
