"""The one error every model source raises, and the lazy door to ``transformers``."""

from __future__ import annotations

import os
from types import ModuleType


class ModelError(ValueError):
    """A model source that cannot be used, with a message a user can act on."""


def transformers_module() -> ModuleType:
    """``transformers``, imported on first use only (it costs about a second; ``plan`` never
    needs it), without its "PyTorch was not found" advice: shapedemo needs no torch."""
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    import transformers

    return transformers


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, else its class name: for one-line errors.

    >>> first_line(ValueError("header too large\\nmore detail"))
    'header too large'
    >>> first_line(OSError())
    'OSError'
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
