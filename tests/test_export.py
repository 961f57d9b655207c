"""`python -m shapedemo export --format genai DIR`: a folder OpenVINO GenAI's TextEmbeddingPipeline
loads, whose embeddings equal shapedemo's own (f32); without the extra, one line and exit 2."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from shapedemo.cli import main

TEXTS = [line.strip() for line in (Path(__file__).parent.parent / "assets" / "texts.txt").read_text().splitlines() if line.strip()]


def test_missing_extra_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino_tokenizers", None)  # import fails as if not installed
    target = tmp_path / "out"
    assert main(["export", "--format", "genai", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("shapedemo: error: ")
    assert 'pip install -e ".[peers]"' in err
    assert not target.exists()


def test_occupied_folder_is_refused(tmp_path, capsys):
    pytest.importorskip("openvino_tokenizers", reason='the extra is missing: pip install -e ".[peers]"')
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["export", "--format", "genai", str(tmp_path)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


@pytest.mark.model
def test_genai_pipeline_gives_our_embeddings(tmp_path, capsys, monkeypatch, cache_dir, minilm_engine):
    pytest.importorskip("openvino_tokenizers", reason='the extra is missing: pip install -e ".[peers]"')
    pytest.importorskip("openvino_genai", reason='the extra is missing: pip install -e ".[peers]"')
    import openvino as ov

    from shapedemo.measure.compare import embed
    from shapedemo.model.export import genai_pipeline, pooling_of

    monkeypatch.setenv("SHAPEDEMO_CACHE", str(cache_dir))  # the IR the session fixture built
    target = tmp_path / "minilm-genai"
    target.mkdir()
    (target / "stale.txt").write_text("from an older export")
    assert main(["export", "--format", "genai", str(target), "--model", "minilm", "--overwrite"]) == 0, capsys.readouterr().err
    names = {str(p.relative_to(target)) for p in target.rglob("*")}
    for needed in (
        "openvino_model.xml", "openvino_model.bin", "openvino_tokenizer.xml", "openvino_tokenizer.bin",
        "openvino_detokenizer.xml", "config.json", "tokenizer_config.json", "special_tokens_map.json",
    ):
        assert needed in names
    assert "stale.txt" not in names
    assert [p.name for p in tmp_path.iterdir()] == ["minilm-genai"]  # no staging folder left behind
    outputs = ov.Core().read_model(target / "openvino_model.xml").outputs
    assert [o.get_any_name() for o in outputs] == ["last_hidden_state"]
    assert len(minilm_engine.loaded.model.outputs) == 2  # the export cloned, the model is intact

    texts = TEXTS[:16]
    _, ours = embed(minilm_engine, texts)
    pooling, normalize = pooling_of(minilm_engine.loaded)
    assert (pooling, normalize) == ("mean", True)  # all-MiniLM-L6-v2's modules
    config = dict(precision="f32", pooling=pooling, normalize=normalize)
    dynamic = np.array(genai_pipeline(target, **config).embed_documents(texts))
    assert dynamic.shape == ours.shape == (16, 384)
    assert np.max(np.abs(dynamic - ours)) < 1e-5  # f32 round-off (measured ~1e-7)
    static = genai_pipeline(target, batch_size=8, max_length=128, **config)  # NPU-style
    padded = np.concatenate([np.array(static.embed_documents(texts[i : i + 8])) for i in (0, 8)])
    assert np.max(np.abs(padded - ours)) < 1e-5
