"""The OpenVINO code that reproduces a plan, generated from the plan itself, for learners to copy.

Pure: no OpenVINO import here; the generated text uses the OpenVINO Python API.

>>> from shapedemo.planning.plan import Plan, single_row_call
>>> plan = Plan("partition", (5, 3, 7), (single_row_call(2, 8, [(0, 5), (1, 3)]), single_row_call(1, 8, [(2, 7)])))
>>> code = plan_code(plan)
>>> "static.reshape" in code and "(2, 8)" in code and "(1, 8)" in code
True
>>> compile(code, "plan.py", "exec") is not None
True
"""

from __future__ import annotations

from shapedemo.planning.plan import Plan

_HEADER = '''import numpy as np
import openvino as ov

core = ov.Core()
model = core.read_model("model.xml")  # BERT with inputs input_ids, attention_mask, token_type_ids
# token ids of your sequences ([CLS] ... [SEP]), e.g. from a tokenizer; lengths {lengths}
sequences = [np.arange(1, n + 1, dtype=np.int64) for n in {lengths}]
'''

_PACKED_HEADER = '''import numpy as np
import openvino as ov

core = ov.Core()
# the packed BERT: inputs input_ids, token_type_ids, position_ids, segment_ids
# (shapedemo saves it as packed.xml next to model.xml in its cache)
model = core.read_model("packed.xml")
# token ids of your sequences ([CLS] ... [SEP]), e.g. from a tokenizer; lengths {lengths}
sequences = [np.arange(1, n + 1, dtype=np.int64) for n in {lengths}]
'''


def _calls_literal(plan: Plan) -> str:
    lines = []
    for call in plan.calls:
        rows = [[(s.seq, s.offset) for s in row] for row in call.rows]
        lines.append(f"    (({call.batch}, {call.seq}), {rows}),")
    return "calls = [  # (compiled shape, rows: [(sequence, offset in row), ...]; [] = padding row)\n" + "\n".join(lines) + "\n]\n"


def plan_code(plan: Plan, *, device: str = "CPU") -> str:
    """Python code that compiles the shapes ``plan`` needs on ``device`` and runs its calls.

    A ``dynamic-bounded`` plan reshapes the model to its bounds first; an ``auto`` plan says
    why it chose its layout in a comment.

    >>> from shapedemo.planning.strategies import make_plan
    >>> code = plan_code(make_plan("dynamic-bounded", [5, 9, 3], batch_sizes=[2], max_seq=64), device="NPU")
    >>> "ov.Dimension(1, 2), ov.Dimension(1, 64)" in code and 'compile_model(model, "NPU")' in code
    True
    """
    lengths = list(plan.lengths)
    if plan.packed:
        text = _PACKED_HEADER.format(lengths=lengths)
    else:
        text = _HEADER.format(lengths=lengths)
    text += "\n" + _calls_literal(plan) + "\n"
    why = plan.params.get("why")
    if why:
        text += f"# auto chose: {why}\n"
    bounds = plan.params.get("bounds") if plan.dynamic else None
    if bounds:
        batch, seq = bounds
        text += (
            f"# bounded dynamic dims: batch 1..{batch}, sequence 1..{seq} (some static-only\n"
            "# devices accept bounds where -1 fails)\n"
            "model.reshape({inp.get_any_name(): ov.PartialShape("
            f"[ov.Dimension(1, {batch}), ov.Dimension(1, {seq})]) for inp in model.inputs}})\n"
        )
    if plan.dynamic:
        text += (
            "# native dynamic shapes: one model for every shape, compiled once\n"
            f'compiled = core.compile_model(model, "{device}")\n'
            "request = compiled.create_infer_request()  # one request per thread\n"
            "requests = {shape: request for shape, _ in calls}\n"
        )
    else:
        shapes = ", ".join(f"({b}, {s})" for b, s in plan.compiled_shapes)
        text += (
            f"# one compiled model per static shape: {shapes}\n"
            "requests = {}\n"
            "for shape in sorted({shape for shape, _ in calls}):\n"
            "    static = model.clone()  # reshape changes a model in place\n"
            "    static.reshape({inp.get_any_name(): list(shape) for inp in static.inputs})\n"
            f'    requests[shape] = core.compile_model(static, "{device}").create_infer_request()\n'
        )
    text += "\nhidden = [None] * len(sequences)\nfor (batch, seq), rows in calls:\n"
    text += "    ids = np.zeros((batch, seq), np.int64)  # pad token id 0\n"
    if plan.packed:
        text += (
            "    positions = np.zeros_like(ids)\n"
            "    segments = np.zeros_like(ids)  # 0 = padding, k = k-th sequence in the row\n"
            "    for r, row in enumerate(rows):\n"
            "        for k, (i, offset) in enumerate(row, start=1):\n"
            "            n = len(sequences[i])\n"
            "            ids[r, offset:offset + n] = sequences[i]\n"
            "            positions[r, offset:offset + n] = np.arange(n)  # positions restart\n"
            "            segments[r, offset:offset + n] = k  # block-diagonal attention\n"
            "    request = requests[(batch, seq)]\n"
            "    request.infer({\"input_ids\": ids, \"token_type_ids\": np.zeros_like(ids),\n"
            "                   \"position_ids\": positions, \"segment_ids\": segments})\n"
        )
    else:
        fill = "np.ones_like(ids)  # no mask: pad tokens leak into every output" if not plan.masked else "np.zeros_like(ids)"
        text += f"    mask = {fill}\n"
        text += "    for r, row in enumerate(rows):\n"
        text += "        for i, offset in row:\n"
        text += "            n = len(sequences[i])\n"
        text += "            ids[r, offset:offset + n] = sequences[i]\n"
        if plan.masked:
            text += "            mask[r, offset:offset + n] = 1  # the mask hides the pad\n"
            text += "        if not row:\n            mask[r, 0] = 1  # padding row: keep softmax defined\n"
        text += "    request = requests[(batch, seq)]\n"
        text += "    request.infer({\"input_ids\": ids, \"attention_mask\": mask, \"token_type_ids\": np.zeros_like(ids)})\n"
    text += (
        "    states = request.get_tensor(\"last_hidden_state\").data\n"
        "    for r, row in enumerate(rows):\n"
        "        for i, offset in row:  # gather back in request order, padding trimmed\n"
        "            hidden[i] = states[r, offset:offset + len(sequences[i])].copy()\n"
    )
    return text
