"""slt-jax: interpretable sign language translation in JAX/Flax.

Public names are imported lazily, so that jax-free modules (`slt_jax.layout`,
`slt_jax.extract`) can be used where jax is not installed. Importing the package changes no
process-wide setting; `reuse_freed_memory()` (`slt_jax.hostmem`) and `cache_compiled_programs()`
(`slt_jax.compile_cache`) are opt-ins that the `slt-jax` command makes for itself.
"""

import importlib

_EXPORTS = {
    "AttentionRecord": "slt_jax.analysis.record",
    "ModelConfig": "slt_jax.config",
    "TrainConfig": "slt_jax.config",
    "Transformer": "slt_jax.model",
    "cache_compiled_programs": "slt_jax.compile_cache",
    "extract_attention": "slt_jax.analysis.record",
    "load_run": "slt_jax.runs",
    "reuse_freed_memory": "slt_jax.hostmem",
    "run_with_cache": "slt_jax.analysis.record",
    "translate": "slt_jax.pipelines.translation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'slt_jax' has no attribute {name!r}")
