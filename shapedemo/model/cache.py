"""The IR cache: built models saved under ``cache/models/<key>`` so a second start skips the
build, written so that a kill at any moment leaves either no entry or a complete one.

A build is saved into ``models/.partial-<key>-<pid>-<random>`` and renamed to ``models/<key>``
when complete (one rename in one folder: atomic). A cached IR is never overwritten in place
(OpenVINO maps the weights of a model it read; rewriting them under it can crash the process).
Any number of processes may share the folder: each writes its own partial folder, the first
rename wins, and a loser reads the winner's entry.

A cache that cannot be written (a full disk, a read-only folder, a file in the way) is not an
error: one ``shapedemo: warning:`` line on stderr, and the run goes on without caching
(:func:`usable_cache_dir`, :func:`cached_build`).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from shapedemo.model.errors import ModelError, first_line

PARTIAL = ".partial-"


def ensure_cache_dir(path: Path) -> Path:
    """Create ``path`` and check that files can be written in it; otherwise one
    :class:`ModelError` line naming the folder and ``SHAPEDEMO_CACHE``.

    >>> ensure_cache_dir(Path("/proc/no-cache-here"))
    Traceback (most recent call last):
    shapedemo.model.errors.ModelError: cannot use the cache folder /proc/no-cache-here (No such file or directory); set SHAPEDEMO_CACHE to a folder you can write to
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as exc:
        why = exc.strerror or first_line(exc)
        if isinstance(exc, (NotADirectoryError, FileExistsError)):
            why += ": a file is in the way"
        raise ModelError(
            f"cannot use the cache folder {path} ({why}); set SHAPEDEMO_CACHE to a folder you can write to"
        ) from exc
    return path


def cache_warning(message: str) -> None:
    """One ``shapedemo: warning:`` line on stderr: a cache that cannot be used, run without it."""
    print(f"shapedemo: warning: {' '.join(message.split())}", file=sys.stderr, flush=True)


def usable_cache_dir(path: Path) -> Path | None:
    """``path`` created and writable, else None after one warning line (the run goes on
    without this cache).

    >>> usable_cache_dir(Path("/proc/no-cache-here")) is None
    True
    """
    try:
        return ensure_cache_dir(path)
    except ModelError as exc:
        cache_warning(f"{exc}; running without it")
        return None


def cached_build(
    cache: Path | None,
    key: str,
    build: Callable[[], tuple[Any, Any | None]],
) -> tuple[Any, Any | None, bool]:
    """The dynamic and packed IRs for ``key``: read from the cache, else built and saved.
    Returns ``(model, packed, from_cache)``. An entry that cannot be read is built again."""
    import openvino as ov

    if cache is None:
        return (*build(), False)
    models = cache / "models"
    folder = models / key
    if (folder / "model.xml").is_file():
        try:
            core = ov.Core()
            model = core.read_model(folder / "model.xml")
            packed = core.read_model(folder / "packed.xml") if (folder / "packed.xml").exists() else None
            return model, packed, True
        except Exception:  # a damaged entry (disk full, an older non-atomic write): build again
            _discard(folder)
    model, packed = build()
    if usable_cache_dir(models) is None:
        return model, packed, False
    _clear_abandoned(models, key)
    partial: Path | None = None
    try:
        partial = Path(tempfile.mkdtemp(prefix=f"{PARTIAL}{key}-{os.getpid()}-", dir=models))
        # f32 weights on disk: the default fp16 compression would change the outputs we compare
        ov.save_model(model, partial / "model.xml", compress_to_fp16=False)
        if packed is not None:
            ov.save_model(packed, partial / "packed.xml", compress_to_fp16=False)
        _publish(partial, folder)
    except Exception as exc:  # a full disk ("basic_ios::clear: iostream error"), a folder gone read-only
        cache_warning(f"cannot save the built model in the cache folder {models} ({_why(exc)}); running without caching it")
    finally:
        if partial is not None and partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    # Hand on the model read back from the IR, as every later process reads it: OpenVINO's blob
    # key is a hash of the model, and the graph built from opsets hashes differently from the
    # same graph read back, so a blob compiled from the built one would never be hit again.
    try:
        core = ov.Core()
        model = core.read_model(folder / "model.xml")
        packed = core.read_model(folder / "packed.xml") if (folder / "packed.xml").exists() else None
    except Exception:  # published, then pruned or damaged by another process: the built one runs
        pass
    return model, packed, False


def _why(exc: BaseException) -> str:
    """The reason in one line: an OSError's strerror, else the last line of OpenVINO's message."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def _publish(partial: Path, folder: Path) -> None:
    """Rename the complete ``partial`` folder to ``folder``; another process that published
    the same key first wins (same key, same content)."""
    try:
        os.replace(partial, folder)
    except OSError:
        if not (folder / "model.xml").is_file():
            raise


def _discard(folder: Path) -> None:
    """Move a damaged entry out of the way (rename first: atomic), then delete it."""
    trash = folder.with_name(f"{PARTIAL}{folder.name}-{os.getpid()}-damaged")
    try:
        os.replace(folder, trash)
    except OSError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def _clear_abandoned(models: Path, key: str) -> None:
    """Delete partial builds of ``key`` left by processes that no longer run (killed mid-write)."""
    if not models.is_dir():
        return
    for path in models.glob(f"{PARTIAL}{key}-*"):
        pid = path.name[len(PARTIAL) + len(key) + 1 :].partition("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
