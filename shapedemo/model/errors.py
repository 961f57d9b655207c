"""The one error every model source raises: a message a user can act on."""

from __future__ import annotations


class ModelError(ValueError):
    """A model source that cannot be used, with a message a user can act on."""
