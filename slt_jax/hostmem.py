"""Keep freed host memory in the process, so XLA:CPU's per-call scratch is not faulted in anew.

XLA:CPU allocates an executable's temporaries with malloc from a worker thread at every call:
about 150 MB for a training step at the authors' shape. glibc serves a block that large outside
a worker thread's arena with a fresh mmap and unmaps it on free, so each step page-faults all of
it back in, zero-filled by the kernel: on the project's 2-core VM about a third of the CPU time
of a step (`docs/benchmarks.md`). With one arena, no mmap and no trimming, a freed block stays in
the heap and the next call reuses it.

The setting is process-wide, so nothing applies it at import: the `slt-jax` command calls
`reuse_freed_memory()` before it starts work, and so do the benchmarks and the experiment
scripts. A program that uses the library directly opts in the same way, first thing:

    import slt_jax

    slt_jax.reuse_freed_memory()  # before the first JAX computation
"""

from __future__ import annotations

import ctypes
import ctypes.util

# mallopt parameters, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
_SETTINGS = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1))


def reuse_freed_memory() -> bool:
    """Tunes glibc malloc to keep and reuse freed blocks (a no-op without glibc).

    Process-wide and opt-in: `import slt_jax` does not call it; the `slt-jax` command does.
    Takes full effect only before threads first allocate, i.e. before JAX starts its CPU
    client (its first computation), so call it early. The cost is that the process's resident
    memory stays at its peak instead of shrinking after large temporaries are freed.

    Returns:
      Whether glibc accepted every setting.
    """
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    return mallopt is not None and all(mallopt(param, value) == 1 for param, value in _SETTINGS)
