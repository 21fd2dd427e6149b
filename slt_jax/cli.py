"""The `slt-jax` command line.

Each module in COMMAND_MODULES defines `add_commands(subparsers)`, which adds its sub-commands
with `set_defaults(run=handler)`. Those modules stay light to import: heavy imports (jax,
mediapipe) happen inside the handlers, so `slt-jax --help` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys

COMMAND_MODULES = (
    "slt_jax.commands",
    "slt_jax.pipelines.commands",
    "slt_jax.analysis.commands",
    "slt_jax.extract.commands",
    "slt_jax.prepare.commands",
    "slt_jax.synth.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slt-jax",
        description="Train, decode and look inside pose-to-gloss/text Transformers "
        "(SignAttention in JAX/Flax).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {importlib.metadata.version('slt-jax')}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from slt_jax.compile_cache import cache_compiled_programs
    from slt_jax.hostmem import reuse_freed_memory
    from slt_jax.layout import LayoutError

    reuse_freed_memory()  # before any command starts JAX's CPU client
    cache_compiled_programs()

    try:
        return args.run(args) or 0
    except (LayoutError, FloatingPointError) as e:  # bad input (2), or a run that diverged (1)
        print(f"slt-jax: error: {e}", file=sys.stderr)
        return 2 if isinstance(e, LayoutError) else 1


if __name__ == "__main__":
    sys.exit(main())
