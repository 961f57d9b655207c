"""Devices (issue 10) tested on the CPU: unknown or absent devices are one line, AUTO / HETERO /
MULTI compile, static-only mode refuses dynamic and bounded shapes with a reason and the rest runs,
the reference stays on the CPU, a device's own refusal is tried once and carried as data."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from shapedemo.measure.compare import REFERENCE, compare, encode_inputs
from shapedemo.runtime.devices import STATIC_ONLY_REASON, available_devices
from shapedemo.runtime.engine import Engine
from shapedemo.runtime.errors import EngineError, ShapesUnsupported
from shapedemo.planning.strategies import make_plan

pytestmark = pytest.mark.model
OPTIONS = dict(seq_buckets=[8, 16, 32, 64], batch_sizes=[1, 2, 4], max_seq=64)


@pytest.mark.parametrize("device", ["NPU", "GPU", "FOO", "HETERO:NPU,CPU", "MULTI:", "CPU:1", ""])
def test_absent_or_unknown_device_is_one_line(tiny, device):
    with pytest.raises(EngineError) as err:
        Engine(tiny, device=device, cache_dir=None)
    assert len(str(err.value).splitlines()) == 1 and "not available here" in str(err.value) and "CPU" in str(err.value)


def test_available_devices_have_full_names():
    rows = available_devices()
    assert rows[0][0] == "CPU" and rows[0][1] and rows[-1][0] == "AUTO"


@pytest.mark.parametrize("device", ["AUTO", "AUTO:CPU", "HETERO:CPU", "MULTI:CPU"])
def test_virtual_devices_compile_and_run(tiny, tmp_path, device):
    engine = Engine(tiny, device=device, precision="f32", cache_dir=tmp_path)
    encoded = encode_inputs(tiny, lengths=[5, 30, 9])
    c = compare(engine, encoded, ["dynamic", "padding"], repeats=1, warmup=0, **OPTIONS)
    assert c.device == device and c.reference_device == "CPU" and c.precision == "f32"
    assert all(r["supported"] for r in c.results)
    assert c.result("padding")["fidelity"]["max_abs_diff"] <= 1e-4
    assert c.device_properties["device"] == device and "EXECUTION_DEVICES" in c.device_properties
    assert engine.blob_dir is not None and device.split(":")[0] in engine.blob_dir.name


def test_auto_precision_is_read_from_what_it_runs_on(tiny):
    engine = Engine(tiny, device="AUTO", cache_dir=None)  # AUTO has no INFERENCE_PRECISION_HINT
    engine.compile((1, 16))
    assert engine.inference_precision in ("f32", "bf16", "f16")


def test_blob_cache_is_keyed_by_device_and_precision(tiny, tmp_path):
    folders = {Engine(tiny, device=d, precision=p, cache_dir=tmp_path).blob_dir for d in ("CPU", "AUTO") for p in ("f32", "auto")}
    assert len(folders) == 4


def test_static_only_refuses_dynamic_shapes_and_runs_the_rest(tiny):
    engine = Engine(tiny, precision="f32", cache_dir=None, static_only=True)
    assert engine.capabilities.dynamic is False and engine.capabilities.bounded is False
    with pytest.raises(ShapesUnsupported, match="static-only"):
        engine.compile(None)
    with pytest.raises(ShapesUnsupported, match="bounded"):
        engine.compile(None, bounds=(4, 64))
    encoded = encode_inputs(tiny, lengths=[5, 30, 9, 12])
    c = compare(engine, encoded, ["dynamic", "padding", "buckets", REFERENCE], repeats=2, warmup=0, **OPTIONS)
    data = c.to_dict()
    json.dumps(data)
    assert data["static_only"] is True and data["reference_device"] == "CPU"
    for name in ("dynamic", REFERENCE):
        r = c.result(name)
        assert r["supported"] is False and r["reason"] == STATIC_ONLY_REASON
        assert not {"latency_ms", "host_ms", "device_ms", "fidelity", "ratio_to_dynamic"} & set(r)
        assert r["compiled_models"] == [] and r["compile_s"] is None and r["memory_mb"] is None
    assert data["baseline"]["device"] == "CPU" and len(data["baseline"]["latency_ms"]["samples"]) == 2
    for name in ("padding", "buckets"):
        r = c.result(name)
        assert r["supported"] is True and r["fidelity"]["max_abs_diff"] <= 1e-4
        assert r["ratio_to_dynamic"] == pytest.approx(r["latency_ms"]["median"] / data["baseline"]["latency_ms"]["median"])
    assert not any(e.shape is None for e in engine.compiled_entries())  # nothing dynamic on the target


def test_embed_on_a_static_only_engine_uses_static_shapes(tiny, tiny_engine):
    from shapedemo.measure.compare import embed

    texts = ["A man is eating food.", "The stock market fell sharply today, and again."]
    _, want = embed(tiny_engine, texts)
    engine = Engine(tiny, precision="f32", cache_dir=None, static_only=True)
    _, got = embed(engine, texts)
    assert np.abs(got - want).max() <= 1e-5
    assert all(e.shape is not None for e in engine.compiled_entries())


class RefusingCore:
    """An OpenVINO Core that refuses unbounded dims the way a static-only plugin does (counting tries)."""

    MESSAGE = "Exception from src/inference/src/cpp/core.cpp:117:\nException from src/plugins/x/plugin.cpp:54:\nget_shape was called on a descriptor::Tensor with dynamic shape\n"

    def __init__(self, bounded_too: bool = False) -> None:
        import openvino as ov

        self.core, self.bounded_too, self.refused = ov.Core(), bounded_too, 0

    def compile_model(self, model, device, config=None):
        dims = [d for inp in model.inputs for d in inp.get_partial_shape()]
        unbounded = any(d.is_dynamic and d.get_max_length() < 0 for d in dims)
        if unbounded or (self.bounded_too and any(d.is_dynamic for d in dims)):
            self.refused += 1
            raise RuntimeError(self.MESSAGE)
        return self.core.compile_model(model, device, config or {})

    def __getattr__(self, name):
        return getattr(self.core, name)


def test_a_device_refusal_is_tried_once_and_carried_as_its_own_line(tiny):
    core = RefusingCore()
    engine = Engine(tiny, precision="f32", cache_dir=None, core=core)
    reference = Engine(tiny, precision="f32", cache_dir=None)
    encoded = encode_inputs(tiny, lengths=[5, 30, 9])
    plan = make_plan("dynamic", encoded.lengths, **OPTIONS)
    assert engine.capabilities.dynamic is None
    assert engine.supports(plan) == (False, "get_shape was called on a descriptor::Tensor with dynamic shape")
    assert engine.supports(plan)[0] is False and core.refused == 1  # tried once, the answer kept
    with pytest.raises(ShapesUnsupported) as err:
        engine.run(plan, encoded)
    assert len(str(err.value).splitlines()) == 1 and core.refused == 1
    bounded = dataclasses.replace(plan, strategy="dynamic-bounded", params={**plan.params, "bounds": [4, 64]})
    assert engine.supports(bounded) == (True, None)  # this device takes bounded dims
    caps = engine.capabilities
    assert (caps.dynamic, caps.bounded) == (False, True)
    c = compare(engine, encoded, ["dynamic", "padding"], repeats=1, warmup=0, reference_engine=reference, **OPTIONS)
    assert c.result("dynamic")["reason"] == "get_shape was called on a descriptor::Tensor with dynamic shape"
    assert c.baseline["device"] == "CPU" and c.result("padding")["ratio_to_dynamic"] > 0


def test_device_rules_are_data(tiny, monkeypatch):
    """A device type listed as static-only is refused without trying; bounded dims are still tried."""
    from shapedemo.runtime import devices

    monkeypatch.setitem(devices.DEVICE_RULES, "CPU", {"dynamic": "static shapes only (rule)"})
    engine = Engine(tiny, precision="f32", cache_dir=None)
    assert engine.capabilities.dynamic is False and engine.capabilities.bounded is None
    assert engine.capabilities.dynamic_reason == "static shapes only (rule)"
    assert engine.probe_capabilities().bounded is True


def test_bounded_plan_compiles_once_apart_from_the_dynamic_model(tiny):
    engine = Engine(tiny, precision="f32", cache_dir=None)
    encoded = encode_inputs(tiny, lengths=[5, 30, 9])
    plan = make_plan("dynamic", encoded.lengths, **OPTIONS)
    bounded = dataclasses.replace(plan, strategy="dynamic-bounded", params={**plan.params, "bounds": [4, 64]})
    single = engine.run(make_plan(REFERENCE, encoded.lengths, **OPTIONS), encoded, warmup=0)
    got = engine.run(bounded, encoded, warmup=1, repeats=2)
    engine.run(bounded, encoded, warmup=0)
    keys = [(e.shape, e.bounds) for e in engine.compiled_entries()]
    assert keys.count((None, (4, 64))) == 1 and keys.count((None, None)) == 1
    for a, b in zip(got.hidden, single.hidden):
        assert a.shape == b.shape and np.abs(a - b).max() <= 1e-4
