"""Write ``assets/paragraphs.txt``: real English paragraphs of 5 to 256 tokens, mean >= 40.

Source: the docstrings of Python's standard library (the modules, classes and functions named in
``MODULES``), as shipped with the Python that runs this script; the text is Python's own
documentation, under the Python Software Foundation License (see ``assets/README.md``). A
paragraph is a docstring block between blank lines, its lines joined, kept when it reads as prose
(no code, no doctest prompts, no tables, mostly letters); a text is a run of consecutive prose
paragraphs of one docstring up to 256 tokens under MiniLM's tokenizer ([CLS] and [SEP]
included), deduplicated, and at least 10 tokens long; texts are taken from the modules in turn.
The order is deterministic.

Run from the repository's root: ``python assets/make_paragraphs.py`` (it loads only the
tokenizer of the default model).
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path

MODULES = [
    "argparse", "asyncio", "base64", "bisect", "calendar", "collections", "concurrent.futures",
    "contextlib", "csv", "dataclasses", "datetime", "decimal", "difflib", "email.message",
    "enum", "fractions", "functools", "glob", "gzip", "hashlib", "heapq", "html.parser",
    "http.client", "http.server", "inspect", "ipaddress", "itertools", "json", "logging",
    "mailbox", "multiprocessing.pool", "numbers", "operator", "optparse", "pathlib", "pickle",
    "pprint", "queue", "random", "sched", "secrets", "selectors", "shelve", "shlex", "shutil",
    "smtplib", "socket", "socketserver", "sqlite3", "statistics", "string", "subprocess",
    "tarfile", "tempfile", "textwrap", "threading", "timeit", "tokenize", "traceback",
    "typing", "unittest.case", "urllib.parse", "urllib.request", "uuid", "warnings",
    "weakref", "xml.dom.minidom", "zipfile", "zoneinfo",
]
TARGET = 400
MIN_TOKENS, MAX_TOKENS = 10, 256


def docstrings(module_name: str):
    module = importlib.import_module(module_name)
    seen = set()
    yield inspect.getdoc(module) or ""
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_") or getattr(obj, "__module__", module_name) != module.__name__:
            continue
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        yield inspect.getdoc(obj) or ""
        if inspect.isclass(obj):
            for attr, member in sorted(vars(obj).items()):
                if not attr.startswith("_") and callable(member):
                    yield inspect.getdoc(member) or ""


def prose(block: str) -> str | None:
    lines = [line.strip() for line in block.splitlines()]
    if any(line.startswith((">>>", "...", "$ ", "|", "+-", "==", "--", "::")) for line in lines):
        return None
    if any(re.match(r"^[\w.]+\(.*\)(\s*->.*)?$", line) for line in lines):
        return None  # a signature line
    text = " ".join(lines)
    text = re.sub(r"\s+", " ", text).strip()
    words = text.split()
    if len(words) < 4 or not text[0].isupper() or text[-1] not in ".:)":
        return None
    letters = sum(ch.isalpha() or ch == " " for ch in text)
    if letters / len(text) < 0.85 or "{" in text or "=" in text or "\t" in text:
        return None
    return text


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    from shapedemo.model import load_model

    tokenizer = load_model("minilm").tokenizer
    kept, seen = [], set()
    def count(text: str) -> int:
        return len(tokenizer._tok.encode(text).ids)  # [CLS] and [SEP] included

    for module_name in MODULES:
        for doc in docstrings(module_name):
            # a text is a run of consecutive prose paragraphs of one docstring, as long as it
            # stays within MAX_TOKENS (a code block or a table ends the run)
            run: list[str] = []
            for block in re.split(r"\n\s*\n", doc) + [""]:
                text = prose(block)
                joined = " ".join(run + [text]) if text else None
                if joined is not None and count(joined) <= MAX_TOKENS:
                    run.append(text)
                    continue
                if run:
                    whole = " ".join(run)
                    n = count(whole)
                    if whole not in seen and MIN_TOKENS <= n:
                        seen.add(whole)
                        kept.append((module_name, whole, n))
                run = [text] if text and count(text) <= MAX_TOKENS else []
    # an even spread over the modules, up to TARGET texts, in a fixed order
    by_module: dict[str, list] = {}
    for item in kept:
        by_module.setdefault(item[0], []).append(item)
    chosen = []
    while len(chosen) < TARGET and any(by_module.values()):
        for name in MODULES:
            if by_module.get(name) and len(chosen) < TARGET:
                chosen.append(by_module[name].pop(0))
    lengths = [n for _, _, n in chosen]
    (root / "assets" / "paragraphs.txt").write_text("".join(t + "\n" for _, t, _ in chosen))
    print(f"{len(chosen)} paragraphs, {min(lengths)}-{max(lengths)} tokens, mean {sum(lengths) / len(lengths):.1f}")


if __name__ == "__main__":
    main()
