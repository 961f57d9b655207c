"""BERT weights as numpy arrays: read from safetensors, checked, or seeded random ones.

>>> weights, dims = synthetic_weights("tiny")
>>> dims.num_hidden_layers, dims.hidden_size, dims.head_size
(2, 128, 64)
>>> weights["encoder.layer.0.attention.self.query.weight"].shape
(128, 128)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from shapedemo.model.errors import ModelError, first_line, transformers_module

#: name -> (layers, hidden, heads); the BERT miniatures' and the original BERT dimensions.
SYNTHETIC_SIZES: dict[str, tuple[int, int, int]] = {
    "tiny": (2, 128, 2),
    "mini": (4, 256, 4),
    "small": (4, 512, 8),
    "medium": (8, 512, 8),
    "base": (12, 768, 12),
    "large": (24, 1024, 16),
}
SYNTHETIC_SEED = 20241124


@dataclass(frozen=True)
class BertDims:
    """The dimensions the graph needs (read from a BertConfig-style dict)."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, source: str = "model") -> "BertDims":
        """Check a BertConfig-style dict and keep the sizes the graph needs.

        >>> BertDims.from_config({"model_type": "bert", "vocab_size": 99, "hidden_size": 64,
        ...     "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 256}).head_size
        16
        >>> BertDims.from_config({"model_type": "gpt2"}, source="x")
        Traceback (most recent call last):
        shapedemo.model.errors.ModelError: x is a 'gpt2' model; shapedemo builds BERT-family encoders (config.json with model_type 'bert')
        """
        model_type = config.get("model_type", "")
        if model_type != "bert":
            raise ModelError(
                f"{source} is a {model_type or 'unknown'!r} model; shapedemo builds BERT-family "
                "encoders (config.json with model_type 'bert')"
            )
        act = config.get("hidden_act", "gelu")
        if act not in ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu"):
            raise ModelError(f"{source}: activation {act!r} is not supported")
        pos = config.get("position_embedding_type", "absolute") or "absolute"
        if pos != "absolute":
            raise ModelError(f"{source}: position_embedding_type {pos!r} is not supported")
        names = [f for f in cls.__dataclass_fields__]
        sizes = names[:6]
        bad = [k for k in sizes if not isinstance(config.get(k, 1), int) or config.get(k, 1) < 1]
        if bad or any(k not in config for k in sizes[:5]):
            what = bad[0] if bad else next(k for k in sizes[:5] if k not in config)
            raise ModelError(f"{source}: config.json has no valid {what} (a positive integer)")
        if config["hidden_size"] % config["num_attention_heads"]:
            raise ModelError(
                f"{source}: hidden_size {config['hidden_size']} is not a multiple of "
                f"num_attention_heads {config['num_attention_heads']}"
            )
        return cls(**{k: config[k] for k in names if k in config})

    @classmethod
    def from_folder(cls, folder: Path, *, source: str = "model") -> "BertDims":
        """Read ``folder/config.json`` with transformers' ``AutoConfig`` (which fills BertConfig's
        defaults and refuses what it cannot parse) and check it with :meth:`from_config`."""
        if not (folder / "config.json").is_file():
            raise ModelError(f"{source}: no config.json in {folder}")
        auto_config = transformers_module().AutoConfig
        try:
            config = auto_config.from_pretrained(str(folder), local_files_only=True).to_dict()
        except Exception as exc:  # malformed JSON, unknown or missing model_type, remote code
            try:
                raw = json.loads((folder / "config.json").read_text())
            except (OSError, ValueError):
                raise ModelError(f"{source}: {folder / 'config.json'} is not valid JSON") from None
            if isinstance(raw, dict) and raw.get("model_type") != "bert":
                return cls.from_config(raw, source=source)  # the "not BERT" line, as for known types
            raise ModelError(f"{source}: transformers cannot read config.json ({first_line(exc)})") from exc
        return cls.from_config(config, source=source)

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def parameters(self) -> int:
        """Weights of the encoder the graph holds (embeddings, layers; no pooler).

        >>> BertDims(30522, 768, 12, 12, 3072).parameters    # BERT-base, as BertModel counts it less its pooler
        108891648
        """
        h, i = self.hidden_size, self.intermediate_size
        embeddings = (self.vocab_size + self.max_position_embeddings + self.type_vocab_size) * h + 2 * h
        layer = 4 * (h * h + h) + 2 * h + (h * i + i) + (i * h + h) + 2 * h
        return embeddings + self.num_hidden_layers * layer



