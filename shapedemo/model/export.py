"""Export a model for OpenVINO GenAI's ``TextEmbeddingPipeline``: the peer a user would pick.

``export_genai(folder, spec=...)`` writes what the pipeline loads from one folder:

- ``openvino_model.xml/.bin``: our BERT graph with exactly one output, ``last_hidden_state``
  (GenAI adds pooling and normalisation after the model's only output, so the graph's own
  ``sentence_embedding`` output is dropped from a clone);
- ``openvino_tokenizer.xml/.bin`` and ``openvino_detokenizer.xml/.bin``: the model's tokenizer
  converted with ``openvino_tokenizers`` from a ``transformers`` tokenizer loaded from its
  local files;
- the configuration files GenAI and other tools read: ``config.json``, ``tokenizer_config.json``,
  ``special_tokens_map.json``, ``tokenizer.json``/``vocab.txt`` and, where the model has them,
  sentence-transformers' ``modules.json``, ``sentence_bert_config.json``, ``1_Pooling/...``.

The folder is written to a temporary sibling and renamed into place, so a failed export leaves
nothing half-written. Needs the optional extra ``peers`` (``openvino-tokenizers``;
``openvino-genai`` to load the result). GenAI does not read the pooling from the folder: load
it with :func:`genai_pipeline` and the model's pooling (:func:`pooling_of`; mean + L2 for
all-MiniLM-L6-v2) to get the same sentence embedding as shapedemo.

>>> genai_kwargs(batch_size=8, max_length=256)
{'pooling_type': 'MEAN', 'normalize': True, 'batch_size': 8, 'max_length': 256, 'pad_to_max_length': True}
>>> genai_kwargs(pooling="cls", normalize=False)
{'pooling_type': 'CLS', 'normalize': False}
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMATS = ("genai",)
INSTALL_HINT = 'pip install -e ".[peers]"'
OUTPUT = "last_hidden_state"
#: configuration files copied from the model's folder where present (sentence-transformers'
#: own files say how the model pools and normalises; GenAI reads config.json).
MODEL_FILES = (
    "config.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
)
#: our pooling modes -> GenAI's PoolingType (GenAI has no max pooling)
GENAI_POOLING = {"mean": "MEAN", "cls": "CLS"}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


class ExportError(ValueError):
    """An export that cannot be done (missing extra, occupied folder), in one line."""


@dataclass
class Exported:
    """A finished export: the folder, the files in it (relative paths, sorted) and the model's
    pooling, which GenAI must be told.

    >>> print(Exported(Path("out"), "genai", "minilm", [], "mean", True).usage)
    openvino_genai.TextEmbeddingPipeline('out', 'CPU', pooling_type=openvino_genai.TextEmbeddingPipeline.PoolingType.MEAN, normalize=True)
    """

    folder: Path
    format: str
    model: str
    files: list[str]
    pooling: str = "mean"
    normalize: bool = True

    @property
    def usage(self) -> str:
        """The Python line that loads the folder with the model's pooling."""
        if self.pooling not in GENAI_POOLING:
            return f"(GenAI's TextEmbeddingPipeline has no {self.pooling} pooling: use the IR and tokenizer directly)"
        kind = f"openvino_genai.TextEmbeddingPipeline.PoolingType.{GENAI_POOLING[self.pooling]}"
        return f"openvino_genai.TextEmbeddingPipeline({str(self.folder)!r}, 'CPU', pooling_type={kind}, normalize={self.normalize})"


def require_peers(*modules: str) -> None:
    """Raise :class:`ExportError` naming the install command if a peer package is missing.

    >>> require_peers("json")
    >>> require_peers("no_such_module_here")
    Traceback (most recent call last):
    ...
    shapedemo.model.export.ExportError: this needs the optional extra peers (no_such_module_here is not installed): pip install -e ".[peers]"
    """
    for name in modules or ("openvino_tokenizers", "openvino_genai"):
        try:
            __import__(name)
        except ImportError:
            raise ExportError(
                f"this needs the optional extra peers ({name} is not installed): {INSTALL_HINT}"
            ) from None


def single_output(model: Any, name: str = OUTPUT) -> Any:
    """A clone of ``model`` whose only output is ``name`` (the model itself is left alone)."""
    names = [sorted(out.get_names()) for out in model.outputs]
    if not any(name in n for n in names):
        raise ExportError(f"the model has no {name!r} output (it has {names})")
    clone = model.clone()
    for result in list(clone.get_results()):
        if name not in result.input_value(0).get_names():
            clone.remove_result(result)
    return clone


def pooling_of(loaded: Any) -> tuple[str, bool]:
    """The model's sentence embedding as ``(mode, normalize)``: its ``pooling`` where the
    loaded model has one (sentence-transformers' modules), else mean + L2 (our graph's)."""
    pooling = getattr(loaded, "pooling", None)
    return (pooling.mode, bool(pooling.normalize)) if pooling is not None else ("mean", True)


