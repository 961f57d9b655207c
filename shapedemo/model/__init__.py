"""BERT as an OpenVINO graph built from opsets, and the one resolver for every model source.

No torch: weights are read with ``safetensors.numpy`` into numpy and become graph constants.

- :mod:`.graph`: the opset graph (:func:`build_bert`, :func:`build_packed_bert`);
- :mod:`.weights`: :class:`BertDims`, :func:`read_weights`, :func:`synthetic_weights`;
- :mod:`.pooling`: :class:`Pooling`, the sentence embedding as sentence-transformers' files
  define it;
- :mod:`.tokenizer`: :class:`Tokenizer`, :class:`Encoded`, :class:`TextError`;
- :mod:`.sources`: :func:`load_model` and :class:`LoadedModel` (minilm, synthetic, hub id,
  folder, IR);
- :mod:`.cache`: the IR cache (atomic writes), :func:`ensure_cache_dir` and :func:`usable_cache_dir`.
"""

from __future__ import annotations

from shapedemo.model.cache import ensure_cache_dir, usable_cache_dir
from shapedemo.model.errors import ModelError
from shapedemo.model.graph import GRAPH_VERSION, INPUTS, PACKED_INPUTS, build_bert, build_packed_bert
from shapedemo.model.pooling import SENTENCE_TRANSFORMERS_FILES, Pooling, SentenceConfig, read_sentence_config
from shapedemo.model.sources import (
    DEFAULT_SPEC,
    HUB_FILES,
    MINILM_HUB_ID,
    MINILM_PACKAGE,
    LoadedModel,
    default_cache_dir,
    default_spec,
    load_model,
    minilm_folder,
    minilm_source,
)
from shapedemo.model.tokenizer import Encoded, TextError, Tokenizer
from shapedemo.model.weights import SYNTHETIC_SEED, SYNTHETIC_SIZES, BertDims, check_weights, read_weights, synthetic_weights

__all__ = [
    "DEFAULT_SPEC",
    "GRAPH_VERSION",
    "HUB_FILES",
    "INPUTS",
    "MINILM_HUB_ID",
    "MINILM_PACKAGE",
    "PACKED_INPUTS",
    "SENTENCE_TRANSFORMERS_FILES",
    "SYNTHETIC_SEED",
    "SYNTHETIC_SIZES",
    "BertDims",
    "Encoded",
    "LoadedModel",
    "ModelError",
    "Pooling",
    "SentenceConfig",
    "TextError",
    "Tokenizer",
    "build_bert",
    "build_packed_bert",
    "check_weights",
    "default_cache_dir",
    "default_spec",
    "ensure_cache_dir",
    "usable_cache_dir",
    "load_model",
    "minilm_folder",
    "minilm_source",
    "read_sentence_config",
    "read_weights",
    "synthetic_weights",
]
