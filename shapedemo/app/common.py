"""What every tab of the page shares: the models it offers, and user errors as one-line toasts."""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import Iterator

import gradio as gr

from shapedemo.model import SYNTHETIC_SIZES, ModelError, TextError, default_spec
from shapedemo.planning.plan import PlanError
from shapedemo.runtime.errors import EngineError

log = logging.getLogger(__name__)


def model_choices() -> list[str]:
    return ["minilm"] + [f"synthetic:{s}" for s in SYNTHETIC_SIZES]


def custom_models_allowed() -> bool:
    """Any model id or path only where the server allows it: locally yes, on a Space only
    when ``SHAPEDEMO_ALLOW_CUSTOM_MODELS=1`` (downloads and disk belong to the host)."""
    flag = os.environ.get("SHAPEDEMO_ALLOW_CUSTOM_MODELS")
    if flag is not None:
        return flag not in ("", "0", "false", "no")
    return not os.environ.get("SPACE_ID")


def check_model(spec: str | None) -> str:
    """The model spec to run, refused where this server runs only its own models."""
    spec = (spec or "").strip() or default_spec()
    if spec not in model_choices() and spec != default_spec() and not custom_models_allowed():
        raise ModelError(f"this server runs only {', '.join(model_choices())}; run the app locally for {spec!r}")
    return spec


USER_ERRORS = (ModelError, TextError, PlanError, EngineError, ValueError)


def _line(exc: Exception, *, last: bool = False) -> str:
    """One line of an error message: the first (ours say it all there), or the last (OpenVINO's
    start with source locations and end with the reason)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[-1] if last else lines[0]) if lines else type(exc).__name__


@contextmanager
def errors_to_ui(what: str) -> Iterator[None]:
    """Bad input becomes a one-line ``gr.Error`` (a toast, never a traceback, one line in the
    log); anything else (say OpenVINO out of memory) too, with its traceback in the server log."""
    try:
        yield
    except gr.Error:
        raise
    except USER_ERRORS as exc:
        log.info("%s refused: %s", what, _line(exc))
        raise gr.Error(_line(exc), print_exception=False) from None
    except Exception as exc:
        log.exception("%s failed", what)
        raise gr.Error(f"{what} failed: {_line(exc, last=True)}", print_exception=False) from None
