"""The tokenizer: token ids of a batch, unpadded, with clear errors for unusable text."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError


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
