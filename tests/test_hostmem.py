"""`reuse_freed_memory` is opt-in: importing the package leaves glibc malloc as it was."""

from __future__ import annotations

import ctypes.util
import subprocess
import sys

import pytest

# In a fresh interpreter: does a 64 MiB malloc get its own mmap (glibc's default above 32 MiB at
# most), as mallinfo2's count of mmapped bytes shows? `reuse_freed_memory` sets M_MMAP_MAX=0.
PROBE = """
import ctypes, ctypes.util
{setup}
libc = ctypes.CDLL(ctypes.util.find_library("c"))
class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype = Mallinfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
before = libc.mallinfo2().hblkhd
block = libc.malloc(64 << 20)
after = libc.mallinfo2().hblkhd
libc.free(block)
print(after - before >= 64 << 20)
"""


def _has_mallinfo2() -> bool:
    name = ctypes.util.find_library("c")
    try:
        return bool(name) and hasattr(ctypes.CDLL(name), "mallinfo2")
    except OSError:
        return False


@pytest.mark.skipif(not _has_mallinfo2(), reason="needs glibc >= 2.33 (mallinfo2)")
@pytest.mark.parametrize(
    "setup, mmapped",
    [
        ("import slt_jax", True),
        ("import slt_jax, slt_jax.cli", True),
        ("import slt_jax; assert slt_jax.reuse_freed_memory()", False),
    ],
)
def test_only_an_explicit_call_changes_malloc(setup, mmapped):
    code = PROBE.format(setup=setup)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(mmapped)
