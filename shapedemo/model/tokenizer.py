"""The tokenizer: token ids of a batch, unpadded, with clear errors for unusable text."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shapedemo.model.errors import ModelError, first_line, transformers_module


LONG_TEXT_CHARS = 65536
"""Texts longer than this (in characters) are tokenized on their head first."""

_MAX_WORD_PIECES = 128
"""More than the pieces one word can give (WordPiece makes a longer word one [UNK])."""


class TextError(ValueError):
    """Input text that cannot be run (empty, or longer than the model takes)."""


@dataclass
class Encoded:
    """Token ids of a batch, unpadded: one list per text, ``[CLS] ... [SEP]`` included.

    ``truncated``: text index (0-based) -> its token count before truncation, for the texts
    :meth:`Tokenizer.encode` cut (empty unless asked to truncate).
    """

    input_ids: list[list[int]]
    token_type_ids: list[list[int]]
    truncated: dict[int, int] = field(default_factory=dict)
    at_least: set[int] = field(default_factory=set)
    """Texts in ``truncated`` whose count is a lower bound (counted on their first
    :data:`LONG_TEXT_CHARS` characters only)."""

    @property
    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.input_ids]


class Tokenizer:
    """The model's tokenizer files read by transformers' ``AutoTokenizer`` (lower-casing,
    special tokens, ``model_max_length``); encoding runs on its fast ``tokenizers`` backend.

    ``max_length``: the most tokens a text may have, the position limit of the model, lowered to
    the tokenizer's ``model_max_length`` where that is smaller.
    """

    def __init__(self, folder: Path, *, max_length: int = 512) -> None:
        self.folder = Path(folder)
        self._tok, self.cls_id, self.sep_id, model_max = _load_tokenizer(self.folder)
        self.max_length = min(max_length, model_max) if model_max else max_length
        self._ascii = AsciiShortcut.of(self._tok)

    def encode(self, texts: list[str], *, truncate: bool = False, max_length: int | None = None) -> Encoded:
        """Encode texts, at most ``max_length`` tokens each (default and ceiling: the model's
        ``self.max_length``). An empty text raises :class:`TextError` naming it; so does a
        longer one, unless ``truncate``: then it is cut to ``max_length`` (its closing [SEP]
        kept, as sentence-transformers does) and listed in :attr:`Encoded.truncated`."""
        limit = self.max_length if max_length is None else min(int(max_length), self.max_length)
        if limit < 2:
            raise TextError(f"max_length {max_length} leaves no room for [CLS] and [SEP]")
        if not texts:
            raise TextError("no text given: enter at least one line of text")
        for i, text in enumerate(texts):
            if not text or not text.strip():
                raise TextError(f"text {i + 1} is empty")
            bad = unicode_problem(text)
            if bad:
                raise TextError(f"text {i + 1} {bad}")
        heads = [self._head(t, limit) for t in texts]
        encodings = self._encode_batch(heads)
        ids, types, truncated, at_least = [], [], {}, set()
        for i, enc in enumerate(encodings):
            n = len(enc)  # not len(enc.ids): that copies every id of a 4 MB text, holding the GIL
            if len(heads[i]) < len(texts[i]):  # counted on its head only
                n -= _MAX_WORD_PIECES  # the head's last word may be cut: count only what is sure
                at_least.add(i)
            if n > limit and not truncate:
                more = "at least " if i in at_least else ""
                raise TextError(f"text {i + 1} has {more}{n} tokens; the model takes at most {limit}")
            if n > limit:  # keep the closing [SEP]
                enc.truncate(limit)
                truncated[i] = n
            row, tt = enc.ids, enc.type_ids  # each a new list already
            if n > limit:
                row[-1] = self.sep_id
            if all(t in (self.cls_id, self.sep_id) for t in row):
                raise TextError(f"text {i + 1} has no tokens: only control or zero-width characters")
            ids.append(row)
            types.append(tt)
        return Encoded(ids, types, truncated, at_least)

    def _encode_batch(self, texts: list[str]) -> list[Any]:
        """The backend's encodings of ``texts``; ASCII texts through :class:`AsciiShortcut`
        where the tokenizer has one (the same ids)."""
        full = _fast_batch(self._tok)
        if self._ascii is None:
            return full(texts)
        prepared = [self._ascii.prepare(t) for t in texts]
        quick = [p for p in prepared if p is not None]
        if not quick:
            return full(texts)
        shortcut = self._ascii.encode_batch
        if len(quick) == len(texts):
            return shortcut(quick)
        fast = iter(shortcut(quick))
        slow = iter(full([t for t, p in zip(texts, prepared) if p is None]))
        return [next(fast) if p is not None else next(slow) for p in prepared]

    @property
    def vocab_size(self) -> int:
        return int(self._tok.get_vocab_size())

    def tokens(self, texts: list[str], *, add_special_tokens: bool = True) -> list[list[dict[str, Any]]]:
        """Each text's tokens as text-embeddings-inference's ``/tokenize`` lists them: ``{"id",
        "text", "special", "start", "stop"}`` (character offsets; None for added special tokens)."""
        out = []
        for text, enc in zip(texts, self._tok.encode_batch(list(texts), add_special_tokens=add_special_tokens)):
            rows = []
            for tid, token, special, (start, stop) in zip(enc.ids, enc.tokens, enc.special_tokens_mask, enc.offsets):
                added = bool(special) and start == stop == 0
                rows.append({"id": int(tid), "text": token if added else text[start:stop], "special": bool(special),
                             "start": None if added else start, "stop": None if added else stop})
            out.append(rows)
        return out

    def _head(self, text: str, limit: int) -> str:
        """``text``, or where it is over :data:`LONG_TEXT_CHARS` characters its first ones if
        those already hold more than ``limit`` tokens (then the rest cannot change the first
        ``limit``: a 4 MB text is refused or truncated in milliseconds, not seconds)."""
        if len(text) <= LONG_TEXT_CHARS:
            return text
        head = text[:LONG_TEXT_CHARS]
        return head if len(self._tok.encode(head)) > limit + _MAX_WORD_PIECES else text

    def synthetic_ids(self, lengths: list[int], *, seed: int = 0) -> Encoded:
        """Token ids of the given lengths (random vocabulary words between [CLS] and [SEP]),
        for workloads defined by lengths only."""
        rng = np.random.default_rng(seed)
        cls_id, sep_id = self.cls_id, self.sep_id
        vocab = self._tok.get_vocab_size()
        ids = []
        for n in lengths:
            if n < 1 or n > self.max_length:
                raise TextError(f"length {n} is outside 1..{self.max_length}")
            middle = rng.integers(1000, max(1001, vocab), size=max(0, n - 2)).tolist()
            ids.append(([cls_id] + middle + [sep_id])[:n] if n >= 2 else [cls_id])
        return Encoded(ids, [[0] * len(r) for r in ids])


def _fast_batch(tok: Any) -> Any:
    # without character offsets (tokenizers >= 0.21): 15-20% less time for the same ids
    return getattr(tok, "encode_batch_fast", tok.encode_batch)


_ASCII_CONTROLS = dict.fromkeys([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
"""ASCII's control characters but tab, newline and carriage return: BERT's text cleaning drops
them (it turns those three into spaces, which splits words just as they do)."""


@dataclass
class AsciiShortcut:
    """BERT's normalizer done in Python for ASCII texts, then the same tokenizer without it.

    The backend's ``BertNormalizer`` (clean the text, space out Chinese characters, strip accents,
    lower-case) goes character by character through Unicode tables: 0.3 of the time to tokenize
    32 English paragraphs (0.72 -> 0.49 ms on a 2-core EPYC, 1.29 -> 0.96 right after an
    inference). On ASCII only the cleaning and the lower-casing can change anything, and
    ``str.translate`` and ``str.lower`` do those at C speed. Texts holding an added token (such
    as ``[CLS]``, in any case) go the full way: added tokens are matched before normalizing.
    """

    tokenizer: Any
    clean: bool
    lower: bool
    added: tuple[str, ...]
    pieces: "AsciiWordPiece | None" = None
    """The backend's pre-tokenizer and WordPiece done in Python too, where its files say it is
    BERT's and a probe gives the backend's ids; else the backend encodes the prepared texts."""

    def encode_batch(self, prepared: list[str]) -> list[Any]:
        """Encodings (``len``, ``ids``, ``type_ids``, ``truncate``) of texts :meth:`prepare` made:
        through :attr:`pieces` up to :data:`PIECES_CHARS` characters, longer ones by the backend."""
        backend = _fast_batch(self.tokenizer)
        if self.pieces is None:
            return backend(prepared)
        long = [t for t in prepared if len(t) > PIECES_CHARS]
        if not long:
            return [self.pieces.encode(t) for t in prepared]
        rest = iter(backend(long))
        return [next(rest) if len(t) > PIECES_CHARS else self.pieces.encode(t) for t in prepared]

    @classmethod
    def of(cls, tok: Any) -> "AsciiShortcut | None":
        """The shortcut for a backend tokenizer whose normalizer is BERT's, else None."""
        import json

        try:
            from tokenizers import Tokenizer as Backend

            text = tok.to_str()  # the vocabulary as JSON: read once, for the WordPiece too
            spec = json.loads(text)
            normalizer = spec.get("normalizer") or {}
            if normalizer.get("type") != "BertNormalizer":
                return None
            bare = Backend.from_str(text)
            bare.normalizer = None
            added = tuple(sorted({t.content.lower() for t in tok.get_added_tokens_decoder().values()}))
        except Exception:  # noqa: BLE001 - an older or unusual backend: the full way only
            return None
        shortcut = cls(bare, bool(normalizer.get("clean_text", True)), bool(normalizer.get("lowercase", True)), added)
        if shortcut.clean:  # uncleaned control characters stay inside words: the backend's way
            shortcut.pieces = AsciiWordPiece.of(tok, spec, shortcut.prepare)
        return shortcut

    def prepare(self, text: str) -> str | None:
        """``text`` normalized as BERT's normalizer would, or None where it must go the full way."""
        if not text.isascii():
            return None
        if self.clean:
            text = text.translate(_ASCII_CONTROLS)
        low = text.lower()
        if any(a in low for a in self.added):
            return None
        return low if self.lower else text


