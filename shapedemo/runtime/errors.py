"""The runtime's errors: what an engine cannot run, and a device's refusal, each in one line."""

from __future__ import annotations

import re


class EngineError(ValueError):
    """A plan this engine cannot run (e.g. packing on a model without a packed variant)."""


class ShapesUnsupported(EngineError):
    """The device (or static-only mode) refuses dynamic or bounded shapes; ``reason`` is the
    device's own error in one line."""

    def __init__(self, device: str, kind: str, reason: str) -> None:
        super().__init__(f"{device} cannot compile {kind} shapes: {reason}")
        self.device, self.kind, self.reason = device, kind, reason


def one_line(exc: BaseException | str) -> str:
    """The line of an OpenVINO error that says why (its messages start with source locations).

    >>> one_line("Exception from src/core.cpp:117:\\nException from src/plugin.cpp:54:\\nNo GPU found\\n")
    'No GPU found'
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith("Exception from ")]
    text = (useful or lines or [type(exc).__name__])[-1]
    return re.sub(r"^Exception from \S+:\d+:\s*", "", text)

