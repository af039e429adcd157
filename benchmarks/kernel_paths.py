"""Training steps on each CPU's native kernels and on the AVX2 paths the runner pins (protolab.runner.kernel_paths).

Prints the wall time per step of a Conv4 few-shot episode (30-way 1-shot, 15 queries, 28 px) and of an IPN-sized
MLP step (256-wide layers, 2048 × 512 inputs), one torch thread each, in fresh processes, and whether the two
paths give the same losses (they need not: the point of pinning is that every machine takes the pinned one).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from protolab.runner.kernel_paths import AVX2_PATHS, kernel_path_environment

STEPS = 10
CHILD = f"""
import json, time, torch
from protolab.backbones import build_backbone
from protolab.fewshot.protonet import ProtoNet
torch.set_num_threads(1)
torch.manual_seed(0)
model = ProtoNet(build_backbone("conv4", 1, 64), "euclidean")
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
way, query = 30, 15
support, query_images = torch.rand(way, 1, 28, 28), torch.rand(way * query, 1, 28, 28)
labels = torch.arange(way).repeat_interleave(query)
mlp = torch.nn.Sequential(torch.nn.Linear(512, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256))
mlp_optimizer = torch.optim.Adam(mlp.parameters(), lr=1e-3)
x = torch.randn(2048, 512)
result = {{}}
for name, step in (("conv4 episode", lambda: torch.nn.functional.cross_entropy(
                        model(support, torch.arange(way), query_images, way), labels)),
                   ("IPN-sized MLP", lambda: mlp(x).tanh().pow(2).mean())):
    opt = optimizer if name == "conv4 episode" else mlp_optimizer
    losses = []
    for warm in range(2):
        loss = step(); opt.zero_grad(); loss.backward(); opt.step()
    start = time.perf_counter()
    for _ in range({STEPS}):
        loss = step(); opt.zero_grad(); loss.backward(); opt.step()
        losses.append(loss.item())
    result[name] = {{"ms": 1000 * (time.perf_counter() - start) / {STEPS}, "losses": losses}}
result["capability"] = torch.backends.cpu.get_cpu_capability()
print(json.dumps(result))
"""


def run(env: dict[str, str]) -> dict:
    output = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def main() -> None:
    base = {key: value for key, value in os.environ.items() if key not in AVX2_PATHS}
    native, pinned = run(base), run({**base, **kernel_path_environment({})})
    print(f"kernel paths, {STEPS} steps each, one thread: native = {native['capability']}, pinned = "
          f"{pinned['capability']}")
    for name in ("conv4 episode", "IPN-sized MLP"):
        same = native[name]["losses"] == pinned[name]["losses"]
        print(f"  {name:14s} native {native[name]['ms']:7.1f} ms/step   pinned {pinned[name]['ms']:7.1f} ms/step   "
              f"ratio {pinned[name]['ms'] / native[name]['ms']:.2f}   same losses: {same}")


if __name__ == "__main__":
    main()