_ASCII_WORD = re.compile(r"[A-Za-z0-9]+|[!-/:-@\\[-`{-~]")
"""BERT's pre-tokenizer on cleaned ASCII: runs of letters and digits, and each punctuation
character alone (every printable ASCII character that is neither is punctuation to it);
whitespace only separates."""

PIECES_CHARS = 2048
"""Longer texts go to the backend (without its normalizer): where it pays, Python splits a text
in a fraction of the backend's time, but junk words it splits at up to twice the backend's
time, holding the GIL (65,536 characters of random 99-letter words: 270 against 131 ms)."""

_PROBE = (
    "Hello, World! It's 3.14 o'clock_now [x] {y} ~`^ @#$% unaffable transformers' tokenizers\t\n\r "
    "supercalifragilisticexpialidocious " + "z" * 101 + " qqqqxxxzzj 2026-12-07T10:00Z a_b-c/d\\e"
)
"""Text whose ids the backend and :class:`AsciiWordPiece` must agree on before it is used:
punctuation of each ASCII range, split and unknown words, a word over the length limit."""


@dataclass
class PieceIds:
    """One text's ids from :class:`AsciiWordPiece`, read as ``encode`` reads a backend encoding."""

    ids: list[int]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def type_ids(self) -> list[int]:
        return [0] * len(self.ids)

    def truncate(self, n: int) -> None:
        del self.ids[n:]