def read_weights(path: Path, *, source: str | None = None) -> dict[str, np.ndarray]:
    """Read a safetensors file into float32 numpy arrays in BertModel naming.

    Checkpoints of ``BertFor...`` heads prefix the encoder with ``bert.``: the prefix is dropped.
    A corrupt or truncated file is one :class:`ModelError` line, not safetensors' traceback.
    """
    from safetensors.numpy import load_file

    try:
        raw = load_file(str(path))
    except Exception as exc:  # SafetensorError (header too large, incomplete), OSError, ...
        raise ModelError(
            f"{source or path.name}: {path} is not a readable safetensors file ({first_line(exc)}); "
            "it may be truncated or corrupt: download it again"
        ) from exc
    weights: dict[str, np.ndarray] = {}
    for key, value in raw.items():
        key = key[len("bert."):] if key.startswith("bert.") else key
        if key.startswith(("embeddings.", "encoder.")):
            weights[key] = value.astype(np.float32) if value.dtype != np.int64 else value
    return weights


def check_weights(weights: Mapping[str, np.ndarray], dims: BertDims, *, source: str) -> None:
    needed = [
        "embeddings.word_embeddings.weight",
        "embeddings.position_embeddings.weight",
        "embeddings.LayerNorm.weight",
    ] + [f"encoder.layer.{i}.attention.self.query.weight" for i in range(dims.num_hidden_layers)]
    missing = [k for k in needed if k not in weights]
    if missing:
        raise ModelError(f"{source}: weights are not BertModel weights (missing {missing[0]})")


def synthetic_weights(size: str, *, seed: int = SYNTHETIC_SEED, vocab_size: int = 30522) -> tuple[dict[str, np.ndarray], BertDims]:
    """Seeded random weights with BERT dimensions: the same numbers on every machine."""
    if size not in SYNTHETIC_SIZES:
        raise ModelError(f"unknown synthetic size {size!r}; choose one of {', '.join(SYNTHETIC_SIZES)}")
    layers, hidden, heads = SYNTHETIC_SIZES[size]
    dims = BertDims(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
    )
    rng = np.random.default_rng(seed)

    def normal(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)

    w: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": normal(vocab_size, hidden),
        "embeddings.position_embeddings.weight": normal(dims.max_position_embeddings, hidden),
        "embeddings.token_type_embeddings.weight": normal(dims.type_vocab_size, hidden),
        "embeddings.LayerNorm.weight": np.ones(hidden, np.float32),
        "embeddings.LayerNorm.bias": np.zeros(hidden, np.float32),
    }
    for i in range(layers):
        p = f"encoder.layer.{i}"
        for name, (rows, cols) in {
            "attention.self.query": (hidden, hidden),
            "attention.self.key": (hidden, hidden),
            "attention.self.value": (hidden, hidden),
            "attention.output.dense": (hidden, hidden),
            "intermediate.dense": (4 * hidden, hidden),
            "output.dense": (hidden, 4 * hidden),
        }.items():
            w[f"{p}.{name}.weight"] = normal(rows, cols)
            w[f"{p}.{name}.bias"] = normal(rows)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[f"{p}.{ln}.weight"] = np.ones(hidden, np.float32)
            w[f"{p}.{ln}.bias"] = np.zeros(hidden, np.float32)
    return w, dims
