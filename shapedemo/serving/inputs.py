"""What ``serve`` accepts in a request body, checked without FastAPI or a model: size and depth
limits on the JSON, texts that are valid Unicode, token ids inside the vocabulary.

Everything here is a plain function over bytes or decoded JSON; the server runs the CPU-bound
ones (:func:`decode_body`, the checks over large texts) off its event loop.

>>> decode_body(b'{"input": "hi"}')
{'input': 'hi'}
>>> decode_body(b'[' * 100 + b']' * 100)
Traceback (most recent call last):
...
shapedemo.serving.inputs.RequestError: the JSON body is nested deeper than 8 levels
>>> parse_input({"input": "a\\ud800"}, field="input")
Traceback (most recent call last):
...
shapedemo.serving.inputs.RequestError: input[0] holds a lone surrogate (U+D800 at character 1): not valid Unicode
>>> parse_token_ids({"input": [101, 7, 102]}, field="input", vocab_size=30)
Traceback (most recent call last):
...
shapedemo.serving.inputs.RequestError: input[0][0] is token id 101: this model's vocabulary has ids 0..29
"""

from __future__ import annotations

import json
from typing import Any, Mapping

__all__ = [
    "BODY_TIMEOUT_S",
    "MAX_BODY_BYTES",
    "MAX_JSON_DEPTH",
    "ClientGone",
    "RequestError",
    "decode_body",
    "is_token_ids",
    "parse_input",
    "parse_token_ids",
]

MAX_BODY_BYTES = 4 * 2**20
"""The largest request body read (4 MiB: 256 texts of 512 tokens take well under 1 MiB)."""

MAX_JSON_DEPTH = 8
"""The deepest nesting of a body (``{"input": [[ids]]}`` is 3 deep)."""

BODY_TIMEOUT_S = 30.0
"""How long a client may take to send its body (a stalled one gets 408 and is let go)."""


class RequestError(ValueError):
    """A client's mistake: HTTP ``status`` and one line, ``param`` naming the field."""

    def __init__(self, message: str, *, status: int = 422, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.param = param


class ClientGone(Exception):
    """The client closed its connection (``stage``: ``"reading"`` its body or ``"waiting"``
    for the answer): nothing to answer, not a server error."""

    def __init__(self, stage: str) -> None:
        super().__init__(f"the client went away while {stage}")
        self.stage = stage


def decode_body(raw: bytes) -> dict[str, Any]:
    """The JSON object in ``raw``; not JSON, not an object or nested deeper than
    :data:`MAX_JSON_DEPTH` is a 400 ``RequestError``. CPU-bound for large bodies: run it off
    the event loop."""
    if len(raw) > MAX_BODY_BYTES:
        raise RequestError(f"request body is over the limit of {MAX_BODY_BYTES} bytes", status=413)
    try:
        body = json.loads(raw)
    except RecursionError:  # the decoder's own guard: nested thousands deep
        raise RequestError(f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels", status=400) from None
    except (ValueError, UnicodeDecodeError):
        raise RequestError("the body is not valid JSON", status=400) from None
    if _depth_over(body, MAX_JSON_DEPTH):
        raise RequestError(f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels", status=400)
    if not isinstance(body, dict):
        raise RequestError(f"the body must be a JSON object, not {type(body).__name__}", status=400)
    return body


def _depth_over(value: Any, limit: int) -> bool:
    """Whether ``value`` nests deeper than ``limit`` containers (stops at the first too deep)."""
    if not isinstance(value, (dict, list)):
        return False
    if limit <= 0:
        return True
    children = value.values() if isinstance(value, dict) else value
    return any(_depth_over(v, limit - 1) for v in children if isinstance(v, (dict, list)))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_token_ids(value: Any) -> bool:
    """Whether an ``input`` is OpenAI's token-id form: a list of ints, or a list of such lists.

    >>> is_token_ids([101, 102]), is_token_ids([[101], [7, 8]]), is_token_ids(["a"]), is_token_ids([])
    (True, True, False, False)
    """
    if not isinstance(value, list) or not value:
        return False
    return all(_is_int(v) for v in value) or all(isinstance(v, list) and all(_is_int(t) for t in v) for v in value)


def parse_input(body: Mapping[str, Any], *, field: str) -> list[str]:
    """The texts of a request body: ``body[field]`` as a string or a list of strings.

    >>> parse_input({"inputs": ["a", "b"]}, field="inputs")
    ['a', 'b']
    >>> parse_input({"input": [1, 2]}, field="input")
    Traceback (most recent call last):
    ...
    shapedemo.serving.inputs.RequestError: 'input' holds token ids: this route takes text (a string or a list of strings)
    """
    if field not in body:
        raise RequestError(f"missing field {field!r}: a string or a list of strings", param=field)
    value = body[field]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise RequestError(f"{field!r} must be a string or a list of strings, not {type(value).__name__}", param=field)
    if not value:
        raise RequestError(f"{field!r} is empty: send at least one text", param=field)
    if is_token_ids(value) or all(isinstance(v, list) for v in value):
        raise RequestError(f"{field!r} holds token ids: this route takes text (a string or a list of strings)", param=field)
    from shapedemo.model.tokenizer import unicode_problem

    for i, v in enumerate(value):
        if not isinstance(v, str):
            raise RequestError(f"{field}[{i}] must be a string, not {type(v).__name__}", param=field)
        if not v.strip():
            raise RequestError(f"{field}[{i}] is empty or only whitespace", param=field)
        bad = unicode_problem(v)
        if bad:
            raise RequestError(f"{field}[{i}] {bad}", param=field)
    return value


def parse_token_ids(body: Mapping[str, Any], *, field: str, vocab_size: int) -> list[list[int]]:
    """OpenAI's token-id input (``[101, 2023, 102]`` or ``[[...], ...]``) as rows, each id
    checked against the vocabulary (422 naming the first one outside it). The ids are taken as
    they are: send the model's own special tokens ([CLS] ... [SEP]) where it expects them.

    >>> parse_token_ids({"input": [[101, 102], [101, 7, 102]]}, field="input", vocab_size=30522)
    [[101, 102], [101, 7, 102]]
    """
    value = body[field]
    rows = [value] if all(_is_int(v) for v in value) else value
    for i, row in enumerate(rows):
        if not row:
            raise RequestError(f"{field}[{i}] holds no token ids", param=field)
        for j, tid in enumerate(row):
            if not 0 <= tid < vocab_size:
                raise RequestError(f"{field}[{i}][{j}] is token id {tid}: this model's vocabulary has ids 0..{vocab_size - 1}", param=field)
    return [list(r) for r in rows]
