"""Attention beside attribution over seeds: the tables of docs/findings.md's "What does the model
use?" from `slt-jax analyze` outputs (analysis.json's `attribution`), mean and 95% interval over
seeds (Student's t) per cell.

    python experiments/attribution_table.py CELL=DIR [CELL=DIR ...] [--out table.md]

DIR holds seed_<k>/analysis.json, e.g. a study's analysis/<cell> (`slt-jax study`), or any folder
of `slt-jax analyze --out` results, one per seed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from slt_jax.analysis.compare import LENSES
from slt_jax.analysis.intervals import format_interval, seed_interval
from slt_jax.layout import write_text


def summary(values) -> str:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return format_interval(float(np.mean(values)), seed_interval(values)) if values else "–"


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def tables(cells: dict[str, list[dict]]) -> str:
    """Per cell and lens: own-sign share against an equally long other sign, alignment accuracy,
    agreement with attention, the hands' share, and the drop with the top 10% frames deleted /
    only kept; then the interventions and the chance levels."""
    lens_rows, intervention_rows = [], []
    for cell, seeds in cells.items():
        a = [s["attribution"] for s in seeds]
        for lens in LENSES:
            get = lambda *path: [_path(x["lenses"][lens], path) for x in a]
            hands = [None if x["lenses"][lens]["parts"] is None else
                     x["lenses"][lens]["parts"]["left_hand"] + x["lenses"][lens]["parts"]["right_hand"] for x in a]
            lens_rows.append([cell, lens, summary(get("own_sign")), summary(get("other_sign")),
                              summary(get("alignment_accuracy")), summary(get("agreement_with_attention")),
                              summary(hands), summary(get("deletion", "log_prob_drop_top_deleted", 0)),
                              summary(get("deletion", "log_prob_drop_top_kept", 0))])
        best = [x["head_knockout"]["log_prob_drop"][x["head_knockout"]["best_head"]] for x in a]
        others = [np.mean([d for h, d in enumerate(x["head_knockout"]["log_prob_drop"])
                           if h != x["head_knockout"]["best_head"]]) for x in a]
        intervention_rows.append([
            cell, str(len(seeds)), summary([s["exact_match"] for s in seeds]),
            summary([x["chance"]["own_sign_uniform_over_frames"] for x in a]),
            summary([x["chance"]["own_sign_uniform_over_signing_frames"] for x in a]),
            summary([x["sign_deletion"]["own_drop"] for x in a]), summary([x["sign_deletion"]["control_drop"] for x in a]),
            summary(best), summary(others), summary([x["activation_patching"]["follows_donor"] for x in a]),
            summary([x["activation_patching"]["keeps_own"] for x in a])])
    return "\n\n".join([
        markdown(["cell", "lens", "own sign", "equally long other sign", "alignment acc.", "agreement with attention",
                  "hands' share", "drop, top 10% deleted", "drop, only top 10% kept"], lens_rows),
        markdown(["cell", "seeds", "exact match", "own sign: uniform over frames", "uniform over signing frames",
                  "sign deleted: drop", "equally long other sign deleted: drop", "best head knocked out: drop",
                  "other heads: drop", "patched sign: follows donor", "keeps own"], intervention_rows)]) + "\n"


def _path(x, path):
    for p in path:
        x = None if x is None else x[p]
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cells", nargs="+", metavar="CELL=DIR")
    parser.add_argument("--out", type=Path, help="write the tables there as well")
    args = parser.parse_args()
    cells = {}
    for item in args.cells:
        name, folder = item.split("=", 1)
        cells[name] = [json.loads(p.read_text()) for p in sorted(Path(folder).glob("seed_*/analysis.json"))]
    text = tables(cells)
    print(text)
    if args.out:
        write_text(args.out, text)


if __name__ == "__main__":
    main()
