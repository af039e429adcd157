"""Numbers the papers report, with their source, in one place: the papers (arXiv 1904.02239, 2102.02038) and the
comments of the official hyperbolic repository's few-shot scripts (``examples/fewshot/configs/*.sh``).

Only numbers read from a public source are here; where none could be read (IPN's tables), the notebooks
say "not available offline" instead of a number.
"""

from __future__ import annotations

FEWSHOT_SOURCE = "official hyperbolic configs' comments (hyperbolic); Snell et al. as commonly cited (Euclidean)"

#: (dataset, backbone, geometry, shot) → 5-way test accuracy in %, as the source prints it. The hyperbolic
#: entries are the reported accuracies of the eight official configs (:mod:`protolab.fewshot.configs`).
FEWSHOT_ACCURACY: dict[tuple[str, str, str, int], str] = {
    ("miniimagenet", "conv4", "hyperbolic", 1): "54.43 ± 0.20", ("miniimagenet", "conv4", "hyperbolic", 5): "72.69 ± 0.14",
    ("miniimagenet", "resnet18", "hyperbolic", 1): "59.47 ± 0.20", ("miniimagenet", "resnet18", "hyperbolic", 5): "76.84 ± 0.14",
    ("miniimagenet", "resnet12", "hyperbolic", 1): "61.60 ± 0.20", ("miniimagenet", "resnet12", "hyperbolic", 5): "78.19 ± 0.14",
    ("cub", "conv4", "hyperbolic", 1): "64.02 ± 0.20", ("cub", "conv4", "hyperbolic", 5): "82.53 ± 0.14",
    ("miniimagenet", "conv4", "euclidean", 1): "49.42", ("miniimagenet", "conv4", "euclidean", 5): "68.20",
}

#: shot → the paper's hyperbolic-minus-Euclidean gain where both numbers exist (MiniImageNet, Conv4).
FEWSHOT_GAIN: dict[int, str] = {1: "MiniImageNet Conv4: 54.43 vs 49.42 (+5.01 points)",
                                5: "MiniImageNet Conv4: 72.69 vs 68.20 (+4.49 points)"}

#: the paper's gain at 1-shot against 5-shot (same source).
FEWSHOT_GAIN_TREND = "+5.01 vs +4.49 points (MiniImageNet Conv4)"
