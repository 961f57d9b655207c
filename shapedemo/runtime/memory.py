"""Process memory (RSS) of this process, measured around a compile: what a compiled model costs.

It is not device memory (a GPU's or an NPU's own memory is not in it).
"""

from __future__ import annotations

import ctypes
import gc
import os

MEMORY_MEANING = "process memory added (RSS, MiB) by compiling a model and its first inference; not device memory"


def rss_mb() -> float | None:
    """Resident memory of this process in MiB (Linux), for the memory a compiled model costs."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


try:
    _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
except (OSError, AttributeError):  # not glibc
    _malloc_trim = None


def trimmed_rss() -> float | None:
    """RSS after collecting garbage (a released model freed now, not in the middle of the next
    measurement) and handing freed heap back to the OS, so memory freed by an earlier compile is
    not reused (and hidden) by the next one."""
    gc.collect()
    if _malloc_trim is not None:
        _malloc_trim(0)
    return rss_mb()

