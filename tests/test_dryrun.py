"""Dry runs (protolab.core.dryrun): metered loops stop early, record what they measured, and predict the full run."""

from __future__ import annotations

import json

import pytest

from protolab.core import dryrun
from protolab.zsl.ipn import IPNConfig
from protolab.zsl.fit import TrainConfig, fit_ipn


@pytest.fixture
def dry_run(monkeypatch, tmp_path):
    """A dry run of 3 timed steps per loop, logging to a file; yields the log's path."""
    log = tmp_path / "cost.jsonl"
    monkeypatch.setenv(dryrun.DRY_RUN, "3")
    monkeypatch.setenv(dryrun.COST_LOG, str(log))
    return log


def _run(meter: dryrun.Meter, steps: int) -> int:
    done = 0
    for _ in range(steps):
        done += 1
        if meter.tick():
            break
    return done


def test_a_normal_run_never_stops_a_loop_and_records_nothing(monkeypatch, tmp_path):
    monkeypatch.delenv(dryrun.DRY_RUN, raising=False)
    monkeypatch.setenv(dryrun.COST_LOG, str(tmp_path / "cost.jsonl"))
    meter = dryrun.meter("loop", 50)
    assert _run(meter, 50) == 50 and not meter.stopped
    assert dryrun.read_costs(tmp_path / "cost.jsonl") == []


def test_a_dry_run_times_the_steps_after_a_warm_up_and_counts_repeats(dry_run):
    with dryrun.repeated(4), dryrun.repeated(5):
        meter = dryrun.meter("inner", 100)
    assert _run(meter, 100) == 4  # one warm-up step, three timed
    (recorded,) = dryrun.read_costs(dry_run)
    assert (recorded.label, recorded.total_steps, recorded.measured_steps) == ("inner", 2000, 3)
    assert recorded.estimated_seconds == pytest.approx(2000 * recorded.seconds_per_step)
    assert recorded.peak_memory_bytes > 0 and recorded.device == "cpu"


def test_a_loop_shorter_than_the_budget_records_when_it_ends(dry_run):
    assert _run(dryrun.meter("short", 2), 2) == 2
    with dryrun.repeated(7), dryrun.measured("once"):
        pass
    short, once = dryrun.read_costs(dry_run)
    assert (short.total_steps, short.measured_steps) == (2, 1)
    assert (once.total_steps, once.measured_steps) == (7, 0)


def test_alike_iterations_run_once_in_a_dry_run_and_count_for_all(dry_run, monkeypatch):
    seen = []
    for schedule in dryrun.alike(["sch1", "sch2"]):
        for seed in dryrun.alike(range(3)):
            seen.append((schedule, seed))
            _run(dryrun.meter("training", 10, repeats=5), 10)
    after = dryrun.meter("after the loops", 10)
    assert seen == [("sch1", 0)]
    assert [(c.label, c.total_steps) for c in dryrun.read_costs(dry_run)] == [("training", 300)]
    assert after.factor == 1  # the factors end with the loops
    monkeypatch.delenv(dryrun.DRY_RUN)
    assert [(s, seed) for s in dryrun.alike("ab") for seed in dryrun.alike(range(2))] == [
        ("a", 0), ("a", 1), ("b", 0), ("b", 1)]


def test_the_estimate_replaces_what_the_dry_run_spent_in_loops_by_their_full_cost():
    loops = [dryrun.LoopCost("a", 100, 3, 0.5, 2.0, 1, "cpu"), dryrun.LoopCost("b", 10, 3, 1.0, 4.0, 1, "cpu")]
    assert dryrun.estimated_total(loops, dry_run_seconds=10.0) == pytest.approx(4.0 + 50.0 + 10.0)


def test_a_bad_step_count_is_refused_by_name(monkeypatch):
    monkeypatch.setenv(dryrun.DRY_RUN, "many")
    with pytest.raises(ValueError, match=dryrun.DRY_RUN):
        dryrun.dry_run_steps()


