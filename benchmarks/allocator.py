"""Conv4 few-shot training steps with glibc's default malloc and with the runner's allocator settings.

Prints wall time per step, user and system CPU seconds, minor page faults of each run, and checks that
both runs compute the same losses (the settings must not change results). One torch thread per run.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

from protolab.runner.allocator import allocator_environment

STEPS = 20
CHILD = f"""
import json, time, torch
from protolab.backbones import build_backbone
from protolab.fewshot.protonet import ProtoNet
torch.manual_seed(0)
model = ProtoNet(build_backbone("conv4", 1, 64), "euclidean")
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
way, shot, query = 30, 1, 15
support, query_images = torch.rand(way * shot, 1, 28, 28), torch.rand(way * query, 1, 28, 28)
labels = torch.arange(way).repeat_interleave(query)
losses, start = [], time.perf_counter()
for step in range({STEPS}):
    loss = torch.nn.functional.cross_entropy(model(support, torch.arange(way), query_images, way), labels)
    optimizer.zero_grad(); loss.backward(); optimizer.step()
    losses.append(loss.item())
print(json.dumps({{"seconds": time.perf_counter() - start, "losses": losses}}))
"""


def run(env: dict[str, str]) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    output = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {**json.loads(output.stdout.strip().splitlines()[-1]), "wall": time.perf_counter() - started,
            "user": after.ru_utime - before.ru_utime, "system": after.ru_stime - before.ru_stime,
            "faults": after.ru_minflt - before.ru_minflt}


def main() -> None:
    base = {key: value for key, value in os.environ.items() if not key.startswith("MALLOC_")}
    base["OMP_NUM_THREADS"] = "1"
    results = {"glibc default": run(base), "protolab settings": run({**base, **allocator_environment(base)})}
    print(f"Conv4 ProtoNet, 30-way 1-shot 15-query episodes at 28×28, {STEPS} steps, one thread")
    print(f"{'allocator':<20}{'ms/step':>10}{'user s':>9}{'system s':>10}{'page faults':>14}")
    for name, r in results.items():
        print(f"{name:<20}{1000 * r['seconds'] / STEPS:>10.0f}{r['user']:>9.1f}{r['system']:>10.1f}{r['faults']:>14,}")
    same = results["glibc default"]["losses"] == results["protolab settings"]["losses"]
    print("losses identical in both runs:", same)
    if not same:
        sys.exit("the allocator settings changed the computed losses")


if __name__ == "__main__":
    main()
