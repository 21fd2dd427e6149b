"""What the pipelines train: the paper's and the main job's configs, seeds, the study's cells and
the ablation's feature variants, with the config each one stands for.

Pinned by documented figures: the main job's configs (docs/reproduce.md) and the study's cells,
masks and recipe (docs/findings.md); changing one means measuring those figures again.
Standard library and slt_jax.config only, so that the command line reads these without jax.
"""

from __future__ import annotations

import dataclasses

from slt_jax.config import VARIANTS, Config, DataConfig, run_config

PAPER_CONFIGS = ("gloss16", "gloss32", "gloss64", "text16")
# The main job's: the paper's four and, second so that the first report shows the contrast,
# gloss16 on the normalised features (the project's own finding, not one of the paper's claims).
MAIN_JOB_CONFIGS = ("gloss16", "gloss16-normalised", "gloss32", "gloss64", "text16")
# Seeds per config of sweep, ablate and study: the fewest whose spread gives a useful 95% interval
# (reproduce trains MAIN_JOB_SEEDS, to keep the main job under an hour on 2 cores).
DEFAULT_SEEDS = 3
MAIN_JOB_SEEDS = 2


@dataclasses.dataclass(frozen=True)
class Cell:
    """One trained condition of the study: a corpus, a preset and what it changes from the paper's setting."""

    name: str
    corpus: str  # a synthetic preset (slt_jax.synth.presets) or a corpus folder
    config: str  # a model preset (slt_jax.config.PRESETS)
    factor: str  # what differs from the paper's setting
    overrides: tuple[str, ...] = ()
    epochs: int | None = None  # cap; None: early stopping alone


# In the order they run: the controls first, then one factor at a time on the paper's corpus.
LONGER = ("train.patience=100",)
NORMALISED = VARIANTS["normalised"]
# The study's dropout masks: docs/findings.md's figures were measured with the keyed hash (and
# STUDY_RECIPE), so the study keeps both where every other command trains `converge` with Philox.
STUDY_MASKS = ("model.dropout_rng=hash",)
SHUFFLED = ("data.shuffle_frames=true",)
CELLS = (
    Cell("novel-gloss16", "novel", "gloss16", "corpus: new sentences (model and recipe unchanged)"),
    Cell("novel-gloss16-patience100", "novel", "gloss16", "corpus: new sentences; patience 100, 110 epochs",
         LONGER, epochs=110),
    Cell("novel-gloss16-normalised-patience100", "novel", "gloss16",
         "positive control: new sentences; patience 100; normalised features", LONGER + NORMALISED),
    Cell("novel-gloss16-normalised-patience100-shuffled", "novel", "gloss16",
         "negative control: the positive control with its frames shuffled", LONGER + NORMALISED + SHUFFLED),
    Cell("novel-gloss64-normalised-patience100", "novel", "gloss64", "positive control at hidden size 64",
         LONGER + NORMALISED),
    Cell("novel-text16-normalised-patience100", "novel", "text16", "positive control, target: text, 150 epochs",
         LONGER + NORMALISED, epochs=150),
    Cell("small-gloss16", "small", "gloss16", "none: the paper's setting"),
    Cell("small-gloss16-1epoch", "small", "gloss16", "training length: 1 epoch (nearly untrained)", epochs=1),
    Cell("small-gloss16-50epochs", "small", "gloss16", "training length: 50 epochs", epochs=50),
    Cell("small-gloss64", "small", "gloss64", "hidden size 64"),
    Cell("small-text16", "small", "text16", "target: text"),
    Cell("small-gloss16-normalised", "small", "gloss16", "features: normalised", NORMALISED),
    Cell("small-gloss32", "small", "gloss32", "hidden size 32"),
)
CELLS_BY_NAME = {c.name: c for c in CELLS}


def cell_config(cell: Cell, recipe: str | None, seed: int) -> Config:
    """A cell's config: the main job's (`config.run_config`) with the study's masks and the cell's changes."""
    return run_config(cell.config, recipe, seed, cell.epochs, STUDY_MASKS + cell.overrides)


VARIANT_OPTIONS = {
    "raw": {},
    "body": {"body_norm": "sequence"},
    "body_frame": {"body_norm": "frame"},
    "hands": {"hand_norm": True},
    "velocity": {"velocity": True},
    "presence": {"hand_presence": True},
    "z": {"use_3d": True},
}
VARIANT_HELP = {  # what each option feeds the model (docs/features.md has the formulas)
    "raw": "the authors' features: body and hand points, x and y as MediaPipe gives them",
    "body": "every point centred on the shoulders and measured in shoulder widths, averaged over the clip",
    "body_frame": "the same, with each frame's own shoulders",
    "hands": "adds each hand's points relative to its wrist, in palm sizes",
    "velocity": "adds every value's change from the previous frame",
    "presence": "adds one flag per hand: 1 where it was detected",
    "z": "adds MediaPipe's depth, z, to every point",
}
FEATURE_FIELDS = ("use_3d", "body_norm", "hand_norm", "velocity", "hand_presence")


def variant_config(base: Config, variant: str) -> Config:
    """`base` with an ablation variant's feature options, the other feature fields as the authors'.

    Args:
      base: the config every variant shares (model, training, the rest of the data fields).
      variant: options of VARIANT_OPTIONS joined by '+', e.g. "body+hands".

    Returns:
      The variant's config, named "<base name>-<variant>".
    """
    options = {f: getattr(DataConfig(), f) for f in FEATURE_FIELDS}
    for name in variant.split("+"):
        if name not in VARIANT_OPTIONS:
            raise ValueError(f"unknown feature option {name!r} in variant {variant!r}; "
                             f"choose from {', '.join(VARIANT_OPTIONS)}")
        options |= VARIANT_OPTIONS[name]
    return base.replace(name=f"{base.name}-{variant}", data=dataclasses.replace(base.data, **options))
