"""Choose glyph-zsl's attributes on seen classes only (issue 26, item 4): does the stand-in offer the correspondence
between attribute space and visual space that IPN exploits?

Procedure, fixed before any result was seen
-------------------------------------------
- Knob: ``position_attributes`` of :func:`~protolab.data.glyph_zsl.build_glyph_zsl` — whether the attributes
  say where a letter's marks sit (above, below, attached below, attached above right; Unicode's canonical
  combining class), on top of the identity attributes (script, case, base letter, marks). Both settings share
  the classes, the splits and the features (the feature CNN never sees attributes).
- Measure: :func:`~protolab.zsl.correspondence.seen_class_correspondence` on the **seen** classes' trainval
  features (no unseen class, no test image): the share of classes whose nearest class by visual class mean is
  one of their nearest by attributes (ties included), nearest-class agreement at k = 1 and 5, linear CKA.
- Choice rule: the setting with the larger tie-inclusive nearest-class share; on a tie, without positions.
  The chosen value becomes ``build_glyph_zsl``'s default by hand.

Output: ``lib/protolab/data/calibration/glyph_zsl.csv`` (one row per setting), also printed. About a minute on
one core (the dataset is built once per setting).
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from protolab.data.glyph_zsl import load_glyph_zsl
from protolab.zsl.correspondence import seen_class_correspondence

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "lib" / "protolab" / "data" / "calibration" / "glyph_zsl.csv"
SETTINGS = (False, True)


def main() -> None:
    rows = []
    for positions in SETTINGS:
        start = time.perf_counter()
        measured = seen_class_correspondence(load_glyph_zsl(seed=0, position_attributes=positions))
        rows.append({"position_attributes": positions, **{k: round(v, 4) for k, v in measured.items()},
                     "seconds": round(time.perf_counter() - start, 1)})
    table = pd.DataFrame(rows)
    table["chosen"] = table.index == table.nearest_tied.idxmax()  # first (no positions) on a tie
    table["rule"] = "largest seen-class share of visual-nearest among attribute-nearest; tie: without positions"
    TABLE.write_text(table.to_csv(index=False))
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
