"""The committed notebooks' dependencies (``depends_on`` in notebooks/profiles.yaml) match what their code reads."""

from __future__ import annotations

from protolab.runner.parameters import discover, run_order

EXPERIMENTS = discover()


def test_every_notebook_a_notebook_names_in_its_code_is_among_its_dependencies():
    for name, experiment in EXPERIMENTS.items():
        source = experiment.path.with_suffix(".py").read_text()
        named = {other for other in EXPERIMENTS if other != name and f'"{other}"' in source}
        assert named <= set(experiment.depends_on), f"{name} reads {sorted(named - set(experiment.depends_on))}; " \
                                                    "add them to its depends_on in notebooks/profiles.yaml"


def test_delta_hyperbolicity_runs_after_the_notebooks_whose_claims_it_reads():
    order = run_order(EXPERIMENTS)
    upstream = ("fewshot_tables", "poincare_uncertainty", "reid_embeddings", "ipn_ablations")
    assert set(EXPERIMENTS["delta_hyperbolicity"].depends_on) == set(upstream)
    assert order.index("delta_hyperbolicity") > max(order.index(name) for name in upstream)
    others = [name for name in order if name not in ("delta_hyperbolicity", "consistency_study", "ipn_gzsl")]
    assert others == sorted(set(EXPERIMENTS) - {"delta_hyperbolicity", "consistency_study", "ipn_gzsl"})


def test_the_ipn_notebooks_that_read_ipn_ablations_cells_run_after_it():
    order = run_order(EXPERIMENTS)
    for name in ("consistency_study", "ipn_gzsl"):
        assert EXPERIMENTS[name].depends_on == ("ipn_ablations",)
        assert order.index(name) > order.index("ipn_ablations")
