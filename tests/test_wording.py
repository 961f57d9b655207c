"""The decomposition sentence shows the interval of the figure it prints (pure, no model)."""

from shapedemo.measure.wording import decomposition_lines


def _data(overhead: float, interval: list[float]) -> dict:
    return {
        "device": "CPU",
        "precision": "f32",
        "decomposition": {
            "dynamic_device_ms": {"median": 10.0},
            "static_at_dynamic_shape_device_ms": {"median": 12.0},
            "dynamic_overhead": overhead,
            "dynamic_overhead_interval": interval,
            "dynamic_call_shape": [4, 64],
            "dynamic_padding_fraction": 0.4,
            "padding_share": None,
        },
    }


def test_dynamic_faster_is_worded_with_the_interval_of_that_figure():
    line = decomposition_lines(_data(-0.2, [-0.3, -0.05]))
    assert "being dynamic is **20% faster** [5% to 30%]" in line


def test_dynamic_dearer_and_not_measurable():
    assert "being dynamic costs **+20%** [+5% to +30%]" in decomposition_lines(_data(0.2, [0.05, 0.3]))
    assert "nothing measurable" in decomposition_lines(_data(0.02, [-0.1, 0.1]))


def test_preview_says_how_auto_was_priced_and_that_compare_may_change_its_plan():
    from shapedemo.measure.report import plans_summary
    from shapedemo.planning.strategies import make_plan
    from shapedemo.planning.strategies.cost import CostModel

    lengths = [5, 40, 12]
    options = {"seq_buckets": [16, 64], "batch_sizes": [1, 2, 4], "max_seq": 64}
    slots = plans_summary([make_plan("auto", lengths, **options)], lengths=lengths, options=options)
    assert "`auto` is priced here by token slots" in slots and "its plan may change" in slots
    table = CostModel({(b, s): b * s / 100 + 1.0 for b in (1, 2, 4) for s in (16, 64)})
    timed = plans_summary([make_plan("auto", lengths, **options, cost_model=table)], lengths=lengths, options=options)
    assert "`auto` is priced by a given cost table" in timed and "may change" not in timed
    padding = plans_summary([make_plan("padding", lengths, **options)], lengths=lengths, options=options)
    assert "priced" not in padding
