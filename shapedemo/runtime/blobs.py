"""The compiled-blob cache on disk: one folder per device and precision, pruned to its budget.

OpenVINO writes a blob per compiled model under ``CACHE_DIR`` and imports it on the next compile
of the same model (``LOADED_FROM_CACHE``). A blob holds the model's weights, so the folder is
pruned, least recently used first, to ``SHAPEDEMO_BLOB_CACHE_MB``.

Processes share the folder: one may import (and, finding it incomplete, delete) a blob another
is still writing, which made the writer's compile fail ("cannot set permissions: No such file
or directory [...blob]"). :func:`compile_cached` retries such a failure once, then compiles
without the cache (a full or read-only disk too): a cache problem never fails a compile.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, str(default)))
    except ValueError:
        return default


def blob_budget_mb() -> int:
    """Disk budget of the compiled-blob cache: ``$SHAPEDEMO_BLOB_CACHE_MB`` (0 turns it off).

    A blob holds the model's weights (about 90 MB per compiled shape of MiniLM), so the cache
    is pruned, oldest first, to this size when an engine starts and after every compile. The
    default holds the whole set of a default ``serve`` on MiniLM (40 shapes: 5 buckets x 4 batch
    sizes, plain and packed, about 3.4 GB), so its second start imports every one.
    """
    return _env_int("SHAPEDEMO_BLOB_CACHE_MB", 4096)



def blob_folder(device: str, precision: str) -> str:
    """The blob folder of a device and precision setting (the CPU's keeps its older name).

    >>> blob_folder("CPU", "f32"), blob_folder("GPU.0", "auto"), blob_folder("AUTO:GPU,CPU", "bf16")
    ('f32', 'auto-GPU.0', 'bf16-AUTO_GPU_CPU')
    """
    return precision if device == "CPU" else f"{precision}-{re.sub(r'[^A-Za-z0-9.]+', '_', device)}"


def prune_blobs(folder: Path, *, budget_mb: float) -> list[Path]:
    """Delete the least recently used ``*.blob`` files below ``folder`` until the rest fit
    ``budget_mb``; returns what was deleted."""
    if not folder.is_dir():
        return []
    blobs = []
    for blob in folder.rglob("*.blob"):
        try:
            blobs.append((blob.stat().st_mtime, blob.stat().st_size, blob))
        except OSError:  # pruned by another engine meanwhile
            continue
    kept, removed = 0.0, []
    for _, size, blob in sorted(blobs, key=lambda b: b[0], reverse=True):
        if kept + size / 2**20 <= budget_mb:
            kept += size / 2**20
            continue
        try:
            blob.unlink()
            removed.append(blob)
        except OSError:
            pass
    return removed



_CACHE_TROUBLE = re.compile(r"filesystem|basic_ios|iostream|No space|Permission denied|Read-only|\.blob|cache", re.I)


def compile_cached(core: Any, model: Any, device: str, config: Mapping[str, Any]) -> tuple[Any, str | None]:
    """``core.compile_model`` with ``config``'s ``CACHE_DIR``; where the blob cache fails it
    (another process racing on a blob, a full or read-only disk), once more, then without the
    cache. Returns the compiled model and, where the cache had to be left out, why (one line).
    A failure that is not the cache's is raised as it is."""
    if "CACHE_DIR" not in config:
        return core.compile_model(model, device, dict(config)), None
    try:
        return core.compile_model(model, device, dict(config)), None
    except Exception as exc:
        if not _CACHE_TROUBLE.search(str(exc)):
            raise
        first = exc
    try:  # a race: the other process's blob is complete by now
        return core.compile_model(model, device, dict(config)), None
    except Exception:
        pass
    plain = {k: v for k, v in config.items() if k != "CACHE_DIR"}
    lines = [line.strip() for line in str(first).splitlines() if line.strip() and not line.strip().startswith("Exception from ")]
    return core.compile_model(model, device, plain), (lines[-1] if lines else type(first).__name__)
