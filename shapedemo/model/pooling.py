"""The sentence embedding as the model defines it: sentence-transformers' module files.

A sentence-transformers folder says how token states become one vector: ``modules.json`` lists
the modules (Transformer, Pooling, Normalize), ``1_Pooling/config.json`` names the pooling
(``pooling_mode_mean_tokens``, ``pooling_mode_cls_token``, ``pooling_mode_max_tokens``) and
``sentence_bert_config.json`` the ``max_seq_length`` texts are truncated to (256 for
all-MiniLM-L6-v2, under its 512 positions). A folder without these files (a plain BERT) gets
mean pooling and L2 normalisation.

>>> import numpy as np
>>> h = np.array([[3.0, 0.0], [1.0, 2.0]], dtype=np.float32)  # 2 tokens, 2 dims
>>> Pooling(mode="mean", normalize=False).pool(h).tolist()
[2.0, 1.0]
>>> Pooling(mode="max", normalize=False).pool(h).tolist()
[3.0, 2.0]
>>> Pooling(mode="cls", normalize=True).pool(h).tolist()
[1.0, 0.0]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shapedemo.model.errors import ModelError

#: pooling_mode_* key of 1_Pooling/config.json -> our mode name.
POOLING_KEYS = {
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
}
#: the sentence-transformers files read here; the hub download fetches them too.
SENTENCE_TRANSFORMERS_FILES = ("modules.json", "sentence_bert_config.json", "1_Pooling/config.json")
_UNCHANGING = ("Transformer", "Pooling", "Normalize")


@dataclass(frozen=True)
class Pooling:
    """How the states of one sequence's real tokens become its sentence embedding."""

    mode: str = "mean"
    normalize: bool = True

    def __post_init__(self) -> None:
        if self.mode not in POOLING_KEYS.values():
            raise ValueError(f"pooling mode {self.mode!r} is not one of mean, cls, max")

    def pool(self, hidden: np.ndarray) -> np.ndarray:
        """``hidden``: ``[n_tokens, dim]``, the real tokens of ONE sequence (no padding);
        returns its ``[dim]`` float32 sentence embedding."""
        h = np.asarray(hidden, dtype=np.float32)
        if h.ndim != 2 or h.shape[0] == 0:
            raise ValueError(f"pool takes [n_tokens >= 1, dim] states, got shape {h.shape}")
        if self.mode == "cls":
            out = h[0].copy()
        elif self.mode == "max":
            out = h.max(axis=0)
        else:
            out = h.mean(axis=0)
        if self.normalize:
            out = out / max(float(np.linalg.norm(out)), 1e-12)
        return out.astype(np.float32, copy=False)

    def pool_many(self, hiddens: list[np.ndarray]) -> np.ndarray:
        """:meth:`pool` of each ``[n_tokens, dim]`` array at once: ``[len(hiddens), dim]``
        float32, the same vectors up to float32 round-off, in about 60% of the time (one
        reduction per sequence; the division and normalisation done for all together).

        >>> h = np.array([[3.0, 0.0], [1.0, 2.0]], dtype=np.float32)
        >>> [[round(float(x), 4) for x in v] for v in Pooling().pool_many([h, h[:1]])]
        [[0.8944, 0.4472], [1.0, 0.0]]
        """
        if not hiddens:
            raise ValueError("pool_many takes at least one sequence")
        if any(h.ndim != 2 or h.shape[0] == 0 for h in hiddens):
            raise ValueError("pool_many takes [n_tokens >= 1, dim] states")
        if self.mode == "mean":
            return self.from_sums(np.stack([h.sum(axis=0, dtype=np.float32) for h in hiddens]), np.array([h.shape[0] for h in hiddens]))
        if self.mode == "cls":
            out = np.stack([h[0] for h in hiddens]).astype(np.float32)
        else:
            out = np.stack([h.max(axis=0) for h in hiddens]).astype(np.float32)
        return self._normalized(out)

    def from_sums(self, sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Mean pooling finished from each sequence's sum of states ``[n, dim]`` and token counts
        ``[n]`` (the packed graph's ``segment_sums``): the same vectors as :meth:`pool_many`.

        >>> h = np.array([[3.0, 0.0], [1.0, 2.0]], dtype=np.float32)
        >>> bool(np.allclose(Pooling().from_sums(h.sum(0, keepdims=True), np.array([2])), Pooling().pool_many([h])))
        True
        """
        if self.mode != "mean":
            raise ValueError(f"{self.mode} pooling is not finished from sums")
        return self._normalized(np.asarray(sums, dtype=np.float32) / np.asarray(counts, dtype=np.float32)[:, None])

    def _normalized(self, out: np.ndarray) -> np.ndarray:
        """``[n, dim]`` float32 vectors, L2-normalised in place where ``normalize``."""
        if self.normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    @property
    def key(self) -> str:
        """A short tag for cache keys: the graph's sentence_embedding depends on it.

        >>> Pooling().key, Pooling(mode="cls", normalize=False).key
        ('mean-l2', 'cls')
        """
        return self.mode + ("-l2" if self.normalize else "")


@dataclass(frozen=True)
class SentenceConfig:
    """What a sentence-transformers folder defines: the pooling and ``max_seq_length``."""

    pooling: Pooling = Pooling()
    max_seq_length: int | None = None


def read_sentence_config(folder: Path, *, source: str = "model") -> SentenceConfig:
    """Read ``modules.json``, the Pooling module's ``config.json`` and
    ``sentence_bert_config.json`` in ``folder``; without ``modules.json``: mean + L2, no limit.

    A module shapedemo does not build (a Dense layer, say) or a pooling it does not do is a
    :class:`ModelError`, rather than embeddings that differ from the model's own.
    """
    modules = _read_json(folder / "modules.json", source=source)
    max_seq = _read_json(folder / "sentence_bert_config.json", source=source)
    max_seq_length = max_seq.get("max_seq_length") if isinstance(max_seq, dict) else None
    if max_seq_length is not None and (not isinstance(max_seq_length, int) or max_seq_length < 1):
        raise ModelError(f"{source}: sentence_bert_config.json has max_seq_length {max_seq_length!r}")
    if modules is None:
        return SentenceConfig(Pooling(), max_seq_length)
    if not isinstance(modules, list):
        raise ModelError(f"{source}: modules.json is not a list of modules")
    kinds = {str(m.get("type", "")).rpartition(".")[2]: m for m in modules if isinstance(m, dict)}
    other = [k for k in kinds if k not in _UNCHANGING]
    if other:
        raise ModelError(
            f"{source}: modules.json has a {other[0]} module; shapedemo builds Transformer, "
            "Pooling and Normalize only"
        )
    mode = "mean"
    if "Pooling" in kinds:
        config = _read_json(folder / str(kinds["Pooling"].get("path", "")) / "config.json", source=source) or {}
        mode = _pooling_mode(config, source=source)
    return SentenceConfig(Pooling(mode=mode, normalize="Normalize" in kinds), max_seq_length)


def _pooling_mode(config: dict[str, Any], *, source: str) -> str:
    """The one pooling_mode_* key set; none set (or no config file) is mean, as in
    sentence-transformers' Pooling."""
    on = sorted(k for k, v in config.items() if k.startswith("pooling_mode") and v is True)
    if not on:
        return "mean"
    if len(on) != 1 or on[0] not in POOLING_KEYS:
        raise ModelError(f"{source}: pooling {' + '.join(on)} is not supported (one of mean, cls, max)")
    return POOLING_KEYS[on[0]]


def _read_json(path: Path, *, source: str) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        raise ModelError(f"{source}: {path} is not readable JSON") from None
