"""The IPN ablation and consistency notebooks: tables built from their CSVs, resume, full profile on xlsa17 files."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from protolab.runner.execute import run_notebooks
from tests.layouts import write_awa2_like


def _run(tmp_path, name: str, profile: str, run: str, **overrides):
    result = run_notebooks([name], profile=profile, overrides={k: str(v) for k, v in overrides.items()},
                           out_dir=tmp_path / run, runs_dir=tmp_path / "runs", timeout=400)[0]
    assert result.status == "ok", f"{result.failing_cell} {result.error}"
    return tmp_path / run


@pytest.mark.notebook
def test_ablation_rerun_computes_only_the_missing_cells(tmp_path, fresh_grid_cache):
    first = pd.read_csv(_run(tmp_path, "ipn_ablations", "smoke", "first") / "ipn_ablations__runs.csv")
    assert (first.source == "computed").all()
    assert set(first.variant) == {"IPN", "IPN without consistency loss", "visual space only", "semantic space only",
                                  "non-episodic", "no graph (K = 0)", "hyperbolic IPN"}
    # An interruption after all but two cells finished leaves exactly those two missing on disk (the cache the
    # three IPN notebooks share).
    missing = {"non-episodic", "no graph (K = 0)"}
    stored = list((fresh_grid_cache / "grids" / "ipn").glob("*.pt"))
    assert len(stored) == len(first)
    for path in stored:
        if torch.load(path, weights_only=True)["cell"]["variant"] in missing:
            path.unlink()
    second_dir = _run(tmp_path, "ipn_ablations", "smoke", "second")
    second = pd.read_csv(second_dir / "ipn_ablations__runs.csv")
    assert dict(zip(second.variant, second.source)) == {v: "computed" if v in missing else "cached"
                                                        for v in first.variant}
    pd.testing.assert_frame_equal(first.drop(columns="source"), second.drop(columns="source"))
    assert "2 of 7 cells computed in this run" in (second_dir / "ipn_ablations__observations.md").read_text()


@pytest.mark.notebook
def test_ablation_table_is_the_mean_and_std_of_its_runs_csv(tmp_path):
    root = write_awa2_like(tmp_path / "data")
    out = _run(tmp_path, "ipn_ablations", "full", "figures", data_root=root, epochs=2, n_seeds=2, prototype_dim=16,
               graph_dim=8, hidden_dim=16, n_way=4, episodes_per_epoch=2, steps_grid="0,2", threshold_grid="0.5,0.766",
               tuning_lrs="1e-5,2e-5", tuning_consistency_lrs="2e-5", tuning_weights="0.1,1", sweep_seeds=1)
    runs = pd.read_csv(out / "ipn_ablations__runs.csv")
    table = pd.read_csv(out / "ipn_ablations__ablations.csv").set_index("variant")
    assert list(table.index) == ["IPN", "IPN without consistency loss", "semantic space only", "visual space only",
                                 "non-episodic", "no graph (K = 0)", "hyperbolic IPN", "threshold 0.5"]
    tuning = pd.read_csv(out / "ipn_ablations__tuning.csv")  # the same budget per arm, one setting chosen each
    assert (tuning.groupby("variant").size() == 2).all() and tuning.groupby("variant").chosen.sum().eq(1).all()
    chosen = tuning[tuning.chosen].set_index("variant")
    assert (table.loc["IPN", "lr"], table.loc["IPN", "weight"]) == (chosen.loc["IPN", "lr"], chosen.loc["IPN", "weight"])
    assert table.loc["threshold 0.5", "lr"] == table.loc["IPN", "lr"]  # a sweep point at the base's setting
    # the hyperbolic IPN tries each curvature at the λ the base chose, and its chosen c is its runs' c
    hyperbolic = tuning[tuning.variant == "hyperbolic IPN"]
    assert sorted(hyperbolic.c) == [0.1, 1.0] and (hyperbolic.weight == chosen.loc["IPN", "weight"]).all()
    assert table.loc["hyperbolic IPN", "c"] == chosen.loc["hyperbolic IPN", "c"]
    assert table.c.drop("hyperbolic IPN").isna().all()
    assert table.loc["semantic space only", "weight"] == 0
    collapsed = table.collapsed.str.extract(r"^\d+/(\d+) \(")[0]  # collapses out of the variant's seeds
    assert collapsed.drop("threshold 0.5").eq("2").all() and collapsed["threshold 0.5"] == "1"
    seeds = runs.groupby("variant").seed.apply(list)  # the sweep's point on the claims' first seed only
    assert seeds.pop("threshold 0.5") == [0] and (seeds.map(len) == 2).all()
    assert (table.paper == "not available here").all()
    for variant, group in runs.groupby("variant"):
        assert table.loc[variant, "H_mean"] == pytest.approx(round(100 * group.H.mean(), 2))
        assert table.loc[variant, "H_std"] == pytest.approx(round(100 * group.H.std(), 2) if len(group) > 1 else 0)
    for figure in ("h_per_variant", "h_vs_steps_and_threshold"):
        assert (out / f"ipn_ablations__{figure}.png").exists()
    observations = (out / "ipn_ablations__observations.md").read_text()
    assert "AWA2" in observations and "no graph (K = 0): H" in observations and "Chosen on validation" in observations
    claims = pd.read_csv(out / "ipn_ablations__claims.csv")
    assert claims.claim.tolist() == ["both spaces > semantic space only (H; neither with the consistency loss)",
                                     "propagation (K = 2) > no graph (K = 0) (H; neither with the consistency loss)",
                                     "episodic training > non-episodic (H; same optimiser steps)",
                                     "extension: hyperbolic IPN > IPN (H; c chosen on validation)"]
    assert claims.paper_evidence.tolist() == ["not available offline"] * 3 + ["neither paper (this kit's extension)"]
    assert "Claim \"" in observations


@pytest.mark.notebook
def test_consistency_study_full_profile_on_xlsa17_files(tmp_path):
    root = write_awa2_like(tmp_path / "data")
    out = _run(tmp_path, "consistency_study", "full", "figures", data_root=root, epochs=2, n_seeds=2,
               prototype_dim=16, graph_dim=8, hidden_dim=16, n_way=4, episodes_per_epoch=2, weights="0.1,1",
               plot_classes=6, tuning_lrs="1e-5,2e-5", tuning_consistency_lrs="2e-5,4e-5", tuning_weights="0.5",
               sweep_seeds=1)
    runs = pd.read_csv(out / "consistency_study__runs.csv")
    assert runs.groupby("variant").seed.count().to_dict() == {  # the λ sweep on the claims' first seed only
        "IPN": 2, "IPN without consistency loss": 2, "λ = 0.1": 1, "λ = 1": 1, "shared attention": 2}
    assert (runs[runs.variant == "IPN"].weight == 0.5).all()  # the only λ of the tuning grid
    assert (runs[runs.variant == "λ = 1"].lr == runs[runs.variant == "IPN"].lr.iloc[0]).all()
    shared = runs[runs.variant == "shared attention"]
    assert (shared.final_attention_kl.abs() < 1e-6).all(), "shared attention: the two attentions are one"
    curves = pd.read_csv(out / "consistency_study__training_curves.csv")
    assert {"similarity_kl", "feature_cka", "attention_kl"} <= set(curves.columns)
    assert set(curves.phase) == {"select", "refit"} and curves.similarity_kl.notna().all()
    summary = pd.read_csv(out / "consistency_study__summary.csv").set_index("variant")
    for variant, group in runs.groupby("variant"):
        mean, std = 100 * group.H.mean(), 100 * group.H.std() if len(group) > 1 else 0.0
        assert summary.loc[variant, "H"] == f"{mean:.1f} ± {std:.1f}"
        kl, cka = group.final_similarity_kl, group.final_feature_cka
        assert summary.loc[variant, "similarity_kl"] == f"{kl.mean():.3f} ± {kl.std() if len(group) > 1 else 0:.3f}"
        assert summary.loc[variant, "feature_cka"] == f"{cka.mean():.3f} ± {cka.std() if len(group) > 1 else 0:.3f}"
    for figure in ("h_vs_weight", "alignment_during_training", "similarity_heatmaps", "features_vs_similarities"):
        assert (out / f"consistency_study__{figure}.png").exists()
    assert "paper's explanation" in (out / "consistency_study__observations.md").read_text()
    claims = pd.read_csv(out / "consistency_study__claims.csv")
    assert claims.claim[0] == "consistency loss (tuned λ) > shared attention (H)" and len(claims) == 4
    both = runs.pivot(index="seed", columns="variant", values="H")
    assert claims.estimate[0] == pytest.approx(100 * (both["IPN"] - both["shared attention"]).mean())
