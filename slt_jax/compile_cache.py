"""Keep XLA's compiled programs on disk, so a command run again skips compilation.

XLA:CPU takes 10-20 s to compile one training step of the paper's model (more with Philox
masks: their ten rounds are unrolled into every masked op), and a run compiles one per length
bucket, the evaluation step and the decoder too. JAX's persistent compilation cache stores each
compiled program under a key of its HLO, the compile options and the JAX version; a later
process that compiles the same program (a resumed run, `evaluate` or `translate` of a trained
config, the second seed's `analyze`) loads it instead. Results are unchanged: it is the same
executable.

Like `reuse_freed_memory`, the setting is process-wide and opt-in: the `slt-jax` command turns it
on; a program that uses the library directly calls `cache_compiled_programs()` first thing.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

CACHE_ENV = "SLT_JAX_COMPILE_CACHE"  # a folder, or empty to switch the cache off
MAX_BYTES = 2 * 2**30  # least recently used programs are dropped beyond this
MIN_COMPILE_S = 1.0  # programs that compile faster are not worth a file


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "slt-jax" / "xla"


def cache_compiled_programs() -> Path | None:
    """Points JAX's persistent compilation cache at $SLT_JAX_COMPILE_CACHE (default
    ~/.cache/slt-jax/xla) and returns that folder; None when the variable is set empty."""
    setting = os.environ.get(CACHE_ENV)
    if setting == "":
        return None
    directory = Path(setting) if setting else default_cache_dir()
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_S)
    return directory