def test_fit_ipn_dry_run_trains_a_few_episodes_and_prices_every_epoch(dry_run):
    from protolab.data import load_zsl

    data = load_zsl("glyph-zsl")
    config = TrainConfig(epochs=30, n_way=10, n_shot=1, n_query=1, episode_unseen=2, episodes_per_epoch=40)
    _, history = fit_ipn(data, IPNConfig(prototype_dim=16, graph_dim=8, hidden_dim=16), config, progress=False)
    assert list(history["phase"]) == ["select", "refit"]  # one (partial) epoch each
    costs = {c.label: c for c in dryrun.read_costs(dry_run)}
    assert set(costs) == {"IPN training steps", "IPN validation U/S/H"}
    train = [c for c in dryrun.read_costs(dry_run) if c.label == "IPN training steps"]
    assert [c.total_steps for c in train] == [30 * 40, 30 * 40]  # selection run, then the refit's upper bound
    assert costs["IPN validation U/S/H"].total_steps == 30


def _images(n_classes: int = 6, per_class: int = 10):
    import torch

    from protolab.data.images import LabeledImages

    labels = torch.arange(n_classes).repeat_interleave(per_class)
    return LabeledImages(labels=labels, class_names=[str(c) for c in range(n_classes)], description="random",
                         images=torch.rand(len(labels), 1, 16, 16, generator=torch.Generator().manual_seed(0)))


def test_train_episodic_dry_run_prices_training_and_each_epochs_validation_and_writes_no_checkpoint(dry_run, tmp_path):
    import torch

    from protolab.backbones import build_backbone
    from protolab.fewshot.protonet import ProtoNet
    from protolab.training.loops import train_episodic

    data = _images()
    model = ProtoNet(build_backbone("conv4", 1, 8), "euclidean")
    checkpoint = tmp_path / "ckpt.pt"
    train_episodic(model, data, data, n_way=3, n_shot=1, n_query=2, episodes_per_epoch=10, epochs=5, val_episodes=4,
                   lr=1e-3, step_size=2, gamma=0.5, device=torch.device("cpu"), seed=0, checkpoint=checkpoint,
                   checkpoint_every=1, progress=False)
    costs = {c.label: c for c in dryrun.read_costs(dry_run)}
    assert (costs["training episodes"].total_steps, costs["training episodes"].measured_steps) == (50, 3)
    assert costs["evaluation episodes"].total_steps == 4 * 5
    assert not checkpoint.exists()


def test_apply_batched_dry_run_keeps_the_output_shape(dry_run):
    import torch

    from protolab.training.loops import apply_batched

    data = _images()
    out = apply_batched(torch.nn.Flatten(), data, batch_size=4, device=torch.device("cpu"))
    assert out.shape == (60, 256)
    assert torch.equal(out[16:32], out[:16])  # four batches computed, then repeated
    (recorded,) = dryrun.read_costs(dry_run)
    assert (recorded.label, recorded.total_steps) == ("inference batches", 15)


METERED = ["import time\nfrom protolab import figures\nfrom protolab.core import dryrun\nsession = figures.start('metered', globals())",
           "meter = dryrun.meter('sleeping steps', 200)\nfor step in range(200):\n    time.sleep(0.02)\n"
           "    if meter.tick():\n        break\nsteps_run = step + 1",
           "assert steps_run == (3 if dryrun.dry_run_steps() else 200), steps_run"]


def test_the_runner_dry_run_predicts_the_full_run_and_publishes_nothing(tmp_path, capsys):
    from tests.conftest import STANDARD_PARAMETERS, write_notebook
    from protolab.runner.cli import main

    write_notebook(tmp_path / "notebooks" / "metered.ipynb", STANDARD_PARAMETERS, *METERED)
    assert main(["--notebooks", str(tmp_path / "notebooks"), "run", "--dry-run", "2"]) == 0
    out, err = capsys.readouterr()
    assert "full run (estimated)" in out and "the full run would take" in out
    assert not (tmp_path / "figures").exists(), "a dry run never publishes, not even the default profile"
    run_dir = next((tmp_path / "runs").iterdir())
    (loop,) = dryrun.read_costs(run_dir / "metered.cost.jsonl")
    assert (loop.total_steps, loop.measured_steps) == (200, 2)
    assert 0.018 < loop.seconds_per_step < 0.5
    summary = json.loads((run_dir / "summary.json").read_text())
    (result,) = summary if isinstance(summary, list) else summary["results"]
    assert result["estimated_s"] >= 200 * 0.018
