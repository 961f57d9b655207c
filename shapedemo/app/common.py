"""What every tab of the page shares: the models it offers, and user errors as one-line toasts."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import gradio as gr

from shapedemo.model import SYNTHETIC_SIZES, ModelError, TextError, default_spec
from shapedemo.planning.plan import PlanError
from shapedemo.runtime.errors import EngineError

log = logging.getLogger(__name__)


def model_choices() -> list[str]:
    return ["minilm"] + [f"synthetic:{s}" for s in SYNTHETIC_SIZES]


def bound_beyond_loopback() -> bool:
    """Whether the page listens where others can reach it: ``GRADIO_SERVER_NAME`` (what
    ``launch_kwargs`` binds to) is not a loopback address (``0.0.0.0``, ``::``, a LAN address
    or a host name other than ``localhost``).

    >>> import os; os.environ.pop("GRADIO_SERVER_NAME", None); bound_beyond_loopback()
    False
    """
    import ipaddress

    name = (os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1").strip().strip("[]")
    if name == "localhost":
        return False
    try:
        return not ipaddress.ip_address(name).is_loopback
    except ValueError:  # a host name: others may resolve it to this machine
        return True


def custom_models_allowed() -> bool:
    """Any model id or path only where the server allows it: hosted (a Space, ``SPACE_ID``; or
    bound beyond loopback) only with ``SHAPEDEMO_ALLOW_CUSTOM_MODELS=1`` (downloads and disk
    belong to the host), else yes."""
    flag = os.environ.get("SHAPEDEMO_ALLOW_CUSTOM_MODELS")
    if flag is not None and flag.strip():
        return flag.strip().lower() not in ("0", "false", "no")
    return not (os.environ.get("SPACE_ID") or bound_beyond_loopback())


def check_model(spec: str | None) -> str:
    """The model spec to run, refused where this server runs only its own models."""
    spec = (spec or "").strip() or default_spec()
    if spec not in model_choices() and spec != default_spec() and not custom_models_allowed():
        # the same words whatever the spec names: a refusal never tells whether a path exists
        raise ModelError(f"this server runs only {', '.join(model_choices())}; run the app locally for other models")
    return spec


USER_ERRORS = (ModelError, TextError, PlanError, EngineError, ValueError)


def _line(exc: Exception, *, last: bool = False) -> str:
    """One line of an error message: the first (ours say it all there), or the last (OpenVINO's
    start with source locations and end with the reason)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[-1] if last else lines[0]) if lines else type(exc).__name__


class Cancelled(Exception):
    """The visitor cancelled the event (or left): raised at the run's next progress step, that
    is before its next compile or timed call, so it stops and releases what it pinned."""


class _StopAware:
    """A progress tracker that raises :class:`Cancelled` once ``stop`` is set."""

    def __init__(self, inner: Any, stop: threading.Event) -> None:
        self._inner, self._stop = inner, stop

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._stop.is_set():
            raise Cancelled("cancelled")
        return self._inner(*args, **kwargs) if self._inner is not None else None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def cancellable(handler: Callable[..., Any]) -> Callable[..., Any]:
    """``handler`` (sync, with a ``progress`` parameter) as an async event function that runs it
    in a worker thread: when Gradio cancels the event (``Job.cancel()``, a closed tab), the
    handler's next ``progress`` call raises :class:`Cancelled`, so a comparison, tune or traffic
    run stops before its next compile or timed call instead of running on unseen."""
    signature = inspect.signature(handler)

    async def event(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        stop = threading.Event()
        if "progress" in bound.arguments:
            bound.arguments["progress"] = _StopAware(bound.arguments["progress"], stop)
        try:
            return await asyncio.to_thread(handler, *bound.args, **bound.kwargs)
        except asyncio.CancelledError:
            stop.set()
            raise

    event.__signature__ = signature  # type: ignore[attr-defined]
    event.__name__, event.__doc__ = handler.__name__, handler.__doc__
    return event


@contextmanager
def errors_to_ui(what: str) -> Iterator[None]:
    """Bad input becomes a one-line ``gr.Error`` (a toast, never a traceback, one line in the
    log); anything else (say OpenVINO out of memory) too, with its traceback in the server log."""
    try:
        yield
    except gr.Error:
        raise
    except Cancelled:
        log.warning("%s cancelled: stopped before its next compile or timed call", what)
        raise
    except USER_ERRORS as exc:
        log.info("%s refused: %s", what, _line(exc))
        raise gr.Error(_line(exc), print_exception=False) from None
    except Exception as exc:
        log.exception("%s failed", what)
        raise gr.Error(f"{what} failed: {_line(exc, last=True)}", print_exception=False) from None
