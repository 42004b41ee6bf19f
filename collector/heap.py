"""Tunes glibc's malloc for the query path: freed memory is kept for reuse, not handed back to the kernel.

A PromQL query allocates and frees numpy arrays of a few hundred KB to tens of MB many times over. With
glibc's defaults, each free of such an array can trim the heap top (above 128 KiB free) or unmap it, and
the next allocation faults every page back in, zeroed: about 600 page faults and 1.5-2 ms of a 12 ms
range query (bench/promql_range.py, sum_rate_1h), more than the rate() arithmetic itself. Keeping up to
`TRIM_THRESHOLD` free at the top of each arena, and serving allocations up to `MMAP_THRESHOLD` from the
arenas, makes those allocations reuse memory already mapped. The cost: each malloc arena (about one
per thread that allocates) may hold that much freed memory instead of returning it.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Bytes: free memory kept at an arena's top; allocations above MMAP_THRESHOLD get their own mapping
# (32 MiB is glibc's largest on 64-bit, where arenas other than the main one are 64 MiB heaps).
TRIM_THRESHOLD = 64 << 20
MMAP_THRESHOLD = 32 << 20


def keep_freed_memory() -> bool:
    """Apply the settings to this process' malloc; False where malloc is not glibc's (nothing changes)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