@dataclass
class AsciiWordPiece:
    """BERT's pre-tokenizer and greedy WordPiece for prepared ASCII texts, in Python.

    A word in the vocabulary is one dictionary lookup; other words are split greedily, longest
    piece first, as the backend does, and kept (up to :attr:`KEEP` words, then started over).
    Only integer lists are made, no encoding objects. ``Tokenizer.encode`` of 32 random English
    paragraphs, 2-core EPYC, interleaved with the backend encoding them without its normalizer:
    0.35 against 0.96 ms run twice in a row, 0.95 against 1.35 ms right after an inference
    (whether or not their split words were kept). It holds the GIL, as any Python does.
    """

    vocab: dict[str, int]
    prefix: str
    max_chars: int
    unk: int
    cls: int
    sep: int
    split: dict[str, list[int]] = field(default_factory=dict)
    KEEP = 1 << 16

    @classmethod
    def of(cls, tok: Any, spec: dict[str, Any], prepare: Any) -> "AsciiWordPiece | None":
        """The Python WordPiece of a backend (``spec``: its files, parsed) whose pre-tokenizer is
        BERT's and model WordPiece, if it gives the backend's ids on :data:`_PROBE`; else None."""
        try:
            model = spec.get("model") or {}
            if (spec.get("pre_tokenizer") or {}).get("type") != "BertPreTokenizer" or model.get("type") != "WordPiece":
                return None
            vocab = model["vocab"]  # the WordPiece's own vocabulary, already parsed (get_vocab would build it again)
            max_chars = int(model.get("max_input_chars_per_word", 100))
            if any(len(w) > max_chars for w in vocab):
                return None  # a whole word in the vocabulary is one lookup, never too long
            cls_id, *_, sep_id = tok.encode("a").ids
            pieces = cls(vocab, str(model.get("continuing_subword_prefix", "##")), max_chars,
                         vocab[model.get("unk_token", "[UNK]")], cls_id, sep_id)
            probes = [_PROBE, _PROBE.upper(), "a", "."]
            mine = [(e.ids, e.type_ids) for e in (pieces.encode(prepare(p)) for p in probes)]
            if mine != [(e.ids, e.type_ids) for e in tok.encode_batch(probes)]:
                return None
        except Exception:  # noqa: BLE001 - an unusual backend: it encodes the prepared texts itself
            return None
        return pieces

    def encode(self, text: str) -> PieceIds:
        ids = [self.cls]
        vocab = self.vocab
        for word in _ASCII_WORD.findall(text):
            i = vocab.get(word)
            if i is not None:
                ids.append(i)
            else:
                ids += self.split.get(word) or self._split(word)
        ids.append(self.sep)
        return PieceIds(ids)

    def _split(self, word: str) -> list[int]:
        """``word``'s pieces, longest first (one [UNK] for a word over the length limit or with
        a part no piece matches), kept for the next time."""
        ids: list[int] = []
        start = 0 if len(word) <= self.max_chars else len(word)
        while start < len(word):
            end, found = len(word), None
            while start < end and found is None:
                found = self.vocab.get(word[start:end] if start == 0 else self.prefix + word[start:end])
                end -= found is None
            if found is None:
                break
            ids.append(found)
            start = end
        if start < len(word) or not ids:
            ids = [self.unk]
        if len(self.split) >= self.KEEP:
            self.split.clear()
        self.split[word] = ids
        return ids


