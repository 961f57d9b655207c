"""The BERT encoder as an OpenVINO graph built from opsets (``openvino.opset13``).

Building the graph ourselves lets us add what packing needs (position ids and a segment
mask) to the same weights, the way OpenVINO GenAI builds models from GGUF files.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from shapedemo.model.pooling import Pooling
from shapedemo.model.weights import BertDims

#: Bumped whenever the graph we build changes, so cached IRs are rebuilt.
GRAPH_VERSION = 4
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
PACKED_INPUTS = ("input_ids", "token_type_ids", "position_ids", "segment_ids")

SEGMENT_SUMS = 32
"""Where the model pools by the mean, the packed graph also sums the states of each row's first
this many segments on the device (output ``segment_sums`` ``[B, SEGMENT_SUMS, H]``, one matrix
product of the segments' one-hot rows with the states: under 0.1% of a call): a packed
sequence's embedding then costs the host a division, not a pass over its tokens' states. The
segments of a row beyond it are pooled on the host."""
SEGMENT_SUMS_NODE = "segment_sums_matmul"
"""The name of that product (``int8`` quantization leaves it in float: it only adds)."""


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
        x = _after_attention(x, context, weights, dims, p)
    return x


def _after_attention(x: Any, context: Any, weights: Mapping[str, np.ndarray], dims: BertDims, p: str) -> Any:
    """The rest of layer ``p`` once its attention ``context`` (laid out as ``x``) is known: the
    output projection, the residual and norm, the feed-forward, the residual and norm."""
    import openvino.opset13 as op

    attn = _linear(context, weights, f"{p}.attention.output.dense")
    x = _layer_norm(op.add(attn, x), weights, f"{p}.attention.output.LayerNorm", dims.layer_norm_eps)
    inner = _activation(_linear(x, weights, f"{p}.intermediate.dense"), dims.hidden_act)
    out = _linear(inner, weights, f"{p}.output.dense")
    return _layer_norm(op.add(out, x), weights, f"{p}.output.LayerNorm", dims.layer_norm_eps)


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


def build_bert(
    weights: Mapping[str, np.ndarray], dims: BertDims, *, name: str = "bert", pooling: Pooling = Pooling()
) -> Any:
    """The dynamic ``[?, ?]`` BERT encoder with the model's sentence embedding.

    Inputs ``input_ids``, ``attention_mask``, ``token_type_ids`` (i64). Outputs
    ``last_hidden_state [B, S, H]`` and ``sentence_embedding [B, H]``: the masked ``pooling``
    (mean, cls or max over the real tokens), L2-normalised where ``pooling.normalize``
    (the default, mean + L2, is how all-MiniLM-L6-v2 is used).
    """
    import openvino as ov
    import openvino.opset13 as op

    input_ids, attention_mask, token_type_ids = (_parameter(n) for n in INPUTS)
    # position ids 0..S-1, broadcast over the batch
    seq_len = op.gather(op.shape_of(input_ids), _i64([1]), _i64(0))
    positions = op.range(_i64(0), op.squeeze(seq_len, _i64([0])), _i64(1), output_type=ov.Type.i64)
    position_ids = op.unsqueeze(positions, _i64([0]))
    x = _embeddings(input_ids, token_type_ids, position_ids, weights, dims)
    # key mask [B, 1, 1, S], True = attend
    keys = op.convert(attention_mask, ov.Type.boolean)
    mask = op.unsqueeze(keys, _i64([1, 2]))
    hidden = _named(_encoder(x, mask, weights, dims), "last_hidden_state")
    embedding = _named(_pool(hidden, attention_mask, pooling), "sentence_embedding")
    results = [op.result(hidden), op.result(embedding)]
    return ov.Model(results, [input_ids, attention_mask, token_type_ids], name)


def _i64(value: Any) -> Any:
    import openvino.opset13 as op

    return op.constant(np.array(value, dtype=np.int64))


def _pool(hidden: Any, attention_mask: Any, pooling: Pooling) -> Any:
    """``[B, S, H]`` states and ``[B, S]`` mask -> ``[B, H]``, as :meth:`Pooling.pool` does
    for one sequence's real tokens."""
    import openvino as ov
    import openvino.opset13 as op

    tokens = _i64([1])
    if pooling.mode == "cls":
        pooled = op.gather(hidden, _i64(0), _i64(1))
    elif pooling.mode == "max":
        real = op.unsqueeze(op.convert(attention_mask, ov.Type.boolean), _i64([2]))
        masked = op.select(real, hidden, _const(np.array(-1e9)))
        pooled = op.reduce_max(masked, tokens, keep_dims=False)
    else:
        fmask = op.unsqueeze(op.convert(attention_mask, ov.Type.f32), _i64([2]))
        summed = op.reduce_sum(op.multiply(hidden, fmask), tokens, keep_dims=False)
        counts = op.reduce_sum(fmask, tokens, keep_dims=False)
        pooled = op.divide(summed, op.maximum(counts, _const(np.array(1e-9))))
    if not pooling.normalize:
        return pooled
    norm = op.sqrt(op.reduce_sum(op.multiply(pooled, pooled), tokens, keep_dims=True))
    return op.divide(pooled, op.maximum(norm, _const(np.array(1e-12))))


def build_packed_bert(
    weights: Mapping[str, np.ndarray], dims: BertDims, *, name: str = "bert-packed", pooling: Pooling | None = Pooling()
) -> Any:
    """The same encoder for packed rows: several sequences share one row.

    Inputs ``input_ids``, ``token_type_ids``, ``position_ids`` (restarting at 0 for every
    sequence) and ``segment_ids`` (0 = padding, k = the k-th sequence of that row). A token
    attends only to tokens of its own segment: the block-diagonal mask is built in the graph.
    Padding tokens attend to each other, so no attention row is empty. Outputs:
    ``last_hidden_state``, and where ``pooling`` is the mean ``segment_sums`` (see
    :data:`SEGMENT_SUMS`); dividing by the lengths and normalising happen on the host.
    """
    import openvino as ov
    import openvino.opset13 as op

    input_ids, token_type_ids, position_ids, segment_ids = (_parameter(n) for n in PACKED_INPUTS)
    x = _embeddings(input_ids, token_type_ids, position_ids, weights, dims)
    queries = op.unsqueeze(segment_ids, op.constant(np.array([1, 3], dtype=np.int64)))  # [B,1,S,1]
    keys = op.unsqueeze(segment_ids, op.constant(np.array([1, 2], dtype=np.int64)))  # [B,1,1,S]
    mask = op.equal(queries, keys)  # [B,1,S,S]
    hidden = _named(_encoder(x, mask, weights, dims), "last_hidden_state")
    results = [op.result(hidden)]
    if pooling is not None and pooling.mode == "mean":
        first = op.constant(np.arange(1, SEGMENT_SUMS + 1, dtype=np.int64).reshape(1, SEGMENT_SUMS, 1))
        one_hot = op.convert(op.equal(op.unsqueeze(segment_ids, _i64([1])), first), ov.Type.f32)  # [B,K,S]
        sums = op.matmul(one_hot, hidden, False, False)  # [B,K,H]
        sums.set_friendly_name(SEGMENT_SUMS_NODE)
        results.append(op.result(_named(sums, "segment_sums")))
    return ov.Model(results, [input_ids, token_type_ids, position_ids, segment_ids], name)
