"""Does a smaller training way cost either geometry accuracy on the embedded glyphs? (issue 25, item 3)

The official configs train with 30-way (1-shot) and 20-way (5-shot) episodes; their cost grows with the way
(images per episode = way × (shot + query)). ``fewshot_tables``' default may train with ``--small-way``-way
episodes instead only if validation shows it costs neither geometry accuracy.

Procedure and rule, fixed before any run
----------------------------------------
- For each geometry (Euclidean; hyperbolic, c = 0.25) and shot (1, 5): one ProtoNet trained by
  ``fewshot_tables``' default protocol (:func:`protolab.fewshot.protocol.train_protonet`: Conv4-64, 28 × 28 hard
  glyphs, 15 queries, at most 40 epochs × 20 episodes, patience 3 on 50 validation episodes, Adam lr 1e-3,
  StepLR(5, 0.5)) from the tuning seed (100), once with the official way and once with ``--small-way``; then 5-way
  accuracy ± 95% CI on 500 episodes of the **validation** classes (seed 103, not the selection episodes).
- Rule: the small way is used when, for every geometry and shot, its validation accuracy is at least the
  official way's minus 2 points (the claims' smallest effect of interest); one pair losing more decides against
  it (the remaining pairs need not run). No test class is used.

Output: ``lib/protolab/data/calibration/fewshot_train_way.csv`` (one row per model: geometry, shot, way, validation
accuracy and CI, epochs, training seconds; pairs and the rule's outcome), also printed. Each model runs in its own
process when given ``--only`` (``euclidean,1,30``) and is cached (``$PROTOLAB_CACHE_DIR/calibration/``); a call
without it assembles the table from the models cached so far, listing the others as not run. One thread per
process: ``OMP_NUM_THREADS=1``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch

from protolab.data import load_fewshot
from protolab.data.cache import cache_dir
from protolab.fewshot.protocol import ProtocolSettings, train_protonet
from protolab.training.loops import evaluate_episodic

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "lib" / "protolab" / "data" / "calibration" / "fewshot_train_way.csv"
PROTOCOL = ProtocolSettings(backbone="conv4", dim=64, query=15, test_way=5, temperature=1.0, riemannian=False,
                            epochs=40, episodes=20, val_episodes=50, test_episodes=0, lr=1e-3, step_size=5, gamma=0.5,
                            patience=3, min_delta=0.0)
OFFICIAL_WAY = {1: 30, 5: 20}
SEED, CHECK_EPISODES, TOLERANCE = 100, 500, 2.0


def cached_path(geometry: str, shot: int, way: int) -> Path:
    """Where one model's result is cached, keyed by everything that shapes it."""
    key = json.dumps({"geometry": geometry, "shot": shot, "way": way, "protocol": asdict(PROTOCOL), "seed": SEED,
                      "episodes": CHECK_EPISODES}, sort_keys=True)
    return cache_dir() / "calibration" / f"train-way-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def one_model(geometry: str, shot: int, way: int) -> dict:
    """Validation accuracy of one model (trained unless cached)."""
    path = cached_path(geometry, shot, way)
    if path.exists():
        return json.loads(path.read_text())
    splits = load_fewshot("glyphs", image_size=28, seed=0, instances_per_class=20, hard=True)
    start = time.perf_counter()
    model, history = train_protonet(PROTOCOL, splits, geometry=geometry, c=0.25, shot=shot, train_way=way, seed=SEED,
                                    device=torch.device("cpu"), progress=False)
    trained = time.perf_counter() - start
    mean, ci95, _ = evaluate_episodic(model, splits.val, n_way=PROTOCOL.test_way, n_shot=shot, n_query=PROTOCOL.query,
                                      n_episodes=CHECK_EPISODES, device=torch.device("cpu"), seed=SEED + 3,
                                      progress=False)
    result = {"geometry": geometry, "shot": shot, "train_way": way, "val_accuracy_%": round(100 * mean, 2),
              "val_ci95_%": round(100 * ci95, 2), "epochs": len(history),
              "stopped_by": history.attrs["convergence"]["stopped_by"], "train_s": round(trained, 1)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small-way", type=int, default=10)
    parser.add_argument("--only", default="", help="one model, geometry,shot,way (no table written)")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    if args.only:
        geometry, shot, way = args.only.split(",")
        print(json.dumps(one_model(geometry, int(shot), int(way))), flush=True)
        return
    rows = [json.loads(path.read_text()) if (path := cached_path(geometry, shot, way)).exists() else
            {"geometry": geometry, "shot": shot, "train_way": way, "stopped_by": "not run"}
            for geometry in ("euclidean", "hyperbolic") for shot in OFFICIAL_WAY
            for way in (OFFICIAL_WAY[shot], args.small_way)]
    table = pd.DataFrame(rows)
    official = table[table.train_way == table.shot.map(OFFICIAL_WAY)].set_index(["geometry", "shot"])
    small = table[table.train_way == args.small_way].set_index(["geometry", "shot"])
    loss = official["val_accuracy_%"] - small["val_accuracy_%"]  # NaN where a pair is incomplete
    table["small_way_costs_points"] = [round(float(loss[row.geometry, row.shot]), 2) for row in table.itertuples()]
    table["small_way_used"] = ("no" if (loss > TOLERANCE).any() else "yes" if loss.notna().all() else "undecided")
    TABLE.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(TABLE, index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