def unicode_problem(text: str) -> str | None:
    """Why ``text`` cannot be tokenized as Unicode (a lone surrogate such as JSON's
    ``"\\ud800"``), or None.

    >>> unicode_problem("ok"), unicode_problem("a\\ud800")
    (None, 'holds a lone surrogate (U+D800 at character 1): not valid Unicode')
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"holds a lone surrogate (U+{ord(text[exc.start]):04X} at character {exc.start}): not valid Unicode"
    return None


#: transformers' stand-in for "no limit given" (``VERY_LARGE_INTEGER``) is above this.
_NO_LIMIT = 10**9


def _load_tokenizer(folder: Path) -> tuple[Any, int, int, int | None]:
    """The fast backend of ``AutoTokenizer`` for ``folder``, its [CLS] and [SEP] ids and its
    ``model_max_length`` (None where the files set none). Without config.json or
    tokenizer_config.json to name the class, a BERT WordPiece tokenizer is assumed."""
    if not (folder / "tokenizer.json").is_file() and not (folder / "vocab.txt").is_file():
        raise ModelError(f"{folder}: no tokenizer.json or vocab.txt")
    transformers = transformers_module()
    try:
        try:
            hf = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        except (ValueError, OSError, KeyError):  # the files do not say which class: BERT's
            hf = transformers.BertTokenizer.from_pretrained(str(folder), local_files_only=True)
        tok = hf.backend_tokenizer
    except Exception as exc:
        raise ModelError(f"{folder}: transformers cannot read the tokenizer files ({first_line(exc)})") from exc
    tok.no_padding()
    tok.no_truncation()
    cls_id = _special_id(tok, hf.cls_token_id, "[CLS]", 101)
    sep_id = _special_id(tok, hf.sep_token_id, "[SEP]", 102)
    limit = hf.model_max_length
    return tok, cls_id, sep_id, int(limit) if limit and limit < _NO_LIMIT else None


def _special_id(tok: Any, given: int | None, token: str, default: int) -> int:
    if given is not None:
        return int(given)
    found = tok.token_to_id(token)
    return default if found is None else int(found)
