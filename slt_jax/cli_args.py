"""Options that several `slt-jax` commands share, one adder each.

Every adder fixes an option's name, type, destination and default, so that `--set` or `--split`
parses the same way in every command; the help text is a parameter where commands word it for
their own case. Standard library, slt_jax.config and the pipelines' designs only, so the command
modules stay light to import.
"""

from __future__ import annotations

import argparse
import os

from slt_jax.config import DEFAULT_RECIPE, RECIPES
from slt_jax.pipelines.designs import DEFAULT_SEEDS, PAPER_CONFIGS

ALL_SPLITS = ("train", "val", "test")
SCORED_SPLITS = ("val", "test")  # the splits a sweep or an ablation scores


class ExampleFormatter(argparse.HelpFormatter):
    """Wraps a description as usual, but keeps an "example:" epilog's command lines as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("example"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def examples(*commands: str) -> dict:
    """`add_parser` keywords that end a sub-command's --help with these example command lines."""
    heading = "example:" if len(commands) == 1 else "examples:"
    return {"epilog": "\n".join([heading, *(f"  {c}" for c in commands)]), "formatter_class": ExampleFormatter}


def add_data(p: argparse.ArgumentParser, help: str | None = None, required: bool = True, **kwargs) -> None:
    """`--data`: a corpus in the converted layout; optional where a trained run knows its own."""
    if help is None:
        help = "corpus folder" if required else "corpus folder (default: the one the run was trained on)"
    p.add_argument("--data", required=required, help=help, **kwargs)


def add_workdir(p: argparse.ArgumentParser, help: str = "a workdir written by `slt-jax train`") -> None:
    """`--workdir` (required): a run's folder, or where a sweep's runs go."""
    p.add_argument("--workdir", required=True, help=help)


def add_split(p: argparse.ArgumentParser, verb: str, choices: tuple[str, ...] = ALL_SPLITS) -> None:
    """`--split`, default test: the split to `verb` (translate, score, analyse)."""
    p.add_argument("--split", default="test", choices=choices, help=f"split to {verb} (default: %(default)s)")


def add_configs(p: argparse.ArgumentParser, default: str = ",".join(PAPER_CONFIGS), what: str = "presets") -> None:
    """`--configs`: comma-separated presets, the paper's four by default."""
    p.add_argument("--configs", default=default, help=f"comma-separated {what} (default: %(default)s)")


def add_seeds(p: argparse.ArgumentParser, default: int = DEFAULT_SEEDS, per: str = "config") -> None:
    """`--seeds`: how many seeds per config (or per variant) to train."""
    p.add_argument("--seeds", type=int, default=default, help=f"seeds per {per} (default: %(default)s)")


def add_seed(p: argparse.ArgumentParser, default: int | None = 0,
             help: str = "random seed (default: %(default)s)") -> None:
    """`--seed`: one random seed (None: leave the config's)."""
    p.add_argument("--seed", type=int, default=default, help=help)


def add_epochs(p: argparse.ArgumentParser) -> None:
    """`--epochs`: a cap on training epochs; 0 or absent: none (`config.run_config`)."""
    p.add_argument("--epochs", type=int, default=None,
                   help="cap on training epochs; 0 or absent: no cap, early stopping ends training (within the "
                   "config's train.max_epochs: 1000 for the paper's presets)")


def add_overrides(p: argparse.ArgumentParser,
                  help: str = "override a config field, e.g. --set model.d_model=32 --set train.patience=10") -> None:
    """`--set SECTION.FIELD=VALUE`, repeatable, into `args.overrides` (for `config.get_config`)."""
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE", help=help)


def add_workers(p: argparse.ArgumentParser, what: str = "parallel processes") -> None:
    """`--workers`: processes in a pool, one per CPU by default."""
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help=f"{what} (default: the number of CPUs, %(default)s)")


def add_quiet(p: argparse.ArgumentParser, bars: str = "bars") -> None:
    """`--quiet`: no progress bars (`bars="bar"` where a command shows only one)."""
    p.add_argument("--quiet", action="store_true", help=f"no progress {bars}")


def add_recipe(p: argparse.ArgumentParser, default: str = DEFAULT_RECIPE, why: str = "") -> None:
    """`--recipe`: a named training recipe (config.RECIPES), applied before `--set` overrides."""
    p.add_argument("--recipe", default=default, choices=sorted(RECIPES),
                   help="training recipe: authors (Adam at 1e-3, constant, patience 30 on validation accuracy, as "
                   "their code), fast (Adam at 3e-3 after a warm-up, clipped gradients) or converge (fast, patience "
                   f"on validation loss); docs/recipes.md (default: %(default)s{why})")


def add_decoding(p: argparse.ArgumentParser) -> None:
    """`--decode`, `--beam`, `--length-penalty`: how a trained run's translations are decoded."""
    p.add_argument("--decode", default="greedy", choices=("greedy", "beam"),
                   help="decoding method, either stopping at the run's length bound (default: %(default)s)")
    p.add_argument("--beam", type=int, default=32, help="beam width (default: %(default)s, the authors')")
    p.add_argument("--length-penalty", type=float, default=0.0,
                   help="beam: rank finished hypotheses by score / length**penalty (default: %(default)s, the authors')")
