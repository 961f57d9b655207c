"""Process memory (anonymous RSS) of this process, measured around a compile: what a compiled model costs.

It is not device memory (a GPU's or an NPU's own memory is not in it).
"""

from __future__ import annotations

import ctypes
import gc
import os

MEMORY_MEANING = (
    "process memory added (anonymous RSS, MiB) by compiling a model and its first inference; not "
    "device memory, nor the blob files OpenVINO maps from its cache (page cache)"
)


def rss_mb() -> float | None:
    """Resident anonymous memory of this process in MiB (Linux), for the memory a compiled model
    costs. Files mapped into the process are left out: a model imported from the blob cache maps
    its blob file, whose pages are the kernel's page cache (shared, dropped under pressure), and
    counting them charged each imported MiniLM shape ~85 MiB more than the same shape compiled
    (bf16: 40 shapes 4.9 GiB against 1.5 GiB, so a second `serve` start overran its 4 GiB
    budget), while its anonymous memory is the same either way. Total RSS where the kernel does
    not report ``RssAnon``."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
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