def genai_kwargs(
    *,
    pooling: str = "mean",
    normalize: bool = True,
    batch_size: int | None = None,
    max_length: int | None = None,
    pad_to_max_length: bool | None = None,
) -> dict[str, Any]:
    """``TextEmbeddingPipeline.Config`` fields for a sentence embedding (``pooling`` mean or cls,
    then L2 ``normalize``), with the static NPU-style shape when ``batch_size`` and ``max_length``
    are given (``pad_to_max_length`` then defaults to True: one compiled shape)."""
    if pooling not in GENAI_POOLING:
        raise ExportError(f"OpenVINO GenAI's TextEmbeddingPipeline has no {pooling!r} pooling (it has mean, cls)")
    kwargs: dict[str, Any] = {"pooling_type": GENAI_POOLING[pooling], "normalize": normalize}
    if batch_size is not None:
        kwargs["batch_size"] = batch_size
    if max_length is not None:
        kwargs["max_length"] = max_length
        kwargs["pad_to_max_length"] = batch_size is not None if pad_to_max_length is None else pad_to_max_length
    return kwargs


def genai_pipeline(
    folder: Path | str,
    *,
    device: str = "CPU",
    precision: str = "f32",
    pooling: str = "mean",
    normalize: bool = True,
    batch_size: int | None = None,
    max_length: int | None = None,
    pad_to_max_length: bool | None = None,
    performance_hint: str = "LATENCY",
) -> Any:
    """OpenVINO GenAI's ``TextEmbeddingPipeline`` on an exported folder, configured as
    :func:`genai_kwargs` says (``precision`` "auto" keeps the device default); pass the
    model's :func:`pooling_of` as ``pooling`` and ``normalize``."""
    require_peers("openvino_genai")
    import openvino_genai

    pipeline = openvino_genai.TextEmbeddingPipeline
    config = pipeline.Config()
    kwargs = genai_kwargs(
        pooling=pooling, normalize=normalize, batch_size=batch_size, max_length=max_length, pad_to_max_length=pad_to_max_length
    )
    for key, value in kwargs.items():
        setattr(config, key, getattr(pipeline.PoolingType, value) if key == "pooling_type" else value)
    properties: dict[str, Any] = {"PERFORMANCE_HINT": performance_hint}
    if precision != "auto":
        properties["INFERENCE_PRECISION_HINT"] = precision
    return pipeline(str(folder), device, config, **properties)


def export(folder: Path | str, *, format: str = "genai", spec: str | None = None, overwrite: bool = False) -> Exported:
    """Export the model ``spec`` (default: :func:`shapedemo.model.default_spec`) to ``folder``
    in ``format`` (only ``genai`` today)."""
    if format not in FORMATS:
        raise ExportError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    return export_genai(folder, spec=spec, overwrite=overwrite)


def export_genai(folder: Path | str, *, spec: str | None = None, overwrite: bool = False) -> Exported:
    """Write the folder ``TextEmbeddingPipeline`` loads; refuse a non-empty ``folder`` unless
    ``overwrite``. The model comes from :func:`shapedemo.model.load_model`."""
    require_peers("openvino_tokenizers")
    target = Path(folder).expanduser()
    _check_target(target, overwrite=overwrite)
    from shapedemo.model import default_spec, load_model

    loaded = load_model(spec or default_spec())
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        staging.chmod(0o777 & ~_umask())  # mkdtemp's folder is private; the export is not
        _write_genai(staging, loaded)
        _move_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    return Exported(target, "genai", loaded.spec, files, *pooling_of(loaded))


def _check_target(target: Path, *, overwrite: bool) -> None:
    if target.exists() and not target.is_dir():
        raise ExportError(f"{target} is a file, not a folder")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise ExportError(f"{target} exists and is not empty: choose a new folder or pass --overwrite")


def _move_into_place(staging: Path, target: Path) -> None:
    """Rename ``staging`` to ``target``; an existing ``target`` is swapped out first and
    removed only once the new folder is in place."""
    if not target.exists():
        os.rename(staging, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.rename(target, old / "previous")
    try:
        os.rename(staging, target)
    except OSError:
        os.rename(old / "previous", target)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def _write_genai(out: Path, loaded: Any) -> None:
    import openvino as ov

    ov.save_model(single_output(loaded.model), out / "openvino_model.xml", compress_to_fp16=False)
    tokenizer_folder = Path(loaded.tokenizer.folder)
    hf = _hf_tokenizer(tokenizer_folder)
    from openvino_tokenizers import convert_tokenizer

    tokenizer, detokenizer = convert_tokenizer(hf, with_detokenizer=True)
    ov.save_model(tokenizer, out / "openvino_tokenizer.xml")
    ov.save_model(detokenizer, out / "openvino_detokenizer.xml")
    hf.save_pretrained(str(out))  # tokenizer files in today's format; the model's own win below
    for name in TOKENIZER_FILES:
        _copy_if_present(tokenizer_folder / name, out / name)
    if not (out / "special_tokens_map.json").exists():
        _write_json(out / "special_tokens_map.json", dict(hf.special_tokens_map))
    source = _model_folder(loaded)
    if source is not None:
        for name in MODEL_FILES:
            _copy_if_present(source / name, out / name)
    if not (out / "config.json").exists() and loaded.dims is not None:
        config = {"architectures": ["BertModel"], "model_type": "bert", **dataclasses.asdict(loaded.dims)}
        _write_json(out / "config.json", config)


def _hf_tokenizer(folder: Path) -> Any:
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")  # "PyTorch was not found"
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ExportError(f"transformers could not load the tokenizer in {folder}: {exc}") from exc


def _model_folder(loaded: Any) -> Path | None:
    """Where the model's configuration files sit (None for a synthetic model)."""
    if loaded.source_path is None:
        return None
    path = Path(loaded.source_path)
    return path if path.is_dir() else path.parent


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _copy_if_present(src: Path, dst: Path) -> None:
    if src.is_file():
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
