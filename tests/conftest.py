"""Shared fixtures: models are built once per test session into a temporary cache."""

from __future__ import annotations

import os

import pytest

# tests compile many shapes: keep the compiled-blob cache of each test session small
os.environ.setdefault("SHAPEDEMO_BLOB_CACHE_MB", "256")


@pytest.fixture
def fresh_session():
    """A new process session (models, engines, compiled-model budget, plan memo) for one test,
    cleared after it; the next user of ``shapedemo.session.current()`` starts from nothing."""
    from shapedemo import session

    yield session.fresh()
    session.fresh()


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("shapedemo-cache")


@pytest.fixture(scope="session")
def tiny(cache_dir):
    from shapedemo.model import load_model

    return load_model("synthetic:tiny", cache_dir=cache_dir)


@pytest.fixture(scope="session")
def minilm(cache_dir):
    from shapedemo.model import load_model

    return load_model("minilm", cache_dir=cache_dir)


@pytest.fixture(scope="session")
def tiny_engine(tiny, cache_dir):
    from shapedemo.runtime.engine import Engine

    return Engine(tiny, precision="f32", cache_dir=cache_dir)


@pytest.fixture(scope="session")
def minilm_engine(minilm, cache_dir):
    from shapedemo.runtime.engine import Engine

    return Engine(minilm, precision="f32", cache_dir=cache_dir)
