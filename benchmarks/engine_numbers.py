"""Engine numbers (issues 9, 10): cold vs cached compile, warming every shape of the default strategies, a comparison on the CPU and the same in static-only mode, host vs device time. Ratios from one run: `python benchmarks/engine_numbers.py`."""
import tempfile
import time

from shapedemo.measure.compare import compare, encode_inputs
from shapedemo.settings import DEFAULT_STRATEGIES
from shapedemo.shapes import default_max_seq as auto_max_seq
from shapedemo.planning.workloads import sample_lengths as workload_lengths
from shapedemo.runtime.devices import available_devices
from shapedemo.runtime.engine import Engine
from shapedemo.model import load_model
from shapedemo.planning.strategies import make_plan

print("available_devices:", available_devices())
m = load_model("minilm")
# cold vs warm blob cache, two engines on one fresh cache folder
tmp = tempfile.mkdtemp()
for i in range(2):
    e = Engine(m, precision="f32", cache_dir=tmp)
    c = e.compile((8, 128))
    print(f"engine {i + 1}: 8x128 compile {c.compile_s:.3f} s from_cache={c.from_cache} memory {c.memory_mb:.1f} MiB first inference {c.first_infer_s:.3f} s")
# time to warm every shape of the default plan (cold cache)
lengths = workload_lengths("sst2-like", 16, seed=0)
enc = encode_inputs(m, lengths=lengths)
e = Engine(m, precision="auto", cache_dir=tempfile.mkdtemp())
t0 = time.perf_counter()
n = 0
for name in DEFAULT_STRATEGIES:
    e.prepare(make_plan(name, lengths, max_seq=auto_max_seq(lengths)))
warm = time.perf_counter() - t0
print(f"warm every shape of the default strategies (sst2-like batch 16, max_seq {auto_max_seq(lengths)}, {e.inference_precision}, cold cache): "
      f"{len(e.compiled_entries())} compiled models in {warm:.1f} s; compile {sum(x.compile_s for x in e.compiled_entries()):.1f} s, first inferences {sum(x.first_infer_s for x in e.compiled_entries()):.1f} s")
# a comparison on the CPU, and the same in static-only mode
for static_only in (False, True):
    eng = e if not static_only else Engine(m, precision="auto", static_only=True, cache_dir=e.cache_dir)
    c = compare(eng, enc, DEFAULT_STRATEGIES, max_seq=auto_max_seq(lengths), repeats=7, warmup=1)
    d = c.to_dict()
    print(f"\nstatic_only={static_only} device {d['device']} ({d['precision']}) reference {d['reference_device']} baseline {d['baseline']['device']} "
          f"{d['baseline']['latency_ms']['median']:.2f} ms; batching alone max|diff| {d['batching_fidelity']['max_abs_diff']:.2g}")
    for r in d["results"]:
        if not r["supported"]:
            print(f"  {r['strategy']:<18} not run: {r['reason']}")
            continue
        print(f"  {r['strategy']:<18} latency {r['latency_ms']['median']:7.2f} ms = host {r['host_ms']['median']:5.2f} + device {r['device_ms']['median']:7.2f}; "
              f"x dynamic {r['ratio_to_dynamic']:.2f}; {r['num_compiled_models']} models {r['memory_mb']:.0f} MiB; max|diff| {r['fidelity']['max_abs_diff']:.2g}")
