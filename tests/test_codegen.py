"""The generated OpenVINO code for the plans added after the first eight: ``auto`` (plain and
packed) and ``dynamic-bounded``, run on the tiny synthetic model and compared with the engine."""

from __future__ import annotations

import numpy as np
import pytest

from shapedemo.planning.codegen import plan_code
from shapedemo.planning.strategies import make_plan

LENGTHS = [6, 13, 4, 9, 21]
OPTIONS = dict(seq_buckets=[8, 16, 32, 64], batch_sizes=[1, 2, 4], max_seq=64)
SLOTS_ONLY = {(b, s): 2.0 + 0.01 * b * s for b in (1, 2, 4) for s in (8, 16, 32, 64)}


def plans() -> dict[str, object]:
    return {
        "auto-packed": make_plan("auto", LENGTHS, **OPTIONS),
        "auto-plain": make_plan("auto", LENGTHS, **OPTIONS, allow_packing=False, cost_table=SLOTS_ONLY),
        "dynamic-bounded": make_plan("dynamic-bounded", LENGTHS, **OPTIONS),
    }


@pytest.mark.parametrize("name", ["auto-packed", "auto-plain", "dynamic-bounded"])
def test_generated_code_compiles_for_the_device_asked(name: str) -> None:
    plan = plans()[name]
    code = plan_code(plan, device="GPU")
    assert 'core.compile_model(' in code and '"GPU")' in code and '"CPU"' not in code
    compile(code, "generated.py", "exec")
    assert ("# auto chose: " in code) == name.startswith("auto")
    assert ("ov.Dimension(1, 4), ov.Dimension(1, 64)" in code) == (name == "dynamic-bounded")


@pytest.mark.model
@pytest.mark.parametrize("name", ["auto-packed", "auto-plain", "dynamic-bounded"])
def test_generated_code_runs_and_matches_the_engine(tiny_engine, tmp_path, name, monkeypatch):
    import openvino as ov

    from shapedemo.model import Encoded

    plan = plans()[name]
    assert plan.packed == (name == "auto-packed")
    ov.save_model(tiny_engine.loaded.model, tmp_path / "model.xml", compress_to_fp16=False)
    ov.save_model(tiny_engine.loaded.packed, tmp_path / "packed.xml", compress_to_fp16=False)
    monkeypatch.chdir(tmp_path)
    f32 = "core = ov.Core(); core.set_property('CPU', {'INFERENCE_PRECISION_HINT': 'f32'})"
    code = plan_code(plan).replace("core = ov.Core()", f32)
    scope: dict = {}
    exec(compile(code, "generated.py", "exec"), scope)
    encoded = Encoded([list(range(1, n + 1)) for n in LENGTHS], [[0] * n for n in LENGTHS])
    outcome = tiny_engine.run(plan, encoded, warmup=0)
    for got, want in zip(scope["hidden"], outcome.hidden, strict=True):
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= 1e-5
